"""The core's tables: who (agents, teams, customers), what (tickets, messages, attachments),
and what happened (events). Rules live in ``services``; these classes only hold data."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.core.money import ExactDecimal
from helpdesk.extensions import db

STATUSES = ("new", "open", "pending", "resolved", "closed")
OPEN_STATUSES = ("new", "open", "pending")
PRIORITIES = ("low", "normal", "high", "urgent")
KINDS = ("complaint", "support")
ROLES = ("agent", "admin")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, hands back aware UTC, on SQLite and PostgreSQL alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use helpdesk.core.models.utcnow()")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def new_public_key() -> str:
    """A random key that makes customer links unguessable and revocable."""
    return secrets.token_urlsafe(16)


agent_teams = Table(
    "agent_teams",
    db.metadata,
    Column("agent_id", ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
)


class Team(db.Model):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # Who answers for the team (alerts about its work go to them); any active agent.
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    agents: Mapped[list[Agent]] = relationship(
        secondary=agent_teams, back_populates="teams", order_by="Agent.name"
    )
    lead: Mapped[Agent | None] = relationship(foreign_keys=[lead_id])


class Agent(UserMixin, db.Model):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="agent")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    signature: Mapped[str] = mapped_column(Text, default="")
    # Changes on password reset and deactivation so old sessions stop working.
    session_key: Mapped[str] = mapped_column(String(32), default=new_public_key)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    teams: Mapped[list[Team]] = relationship(
        secondary=agent_teams, back_populates="agents", order_by="Team.name"
    )

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def get_id(self) -> str:
        return f"{self.id}:{self.session_key}"


class ApiToken(db.Model):
    """A bearer token for the REST API. Only the SHA-256 of the token is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    agent: Mapped[Agent] = relationship()


class Customer(db.Model):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # As the customer wrote it; ``email_key`` (lower-cased) is what makes them one person.
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Set when a hard bounce said the address does not exist; mail to it is pointless.
    email_bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_customers_name", "name"),)

    @property
    def display_name(self) -> str:
        return self.name or self.email


class Ticket(db.Model):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="new")
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    kind: Mapped[str] = mapped_column(String(16), default="support")
    source: Mapped[str] = mapped_column(String(16), default="web")
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    public_key: Mapped[str] = mapped_column(String(32), default=new_public_key)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)
    team: Mapped[Team | None] = relationship()
    assignee: Mapped[Agent | None] = relationship()
    messages: Mapped[list[Message]] = relationship(
        back_populates="ticket", order_by="Message.id", lazy="raise_on_sql"
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_tickets_status_activity", "status", "last_activity_at"),
        Index("ix_tickets_activity", "last_activity_at"),
        Index("ix_tickets_status_due", "status", "due_at"),
        Index("ix_tickets_assignee_status_activity", "assignee_id", "status", "last_activity_at"),
        Index("ix_tickets_team_status_activity", "team_id", "status", "last_activity_at"),
        Index("ix_tickets_customer_activity", "customer_id", "last_activity_at"),
        Index("ix_tickets_kind_status_activity", "kind", "status", "last_activity_at"),
    )

    @property
    def reference(self) -> str:
        """What customers and agents quote: ``#1234``."""
        return f"#{self.id}"


class Message(db.Model):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    author_type: Mapped[str] = mapped_column(String(16))  # "customer" | "agent"
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="web")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The Message-ID of a mail (received or sent): what makes ingesting a mail idempotent.
    message_id: Mapped[str | None] = mapped_column(String(255), unique=True, index=True)
    # The mail's HTML part, sanitised with nh3, for display next to the plain text ``body``.
    body_html: Mapped[str | None] = mapped_column(Text)
    # Sent by a machine (auto-reply, bounce, list): stored, but never answered automatically.
    automated: Mapped[bool] = mapped_column(Boolean, default=False)

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    customer: Mapped[Customer | None] = relationship()
    agent: Mapped[Agent | None] = relationship()
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", order_by="Attachment.id", lazy="raise_on_sql"
    )

    @property
    def author_name(self) -> str:
        if self.author_type == "agent" and self.agent is not None:
            return self.agent.name
        if self.customer is not None:
            return self.customer.display_name
        return ""


