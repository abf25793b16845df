"""Loyalty: loyalty_cards, loyalty_ledger, loyalty_order_bonus, loyalty_card_events,
loyalty_idempotency, loyalty_category_rates.

Revision ID: loyalty_0001
Depends on: 0005 (the core's customers, agents, orders and order_refunds tables)
"""

import sqlalchemy as sa
from alembic import op

revision = "loyalty_0001"
down_revision = None
branch_labels = ("loyalty",)  # the plugin's name
depends_on = "0005"

# Money columns are ExactDecimal(4) in the models: BIGINT counts of 1/10000 units.
MONEY = sa.BigInteger


def upgrade() -> None:
    op.create_table(
        "loyalty_cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("active_customer_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("replaced_by_id", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance", MONEY(), nullable=False),
        sa.Column("owed", MONEY(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["replaced_by_id"], ["loyalty_cards.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
        sa.UniqueConstraint("active_customer_id"),
    )
    op.create_index("ix_loyalty_cards_customer_id", "loyalty_cards", ["customer_id"])
    op.create_table(
        "loyalty_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", MONEY(), nullable=False),
        sa.Column("owed_change", MONEY(), nullable=False),
        sa.Column("balance_after", MONEY(), nullable=False),
        sa.Column("owed_after", MONEY(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("order_reference", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["card_id"], ["loyalty_cards.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_loyalty_ledger_card_id_id", "loyalty_ledger", ["card_id", "id"])
    op.create_index("ix_loyalty_ledger_created_at", "loyalty_ledger", ["created_at"])
    op.create_table(
        "loyalty_order_bonus",
        sa.Column("order_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("accrued", MONEY(), nullable=False),
        sa.Column("reversed", MONEY(), nullable=False),
        sa.Column("redeemed", MONEY(), nullable=False),
        sa.Column("returned", MONEY(), nullable=False),
        sa.ForeignKeyConstraint(["card_id"], ["loyalty_cards.id"]),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_index("ix_loyalty_order_bonus_card_id", "loyalty_order_bonus", ["card_id"])
    op.create_table(
        "loyalty_card_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["card_id"], ["loyalty_cards.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_loyalty_card_events_card_id", "loyalty_card_events", ["card_id"])
    op.create_table(
        "loyalty_idempotency",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["card_id"], ["loyalty_cards.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("card_id", "endpoint", "key", name="uq_loyalty_idem_key"),
    )
    op.create_table(
        "loyalty_category_rates",
        sa.Column("category_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("accrual_percent", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.PrimaryKeyConstraint("category_id"),
    )


def downgrade() -> None:
    op.drop_table("loyalty_category_rates")
    op.drop_table("loyalty_idempotency")
    op.drop_index("ix_loyalty_card_events_card_id", table_name="loyalty_card_events")
    op.drop_table("loyalty_card_events")
    op.drop_index("ix_loyalty_order_bonus_card_id", table_name="loyalty_order_bonus")
    op.drop_table("loyalty_order_bonus")
    op.drop_index("ix_loyalty_ledger_created_at", table_name="loyalty_ledger")
    op.drop_index("ix_loyalty_ledger_card_id_id", table_name="loyalty_ledger")
    op.drop_table("loyalty_ledger")
    op.drop_index("ix_loyalty_cards_customer_id", table_name="loyalty_cards")
    op.drop_table("loyalty_cards")
