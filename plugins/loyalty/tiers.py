"""Cumulative discounts: tiers by what a customer spent in the programme currency (orders less
their refunds), over their lifetime or the last 12 months (``LOYALTY_TIER_WINDOW``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, func, select

from helpdesk import Order, OrderRefund, db, in_currency_units, utcnow

WINDOWS = ("lifetime", "12m")


class TierConfigError(ValueError):
    """``LOYALTY_TIERS`` or ``LOYALTY_TIER_WINDOW`` is not as documented."""


@dataclass(frozen=True)
class Tier:
    """A tier: from how much spent, what discount."""

    name: str
    threshold: Decimal
    discount_percent: Decimal


@dataclass(frozen=True)
class Standing:
    """A customer's tier (or none), the next one and how much is left to reach it."""

    spent: Decimal
    tier: Tier | None
    next_tier: Tier | None
    remaining: Decimal | None

    @property
    def progress_percent(self) -> int:
        """How far from the current tier's threshold to the next one (0-100)."""
        if self.next_tier is None:
            return 100
        start = self.tier.threshold if self.tier else Decimal(0)
        span = self.next_tier.threshold - start
        return int(max(0, min(100, (self.spent - start) * 100 / span))) if span > 0 else 100


def configured() -> list[Tier]:
    """The tiers of ``LOYALTY_TIERS`` (a list, or its JSON text), lowest first."""
    raw: Any = current_app.config["LOYALTY_TIERS"]
    if isinstance(raw, str):
        import json

        raw = json.loads(raw)
    tiers = []
    try:
        for item in raw:
            tiers.append(
                Tier(
                    str(item["name"]),
                    Decimal(str(item["from"])),
                    Decimal(str(item["discount_percent"])),
                )
            )
    except (KeyError, TypeError, InvalidOperation) as exc:
        raise TierConfigError(
            f"LOYALTY_TIERS: each tier needs name, from, discount_percent ({exc})"
        ) from None
    return sorted(tiers, key=lambda tier: tier.threshold)


def _spent_columns() -> tuple[Any, Any]:
    counted = [
        Order.customer_id == bindparam("spent_customer"),
        Order.currency == bindparam("spent_currency"),
        Order.ordered_on > bindparam("spent_since"),
    ]
    bought = select(func.sum(Order.amount)).where(*counted).scalar_subquery()
    refunded = (
        select(func.sum(OrderRefund.amount))
        .where(OrderRefund.order_id.in_(select(Order.id).where(*counted)))
        .scalar_subquery()
    )
    return bought, refunded


# Two scalar subqueries, built once: a customer's orders in the programme currency within the
# tier window, and the refunds of those orders (to select with other columns). A statement
# using them is executed with ``spent_params``.
BOUGHT, REFUNDED = _spent_columns()
_SPENT = select(BOUGHT, REFUNDED)


def spent_params(customer_id: int) -> dict[str, Any]:
    """The values ``BOUGHT`` and ``REFUNDED`` read for this customer now."""
    window = current_app.config["LOYALTY_TIER_WINDOW"]
    if window not in WINDOWS:
        raise TierConfigError(f"LOYALTY_TIER_WINDOW must be one of {WINDOWS}, not {window!r}")
    since = (utcnow() - timedelta(days=365)).date() if window == "12m" else date.min
    return {
        "spent_customer": customer_id,
        "spent_currency": current_app.config["LOYALTY_CURRENCY"],
        "spent_since": since,
    }


def net_spent(bought: Decimal | None, refunded: Decimal | None) -> Decimal:
    """What ``BOUGHT`` and ``REFUNDED`` read, as the amount spent (orders less refunds)."""
    currency = current_app.config["LOYALTY_CURRENCY"]
    return in_currency_units(Decimal(bought or 0) - Decimal(refunded or 0), currency)


def spent(customer_id: int) -> Decimal:
    """What the customer spent in the programme currency within the tier window: their orders
    less the refunds of those orders (one query)."""
    return net_spent(*db.session.execute(_SPENT, spent_params(customer_id)).one())


def standing(customer_id: int) -> Standing:
    """The customer's tier and the way to the next."""
    return standing_at(spent(customer_id))


def standing_at(amount: Decimal) -> Standing:
    """The tier reached by having spent ``amount``, and the way to the next."""
    tiers = configured()
    reached = [tier for tier in tiers if amount >= tier.threshold]
    ahead = [tier for tier in tiers if amount < tier.threshold]
    tier = reached[-1] if reached else None
    following = ahead[0] if ahead else None
    remaining = following.threshold - amount if following else None
    return Standing(amount, tier, following, remaining)
