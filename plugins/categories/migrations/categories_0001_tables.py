"""Client categories: categories (seeded with the usual four), customer_categories and
category_changes.

Revision ID: categories_0001
Depends on: 0002 (the core's teams, customers and agents tables)
"""

from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "categories_0001"
down_revision = None
branch_labels = ("categories",)  # the plugin's name
depends_on = "0002"

SEED = [
    ("Ordinary", "grey", 1, "", None, "0", False, ""),
    ("VIP", "gold", 2, "high", 1, "0", False, ""),
    (
        "Problematic",
        "red",
        3,
        "",
        None,
        "0",
        True,
        "Prepayment only. Handle with extra care; check how we served this client.",
    ),
    ("Employee", "green", 4, "", None, "20.00", False, ""),
]


def upgrade() -> None:
    categories = op.create_table(
        "categories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("name_key", sa.String(length=60), nullable=False),
        sa.Column("color", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("first_response_hours", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("discount_percent", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("prepayment_required", sa.Boolean(), nullable=False),
        sa.Column("warning", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name_key"),
    )
    op.create_table(
        "customer_categories",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["category_id"], ["categories.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_index("ix_customer_categories_category_id", "customer_categories", ["category_id"])
    op.create_table(
        "category_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("old_category_id", sa.Integer(), nullable=True),
        sa.Column("new_category_id", sa.Integer(), nullable=True),
        sa.Column("old_name", sa.String(length=60), nullable=False),
        sa.Column("new_name", sa.String(length=60), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["new_category_id"], ["categories.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["old_category_id"], ["categories.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_category_changes_customer_id", "category_changes", ["customer_id"])
    now = datetime.now(UTC).replace(tzinfo=None)
    op.bulk_insert(
        categories,
        [
            {
                "name": name,
                "name_key": name.casefold(),
                "color": color,
                "position": position,
                "retired": False,
                "priority": priority,
                "first_response_hours": hours,
                "discount_percent": Decimal(discount),
                "prepayment_required": prepay,
                "warning": warning,
                "created_at": now,
            }
            for name, color, position, priority, hours, discount, prepay, warning in SEED
        ],
    )


def downgrade() -> None:
    op.drop_index("ix_category_changes_customer_id", table_name="category_changes")
    op.drop_table("category_changes")
    op.drop_index("ix_customer_categories_category_id", table_name="customer_categories")
    op.drop_table("customer_categories")
    op.drop_table("categories")
