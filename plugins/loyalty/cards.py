"""Card numbers and cards: the number format (prefix, length, Luhn check digit through
``python-stdnum``), lookup, issue, block, replace and reactivate, each change recorded with who,
when and why."""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, exists, insert, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from stdnum import luhn

from helpdesk import Agent, Conflict, Customer, NotFound, ValidationError, db, utcnow
from plugins.loyalty.models import Card, CardEvent

# Spaces and dashes a printed or typed number may carry: "4000 1234-5678 9017".
_SEPARATORS = re.compile(r"[\s\-]+")
_FREE_FORM = re.compile(r"[0-9A-Za-z]+")
MAX_NUMBER_LENGTH = 64
MAX_REASON_LENGTH = 500
NEW_NUMBER_ATTEMPTS = 20


def normalize(raw: Any) -> str:
    """The number without spaces and dashes; 422 on ``number`` when it cannot be a number."""
    if not isinstance(raw, str):
        raise ValidationError({"number": "must be text"})
    number = _SEPARATORS.sub("", raw)
    if not number:
        raise ValidationError({"number": "is required"})
    if len(number) > MAX_NUMBER_LENGTH or not _FREE_FORM.fullmatch(number):
        raise ValidationError({"number": "is not a card number"})
    return number


def format_error(number: str) -> str | None:
    """What is wrong with ``number`` by the configured format, or ``None``."""
    config = current_app.config
    prefix, length = str(config["LOYALTY_CARD_PREFIX"]), int(config["LOYALTY_CARD_LENGTH"])
    if not number.isdigit():
        return "must be digits only"
    if len(number) != length:
        return f"must be {length} digits long"
    if not number.startswith(prefix):
        return f"must start with {prefix}"
    if config["LOYALTY_CARD_LUHN"] and not luhn.is_valid(number):
        return "has a wrong check digit"
    return None


_CARD_BY_NUMBER = select(Card).where(Card.number == bindparam("number"))


def card_by_number(raw: Any) -> Card:
    """The card of ``raw`` (spaces and dashes ignored). Stored numbers are looked up first, so
    imported free-form numbers are found; a number that matches no card is a 422 on
    ``number`` when it fails the configured format, else ``NotFound``."""
    number = normalize(raw)
    card = db.session.scalar(_CARD_BY_NUMBER, {"number": number})
    if card is not None:
        return card
    problem = format_error(number)
    if problem:
        raise ValidationError({"number": problem})
    raise NotFound(f"no card has the number {number}")


def _random_number() -> str:
    """A number in the configured format (random digits, then the check digit), not checked
    against the stored ones."""
    config = current_app.config
    prefix, length = str(config["LOYALTY_CARD_PREFIX"]), int(config["LOYALTY_CARD_LENGTH"])
    with_luhn = bool(config["LOYALTY_CARD_LUHN"])
    body_length = length - len(prefix) - (1 if with_luhn else 0)
    digits = f"{secrets.randbelow(10**body_length):0{body_length}d}" if body_length > 0 else ""
    body = prefix + digits
    return body + luhn.calc_check_digit(body) if with_luhn else body


def new_number() -> str:
    """A fresh number in the configured format (random digits, then the check digit)."""
    for _attempt in range(NEW_NUMBER_ATTEMPTS):
        number = _random_number()
        if db.session.scalar(select(Card.id).where(Card.number == number)) is None:
            return number
    raise Conflict("no free card number found; make LOYALTY_CARD_LENGTH longer")


def active_card(customer_id: int) -> Card | None:
    """The customer's active card, if any."""
    return db.session.scalar(select(Card).where(Card.active_customer_id == customer_id))


def current_card(card: Card) -> Card:
    """The card that took over from ``card`` (following replacements), or ``card`` itself."""
    seen = {card.id}
    while card.replaced_by_id is not None and card.replaced_by_id not in seen:
        card = db.session.get(Card, card.replaced_by_id)
        seen.add(card.id)
    return card


