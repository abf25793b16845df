"""The report "Which category pays?": per category, over a period and in one currency, the
customers, revenue, orders and tickets, aggregated in SQL (GROUP BY category, no loop over
customers); then the ratios, the chart and the CSV are worked out from those few rows."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import and_, case, func, literal, select

from helpdesk import Customer, Order, Ticket, db, spreadsheet_safe
from plugins.categories.models import Category, CustomerCategory

CENT = Decimal("0.01")
SORT_KEYS = (
    "name",
    "customers",
    "revenue",
    "orders",
    "average_order",
    "tickets_per_customer",
    "complaints_per_customer",
    "handling_hours",
    "revenue_per_ticket",
    "share",
)


@dataclass
class Row:
    """One category's figures (``None`` where a ratio has no denominator)."""

    category_id: int | None
    name: str
    color: str
    customers: int = 0
    revenue: Decimal = Decimal(0)
    orders: int = 0
    tickets: int = 0
    complaints: int = 0
    handling_hours: Decimal | None = None
    average_order: Decimal | None = field(default=None)
    tickets_per_customer: Decimal | None = None
    complaints_per_customer: Decimal | None = None
    revenue_per_ticket: Decimal | None = None
    share: Decimal | None = None


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT, rounding=ROUND_HALF_UP)


def _ratio(numerator: Decimal | int, denominator: int | Decimal) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(CENT, rounding=ROUND_HALF_UP)


def _category(default_id: int | None):
    """SQL for the category of the customer joined as ``customer_categories`` (the default
    for customers never put in one)."""
    return func.coalesce(CustomerCategory.category_id, literal(default_id))


def _hours(start, end):
    """SQL for the hours from ``start`` to ``end`` on either database."""
    if db.engine.dialect.name == "postgresql":
        return func.extract("epoch", end - start) / 3600.0
    return (func.julianday(end) - func.julianday(start)) * 24.0


def _order_figures(
    start: date, end: date, currency: str, default_id: int | None
) -> list[tuple[int | None, Any, int]]:
    """``(category id, revenue, orders)`` per category, in two passes that never look up the
    category of every order: the totals of all orders (one scan), and the orders of the
    customers put in a category other than the default (driven by ``customer_categories``,
    through the orders' customer index); the default category has the rest.

    The period is compared through ``coalesce`` so that SQLite scans the orders once instead
    of fetching most of them one by one through the date index.
    """
    day = func.coalesce(Order.ordered_on, Order.ordered_on)
    wanted = (day >= start, day <= end, Order.currency == currency)
    revenue, count = db.session.execute(
        select(func.sum(Order.amount), func.count(Order.id)).where(*wanted)
    ).one()
    others = select(CustomerCategory.category_id, func.sum(Order.amount), func.count(Order.id))
    others = others.join(Order, Order.customer_id == CustomerCategory.customer_id).where(*wanted)
    if default_id is not None:
        others = others.where(CustomerCategory.category_id != default_id)
    rows = list(db.session.execute(others.group_by(CustomerCategory.category_id)).all())
    rest_revenue = Decimal(str(revenue or 0)) - sum(Decimal(str(r[1] or 0)) for r in rows)
    rest_count = count - sum(r[2] for r in rows)
    if rest_count:
        rows.append((default_id, rest_revenue, rest_count))
    return rows


def category_report(
    start: date, end: date, currency: str, default_id: int | None
) -> tuple[list[Row], Decimal]:
    """Every category's figures for orders dated and tickets opened from ``start`` to ``end``
    (both included), revenue in ``currency`` only; and the total revenue. Five queries."""
    category = _category(default_id).label("category_id")
    by_customer = CustomerCategory.customer_id
    customers = dict(
        db.session.execute(
            select(category, func.count(Customer.id))
            .select_from(Customer)
            .outerjoin(CustomerCategory, by_customer == Customer.id)
            .group_by(category)
        ).all()
    )
    order_rows = _order_figures(start, end, currency, default_id)
    since = datetime.combine(start, time.min, UTC)
    until = datetime.combine(end + timedelta(days=1), time.min, UTC)
    resolved = and_(Ticket.resolved_at.is_not(None), Ticket.merged_into_id.is_(None))
    ticket_rows = db.session.execute(
        select(
            category,
            func.count(Ticket.id),
            func.sum(case((Ticket.kind == "complaint", 1), else_=0)),
            func.avg(case((resolved, _hours(Ticket.created_at, Ticket.resolved_at)))),
        )
        .select_from(Ticket)
        .outerjoin(CustomerCategory, by_customer == Ticket.customer_id)
        .where(Ticket.created_at >= since, Ticket.created_at < until)
        .group_by(category)
    ).all()
    categories = db.session.scalars(select(Category).order_by(Category.position)).all()
    rows = {c.id: Row(c.id, c.name, c.color) for c in categories}
    for category_id, count in customers.items():
        _row(rows, category_id).customers = count
    for category_id, revenue, count in order_rows:
        row = _row(rows, category_id)
        row.revenue, row.orders = _money(revenue), count
    for category_id, tickets, complaints, hours in ticket_rows:
        row = _row(rows, category_id)
        row.tickets, row.complaints = tickets, int(complaints or 0)
        row.handling_hours = None if hours is None else _money(hours)
    total = sum((row.revenue for row in rows.values()), Decimal(0))
    for row in rows.values():
        row.average_order = _ratio(row.revenue, row.orders)
        row.tickets_per_customer = _ratio(row.tickets, row.customers)
        row.complaints_per_customer = _ratio(row.complaints, row.customers)
        row.revenue_per_ticket = _ratio(row.revenue, row.tickets)
        row.share = _ratio(row.revenue * 100, total)
    return list(rows.values()), total


def _row(rows: dict[int | None, Row], category_id: int | None) -> Row:
    """The row of ``category_id`` (a customer of no category when there is no default)."""
    if category_id not in rows:
        rows[category_id] = Row(category_id, "—", "grey")
    return rows[category_id]


def sort_rows(rows: list[Row], key: str, descending: bool) -> list[Row]:
    """The rows by ``key`` (one of ``SORT_KEYS``); empty ratios go last either way."""
    if key == "name":
        return sorted(rows, key=lambda r: r.name.casefold(), reverse=descending)
    present = [r for r in rows if getattr(r, key) is not None]
    missing = [r for r in rows if getattr(r, key) is None]
    return sorted(present, key=lambda r: getattr(r, key), reverse=descending) + missing


def to_csv(rows: list[Row], currency: str) -> str:
    """The table as CSV (``Decimal`` written exactly, empty for a missing ratio)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["category", "currency", *SORT_KEYS[1:], "tickets", "complaints"])
    for row in rows:
        values = [getattr(row, key) for key in SORT_KEYS[1:]]
        writer.writerow(
            [
                spreadsheet_safe(row.name),
                currency,
                *["" if v is None else v for v in values],
                row.tickets,
                row.complaints,
            ]
        )
    return out.getvalue()


def chart_bars(rows: list[Row], width: int = 600) -> list[dict[str, Any]]:
    """Bars for the revenue chart: ``label``, ``value``, ``length`` (px, longest = ``width``),
    ``y`` offset and ``color``."""
    top = max((row.revenue for row in rows), default=Decimal(0))
    bars = []
    for index, row in enumerate(rows):
        length = int(row.revenue / top * width) if top else 0
        bars.append(
            {
                "label": row.name,
                "value": row.revenue,
                "length": length,
                "y": index * 32,
                "color": row.color,
            }
        )
    return bars
