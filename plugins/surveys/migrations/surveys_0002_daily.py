"""SMS surveys: the appraisal's daily roll-up (survey_daily), filled from the surveys already
there, and a partial index on the surveys still scheduled (the only ones the report reads
from surveys itself).

Revision ID: surveys_0002
Revises: surveys_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "surveys_0002"
down_revision = "surveys_0001"
branch_labels = None
depends_on = None

COUNTS = ("resolved", "sent", "delivered", *(f"score_{n}" for n in range(1, 6)))
SCHEDULED = sa.text("status = 'scheduled'")


def upgrade() -> None:
    op.create_table(
        "survey_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS],
        sa.PrimaryKeyConstraint("day", "agent_id"),
    )
    op.create_index(
        "ix_surveys_scheduled",
        "surveys",
        ["created_at"],
        sqlite_where=SCHEDULED,
        postgresql_where=SCHEDULED,
    )
    day = (
        "CAST(created_at AS DATE)"
        if op.get_bind().dialect.name == "postgresql"
        else "date(created_at)"
    )
    scores = ", ".join(f"COUNT(CASE WHEN score = {n} THEN 1 END)" for n in range(1, 6))
    op.execute(
        f"INSERT INTO survey_daily (day, agent_id, {', '.join(COUNTS)}) "
        f"SELECT {day}, COALESCE(agent_id, 0), COUNT(*), COUNT(sent_at), COUNT(delivered_at), "
        f"{scores} FROM surveys WHERE status <> 'scheduled' "
        f"GROUP BY {day}, COALESCE(agent_id, 0)"
    )


def downgrade() -> None:
    op.drop_index("ix_surveys_scheduled", table_name="surveys")
    op.drop_table("survey_daily")
