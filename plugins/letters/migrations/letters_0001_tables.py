"""Complaint letters: letters_claims, letters_templates (seeded with the six usual letters)
and letters_template_versions.

Revision ID: letters_0001
Depends on: 0002 (the core's tickets and agents tables)
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from plugins.letters.seed import SEED_TEMPLATES

revision = "letters_0001"
down_revision = None
branch_labels = ("letters",)  # the plugin's name
depends_on = "0002"


def upgrade() -> None:
    op.create_table(
        "letters_claims",
        sa.Column("ticket_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("outcome_wanted", sa.String(length=20), nullable=False),
        sa.Column("amount_claimed", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("incident_date", sa.Date(), nullable=True),
        sa.Column("order_reference", sa.String(length=100), nullable=False),
        sa.Column("costs", sa.String(length=60), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("granted", sa.String(length=20), nullable=True),
        sa.Column("granted_amount", sa.BigInteger(), nullable=True),
        sa.Column("granted_code", sa.String(length=100), nullable=False),
        sa.Column("granted_reason", sa.Text(), nullable=False),
        sa.Column("granted_by_id", sa.Integer(), nullable=True),
        sa.Column("granted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["granted_by_id"], ["agents.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("ticket_id"),
    )
    op.create_index("ix_letters_claims_outcome_wanted", "letters_claims", ["outcome_wanted"])
    op.create_index("ix_letters_claims_granted", "letters_claims", ["granted"])
    templates = op.create_table(
        "letters_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["updated_by_id"], ["agents.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", "language"),
    )
    versions = op.create_table(
        "letters_template_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["template_id"], ["letters_templates.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("template_id", "version"),
    )
    op.create_index(
        "ix_letters_template_versions_template_id", "letters_template_versions", ["template_id"]
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {**seed, "id": number, "language": "en", "version": 1, "updated_at": now}
        for number, seed in enumerate(SEED_TEMPLATES, start=1)
    ]
    op.bulk_insert(templates, rows)
    op.bulk_insert(
        versions,
        [
            {
                "template_id": row["id"],
                "version": 1,
                "name": row["name"],
                "subject": row["subject"],
                "body": row["body"],
                "created_at": now,
            }
            for row in rows
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "SELECT setval(pg_get_serial_sequence('letters_templates', 'id'), "
            "(SELECT MAX(id) FROM letters_templates))"
        )


def downgrade() -> None:
    op.drop_index("ix_letters_template_versions_template_id", "letters_template_versions")
    op.drop_table("letters_template_versions")
    op.drop_table("letters_templates")
    op.drop_index("ix_letters_claims_granted", "letters_claims")
    op.drop_index("ix_letters_claims_outcome_wanted", "letters_claims")
    op.drop_table("letters_claims")
