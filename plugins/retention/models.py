"""The plugin's tables: why a client left, their account manager, the calls to make, the
status each client had at the last review, and each client's figures as spans of dates (a
summary of the orders, kept in step by ``plugins.retention.spans``). They point at core rows by
id and never alter a core table."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Date,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk import ExactDecimal, UTCDateTime, db, utcnow

MONEY_PLACES = 4  # as the core's orders


class LossReason(db.Model):
    """Why a client left (one per client, the latest recorded), with a note and who said so."""

    __tablename__ = "retention_loss_reasons"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    reason: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text, default="")
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccountManager(db.Model):
    """A key client's permanent account manager (an agent)."""

    __tablename__ = "retention_account_managers"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallTask(db.Model):
    """ "Pick up the phone": a client turned drying-up or lost; their manager (or, without one,
    the retention team) calls, then records the outcome."""

    __tablename__ = "retention_call_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))  # "lost" | "drying_up"
    # The review date that created it; with customer and kind, what makes a review idempotent.
    as_of: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reached: Mapped[bool | None] = mapped_column()
    reason_learned: Mapped[str] = mapped_column(String(40), default="")
    offer_made: Mapped[str] = mapped_column(Text, default="")
    next_date: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        UniqueConstraint("customer_id", "kind", "as_of", name="uq_retention_call_tasks_once"),
        Index("ix_retention_call_tasks_open", "agent_id", "done_at"),
        Index("ix_retention_call_tasks_customer", "customer_id", "done_at"),
    )


class ClientStatus(db.Model):
    """A client's status at the last review: what the next review compares with, so each
    change fires its event once."""

    __tablename__ = "retention_statuses"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    status: Mapped[str] = mapped_column(String(16))
    as_of: Mapped[date] = mapped_column(Date)
    # The win-back order the last event was fired for (so it fires once per win-back).
    won_back_on: Mapped[date | None] = mapped_column(Date)


class ClientSpan(db.Model):
    """What the definitions say of a client for every reference date in ``[valid_from,
    valid_to)`` (see ``plugins.retention.timeline``): status, last purchase, the day they
    became lost, the win-back counted, the drying-up signals and the worst AOV change (exact,
    and as a double to sort by)."""

    __tablename__ = "retention_spans"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    valid_from: Mapped[date] = mapped_column(Date, primary_key=True)
    valid_to: Mapped[date] = mapped_column(Date)  # exclusive; 9999-12-31 until a next purchase
    status: Mapped[str] = mapped_column(String(16))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    lost_on: Mapped[date | None] = mapped_column(Date)
    won_back_on: Mapped[date | None] = mapped_column(Date)
    signals: Mapped[str] = mapped_column(String(64), default="")  # space-separated
    worst_change: Mapped[str | None] = mapped_column(String(200))  # an exact fraction, "-2/5"
    # The same as a double, for the database to sort by (rounding keeps the order; equal
    # doubles are ordered by ``worst_change``).
    worst_order: Mapped[float | None] = mapped_column(Double)

    __table_args__ = (
        Index("ix_retention_spans_status", "status", "valid_to", "valid_from"),
        Index("ix_retention_spans_lost_on", "status", "lost_on", "valid_to", "valid_from"),
        Index("ix_retention_spans_won_back", "won_back_on", "valid_to", "valid_from"),
    )


class SpanMoney(db.Model):
    """A lost client's money in one currency over a span: revenue before leaving and total
    spend (lifetime value lost follows from it and the days between first and last purchase).
    With the span's end, the day they became lost and those days (always filled: copies of
    the span's), so the lost clients' money at a date is summed from one index alone."""

    __tablename__ = "retention_span_money"

    customer_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    valid_from: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    # None: no order in this currency in the year up to their last.
    revenue_before: Mapped[Decimal | None] = mapped_column(ExactDecimal(MONEY_PLACES))
    spend_total: Mapped[Decimal] = mapped_column(ExactDecimal(MONEY_PLACES))
    valid_to: Mapped[date | None] = mapped_column(Date)
    lost_on: Mapped[date | None] = mapped_column(Date)
    span_days: Mapped[int | None] = mapped_column(Integer)  # last purchase − first, in days

    __table_args__ = (
        Index(
            "ix_retention_span_money_lost",
            "lost_on",
            "valid_to",
            "valid_from",
            "currency",
            "span_days",
            "revenue_before",
            "spend_total",
        ),
        ForeignKeyConstraint(
            ["customer_id", "valid_from"],
            ["retention_spans.customer_id", "retention_spans.valid_from"],
            ondelete="CASCADE",
        ),
    )


class SpanLength(db.Model):
    """How many days the longest span of a status lasts, or lasted (open-ended spans count up
    to their end of 9999-12-31): a span holding at D then ends within that many days after D,
    which bounds the index range a list reads. Never below the truth: a build of some clients
    only raises it, a full build sets it."""

    __tablename__ = "retention_span_lengths"

    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    longest_days: Mapped[int] = mapped_column(Integer)


class SpanState(db.Model):
    """How far the spans follow the orders (one row): the rules they were built with, how
    many orders there were and the highest order id."""

    __tablename__ = "retention_span_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rules: Mapped[str] = mapped_column(Text)
    orders_count: Mapped[int] = mapped_column(Integer)
    last_order_id: Mapped[int] = mapped_column(Integer)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
