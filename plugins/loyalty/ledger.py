"""The bonus ledger: append-only rows, each with the card's running balance updated in the
same transaction, by a conditional ``UPDATE`` that never lets the balance or what is owed go
below zero.

Amounts are ``Decimal`` in the programme currency (``LOYALTY_CURRENCY``), rounded half-up to
its places. A card may owe bonus: a refund can reverse more bonus than the card still holds;
the balance stops at zero and the rest is ``owed``, paid off first by later credits, and no
redemption is allowed while anything is owed.

Concurrency: every change of a card first locks its row (``SELECT ... FOR UPDATE`` on
PostgreSQL; on SQLite the write transaction holds the database lock from ``BEGIN IMMEDIATE``),
so checks and writes of two requests on one card happen one after the other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, func, insert, inspect, select, update
from sqlalchemy.orm.attributes import set_committed_value

from helpdesk import (
    Agent,
    Conflict,
    ExactDecimal,
    HelpdeskError,
    Order,
    OrderRefund,
    ValidationError,
    currency_places,
    db,
    in_currency_units,
    parse_amount,
    utcnow,
)
from plugins.loyalty import cards
from plugins.loyalty.models import PLACES, Card, IdempotentAnswer, LedgerEntry, OrderBonus

HUNDRED = Decimal(100)
ZERO = Decimal(0)
# Bonus amounts: at most this many digits before the point.
MAX_INTEGER_DIGITS = 12
MAX_KEY_LENGTH = 200
# Orders accrued per transaction (a batch's bind parameters stay far below SQLite's limit).
ACCRUAL_CHUNK = 1000
MONEY = ExactDecimal(PLACES)


class CardRefused(Conflict):
    """The card cannot do this now (blocked, something owed, not enough balance): 409 with
    the card's balance."""

    def __init__(self, code: str, message: str, card: Card) -> None:
        super().__init__(message)
        self.code = code
        self.balance = card.balance


class NotAllowed(HelpdeskError):
    """The agent may not do this (an adjustment above their limit): 403."""

    status_code = 403


def currency() -> str:
    """The programme currency."""
    return current_app.config["LOYALTY_CURRENCY"]


def money(value: Decimal) -> Decimal:
    """``value`` rounded half-up to the programme currency's places."""
    return in_currency_units(Decimal(value), currency())


def text(value: Decimal) -> str:
    """Money as JSON carries it: ``"12.50"``."""
    return str(money(value))


def clean_bonus(value: Any, field: str = "amount", *, signed: bool = False) -> Decimal:
    """A bonus amount from text or an int (never a float): more than 0 (or, ``signed``, not
    0), at most the currency's places (``"1.005"`` EUR is refused, not rounded)."""
    amount = parse_amount(value, field)
    if amount == 0 or (amount < 0 and not signed):
        raise ValidationError({field: "must not be 0" if signed else "must be more than 0"})
    if amount.adjusted() >= MAX_INTEGER_DIGITS:
        raise ValidationError({field: f"is too large (at most {MAX_INTEGER_DIGITS} digits)"})
    places = currency_places(currency())
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise ValidationError({field: f"has more than {places} decimal places"})
    return amount


def clean_currency_field(data: dict[str, Any]) -> None:
    """An optional ``currency`` must be the programme's."""
    given = data.get("currency")
    if given is None:
        return
    if not isinstance(given, str) or given.strip().upper() != currency():
        raise ValidationError({"currency": f"must be the programme currency {currency()}"})


# --- locking and posting ------------------------------------------------------------------


def lock(card: Card) -> Card:
    """Hold the card's row until commit and read it afresh."""
    query = select(Card).where(Card.id == card.id).execution_options(populate_existing=True)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return db.session.scalar(query)


def post(
    card: Card,
    kind: str,
    amount: Decimal,
    *,
    owed_change: Decimal = ZERO,
    order: Order | None = None,
    reason: str = "",
    agent: Agent | None = None,
) -> LedgerEntry | None:
    """Add one ledger row and move the card's running totals by it, in the session's
    transaction. The ``UPDATE`` only applies while neither total goes below zero: when it
    does not, ``CardRefused`` (nothing changed). A row that changes nothing is not added."""
    if amount == 0 and owed_change == 0:
        return None
    moved = db.session.execute(
        update(Card)
        .where(
            Card.id == card.id,
            Card.balance + amount >= ZERO,
            Card.owed + owed_change >= ZERO,
        )
        .values(balance=Card.balance + amount, owed=Card.owed + owed_change)
        .returning(Card.balance, Card.owed)
        .execution_options(synchronize_session=False)
    ).first()
    if moved is None:
        db.session.refresh(card)
        raise CardRefused("insufficient_balance", "the balance does not cover this", card)
    set_committed_value(card, "balance", moved[0])
    set_committed_value(card, "owed", moved[1])
    entry = LedgerEntry(
        card_id=card.id,
        kind=kind,
        amount=amount,
        owed_change=owed_change,
        balance_after=moved[0],
        owed_after=moved[1],
        order_id=order.id if order is not None else None,
        order_reference=order.reference if order is not None else None,
        reason=reason,
        agent_id=agent.id if agent is not None else None,
    )
    db.session.add(entry)
    return entry


