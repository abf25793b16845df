"""The plugin's tables: cards, the append-only bonus ledger, what each order accrued and
redeemed, card changes, idempotent API answers and per-category accrual rates. They point at
core rows by id and never alter a core (or another plugin's) table.

Money columns are ``ExactDecimal(4)``: integer units, so sums are exact on SQLite too.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk import ExactDecimal, UTCDateTime, db, utcnow

PLACES = 4
STATUSES = ("active", "blocked", "replaced")
KINDS = ("accrual", "redemption", "reversal", "adjustment", "expiry", "transfer")


class Card(db.Model):
    """A bonus card. ``balance`` and ``owed`` are the running totals of its ledger, updated in
    the same transaction as each ledger row; ``active_customer_id`` is the customer's id while
    the card is active (unique: one active card per customer), else null."""

    __tablename__ = "loyalty_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    active_customer_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_cards.id"))
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[Decimal] = mapped_column(ExactDecimal(PLACES), default=Decimal(0))
    owed: Mapped[Decimal] = mapped_column(ExactDecimal(PLACES), default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerEntry(db.Model):
    """One movement of a card's bonus. Rows are only ever added. ``amount`` is the signed
    change of the balance, ``owed_change`` that of what is owed; ``balance_after`` and
    ``owed_after`` are the card's totals after it."""

    __tablename__ = "loyalty_ledger"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("loyalty_cards.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal(PLACES))
    owed_change: Mapped[Decimal] = mapped_column(ExactDecimal(PLACES), default=Decimal(0))
    balance_after: Mapped[Decimal] = mapped_column(ExactDecimal(PLACES))
    owed_after: Mapped[Decimal] = mapped_column(ExactDecimal(PLACES), default=Decimal(0))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    order_reference: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, default="")
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_loyalty_ledger_card_id_id", "card_id", "id"),
        Index("ix_loyalty_ledger_created_at", "created_at"),
    )


class OrderBonus(db.Model):
    """What one order did to a card: bonus accrued on it (and reversed by refunds), bonus
    redeemed against it (and given back by refunds). The primary key makes accrual once per
    order."""

    __tablename__ = "loyalty_order_bonus"

    order_id: Mapped[int] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    card_id: Mapped[int] = mapped_column(ForeignKey("loyalty_cards.id"), index=True)
    accrued: Mapped[Decimal] = mapped_column(ExactDecimal(PLACES), default=Decimal(0))
    reversed: Mapped[Decimal] = mapped_column(ExactDecimal(PLACES), default=Decimal(0))
    redeemed: Mapped[Decimal] = mapped_column(ExactDecimal(PLACES), default=Decimal(0))
    returned: Mapped[Decimal] = mapped_column(ExactDecimal(PLACES), default=Decimal(0))


class CardEvent(db.Model):
    """A change of a card (issued, blocked, replaced, reactivated): who, when, why."""

    __tablename__ = "loyalty_card_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(
        ForeignKey("loyalty_cards.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotentAnswer(db.Model):
    """The first answer to a request with an ``Idempotency-Key``, per card and endpoint."""

    __tablename__ = "loyalty_idempotency"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("loyalty_cards.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("card_id", "endpoint", "key", name="uq_loyalty_idem_key"),)


class CategoryRate(db.Model):
    """The accrual percent for customers of a client category (the categories plugin's id;
    no foreign key, so this table does not depend on that plugin being installed)."""

    __tablename__ = "loyalty_category_rates"

    category_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    accrual_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
