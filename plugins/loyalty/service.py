"""What the API and the pages show of a card, and the entry points they call."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from helpdesk import Customer, db
from plugins.loyalty import cards, ledger, tiers
from plugins.loyalty.models import Card, CardEvent


def card_json(card: Card) -> dict[str, Any]:
    """A card as the API answers it (money as strings in the programme currency): one query
    besides the card's own."""
    replaced_by = select(Card.number).where(Card.id == card.replaced_by_id).scalar_subquery()
    email, replaced_number, bought, refunded = db.session.execute(
        select(Customer.email, replaced_by, *tiers.spent_columns(card.customer_id)).where(
            Customer.id == card.customer_id
        )
    ).one()
    standing = tiers.standing_at(tiers.net_spent(bought, refunded))
    return {
        "number": card.number,
        "status": card.status,
        "replaced_by": replaced_number,
        "customer": {"id": card.customer_id, "email": email},
        "balance": ledger.text(card.balance),
        "owed": ledger.text(card.owed),
        "currency": ledger.currency(),
        "tier": tier_json(standing),
        "next_tier": (
            {"name": standing.next_tier.name, "remaining": ledger.text(standing.remaining)}
            if standing.next_tier
            else None
        ),
    }


def tier_json(standing: tiers.Standing) -> dict[str, Any] | None:
    """The tier reached, as JSON."""
    if standing.tier is None:
        return None
    return {"name": standing.tier.name, "discount_percent": str(standing.tier.discount_percent)}


def cards_of(customer_ids: list[int]) -> dict[int, Card]:
    """Each customer's active card (one query)."""
    if not customer_ids:
        return {}
    found = db.session.scalars(select(Card).where(Card.active_customer_id.in_(customer_ids)))
    return {card.active_customer_id: card for card in found}


def latest_card(customer_id: int) -> Card | None:
    """The customer's active card, else their most recent one."""
    return cards.active_card(customer_id) or db.session.scalar(
        select(Card).where(Card.customer_id == customer_id).order_by(Card.id.desc()).limit(1)
    )


def history(card: Card) -> list[CardEvent]:
    """The card's changes, newest first."""
    return list(
        db.session.scalars(
            select(CardEvent).where(CardEvent.card_id == card.id).order_by(CardEvent.id.desc())
        )
    )
