"""The plugin's tables: why a client left, their account manager, the calls to make, the
status each client had at the last review. They
point at core rows by id and never alter a core table."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk import UTCDateTime, db, utcnow


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
