"""The plugin's tables: categories with their rules, each customer's category, and the history
of changes. They point at core rows by id and never alter a core table."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk import UTCDateTime, db, utcnow

COLORS = ("grey", "blue", "green", "gold", "red", "purple")
PRIORITY_BUMPS = ("", "high", "urgent")


class Category(db.Model):
    """A kind of client and the rules that go with it."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    # ``name`` case-folded: what makes two names the same.
    name_key: Mapped[str] = mapped_column(String(60), unique=True)
    color: Mapped[str] = mapped_column(String(16), default="grey")
    position: Mapped[int] = mapped_column(Integer, default=0)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[str] = mapped_column(String(16), default="")  # "", high, urgent
    first_response_hours: Mapped[int | None] = mapped_column(Integer)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    # An agent who takes this category's new tickets (while active).
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    discount_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal(0))
    prepayment_required: Mapped[bool] = mapped_column(Boolean, default=False)
    warning: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerCategory(db.Model):
    """A customer's category (one per customer; none means the default category)."""

    __tablename__ = "customer_categories"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CategoryChange(db.Model):
    """One change of a customer's category: from what to what, by whom, why, when. The names
    are kept too, so the history reads the same after a category is renamed or deleted."""

    __tablename__ = "category_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    old_category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL")
    )
    new_category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL")
    )
    old_name: Mapped[str] = mapped_column(String(60), default="")
    new_name: Mapped[str] = mapped_column(String(60), default="")
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
