"""Loyalty: bonus cards by card number, an append-only bonus ledger that is never wrong, and
cumulative discounts (tiers) in the price policy.

Accrual on ``helpdesk_orders_recorded`` (a batch at a time), reversal on
``helpdesk_order_refunded``, cards on ``helpdesk_customers_registered`` (``LOYALTY_AUTO_ISSUE``,
a commit's customers at a time).
``LOYALTY_DISCOUNT_COMBINE``, when set, is the price policy's ``PRICE_POLICY_COMBINE`` (one
combiner for every discount).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask_babel import gettext as _

from helpdesk import hookimpl, render_panel, write_intent
from plugins.loyalty import cards, ledger, refunds, service, tiers
from plugins.loyalty.api import bp as api_bp
from plugins.loyalty.cli import loyalty as loyalty_commands
from plugins.loyalty.openapi import document_part
from plugins.loyalty.views import bp

__version__ = "1.0.0"
HERE = Path(__file__).resolve().parent
DEFAULT_TIERS = [
    {"name": "Silver", "from": "1000", "discount_percent": "3"},
    {"name": "Gold", "from": "5000", "discount_percent": "5"},
]


@hookimpl
def helpdesk_config_defaults() -> dict[str, Any]:
    return {
        # The programme currency: bonus, tiers and redemptions are in it only.
        "LOYALTY_CURRENCY": "EUR",
        # Bonus accrued on an order, percent of its amount (half-up to the currency's places).
        "LOYALTY_ACCRUAL_PERCENT": 5,
        # All redemptions on one order together: at most this percent of it.
        "LOYALTY_REDEEM_MAX_PERCENT": 50,
        # New card numbers: prefix, total length, Luhn check digit (python-stdnum).
        "LOYALTY_CARD_PREFIX": "",
        "LOYALTY_CARD_LENGTH": 16,
        "LOYALTY_CARD_LUHN": True,
        # Issue a card to every newly registered customer.
        "LOYALTY_AUTO_ISSUE": True,
        # Cumulative discounts by spend (a list, or its JSON text).
        "LOYALTY_TIERS": DEFAULT_TIERS,
        # Spend counted for tiers: "lifetime" or "12m" (the last 12 months).
        "LOYALTY_TIER_WINDOW": "lifetime",
        # Accrued bonus expires after this many months (0: never).
        "LOYALTY_EXPIRY_MONTHS": 0,
        # Agents adjust a balance by up to this much; above it, administrators only.
        "LOYALTY_AGENT_ADJUST_LIMIT": 50,
        # How a tier discount combines with other discounts: "best" or "stack". None: follow
        # PRICE_POLICY_COMBINE; when set, it is copied into PRICE_POLICY_COMBINE at start-up.
        "LOYALTY_DISCOUNT_COMBINE": None,
    }


@bp.record_once
def _one_combiner(state) -> None:
    """``LOYALTY_DISCOUNT_COMBINE`` and ``PRICE_POLICY_COMBINE`` are one setting."""
    config = state.app.config
    if config.get("LOYALTY_DISCOUNT_COMBINE"):
        config["PRICE_POLICY_COMBINE"] = config["LOYALTY_DISCOUNT_COMBINE"]
    else:
        config["LOYALTY_DISCOUNT_COMBINE"] = config["PRICE_POLICY_COMBINE"]


@hookimpl
def helpdesk_blueprints() -> list:
    return [bp, api_bp]


@hookimpl
def helpdesk_cli_commands() -> list:
    return [loyalty_commands]


@hookimpl
def helpdesk_migration_dirs() -> list[str]:
    return [str(HERE / "migrations")]


@hookimpl
def helpdesk_nav_items(agent) -> list[dict[str, Any]]:
    # The link, and a box in the top bar a barcode scanner types the number into (and Enter).
    return [
        {"label": _("Cards"), "endpoint": "loyalty.lookup"},
        {"label": _("Card number"), "endpoint": "loyalty.lookup", "search": "number"},
    ]


@hookimpl
def helpdesk_reports() -> list[dict[str, Any]]:
    return [
        {
            "title": _("Bonuses"),
            "endpoint": "loyalty.report_page",
            "description": _(
                "Bonus accrued, redeemed and expired, and what is owed in bonus, per month; "
                "tier distribution."
            ),
        }
    ]


@hookimpl
def helpdesk_customers_registered(customers) -> None:
    from flask import current_app

    if not current_app.config["LOYALTY_AUTO_ISSUE"]:
        return
    with write_intent():
        cards.issue_on_registration(customers)


@hookimpl
def helpdesk_orders_recorded(orders) -> None:
    with write_intent():
        ledger.accrue_orders(orders)


@hookimpl
def helpdesk_order_refunded(order, refund) -> None:
    with write_intent():
        refunds.on_refund(order)


@hookimpl
def helpdesk_price_policy(customer, amount) -> dict[str, Any] | None:
    standing = tiers.standing(customer.id)
    if standing.tier is None:
        return None
    return {
        "discount_percent": standing.tier.discount_percent,
        "prepayment_required": False,
        "reason": f"{standing.tier.name} tier",
    }


def _panel(customer, *, movements: bool) -> dict[str, Any]:
    """The card, balance and standing; with ``movements`` (the customer page) the last ten
    ledger rows too (the ticket page stays short: the statement is a click away)."""
    card, standing = service.card_and_standing(customer.id)
    html = render_panel(
        "loyalty/panel.html",
        customer=customer,
        card=card,
        standing=standing,
        movements=ledger.ledger_page(card, 1, 10)[0] if card and movements else None,
        currency=ledger.currency(),
    )
    return {"title": _("Bonus card"), "html": html}


@hookimpl
def helpdesk_customer_panels(customer) -> dict[str, Any]:
    return _panel(customer, movements=True)


@hookimpl
def helpdesk_ticket_panels(ticket) -> dict[str, Any] | None:
    return _panel(ticket.customer, movements=False) if ticket.customer is not None else None


@hookimpl
def helpdesk_customer_json(customers) -> dict[int, dict[str, Any]]:
    found = service.cards_of([customer.id for customer in customers])
    return {
        customer.id: {
            "card": (
                {"number": card.number, "balance": ledger.text(card.balance)}
                if (card := found.get(customer.id))
                else None
            )
        }
        for customer in customers
    }


@hookimpl
def helpdesk_openapi() -> dict[str, Any]:
    return document_part()
