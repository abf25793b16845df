"""Clients' purchases from the orders, streamed in one query, and the figures of a few clients
at a date computed from them directly.

The orders come ordered by customer (the ``(customer_id, ordered_on)`` index), joined to their
product lines, and each customer's purchases are handed on as soon as the next customer starts:
memory holds one customer at a time. Customers without orders are never read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import String, and_, select, true, type_coerce

from helpdesk import Order, OrderLine, db
from plugins.retention.definitions import DryingUp, Figures, Purchase, Rules, drying_up, evaluate

STREAM_CHUNK = 5000
NO_LINES: frozenset[str] = frozenset()
# Customers per query of ``figures_of`` (bound parameters stay well under every limit).
IDS_PER_QUERY = 1000


def _rows(
    as_of: date | None, rules: Rules, customer_ids: list[int] | None, since: date | None = None
) -> Iterator[tuple]:
    """``(customer id, order id, date, currency, amount, product line or None)``, by customer
    (every customer, or those of ``customer_ids``). With ``as_of``, only the orders dated up to
    it (and, with ``since``, after that), and product lines only for orders in its line
    history window (older ones never matter then); without, every order and line."""
    if as_of is None:
        dated, line_on = true(), OrderLine.order_id == Order.id
    else:
        lines_from = as_of - timedelta(days=rules.line_history_days)
        dated = Order.ordered_on <= as_of
        if since is not None:
            dated = and_(dated, Order.ordered_on > since)
        line_on = and_(OrderLine.order_id == Order.id, Order.ordered_on > lines_from)
    query = (
        select(
            Order.customer_id,
            Order.id,
            # Read as the driver gives them: SQLite's text is parsed below in C, not by the
            # column types' per-row processors (most of the time over a million rows).
            type_coerce(Order.ordered_on, String),
            Order.currency,
            type_coerce(Order.amount, String),
            OrderLine.product_line,
        )
        .outerjoin(OrderLine, line_on)
        .where(dated)
        .where(Order.customer_id.in_(customer_ids) if customer_ids is not None else true())
        .order_by(Order.customer_id, Order.ordered_on, Order.id)
    )
    # Core rows on the session's connection: no ORM loading for a million tuples.
    result = db.session.connection().execute(query, execution_options={"yield_per": STREAM_CHUNK})
    for partition in result.partitions():
        yield from partition


def purchases_by_customer(
    as_of: date | None,
    rules: Rules,
    customer_ids: list[int] | None = None,
    since: date | None = None,
) -> Iterator[tuple[int, list[Purchase]]]:
    """Each customer's orders as ``Purchase`` objects, one customer at a time (see ``_rows``
    for ``as_of`` and ``since``)."""
    customer_id = order_id = None
    purchases: list[Purchase] = []
    lines: list[str] = []
    current: tuple | None = None
    for cid, oid, day, currency, amount, product_line in _rows(as_of, rules, customer_ids, since):
        if oid != order_id:
            if current is not None:
                purchases.append(Purchase(*current, frozenset(lines) if lines else NO_LINES))
            if cid != customer_id and customer_id is not None:
                yield customer_id, purchases
                purchases = []
            customer_id, order_id, lines = cid, oid, []
            current = (
                day if isinstance(day, date) else date.fromisoformat(day),
                currency,
                amount if isinstance(amount, Decimal) else Decimal(str(amount)),
            )
        if product_line is not None:
            lines.append(product_line)
    if current is not None:
        purchases.append(Purchase(*current, frozenset(lines) if lines else NO_LINES))
        yield customer_id, purchases


def figures_of(customer_ids: list[int], as_of: date, rules: Rules) -> dict[int, Figures]:
    """The figures of some customers at ``as_of`` (a customer page, a manager's clients, a page
    of a list), straight from their orders: one query per ``IDS_PER_QUERY`` customers; a
    customer without orders is ``new`` with none."""
    found: dict[int, Figures] = {}
    for start in range(0, len(customer_ids), IDS_PER_QUERY):
        chunk = customer_ids[start : start + IDS_PER_QUERY]
        found.update(
            (cid, evaluate(p, as_of, rules))
            for cid, p in purchases_by_customer(as_of, rules, chunk)
        )
    return {cid: found.get(cid) or evaluate([], as_of, rules) for cid in customer_ids}


def drying_up_of(
    shown: Mapping[int, tuple[date, list[str]]], as_of: date, rules: Rules
) -> dict[int, DryingUp]:
    """What the drying-up list shows of the clients of ``shown`` (id → last purchase and
    signals at ``as_of``, from their spans), read from their orders of the days that matter
    alone (the line history, or both AOV windows when longer): one query per
    ``IDS_PER_QUERY`` customers."""
    days = max(rules.line_history_days, 2 * rules.aov_window_days)
    since = as_of - timedelta(days=days)
    ids = list(shown)
    recent: dict[int, list[Purchase]] = {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[start : start + IDS_PER_QUERY]
        recent.update(purchases_by_customer(as_of, rules, chunk, since))
    return {cid: drying_up(recent.get(cid, []), as_of, rules, *shown[cid]) for cid in ids}