def credit(card: Card, kind: str, amount: Decimal, **details: Any) -> LedgerEntry | None:
    """Add ``amount`` (≥ 0), paying off what is owed first."""
    paid = min(amount, card.owed)
    return post(card, kind, amount - paid, owed_change=-paid, **details)


def debit_or_owe(card: Card, kind: str, amount: Decimal, **details: Any) -> LedgerEntry | None:
    """Take ``amount`` (≥ 0): the balance stops at zero, the rest becomes owed."""
    taken = min(amount, card.balance)
    return post(card, kind, -taken, owed_change=amount - taken, **details)


# --- accrual ------------------------------------------------------------------------------


def bonus_for(amount: Decimal, percent: Decimal) -> Decimal:
    """``percent`` of ``amount``, rounded half-up to the currency's places (12.345 → 12.35)."""
    return money(amount * percent / HUNDRED)


def accrue_orders(orders: Sequence[Order]) -> int:
    """Accrue bonus on recorded orders, each to its customer's active card, once per order
    (an order in another currency, or of a customer without an active card, accrues nothing).
    A card's rows follow the orders' sequence, each crediting what is owed first. Works
    ``ACCRUAL_CHUNK`` orders per transaction in a few statements (the cards locked, as
    ``lock`` does; the orders' fields read afresh in one query, not one by one); commits.
    Returns how many orders accrued."""
    ids = [inspect(order).identity[0] for order in orders]
    done = 0
    for start in range(0, len(ids), ACCRUAL_CHUNK):
        done += _accrue_chunk(ids[start : start + ACCRUAL_CHUNK])
        db.session.commit()
    return done


@dataclass(frozen=True)
class _Recorded:
    id: int
    customer_id: int
    amount: Decimal
    reference: str | None


def _recorded(order_ids: list[int]) -> list[_Recorded]:
    """The orders in the programme currency among ``order_ids``, in that sequence, less those
    that already accrued."""
    found = {
        row.id: row
        for row in db.session.execute(
            select(Order.id, Order.customer_id, Order.amount, Order.reference)
            .outerjoin(OrderBonus, OrderBonus.order_id == Order.id)
            .where(
                Order.id.in_(order_ids),
                Order.currency == currency(),
                OrderBonus.order_id.is_(None),
            )
        )
    }
    return [_Recorded(*found[i]) for i in dict.fromkeys(order_ids) if i in found]


def _locked_cards(order_ids: list[int]) -> dict[int, tuple[int, Decimal, Decimal]]:
    """``customer_id: (card_id, balance, owed)`` of the active cards of the orders' customers,
    their rows held until commit (in id order, so two batches never wait in a circle)."""
    customers = select(Order.customer_id).where(Order.id.in_(order_ids))
    query = (
        select(Card.active_customer_id, Card.id, Card.balance, Card.owed)
        .where(Card.active_customer_id.in_(customers))
        .order_by(Card.id)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return {row[0]: (row[1], row[2], row[3]) for row in db.session.execute(query)}


def _accrue_chunk(order_ids: list[int]) -> int:
    """Accrue the orders of one transaction (not committed); how many accrued."""
    from plugins.loyalty import rates

    held = _locked_cards(order_ids)
    recorded = [order for order in _recorded(order_ids) if order.customer_id in held]
    if not recorded:
        return 0
    percents = rates.percents_for(held)
    default = Decimal(str(current_app.config["LOYALTY_ACCRUAL_PERCENT"]))
    totals = {card_id: (balance, owed) for card_id, balance, owed in held.values()}
    moves: dict[int, tuple[Decimal, Decimal]] = {}
    bonuses, entries = [], []
    now = utcnow()
    for order in recorded:
        card_id = held[order.customer_id][0]
        bonus = bonus_for(order.amount, percents.get(order.customer_id, default))
        bonuses.append({"order_id": order.id, "card_id": card_id, "accrued": bonus})
        if bonus == 0:
            continue
        balance, owed = totals[card_id]
        paid = min(bonus, owed)
        totals[card_id] = (balance + bonus - paid, owed - paid)
        added, paid_off = moves.get(card_id, (ZERO, ZERO))
        moves[card_id] = (added + bonus - paid, paid_off + paid)
        entries.append(
            {
                "card_id": card_id,
                "kind": "accrual",
                "amount": bonus - paid,
                "owed_change": -paid,
                "balance_after": totals[card_id][0],
                "owed_after": totals[card_id][1],
                "order_id": order.id,
                "order_reference": order.reference,
                "reason": "",
                "created_at": now,
            }
        )
    # Core inserts (the tables, not the classes): no ORM bookkeeping for rows never loaded.
    db.session.execute(insert(OrderBonus.__table__), bonuses)
    if entries:
        db.session.execute(insert(LedgerEntry.__table__), entries)
        _move_cards(moves)
    return len(bonuses)


def _move_cards(moves: dict[int, tuple[Decimal, Decimal]]) -> None:
    """Add to each card's balance and take from what it owes (one statement for all)."""
    table = Card.__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("card"))
        .values(
            balance=table.c.balance + bindparam("added", type_=MONEY),
            owed=table.c.owed - bindparam("paid_off", type_=MONEY),
        )
    )
    db.session.execute(
        statement,
        [{"card": card, "added": added, "paid_off": paid} for card, (added, paid) in moves.items()],
    )


