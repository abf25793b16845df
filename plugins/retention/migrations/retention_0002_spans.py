"""Retention: retention_spans, retention_span_money and retention_span_state, each client's
figures as spans of reference dates (filled by ``helpdesk retention rebuild`` or on first use).

Revision ID: retention_0002
Revises: retention_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "retention_0002"
down_revision = "retention_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_spans",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("lost_on", sa.Date(), nullable=True),
        sa.Column("won_back_on", sa.Date(), nullable=True),
        sa.Column("signals", sa.String(length=64), nullable=False),
        sa.Column("worst_change", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("customer_id", "valid_from"),
    )
    op.create_index(
        "ix_retention_spans_status", "retention_spans", ["status", "valid_to", "valid_from"]
    )
    op.create_index(
        "ix_retention_spans_lost_on",
        "retention_spans",
        ["status", "lost_on", "valid_to", "valid_from"],
    )
    op.create_index(
        "ix_retention_spans_won_back", "retention_spans", ["won_back_on", "valid_to", "valid_from"]
    )
    op.create_table(
        "retention_span_money",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("revenue_before", sa.BigInteger(), nullable=True),
        sa.Column("spend_total", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id", "valid_from"],
            ["retention_spans.customer_id", "retention_spans.valid_from"],
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "valid_from", "currency"),
    )
    op.create_table(
        "retention_span_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("orders_count", sa.Integer(), nullable=False),
        sa.Column("last_order_id", sa.Integer(), nullable=False),
        sa.Column("built_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("retention_span_state")
    op.drop_table("retention_span_money")
    op.drop_index("ix_retention_spans_won_back", table_name="retention_spans")
    op.drop_index("ix_retention_spans_lost_on", table_name="retention_spans")
    op.drop_index("ix_retention_spans_status", table_name="retention_spans")
    op.drop_table("retention_spans")
