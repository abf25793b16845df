"""SMS surveys: surveys, sms_replies, sms_opt_outs and survey_templates.

Revision ID: surveys_0001
Depends on: 0002 (the core's tickets, customers, agents and teams tables)
"""

import sqlalchemy as sa
from alembic import op

revision = "surveys_0001"
down_revision = None
branch_labels = ("surveys",)  # the plugin's name
depends_on = "0002"


def upgrade() -> None:
    op.create_table(
        "surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("outbox_key", sa.String(length=64), nullable=True),
        sa.Column("message_sid", sa.String(length=64), nullable=True),
        sa.Column("delivery_status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=16), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("asked_again", sa.Boolean(), nullable=False),
        sa.Column("follow_up", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_sid"),
        sa.UniqueConstraint("outbox_key"),
    )
    op.create_index("ix_surveys_ticket_id", "surveys", ["ticket_id"])
    op.create_index("ix_surveys_customer_sent", "surveys", ["customer_id", "sent_at"])
    op.create_index("ix_surveys_phone_sent", "surveys", ["phone", "sent_at"])
    op.create_index(
        "ix_surveys_report",
        "surveys",
        ["agent_id", "created_at", "sent_at", "delivered_at", "score"],
    )
    op.create_index("ix_surveys_created_score", "surveys", ["created_at", "score"])
    op.create_index("ix_surveys_follow_up", "surveys", ["follow_up", "ticket_id"])
    op.create_table(
        "sms_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_sid", sa.String(length=64), nullable=False),
        sa.Column("from_number", sa.String(length=32), nullable=False),
        sa.Column("to_number", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["survey_id"], ["surveys.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_sid"),
    )
    op.create_index("ix_sms_replies_survey_id", "sms_replies", ["survey_id"])
    op.create_table(
        "sms_opt_outs",
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("keyword", sa.String(length=16), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("phone"),
    )
    op.create_index("ix_sms_opt_outs_customer_id", "sms_opt_outs", ["customer_id"])
    op.create_table(
        "survey_templates",
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["updated_by_id"], ["agents.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("language"),
    )


def downgrade() -> None:
    op.drop_table("survey_templates")
    op.drop_index("ix_sms_opt_outs_customer_id", table_name="sms_opt_outs")
    op.drop_table("sms_opt_outs")
    op.drop_index("ix_sms_replies_survey_id", table_name="sms_replies")
    op.drop_table("sms_replies")
    for name in (
        "ix_surveys_follow_up",
        "ix_surveys_created_score",
        "ix_surveys_report",
        "ix_surveys_phone_sent",
        "ix_surveys_customer_sent",
        "ix_surveys_ticket_id",
    ):
        op.drop_index(name, table_name="surveys")
    op.drop_table("surveys")