# --- redemption and adjustment --------------------------------------------------------------


def _usable(card: Card) -> None:
    if card.status != "active":
        raise CardRefused("card_blocked", f"the card is {card.status}", card)
    if card.owed > 0:
        raise CardRefused(
            "bonus_owed", f"the card owes {text(card.owed)}; no redemption until paid off", card
        )


def _order_of(card: Card, reference: Any) -> Order:
    if not isinstance(reference, str) or not reference.strip():
        raise ValidationError({"order_reference": "is required"})
    order = db.session.scalar(
        select(Order)
        .where(Order.customer_id == card.customer_id, Order.reference == reference.strip())
        .order_by(Order.id.desc())
        .limit(1)
    )
    if order is None:
        raise ValidationError({"order_reference": "no order of this card's customer has it"})
    if order.currency != currency():
        raise ValidationError({"order_reference": f"the order is not in {currency()}"})
    return order


def redeemable_on(order: Order, bonus: OrderBonus | None) -> Decimal:
    """How much more bonus may be redeemed on ``order``: ``LOYALTY_REDEEM_MAX_PERCENT`` of
    what is left of it after refunds, less what was redeemed on it (and not given back)."""
    share = Decimal(str(current_app.config["LOYALTY_REDEEM_MAX_PERCENT"]))
    left = order.amount - refunded(order)
    used = (bonus.redeemed - bonus.returned) if bonus is not None else ZERO
    return max(ZERO, money(left * share / HUNDRED) - used)


def refunded(order: Order) -> Decimal:
    """What was refunded of ``order`` so far."""
    total = db.session.scalar(
        select(func.sum(OrderRefund.amount)).where(OrderRefund.order_id == order.id)
    )
    return total or ZERO


def redeem(card: Card, data: dict[str, Any], agent: Agent | None) -> LedgerEntry:
    """Spend ``amount`` of bonus against the order ``order_reference`` (not committed)."""
    errors: dict[str, str] = {}
    amount = _collect(errors, clean_bonus, data.get("amount"))
    _collect(errors, clean_currency_field, data)
    card = lock(card)
    order = _collect(errors, _order_of, card, data.get("order_reference"))
    if errors:
        raise ValidationError(errors)
    _usable(card)
    bonus = db.session.get(OrderBonus, order.id)
    allowed = redeemable_on(order, bonus)
    if amount > allowed:
        raise ValidationError(
            {"amount": f"is more than this order's share allows ({text(allowed)} left)"}
        )
    if amount > card.balance:
        raise CardRefused("insufficient_balance", "the balance does not cover this", card)
    if bonus is None:
        bonus = OrderBonus(order_id=order.id, card_id=card.id)
        db.session.add(bonus)
    bonus.redeemed = (bonus.redeemed or ZERO) + amount
    return post(card, "redemption", -amount, order=order, agent=agent)