def clean_reason(value: Any, required: bool = False) -> str:
    """A one-line reason of at most ``MAX_REASON_LENGTH`` characters."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError({"reason": "must be text"})
    text = " ".join(value.split())
    if required and not text:
        raise ValidationError({"reason": "is required"})
    if len(text) > MAX_REASON_LENGTH:
        raise ValidationError({"reason": f"must be at most {MAX_REASON_LENGTH} characters"})
    return text


def record(card: Card, action: str, agent: Agent | None, reason: str) -> None:
    """Add a card change to the session."""
    db.session.add(
        CardEvent(
            card_id=card.id, action=action, agent_id=agent.id if agent else None, reason=reason
        )
    )


def add_card(
    customer: Customer, number: str | None = None, agent: Agent | None = None, reason: str = ""
) -> Card:
    """Add an active card for ``customer`` to the session (a new number unless given);
    ``Conflict`` when the customer already holds an active card. The caller commits."""
    if active_card(customer.id) is not None:
        raise Conflict(f"{customer.email} already holds an active card")
    card = Card(
        number=number or new_number(),
        customer_id=customer.id,
        active_customer_id=customer.id,
        status="active",
        currency=current_app.config["LOYALTY_CURRENCY"],
    )
    try:
        with db.session.begin_nested():
            db.session.add(card)
            db.session.flush()
    except IntegrityError:
        raise Conflict(f"{customer.email} already holds an active card") from None
    record(card, "issued", agent, reason)
    return card


def issue_card(customer: Customer, agent: Agent | None = None, reason: Any = "") -> Card:
    """Issue a new active card to ``customer`` and commit."""
    card = add_card(customer, agent=agent, reason=clean_reason(reason))
    db.session.commit()
    return card


# --- a card for each newly registered customer ---------------------------------------------

# Customers given a card per statement (bind parameters stay far below SQLite's limit).
ISSUE_CHUNK = 500
REGISTRATION_REASON = "issued on registration"
_WITHOUT_ACTIVE_CARD = select(Customer.id).where(
    Customer.id.in_(bindparam("ids", expanding=True)),
    ~exists().where(Card.active_customer_id == Customer.id),
)
_TAKEN_NUMBERS = select(Card.number).where(Card.number.in_(bindparam("numbers", expanding=True)))
_ISSUED_EVENTS = insert(CardEvent.__table__)


@functools.cache
def _insert_cards(dialect_name: str) -> Any:
    """For a database, built once: insert cards, returning ``(id, customer_id)`` of those
    inserted; a card whose customer holds an active card by now, or whose number was taken
    meanwhile, is skipped (``ON CONFLICT DO NOTHING``, no error that would lose the others)."""
    table = Card.__table__
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing().returning(table.c.id, table.c.customer_id)


def _without_active_card(customer_ids: list[int]) -> list[int]:
    """Those of the customers who exist and hold no active card, in the same order."""
    found = set(db.session.scalars(_WITHOUT_ACTIVE_CARD, {"ids": customer_ids}))
    return [customer_id for customer_id in customer_ids if customer_id in found]


def _candidate_numbers(count: int) -> list[str | None]:
    """``count`` new random numbers, each ``None`` when it is a card's already (or drawn
    twice): one query for all."""
    drawn = [_random_number() for _ in range(count)]
    taken = set(db.session.scalars(_TAKEN_NUMBERS, {"numbers": sorted(set(drawn))}))
    seen: set[str] = set()
    numbers: list[str | None] = []
    for number in drawn:
        numbers.append(None if number in taken or number in seen else number)
        seen.add(number)
    return numbers


def _issue_chunk(customer_ids: list[int]) -> int:
    """Cards for those of the customers who hold no active card (not committed); each gets
    ``NEW_NUMBER_ATTEMPTS`` tries at a free number, as ``new_number`` does. How many were
    issued."""
    insert_cards = _insert_cards(db.session.get_bind().dialect.name)
    currency = current_app.config["LOYALTY_CURRENCY"]
    issued = 0
    pending = _without_active_card(customer_ids)
    for _attempt in range(NEW_NUMBER_ATTEMPTS):
        if not pending:
            break
        now = utcnow()
        rows = [
            {
                "number": number,
                "customer_id": customer_id,
                "active_customer_id": customer_id,
                "status": "active",
                "replaced_by_id": None,
                "currency": currency,
                "balance": Decimal(0),
                "owed": Decimal(0),
                "created_at": now,
            }
            for customer_id, number in zip(pending, _candidate_numbers(len(pending)), strict=True)
            if number is not None
        ]
        cards = db.session.execute(insert_cards, rows).all() if rows else []
        if cards:
            db.session.execute(
                _ISSUED_EVENTS,
                [
                    {
                        "card_id": card_id,
                        "action": "issued",
                        "agent_id": None,
                        "reason": REGISTRATION_REASON,
                        "created_at": now,
                    }
                    for card_id, _customer_id in sorted(cards)
                ],
            )
        issued += len(cards)
        got = {customer_id for _card_id, customer_id in cards}
        pending = [customer_id for customer_id in pending if customer_id not in got]
        if pending:  # a number was taken, or a card issued meanwhile (who then drops out)
            pending = _without_active_card(pending)
    return issued


def issue_on_registration(customers: Sequence[Customer]) -> int:
    """A new active card for each of these newly registered customers who holds none yet (an
    imported card may have come first), each with its "issued on registration" event, in a
    few statements and one commit. Returns how many cards were issued."""
    ids = list(dict.fromkeys(inspect(customer).identity[0] for customer in customers))
    issued = sum(
        _issue_chunk(ids[start : start + ISSUE_CHUNK]) for start in range(0, len(ids), ISSUE_CHUNK)
    )
    db.session.commit()
    return issued


def block_card(card: Card, agent: Agent | None, reason: Any) -> Card:
    """Block an active card (lost or stolen): no redemption, no accrual. Commits."""
    note = clean_reason(reason, required=True)
    if card.status != "active":
        raise Conflict(f"the card is {card.status}, not active")
    card.status, card.active_customer_id = "blocked", None
    record(card, "blocked", agent, note)
    db.session.commit()
    return card


def reactivate_card(card: Card, agent: Agent, reason: Any) -> Card:
    """Make a blocked card active again (administrators), unless the customer holds another
    active card meanwhile. Commits."""
    note = clean_reason(reason, required=True)
    if card.status != "blocked":
        raise Conflict(f"the card is {card.status}, not blocked")
    if active_card(card.customer_id) is not None:
        raise Conflict("the customer holds another active card")
    card.status, card.active_customer_id = "active", card.customer_id
    record(card, "reactivated", agent, note)
    db.session.commit()
    return card
