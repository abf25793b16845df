"""Every client's figures at a reference date, from the orders in one streamed query.

The orders dated on or before D come ordered by customer (the ``(customer_id, ordered_on)``
index), joined to their product lines when they are recent enough to matter, and each customer's
purchases are handed to ``definitions.evaluate`` as soon as the next customer starts: memory
holds one customer at a time plus the answers. Customers without orders are never read.

A computation is kept in the worker's memory against the orders' fingerprint (how many orders
and lines, and the highest ids), so the dashboard, the API and the CSV of one date share it
and a new order starts a fresh one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from threading import Lock
from typing import Any

from flask import current_app
from sqlalchemy import String, and_, func, select, true, type_coerce

from helpdesk import Order, OrderLine, db
from plugins.retention.definitions import Figures, Purchase, Rules, evaluate

STREAM_CHUNK = 5000
NO_LINES: frozenset[str] = frozenset()
# Each kept date holds every ordering client's figures (some 100 MB for 70,000 clients).
CACHED_DATES = 2


@dataclass
class Population:
    """Every client with an order on or before ``as_of``: customer id → figures."""

    as_of: date
    rules: Rules
    clients: dict[int, Figures]
    # Aggregates worked out once from ``clients`` (the summary's), kept with them.
    memo: dict[str, Any] = field(default_factory=dict)


_cache: OrderedDict[tuple, Population] = OrderedDict()
_cache_lock = Lock()


def fingerprint() -> tuple:
    """What changes when an order or line is added or removed (two cheap queries). Deleting
    the newest order and adding another between two requests goes unseen until the next
    order; ``clear_cache`` forgets everything."""
    orders = db.session.execute(select(func.count(), func.max(Order.id))).one()
    lines = db.session.execute(select(func.count(), func.max(OrderLine.id))).one()
    return (*orders, *lines)


def _rows(as_of: date, rules: Rules, customer_ids: list[int] | None) -> Iterator[tuple]:
    """``(customer id, order id, date, currency, amount, product line or None)``, by customer
    (every customer, or those of ``customer_ids``); product lines only for orders in the line
    history window (older ones never matter)."""
    lines_from = as_of - timedelta(days=rules.line_history_days)
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
        .outerjoin(OrderLine, and_(OrderLine.order_id == Order.id, Order.ordered_on > lines_from))
        .where(Order.ordered_on <= as_of)
        .where(Order.customer_id.in_(customer_ids) if customer_ids is not None else true())
        .order_by(Order.customer_id, Order.ordered_on, Order.id)
    )
    # Core rows on the session's connection: no ORM loading for a million tuples.
    result = db.session.connection().execute(query, execution_options={"yield_per": STREAM_CHUNK})
    for partition in result.partitions():
        yield from partition


def _purchases_by_customer(
    as_of: date, rules: Rules, customer_ids: list[int] | None = None
) -> Iterator[tuple[int, list[Purchase]]]:
    """Each customer's orders as ``Purchase`` objects, one customer at a time."""
    customer_id = order_id = None
    purchases: list[Purchase] = []
    lines: list[str] = []
    current: tuple | None = None
    for cid, oid, day, currency, amount, product_line in _rows(as_of, rules, customer_ids):
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


def compute(as_of: date, rules: Rules) -> Population:
    """Every client's figures at ``as_of`` (streamed; see the module's docstring)."""
    clients = {cid: evaluate(p, as_of, rules) for cid, p in _purchases_by_customer(as_of, rules)}
    return Population(as_of, rules, clients)


def figures_of(customer_ids: list[int], as_of: date, rules: Rules) -> dict[int, Figures]:
    """The figures of a few customers only (a customer page, a manager's clients): one query;
    a customer without orders is ``new`` with none."""
    found = {
        cid: evaluate(p, as_of, rules)
        for cid, p in _purchases_by_customer(as_of, rules, customer_ids)
    }
    return {cid: found.get(cid) or evaluate([], as_of, rules) for cid in customer_ids}


def population(as_of: date, rules: Rules | None = None) -> Population:
    """``compute`` at ``as_of``, reused while the orders and the rules are unchanged."""
    rules = rules or Rules.from_config(current_app.config)
    key = (db.engine.url.render_as_string(), as_of, rules, fingerprint())
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    result = compute(as_of, rules)
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > CACHED_DATES:
            _cache.popitem(last=False)
    return result


def clear_cache() -> None:
    """Forget every kept computation (tests; after changing orders behind the app's back)."""
    with _cache_lock:
        _cache.clear()
