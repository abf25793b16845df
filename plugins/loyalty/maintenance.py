"""Batch work for the CLI: importing printed cards, verifying every balance against its ledger,
and expiring old bonus."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

from flask import current_app
from sqlalchemy import case, func, select, type_coerce

from helpdesk import (
    Customer,
    ExactDecimal,
    ValidationError,
    commit,
    db,
    find_or_create_customer,
    utcnow,
)
from plugins.loyalty import cards, ledger
from plugins.loyalty.models import PLACES, Card, LedgerEntry

MONEY = ExactDecimal(PLACES)
COLUMNS = ("customer_email", "card_number")


# --- import --------------------------------------------------------------------------------


@dataclass
class CardImport:
    """What an import did: cards added, rows already there, problems by line."""

    rows: int = 0
    imported: int = 0
    unchanged: int = 0
    customers_created: int = 0
    problems: list[str] = field(default_factory=list)


def import_cards(stream: TextIO, progress: Callable[[int], None] = lambda n: None) -> CardImport:
    """Import ``customer_email,card_number`` rows (free-form numbers: spaces and dashes are
    dropped). An unknown e-mail creates the customer; a customer who already holds an active
    card is reported with the line and left unchanged; a row already imported changes nothing.
    Each row is committed on its own."""
    summary = CardImport()
    reader = csv.DictReader(stream)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        summary.problems.append(f"line 1: the header lacks {', '.join(missing)}")
        return summary
    for row in reader:
        summary.rows += 1
        progress(1)
        line = reader.line_num
        try:
            _import_row(row, summary)
        except ValidationError as exc:
            db.session.rollback()
            summary.problems.append(f"line {line}: {exc.message}")
        except cards.Conflict as exc:
            db.session.rollback()
            summary.problems.append(f"line {line}: {exc.message}; left unchanged")
    return summary


def _import_row(row: dict[str, Any], summary: CardImport) -> None:
    number = cards.normalize(row.get("card_number") or "")
    email = (row.get("customer_email") or "").strip()
    existing = db.session.scalar(select(Card).where(Card.number == number))
    before = db.session.scalar(select(func.count()).select_from(Customer))
    customer = find_or_create_customer(email)
    if existing is not None:
        if existing.customer_id != customer.id:
            raise ValidationError({"card_number": f"{number} belongs to another customer"})
        summary.unchanged += 1
        db.session.rollback()
        return
    if cards.active_card(customer.id) is not None:
        db.session.rollback()
        raise cards.Conflict(f"{customer.email} already holds an active card")
    cards.add_card(customer, number=number, reason="imported")
    created = db.session.scalar(select(func.count()).select_from(Customer)) - before
    commit()  # fires customer_registered for a new customer (whose card is this one)
    summary.customers_created += created
    summary.imported += 1


def decoded(raw: bytes) -> TextIO:
    """The file's text (UTF-8, a byte-order mark skipped)."""
    return io.StringIO(raw.decode("utf-8-sig"))


# --- verify --------------------------------------------------------------------------------


@dataclass
class Mismatch:
    """A card whose stored totals differ from its ledger."""

    number: str
    balance: Decimal
    ledger_balance: Decimal
    owed: Decimal
    ledger_owed: Decimal

    def __str__(self) -> str:
        return (
            f"card {self.number}: balance {self.balance} but ledger {self.ledger_balance}; "
            f"owed {self.owed} but ledger {self.ledger_owed}"
        )


def ledger_sums() -> Iterator[tuple[int, Decimal, Decimal]]:
    """``(card_id, sum of amounts, sum of owed changes)`` for every card with rows."""
    rows = db.session.execute(
        select(
            LedgerEntry.card_id,
            type_coerce(func.sum(LedgerEntry.amount), MONEY),
            type_coerce(func.sum(LedgerEntry.owed_change), MONEY),
        )
        .group_by(LedgerEntry.card_id)
        .execution_options(yield_per=5000)
    )
    yield from rows


def card_count() -> int:
    """How many cards there are."""
    return db.session.scalar(select(func.count()).select_from(Card))


def verify(progress: Callable[[int], None] = lambda n: None) -> list[Mismatch]:
    """Re-add every card's ledger and compare with its stored balance and owed (and check
    neither is negative)."""
    sums = {card_id: (total, owed) for card_id, total, owed in ledger_sums()}
    found = []
    zero = Decimal(0)
    query = select(Card.id, Card.number, Card.balance, Card.owed).execution_options(yield_per=5000)
    for card_id, number, balance, owed in db.session.execute(query):
        total, owed_sum = sums.get(card_id, (zero, zero))
        if balance != total or owed != owed_sum or balance < 0 or owed < 0:
            found.append(Mismatch(number, balance, total, owed, owed_sum))
        progress(1)
    return found


# --- expiry --------------------------------------------------------------------------------


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier (the month's last day when
    shorter: 31 May - 3 months = 28/29 February)."""
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    for day in range(moment.day, 27, -1):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month, day=min(moment.day, 28))


def expirable(cutoff: datetime, card_id: int | None = None) -> list[tuple[int, Decimal]]:
    """``(card_id, amount to expire)``: bonus is spent oldest-first, so what expires is the
    credit added before ``cutoff`` less every debit ever (spent, reversed, expired), capped by
    the balance."""
    credit_before = func.sum(
        case(
            ((LedgerEntry.amount > 0) & (LedgerEntry.created_at < cutoff), LedgerEntry.amount),
            else_=0,
        )
    )
    debits = func.sum(case((LedgerEntry.amount < 0, -LedgerEntry.amount), else_=0))
    query = (
        select(
            Card.id,
            Card.balance,
            type_coerce(credit_before, MONEY),
            type_coerce(debits, MONEY),
        )
        .join(LedgerEntry, LedgerEntry.card_id == Card.id)
        .where(Card.balance > 0)
        .group_by(Card.id, Card.balance)
    )
    if card_id is not None:
        query = query.where(Card.id == card_id)
    rows = db.session.execute(query)
    due = []
    for card_id, balance, old_credit, spent in rows:
        amount = min(balance, (old_credit or 0) - (spent or 0))
        if amount > 0:
            due.append((card_id, amount))
    return due


def expire(progress: Callable[[int], None] = lambda n: None) -> tuple[int, Decimal]:
    """Expire bonus older than ``LOYALTY_EXPIRY_MONTHS`` (0: nothing), one card per
    transaction; running it again the same day expires nothing more."""
    months = int(current_app.config["LOYALTY_EXPIRY_MONTHS"])
    if months <= 0:
        return 0, Decimal(0)
    cutoff = months_before(utcnow(), months)
    cards_done, total = 0, Decimal(0)
    for card_id, _amount in expirable(cutoff):
        card = ledger.lock(db.session.get(Card, card_id))
        fresh = dict(expirable(cutoff, card_id))
        amount = fresh.get(card_id, Decimal(0))
        if amount > 0:
            ledger.post(card, "expiry", -amount, reason=f"accrued before {cutoff:%Y-%m-%d}")
            cards_done, total = cards_done + 1, total + amount
        db.session.commit()
        progress(1)
    return cards_done, total
