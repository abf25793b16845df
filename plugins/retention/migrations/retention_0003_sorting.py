"""Retention: retention_spans.worst_order, the worst AOV change as a double, so the drying-up
list is sorted by the database (equal doubles are then ordered by the exact ``worst_change``);
retention_span_lengths, the longest span of each status, which bounds the index range of the
spans holding at a date; and on retention_span_money its span's end, the day the client
became lost and the days between their first and last purchase, with an index holding all
the lost clients' sums read. All are filled here from the spans there are (they stay in step:
no rebuild needed), and written by every build of the spans from then on.

Revision ID: retention_0003
Revises: retention_0002
"""

from fractions import Fraction

import sqlalchemy as sa
from alembic import op

revision = "retention_0003"
down_revision = "retention_0002"
branch_labels = None
depends_on = None

# Spans updated per statement while filling the column.
BATCH = 5000


def upgrade() -> None:
    op.add_column("retention_spans", sa.Column("worst_order", sa.Double(), nullable=True))
    op.create_table(
        "retention_span_lengths",
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("longest_days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("status"),
    )
    for name, kind in (
        ("valid_to", sa.Date()),
        ("lost_on", sa.Date()),
        ("span_days", sa.Integer()),
    ):
        op.add_column("retention_span_money", sa.Column(name, kind, nullable=True))
    bind = op.get_bind()
    _fill_worst_order(bind)
    op.execute(
        "INSERT INTO retention_span_lengths (status, longest_days) "
        f"SELECT status, MAX({_days(bind, 'valid_from', 'valid_to')}) "
        "FROM retention_spans GROUP BY status"
    )
    span = (
        "FROM retention_spans s WHERE s.customer_id = retention_span_money.customer_id "
        "AND s.valid_from = retention_span_money.valid_from"
    )
    op.execute(
        f"UPDATE retention_span_money SET valid_to = (SELECT s.valid_to {span}), "
        f"lost_on = (SELECT s.lost_on {span}), "
        f"span_days = (SELECT {_days(bind, 's.first_day', 's.last_day')} {span})"
    )
    op.create_index(
        "ix_retention_span_money_lost",
        "retention_span_money",
        [
            "lost_on",
            "valid_to",
            "valid_from",
            "currency",
            "span_days",
            "revenue_before",
            "spend_total",
        ],
    )


def _days(bind, first: str, last: str) -> str:
    """SQL for the whole days from the date column ``first`` to ``last``."""
    if bind.dialect.name == "sqlite":
        return f"CAST(julianday({last}) - julianday({first}) AS INTEGER)"
    return f"({last} - {first})"


def _fill_worst_order(bind) -> None:
    spans = sa.table(
        "retention_spans",
        sa.column("customer_id", sa.Integer()),
        sa.column("valid_from", sa.Date()),
        sa.column("worst_change", sa.String()),
        sa.column("worst_order", sa.Double()),
    )
    rows = bind.execute(
        sa.select(spans.c.customer_id, spans.c.valid_from, spans.c.worst_change).where(
            spans.c.worst_change.is_not(None)
        )
    ).all()
    update = (
        spans.update()
        .where(
            spans.c.customer_id == sa.bindparam("cid"),
            spans.c.valid_from == sa.bindparam("start"),
        )
        .values(worst_order=sa.bindparam("order"))
    )
    for first in range(0, len(rows), BATCH):
        bind.execute(
            update,
            [
                {"cid": cid, "start": start, "order": float(Fraction(worst))}
                for cid, start, worst in rows[first : first + BATCH]
            ],
        )


def downgrade() -> None:
    op.drop_index("ix_retention_span_money_lost", table_name="retention_span_money")
    for name in ("span_days", "lost_on", "valid_to"):
        op.drop_column("retention_span_money", name)
    op.drop_table("retention_span_lengths")
    op.drop_column("retention_spans", "worst_order")
