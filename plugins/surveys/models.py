"""The plugin's tables: each survey (one per resolved ticket), the SMS received, the numbers
that opted out, and the SMS text per language. They point at core rows by id and never alter a
core table."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk import Agent, UTCDateTime, db, utcnow

# scheduled -> sent -> delivered -> answered; or failed (refused, undelivered) or skipped
# (with a reason). "expired" is not stored: a sent survey unanswered after the reply window.
STATUSES = ("scheduled", "sent", "delivered", "answered", "failed", "skipped")


class Survey(db.Model):
    """The SMS survey after one resolve of a ticket, attributed to the agent who resolved it."""

    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    # E.164 when the number is valid, else as the customer's record has it.
    phone: Mapped[str] = mapped_column(String(32), default="")
    language: Mapped[str] = mapped_column(String(16), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    # Why it was not sent: no_phone, invalid_phone, landline, opted_out, too_recent, reopened.
    reason: Mapped[str] = mapped_column(String(16), default="")
    # When the ticket was resolved (the survey's date in the appraisal).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The outbox item's dedupe key (the worker finds the survey by it).
    outbox_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The gateway's id for the SMS, and its last delivery report.
    message_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    delivery_status: Mapped[str] = mapped_column(String(16), default="")
    error_code: Mapped[str] = mapped_column(String(16), default="")
    error_message: Mapped[str] = mapped_column(Text, default="")
    score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    asked_again: Mapped[bool] = mapped_column(Boolean, default=False)
    # A low score asks for a follow-up, until an agent marks it done.
    follow_up: Mapped[bool] = mapped_column(Boolean, default=False)

    agent: Mapped[Agent | None] = relationship()

    __table_args__ = (
        Index("ix_surveys_customer_sent", "customer_id", "sent_at"),
        Index("ix_surveys_phone_sent", "phone", "sent_at"),
        # Covers the appraisal's GROUP BY agent: the report reads this index alone, in order.
        Index("ix_surveys_report", "agent_id", "created_at", "sent_at", "delivered_at", "score"),
        # Covers the weekly trend; also the period's low scores and comments.
        Index("ix_surveys_created_score", "created_at", "score"),
        Index("ix_surveys_follow_up", "follow_up", "ticket_id"),
        # The surveys not yet in the daily roll-up (few: those waiting for the worker).
        Index(
            "ix_surveys_scheduled",
            "created_at",
            sqlite_where=text("status = 'scheduled'"),
            postgresql_where=text("status = 'scheduled'"),
        ),
    )


class SurveyDaily(db.Model):
    """The appraisal's roll-up: per UTC day of the resolve and agent (0: none), the figures of
    the surveys that left ``scheduled`` (sent, failed or skipped). A survey still
    ``scheduled`` is counted from ``surveys`` itself. ``plugins.surveys.rollup`` keeps it in
    step in the transaction of each change; ``helpdesk surveys rebuild-rollup`` rebuilds it."""

    __tablename__ = "survey_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    agent_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resolved: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    score_1: Mapped[int] = mapped_column(Integer, default=0)
    score_2: Mapped[int] = mapped_column(Integer, default=0)
    score_3: Mapped[int] = mapped_column(Integer, default=0)
    score_4: Mapped[int] = mapped_column(Integer, default=0)
    score_5: Mapped[int] = mapped_column(Integer, default=0)


class SmsReply(db.Model):
    """An SMS received (a score, a comment, STOP, ...). Never dropped: one that matches no
    survey is kept as ``unmatched``. ``message_sid`` makes the webhook idempotent."""

    __tablename__ = "sms_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_sid: Mapped[str] = mapped_column(String(64), unique=True)
    from_number: Mapped[str] = mapped_column(String(32))
    to_number: Mapped[str] = mapped_column(String(32), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    # score, comment, ask_again, opt_out, opt_in, unmatched
    kind: Mapped[str] = mapped_column(String(16))
    survey_id: Mapped[int | None] = mapped_column(
        ForeignKey("surveys.id", ondelete="SET NULL"), index=True
    )
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SmsOptOut(db.Model):
    """A number's opt-out (STOP) or opt-in (START) with its time, and the customer it was for."""

    __tablename__ = "sms_opt_outs"

    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    opted_out: Mapped[bool] = mapped_column(Boolean, default=True)
    keyword: Mapped[str] = mapped_column(String(16), default="")
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SurveyTemplate(db.Model):
    """The SMS text for one language (``{agent}``, ``{reference}``, ``{customer}`` and
    ``{helpdesk}`` are filled in)."""

    __tablename__ = "survey_templates"

    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
