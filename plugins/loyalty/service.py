"""What the API and the pages show of a card, and the entry points they call."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import aliased

from helpdesk import Customer, db
from plugins.loyalty import ledger, tiers
from plugins.loyalty.models import Card, CardEvent

# Built once: the card's customer's e-mail, the number of the card that replaced it and what
# the customer spent (``tiers.spent_params``).
_CARD_FACTS = select(
    Customer.email,
    select(Card.number).where(Card.id == bindparam("replaced_by_id")).scalar_subquery(),
    tiers.BOUGHT,
    tiers.REFUNDED,
).where(Customer.id == bindparam("spent_customer"))


def card_json(card: Card) -> dict[str, Any]:
    """A card as the API answers it (money as strings in the programme currency): one query
    besides the card's own."""
    email, replaced_number, bought, refunded = db.session.execute(
        _CARD_FACTS,
        {"replaced_by_id": card.replaced_by_id, **tiers.spent_params(card.customer_id)},
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


def _card_and_spent() -> Select:
    other = aliased(Card)
    picked = (
        select(other.id)
        .where(other.customer_id == bindparam("spent_customer"))
        .order_by(other.active_customer_id.is_(None), other.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(Card, tiers.BOUGHT, tiers.REFUNDED)
        .select_from(Customer)
        .outerjoin(Card, Card.id == picked)
        .where(Customer.id == bindparam("spent_customer"))
    )


# Built once: a customer's active card, else their most recent one, and what they spent.
_CARD_AND_SPENT = _card_and_spent()


def card_and_standing(customer_id: int) -> tuple[Card | None, tiers.Standing]:
    """The customer's active card, else their most recent one, and their tier standing: one
    query."""
    card, bought, refunded = db.session.execute(
        _CARD_AND_SPENT, tiers.spent_params(customer_id)
    ).one()
    return card, tiers.standing_at(tiers.net_spent(bought, refunded))


def history(card: Card) -> list[CardEvent]:
    """The card's changes, newest first."""
    return list(
        db.session.scalars(
            select(CardEvent).where(CardEvent.card_id == card.id).order_by(CardEvent.id.desc())
        )
    )
