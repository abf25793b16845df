"""Segments: per group of clients (their client category, when a plugin groups customers) and
per month, the clients who bought, their purchases, revenue and average order value per
currency, complaints and clients lost; so a trend in one segment shows early.

Definitions (shown on the page): the months are the 12 calendar months up to D's, D's own
counted up to D; a *purchase* is a client's orders of one day, as everywhere in this plugin;
AOV is a currency's revenue divided by the purchases in that currency; *lost* counts the
clients who became lost in the month (the dashboard's definition); complaints are tickets of
the kind complaint opened in the month. A client is in the group they are in now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from helpdesk import Grouping, Order, Ticket, db

MONTHS = 12


@dataclass
class SegmentMonth:
    """One group's figures in one month."""

    month: str
    clients: int = 0
    purchases: int = 0
    revenue: dict[str, Decimal] = field(default_factory=dict)
    aov: dict[str, Decimal] = field(default_factory=dict)
    complaints: int = 0
    lost: int = 0


Namer = Callable[[Any], str]
Cell = Callable[[str, str], SegmentMonth]


@dataclass
class Segment:
    """A group of clients and its months, oldest first."""

    name: str
    months: list[SegmentMonth]


def month_keys(as_of: date, count: int = MONTHS) -> list[str]:
    """``YYYY-MM`` of the ``count`` calendar months up to D's, oldest first."""
    year, month = as_of.year, as_of.month
    keys = []
    for _step in range(count):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return keys[::-1]


def segments(as_of: date, grouping: Grouping | None, lost: list) -> list[Segment]:
    """The segments at D; ``lost``: the clients lost in the period (``service.lost_in_period``).
    Without a grouping every client is in one segment."""
    keys = month_keys(as_of)
    first = date.fromisoformat(f"{keys[0]}-01")
    everyone = _("All clients")
    query = select(Order.customer_id, Order.ordered_on, Order.currency, Order.amount).where(
        Order.ordered_on >= first, Order.ordered_on <= as_of
    )
    if grouping is not None:
        groups_of, customer_id, group_col = grouping.subquery()
        query = query.add_columns(group_col).outerjoin(groups_of, customer_id == Order.customer_id)
    other = grouping.otherwise if grouping is not None else everyone

    def group(name: object) -> str:
        return other if name is None else str(name)

    table: dict[str, dict[str, SegmentMonth]] = defaultdict(dict)

    def cell(name: str, key: str) -> SegmentMonth:
        return table[name].setdefault(key, SegmentMonth(key))

    clients: dict[tuple[str, str], set[int]] = defaultdict(set)
    purchases: dict[tuple[str, str, str], set[tuple[int, date]]] = defaultdict(set)
    for customer, day, currency, amount, *name in db.session.execute(query):
        name_ = group(name[0] if name else None)
        key = day.strftime("%Y-%m")
        month = cell(name_, key)
        month.revenue[currency] = month.revenue.get(currency, Decimal(0)) + Decimal(amount)
        clients[(name_, key)].add(customer)
        purchases[(name_, key, currency)].add((customer, day))
    for (name_, key), ids in clients.items():
        cell(name_, key).clients = len(ids)
    for (name_, key, currency), days in purchases.items():
        month = cell(name_, key)
        month.purchases += len(days)
        month.aov[currency] = (month.revenue[currency] / len(days)).quantize(Decimal("0.01"))
    _count_complaints(first, as_of, grouping, group, cell)
    _count_lost(lost, keys, grouping, group, cell)
    return [
        Segment(name, [table[name].get(key) or SegmentMonth(key) for key in keys])
        for name in sorted(table, key=str.casefold)
    ]


def _count_complaints(
    first: date, as_of: date, grouping: Grouping | None, group: Namer, cell: Cell
) -> None:
    since = datetime.combine(first, time.min, UTC)
    until = datetime.combine(as_of + timedelta(days=1), time.min, UTC)
    query = select(Ticket.created_at).where(
        Ticket.kind == "complaint", Ticket.created_at >= since, Ticket.created_at < until
    )
    if grouping is not None:
        groups_of, customer_id, group_col = grouping.subquery()
        query = query.add_columns(group_col).outerjoin(groups_of, customer_id == Ticket.customer_id)
    for opened, *name in db.session.execute(query):
        cell(group(name[0] if name else None), opened.strftime("%Y-%m")).complaints += 1


def _count_lost(
    lost: list, keys: list[str], grouping: Grouping | None, group: Namer, cell: Cell
) -> None:
    ids = [client.customer_id for client in lost]
    names: dict[int, str] = {}
    if grouping is not None and ids:
        _subquery, customer_id, group_col = grouping.subquery()
        names = dict(
            db.session.execute(select(customer_id, group_col).where(customer_id.in_(ids))).all()
        )
    for client in lost:
        key = client.lost_on.strftime("%Y-%m")
        if key in keys:
            cell(group(names.get(client.customer_id)), key).lost += 1
