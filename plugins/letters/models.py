"""The plugin's tables: a ticket's structured claim (with what was granted), reply-letter
templates and every saved version of them. They point at core rows by id."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk import ExactDecimal, UTCDateTime, db, utcnow

OUTCOMES = ("refund", "replacement", "repair", "gift_certificate", "apology", "other")
GRANTS = ("refund", "replacement", "repair", "gift_certificate", "apology", "declined")
COSTS = ("money", "time", "embarrassment")
# Money is kept with 4 places: enough for every ISO 4217 currency (KWD has 3).
MONEY_PLACES = 4


class Claim(db.Model):
    """What a complaining customer asks for, and (once resolved) what they were granted."""

    __tablename__ = "letters_claims"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    outcome_wanted: Mapped[str] = mapped_column(String(20), index=True)
    amount_claimed: Mapped[Decimal | None] = mapped_column(ExactDecimal(MONEY_PLACES))
    currency: Mapped[str | None] = mapped_column(String(3))
    incident_date: Mapped[date | None] = mapped_column(Date)
    order_reference: Mapped[str] = mapped_column(String(100), default="")
    # The costs named (money, time, embarrassment), comma-separated in COSTS order.
    costs: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    granted: Mapped[str | None] = mapped_column(String(20), index=True)
    granted_amount: Mapped[Decimal | None] = mapped_column(ExactDecimal(MONEY_PLACES))
    granted_code: Mapped[str] = mapped_column(String(100), default="")
    granted_reason: Mapped[str] = mapped_column(Text, default="")
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    granted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def cost_list(self) -> list[str]:
        """The costs named, as a list."""
        return [cost for cost in self.costs.split(",") if cost]


class LetterTemplate(db.Model):
    """A reply-letter template: one language variant of ``key`` (same key, other language)."""

    __tablename__ = "letters_templates"
    __table_args__ = (UniqueConstraint("key", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(120))
    language: Mapped[str] = mapped_column(String(16), default="en")
    # The claim outcome this letter answers (a GRANTS value), "" for any: suggestions.
    outcome: Mapped[str] = mapped_column(String(20), default="")
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))


class LetterTemplateVersion(db.Model):
    """One saved version of a template: what it said, who saved it and when."""

    __tablename__ = "letters_template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(
        ForeignKey("letters_templates.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(120))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