def adjust(card: Card, data: dict[str, Any], agent: Agent) -> LedgerEntry:
    """Add or take (a negative ``amount``) bonus by hand with a ``reason`` (not committed).
    Agents may move up to ``LOYALTY_AGENT_ADJUST_LIMIT``; above it, administrators only."""
    errors: dict[str, str] = {}
    amount = _collect(errors, clean_bonus, data.get("amount"), signed=True)
    reason = _collect(errors, cards.clean_reason, data.get("reason"), True)
    _collect(errors, clean_currency_field, data)
    if errors:
        raise ValidationError(errors)
    limit = Decimal(str(current_app.config["LOYALTY_AGENT_ADJUST_LIMIT"]))
    if abs(amount) > limit and not agent.is_admin:
        raise NotAllowed(f"adjustments above {text(limit)} are for administrators")
    card = lock(card)
    if card.status != "active":
        raise CardRefused("card_blocked", f"the card is {card.status}", card)
    if amount > 0:
        return credit(card, "adjustment", amount, reason=reason, agent=agent)
    if -amount > card.balance:
        raise CardRefused("insufficient_balance", "the balance does not cover this", card)
    return post(card, "adjustment", amount, reason=reason, agent=agent)


def _collect(errors: dict[str, str], check: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    try:
        return check(*args, **kw)
    except ValidationError as exc:
        errors.update(exc.errors)
        return None


def replace(card: Card, agent: Agent | None, reason: Any) -> Card:
    """A new card for a lost, stolen or worn one: the balance (and anything owed) moves as two
    ``transfer`` rows, the old card stays with ``replaced_by`` the new one (not committed)."""
    note = cards.clean_reason(reason)
    card = lock(card)
    if card.status == "replaced":
        raise Conflict("the card was already replaced")
    customer_id = card.customer_id
    card.status, card.active_customer_id = "replaced", None
    db.session.flush()
    from helpdesk import Customer

    new = cards.add_card(db.session.get(Customer, customer_id), agent=agent, reason=note)
    card.replaced_by_id = new.id
    cards.record(card, "replaced", agent, note)
    balance, owed = card.balance, card.owed
    details = {"reason": f"card {card.number} → {new.number}", "agent": agent}
    post(card, "transfer", -balance, owed_change=-owed, **details)
    post(new, "transfer", balance, owed_change=owed, **details)
    return new


# --- idempotency --------------------------------------------------------------------------


@dataclass
class Answer:
    """An API answer: status and JSON body."""

    status: int
    body: dict[str, Any]


def _fingerprint(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def once(
    card: Card, endpoint: str, key: str | None, data: dict[str, Any], act: Callable[[], Answer]
) -> Answer:
    """Run ``act`` and commit, remembering its answer under ``key`` (an ``Idempotency-Key``)
    for this card and endpoint: the same key again replays that answer and changes nothing;
    with another body it is a 422. A refused request (4xx) is not remembered."""
    if key is None:
        answer = act()
        db.session.commit()
        return answer
    if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationError({"Idempotency-Key": f"must be 1 to {MAX_KEY_LENGTH} characters"})
    lock(card)
    fingerprint = _fingerprint(data)
    seen = db.session.scalar(
        select(IdempotentAnswer).where(
            IdempotentAnswer.card_id == card.id,
            IdempotentAnswer.endpoint == endpoint,
            IdempotentAnswer.key == key,
        )
    )
    if seen is not None:
        if seen.request_hash != fingerprint:
            raise ValidationError({"Idempotency-Key": "was already used with another body"})
        db.session.rollback()
        return Answer(seen.status, json.loads(seen.body))
    answer = act()
    db.session.add(
        IdempotentAnswer(
            card_id=card.id,
            endpoint=endpoint,
            key=key,
            request_hash=fingerprint,
            status=answer.status,
            body=json.dumps(answer.body),
        )
    )
    db.session.commit()
    return answer


# --- reading ------------------------------------------------------------------------------


def ledger_page(card: Card, page: int, per_page: int) -> tuple[list[LedgerEntry], bool]:
    """A page of the card's movements, newest first, and whether more follow."""
    rows = list(
        db.session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.card_id == card.id)
            .order_by(LedgerEntry.id.desc())
            .limit(per_page + 1)
            .offset((page - 1) * per_page)
        )
    )
    return rows[:per_page], len(rows) > per_page


def all_movements(card: Card):
    """Every movement of the card, oldest first (streamed)."""
    return db.session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.card_id == card.id)
        .order_by(LedgerEntry.id)
        .execution_options(yield_per=1000)
    )


def entry_json(entry: LedgerEntry) -> dict[str, Any]:
    """A ledger row as the API shows it."""
    return {
        "id": entry.id,
        "kind": entry.kind,
        "amount": text(entry.amount),
        "balance_after": text(entry.balance_after),
        "owed_after": text(entry.owed_after),
        "order_reference": entry.order_reference,
        "reason": entry.reason,
        "created_at": entry.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def totals() -> tuple[Decimal, Decimal]:
    """Every card's balance and owed added up (the liability)."""
    balance, owed = db.session.execute(select(func.sum(Card.balance), func.sum(Card.owed))).one()
    return balance or ZERO, owed or ZERO
