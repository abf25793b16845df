"""hello: the greetings table.

Revision ID: hello_0001
Revises:
Create Date: 2026-11-26 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "hello_0001"
down_revision = None
branch_labels = ("hello",)  # the plugin's name
depends_on = "0001"  # the core revision that made the tickets and agents tables


def upgrade():
    op.create_table(
        "hello_greetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_hello_greetings_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_hello_greetings_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hello_greetings")),
    )
    op.create_index(
        op.f("ix_hello_greetings_ticket_id"), "hello_greetings", ["ticket_id"], unique=False
    )


def downgrade():
    op.drop_index(op.f("ix_hello_greetings_ticket_id"), table_name="hello_greetings")
    op.drop_table("hello_greetings")