class Attachment(db.Model):
    """A file sent with a message, stored on disk under a random key, never under its name."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    message: Mapped[Message] = relationship(back_populates="attachments")


class TicketEvent(db.Model):
    """One change to a ticket: who did what, when. The ticket's history."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    actor_type: Mapped[str] = mapped_column(String(16))  # "agent" | "customer" | "system"
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    agent: Mapped[Agent | None] = relationship()
    customer: Mapped[Customer | None] = relationship()


class StatusCount(db.Model):
    """How many tickets each team has in each status, kept in step by the services.

    ``team_key`` is the team id, or 0 for tickets with no team. Reading it costs nothing,
    where ``GROUP BY status`` over a million tickets costs tens of milliseconds.
    """

    __tablename__ = "status_counts"

    team_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class RateLimitHit(db.Model):
    """A fixed-window counter per key, shared by every worker through the database."""

    __tablename__ = "rate_limit_hits"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, default=0)


class Order(db.Model):
    """A customer's purchase: the money the business features (loyalty, categories,
    retention) reason about. ``amount`` is a ``Decimal`` in ``currency``; never summed across
    currencies. ``reference`` is the order's id in its ``source`` system (unique there), which
    makes imports idempotent."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    ordered_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    channel: Mapped[str] = mapped_column(String(32), default="")
    source: Mapped[str] = mapped_column(String(32), default="manual")
    reference: Mapped[str | None] = mapped_column(String(100))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship()

    __table_args__ = (
        UniqueConstraint("source", "reference", name="uq_orders_source_reference"),
        Index("ix_orders_customer_date", "customer_id", "ordered_on"),
        Index("ix_orders_date", "ordered_on"),
    )


class OrderLine(db.Model):
    """One product line of an order and its part of the amount (in the order's currency).
    An order's lines, when it has any, add up to its ``amount``; orders without lines are
    valid."""

    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_line: Mapped[str] = mapped_column(String(100))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))

    order: Mapped[Order] = relationship()


class OrderRefund(db.Model):
    """Money given back on an order, in the order's currency (full or partial; together never
    more than the order). ``amount`` is exact on every database (``ExactDecimal``)."""

    __tablename__ = "order_refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal] = mapped_column(ExactDecimal(4))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PluginState(db.Model):
    """Whether a plugin is enabled, as the deployer last set it (config may pin it)."""

    __tablename__ = "plugin_states"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(254), default="")


class StateVersion(db.Model):
    """A counter per kind of shared state (e.g. ``plugins``); every worker compares it with the
    version it cached, so a change made anywhere takes effect everywhere without a restart."""

    __tablename__ = "state_versions"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class OutboxItem(db.Model):
    """Work for the outside world (a mail, an SMS), written in the same transaction as the
    change that caused it and delivered by ``helpdesk worker`` with retries and backoff."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))  # "mail", "sms", ...
    # Stable across retries (a mail's Message-ID), so a duplicate send is recognisable.
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending/sent/dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    # Indexed: a ticket's mails are read to thread each reply and each composed mail.
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)


class TicketParticipant(db.Model):
    """Someone else on a ticket's mail thread (a CC): their mail to it threads like the
    customer's. ``email_key`` is the address lower-cased."""

    __tablename__ = "ticket_participants"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    email_key: Mapped[str] = mapped_column(String(254), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16), default="cc")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MailQuarantine(db.Model):
    """A received mail that could not be turned into a ticket change, kept whole on disk
    (``MAIL_QUARANTINE_DIR/<storage_key>``) so it can be looked at and processed again."""

    __tablename__ = "mail_quarantine"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(String(64))  # "too_large", "rate_limited", "error", ...
    detail: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    sender: Mapped[str] = mapped_column(String(254), default="")
    subject: Mapped[str] = mapped_column(String(200), default="")
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(80), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="held")  # held / done
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_mail_quarantine_status_received", "status", "received_at"),)
