"""Retention: retention_loss_reasons, retention_account_managers, retention_call_tasks and
retention_statuses.

Revision ID: retention_0001
Depends on: 0006 (the core's customers, agents, orders and order_lines tables)
"""

import sqlalchemy as sa
from alembic import op

revision = "retention_0001"
down_revision = None
branch_labels = ("retention",)  # the plugin's name
depends_on = "0006"


def upgrade() -> None:
    op.create_table(
        "retention_loss_reasons",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_table(
        "retention_account_managers",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_index(
        "ix_retention_account_managers_agent_id", "retention_account_managers", ["agent_id"]
    )
    op.create_table(
        "retention_call_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.Column("reached", sa.Boolean(), nullable=True),
        sa.Column("reason_learned", sa.String(length=40), nullable=False),
        sa.Column("offer_made", sa.Text(), nullable=False),
        sa.Column("next_date", sa.Date(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "kind", "as_of", name="uq_retention_call_tasks_once"),
    )
    op.create_index("ix_retention_call_tasks_open", "retention_call_tasks", ["agent_id", "done_at"])
    op.create_index(
        "ix_retention_call_tasks_customer", "retention_call_tasks", ["customer_id", "done_at"]
    )
    op.create_table(
        "retention_statuses",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("won_back_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("customer_id"),
    )


def downgrade() -> None:
    op.drop_table("retention_statuses")
    op.drop_index("ix_retention_call_tasks_customer", table_name="retention_call_tasks")
    op.drop_index("ix_retention_call_tasks_open", table_name="retention_call_tasks")
    op.drop_table("retention_call_tasks")
    op.drop_index("ix_retention_account_managers_agent_id", table_name="retention_account_managers")
    op.drop_table("retention_account_managers")
    op.drop_table("retention_loss_reasons")
