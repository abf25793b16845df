"""What the dashboard asks of the spans as a whole, answered by the database: the clients lost
in the period counted and their money summed (exact integer units, grouped by currency and by
the days between first and last purchase, which is all lifetime value needs), their loss
reasons counted, and the drying-up list in the order chosen, of which only the rows shown are
read.

Each answer equals what reading every client's span and adding up in Python gives;
``tests/test_retention_spans.py`` checks that against the figures computed from the orders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction
from itertools import combinations

from sqlalchemy import case, func, select

from helpdesk import db
from plugins.retention.definitions import SIGNALS
from plugins.retention.models import ClientSpan, LossReason, SpanMoney
from plugins.retention.spans import lost_where, parse_day, raw_date, status_at

# The sort keys of the drying-up list the spans answer (the others need the customer rows).
SPAN_SORTS = ("signal", "aov_change", "last_order")
# The lists' own order, which ties keep: latest last purchase first, then highest id.
LIST_ORDER = (ClientSpan.last_day.desc(), ClientSpan.customer_id.desc())


@dataclass
class LostTotals:
    """The clients lost at D who became lost in the period: how many, how many became lost on
    each day, and by the days between their first and last purchase, per currency, their
    revenue before leaving and their total spend."""

    count: int = 0
    by_day: dict[date, int] = field(default_factory=dict)
    revenue_by_days: dict[int, dict[str, Decimal]] = field(default_factory=dict)
    spend_by_days: dict[int, dict[str, Decimal]] = field(default_factory=dict)


def lost_totals(as_of: date, after: date) -> LostTotals:
    """``LostTotals`` of the clients lost at ``as_of`` who became lost after ``after``: two
    grouped queries over index ranges (a client has one span at D, so spans count clients;
    only lost clients' spans have money rows)."""
    where = lost_where(as_of, after)
    totals = LostTotals()
    days = db.session.execute(
        select(raw_date(ClientSpan.lost_on), func.count())
        .where(*where)
        .group_by(ClientSpan.lost_on)
    )
    totals.by_day = {parse_day(day): count for day, count in days}
    totals.count = sum(totals.by_day.values())
    # The money rows of those spans, from the index holding all the query reads.
    rows = db.session.execute(
        select(
            SpanMoney.span_days,
            SpanMoney.currency,
            func.sum(SpanMoney.revenue_before),
            func.sum(SpanMoney.spend_total),
        )
        .where(
            SpanMoney.lost_on > after,
            SpanMoney.lost_on <= as_of,
            SpanMoney.valid_from <= as_of,
            SpanMoney.valid_to > as_of,
        )
        .group_by(SpanMoney.span_days, SpanMoney.currency)
    )
    for span_days, currency, revenue_before, spend_total in rows:
        if revenue_before is not None:
            totals.revenue_by_days.setdefault(span_days, {})[currency] = revenue_before
        totals.spend_by_days.setdefault(span_days, {})[currency] = spend_total
    return totals


def lost_reasons(as_of: date, after: date) -> dict[str, int]:
    """How many of the clients of ``lost_totals`` have each recorded loss reason (read from
    the reasons, a client's spans looked up by key: there are far fewer reasons than spans)."""
    lost = (
        select(ClientSpan.customer_id)
        .where(ClientSpan.customer_id == LossReason.customer_id, *lost_where(as_of, after))
        .exists()
    )
    rows = db.session.execute(
        select(LossReason.reason, func.count()).where(lost).group_by(LossReason.reason)
    )
    return dict(rows.all())


def _signal_rank():
    """The stored signals ranked as the list sorts them (their names joined by commas)."""
    stored = [
        " ".join(chosen)
        for size in range(1, len(SIGNALS) + 1)
        for chosen in combinations(SIGNALS, size)
    ]
    ranked = sorted(stored, key=lambda value: value.replace(" ", ","))
    return case({value: rank for rank, value in enumerate(ranked)}, value=ClientSpan.signals)


def drying_up_ids(as_of: date, key: str, descending: bool, limit: int | None) -> list[int]:
    """The drying-up clients at D by ``key`` (one of ``SPAN_SORTS``), the first ``limit`` (all
    for ``None``); ties keep the lists' order, and clients without an AOV change come last
    either way."""
    where = status_at("drying_up", as_of)
    if key == "aov_change":
        return _by_aov_change(where, descending, limit)
    column = ClientSpan.last_day if key == "last_order" else _signal_rank()
    query = (
        select(ClientSpan.customer_id)
        .where(*where)
        .order_by(column.desc() if descending else column.asc(), *LIST_ORDER)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def drying_up_listed(as_of: date) -> list[int]:
    """Every drying-up client at D, in the lists' order."""
    query = select(ClientSpan.customer_id).where(*status_at("drying_up", as_of))
    return list(db.session.scalars(query.order_by(*LIST_ORDER)))


def _by_aov_change(where: tuple, descending: bool, limit: int | None) -> list[int]:
    """``drying_up_ids`` by the worst AOV change: the database sorts by its double, which
    rounding keeps in order; the rows sharing a double with the last one taken are all read,
    and those sharing one are ordered by the exact change."""
    query = select(
        ClientSpan.customer_id,
        raw_date(ClientSpan.last_day),
        ClientSpan.worst_order,
        ClientSpan.worst_change,
    ).where(*where)
    order = ClientSpan.worst_order.desc() if descending else ClientSpan.worst_order.asc()
    first = db.session.execute(
        query.order_by(ClientSpan.worst_order.is_(None), order, *LIST_ORDER).limit(limit)
    ).all()
    present = [row for row in first if row.worst_order is not None]
    missing = [row for row in first if row.worst_order is None]
    if limit is not None and len(first) == limit and present:
        edge = present[-1].worst_order
        present = [row for row in present if row.worst_order != edge]
        present += db.session.execute(query.where(ClientSpan.worst_order == edge)).all()
    present.sort(key=lambda row: (parse_day(row.last_day), row.customer_id), reverse=True)
    present.sort(key=lambda row: (row.worst_order, Fraction(row.worst_change)), reverse=descending)
    return [row.customer_id for row in present + missing][:limit]
