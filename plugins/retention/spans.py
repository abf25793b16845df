"""Each client's figures as spans of reference dates (``timeline``), kept in tables so that
the figures of every client at any date are an indexed range query.

The spans follow the orders: ``ensure_current`` (run before each read) compares the highest
order id (pages; the review also the orders' count) with those the spans were built from. New
orders (recorded on a page, by the API, imported, or inserted behind the app's back) rebuild
the spans of their customers only; anything else (orders gone, other rules) rebuilds
everything. Refunds change no figure (they are not deducted), so they need nothing, and
nothing is done on the path of an order. ``helpdesk retention rebuild`` rebuilds all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

from flask import current_app, has_request_context
from sqlalchemy import String, delete, func, select, type_coerce
from sqlalchemy.exc import IntegrityError

from helpdesk import HelpdeskError, Order, db, utcnow, write_intent
from plugins.retention.compute import purchases_by_customer
from plugins.retention.definitions import Rules
from plugins.retention.models import ClientSpan, SpanMoney, SpanState
from plugins.retention.timeline import Span, timeline

STATE_ID = 1
# Span rows written per statement.
WRITE_BATCH = 5000
# Customers whose spans are replaced per statement.
IDS_PER_QUERY = 1000


@dataclass
class BuildSummary:
    """What a rebuild did."""

    customers: int = 0
    spans: int = 0
    full: bool = False


def _rules() -> Rules:
    return Rules.from_config(current_app.config)


def _orders_now() -> tuple[int, int]:
    """How many orders there are and the highest id (the count reads a whole index)."""
    count, last_id = db.session.execute(select(func.count(), func.max(Order.id))).one()
    return count, last_id or 0


def _last_order_id() -> int:
    """The highest order id (one index lookup)."""
    return db.session.scalar(select(func.max(Order.id))) or 0


def _is_current(state: SpanState | None, rules: Rules, orders: tuple[int, int]) -> bool:
    return state is not None and (state.rules, state.orders_count, state.last_order_id) == (
        repr(rules),
        *orders,
    )


def ensure_current(
    progress: Callable[[int], None] | None = None, *, thorough: bool = False
) -> BuildSummary | None:
    """Bring the spans in step with the orders and the settings (see the module's docstring);
    ``None`` when they already were. Commits the session first when there is work to do.

    Pages look at the highest order id only (an index lookup: new orders are all the app
    makes); ``thorough`` (the review) also counts the orders, which finds orders deleted
    behind the app's back at the price of reading the whole index."""
    rules = _rules()
    state = db.session.get(SpanState, STATE_ID)
    if thorough:
        current = _is_current(state, rules, _orders_now())
    else:
        current = state is not None and (state.rules, state.last_order_id) == (
            repr(rules),
            _last_order_id(),
        )
    if current:
        return None
    db.session.commit()
    limit = current_app.config["RETENTION_REQUEST_BUILD_LIMIT"] if has_request_context() else None
    with write_intent():
        try:
            return _bring_up_to_date(rules, progress, limit)
        except IntegrityError:
            # Another worker brought them up to date at the same time: theirs stand.
            db.session.rollback()
            return None


class SpansBehind(HelpdeskError):
    """Too many clients' spans to rebuild within a request: the CLI must do it."""

    status_code = 503


def _bring_up_to_date(
    rules: Rules, progress: Callable[[int], None] | None, limit: int | None = None
) -> BuildSummary | None:
    """Rebuild what changed; with ``limit``, refuse (``SpansBehind``) when more clients than
    that would be rebuilt."""
    state = db.session.scalar(
        select(SpanState)
        .where(SpanState.id == STATE_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    orders = _orders_now()
    if _is_current(state, rules, orders):
        db.session.commit()
        return None
    changed = _changed_customers(state, rules, orders)
    if limit is not None and (waiting := customers_to_build(changed)) > limit:
        db.session.rollback()
        raise SpansBehind(
            f"The retention figures of {waiting} clients are out of date; an administrator "
            "must run `helpdesk retention rebuild` (see the README). Nothing was changed."
        )
    summary = _build(changed, rules, progress)
    if state is None:
        state = SpanState(id=STATE_ID)
        db.session.add(state)
    state.rules, state.orders_count, state.last_order_id = repr(rules), *orders
    state.built_at = utcnow()
    db.session.commit()
    return summary


def _changed_customers(
    state: SpanState | None, rules: Rules, orders: tuple[int, int]
) -> list[int] | None:
    """The customers with orders newer than the state, or ``None`` (everyone) when the rules
    changed or orders went (not every order past the state's highest id is new)."""
    if state is None or state.rules != repr(rules):
        return None
    newer = select(Order.customer_id).where(Order.id > state.last_order_id)
    added = db.session.scalar(select(func.count()).select_from(newer.subquery()))
    if added != orders[0] - state.orders_count:
        return None
    return list(db.session.scalars(newer.distinct().order_by(Order.customer_id)))


def rebuild(progress: Callable[[int], None] | None = None) -> BuildSummary:
    """Every client's spans from scratch (after an upgrade, or orders changed behind the
    app's back), committed with the state they follow."""
    db.session.commit()
    with write_intent():
        db.session.execute(delete(SpanState))
        return _bring_up_to_date(_rules(), progress)


def customers_to_build(customer_ids: list[int] | None) -> int:
    """How many customers a build of ``customer_ids`` (``None``: everyone) reads."""
    if customer_ids is not None:
        return len(customer_ids)
    return db.session.scalar(select(func.count(Order.customer_id.distinct()))) or 0


def pending() -> int:
    """How many customers ``ensure_current`` would rebuild now (0 when the spans are current):
    the length of its progress bar."""
    rules, orders = _rules(), _orders_now()
    state = db.session.get(SpanState, STATE_ID)
    if _is_current(state, rules, orders):
        return 0
    return customers_to_build(_changed_customers(state, rules, orders))


def _build(
    customer_ids: list[int] | None, rules: Rules, progress: Callable[[int], None] | None
) -> BuildSummary:
    """Replace the spans of ``customer_ids`` (``None``: everyone) from their orders."""
    summary = BuildSummary(full=customer_ids is None)
    if customer_ids is None:
        db.session.execute(delete(SpanMoney))
        db.session.execute(delete(ClientSpan))
        _write(purchases_by_customer(None, rules), rules, summary, progress)
        return summary
    for start in range(0, len(customer_ids), IDS_PER_QUERY):
        chunk = customer_ids[start : start + IDS_PER_QUERY]
        db.session.execute(delete(SpanMoney).where(SpanMoney.customer_id.in_(chunk)))
        db.session.execute(delete(ClientSpan).where(ClientSpan.customer_id.in_(chunk)))
        _write(purchases_by_customer(None, rules, chunk), rules, summary, progress)
    return summary


def _write(
    clients: Iterable[tuple[int, list]],
    rules: Rules,
    summary: BuildSummary,
    progress: Callable[[int], None] | None,
) -> None:
    """Each client's timeline as rows, inserted a batch at a time."""
    spans: list[dict[str, Any]] = []
    money: list[dict[str, Any]] = []
    for customer_id, purchases in clients:
        for span in timeline(purchases, rules):
            spans.append(_span_row(customer_id, span))
            money += _money_rows(customer_id, span)
        summary.customers += 1
        if progress is not None:
            progress(1)
        if len(spans) >= WRITE_BATCH:
            summary.spans += _flush(spans, money)
    summary.spans += _flush(spans, money)


def _flush(spans: list[dict[str, Any]], money: list[dict[str, Any]]) -> int:
    """Insert the pending rows and empty the lists; how many spans were written."""
    written = len(spans)
    # Core inserts of the tables: one executemany each, no ORM bookkeeping per row.
    if spans:
        db.session.execute(ClientSpan.__table__.insert(), spans)
    if money:
        db.session.execute(SpanMoney.__table__.insert(), money)
    spans.clear()
    money.clear()
    return written


def _span_row(customer_id: int, span: Span) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "valid_from": span.start,
        "valid_to": span.end,
        "status": span.status,
        "first_day": span.first_day,
        "last_day": span.last_day,
        "lost_on": span.lost_on,
        "won_back_on": span.won_back_on,
        "signals": " ".join(span.signals),
        "worst_change": None if span.worst_change is None else str(span.worst_change),
    }


def _money_rows(customer_id: int, span: Span) -> list[dict[str, Any]]:
    revenue = dict(span.revenue_before)
    return [
        {
            "customer_id": customer_id,
            "valid_from": span.start,
            "currency": currency,
            "revenue_before": revenue.get(currency),
            "spend_total": spend,
        }
        for currency, spend in span.spend_total
    ]


# --- reading ------------------------------------------------------------------------------


def _at(as_of: date):
    """The spans that hold at ``as_of``."""
    return (ClientSpan.valid_from <= as_of) & (ClientSpan.valid_to > as_of)


class Listed(NamedTuple):
    """A client at D as the lists sort them."""

    customer_id: int
    last_day: date
    signals: tuple[str, ...]
    worst_change: Fraction | None


def _counted(status: str, as_of: date, period_days: int):
    """The spans of ``status`` at ``as_of`` (``won_back``: those with a win-back order in the
    period, which lies in it whenever the span holds at ``as_of``: a short index range)."""
    if status == "won_back":
        return (
            ClientSpan.won_back_on > as_of - timedelta(days=period_days),
            ClientSpan.won_back_on <= as_of,
            _at(as_of),
        )
    return (ClientSpan.status == status, _at(as_of))


def statuses_at(as_of: date) -> list[tuple[int, str, date | None]]:
    """``(customer id, status, won-back order counted)`` of every client with an order on or
    before ``as_of``, by customer id."""
    rows = db.session.execute(
        select(ClientSpan.customer_id, ClientSpan.status, _raw(ClientSpan.won_back_on))
        .where(_at(as_of))
        .order_by(ClientSpan.customer_id)
    )
    return [(cid, status, None if won is None else _day(won)) for cid, status, won in rows]


def listed_at(as_of: date, status: str, period_days: int) -> list[Listed]:
    """The clients of ``status`` at ``as_of`` (``won_back``: whoever has a win-back order in
    the period of ``period_days`` up to it, whatever their status), in no particular order."""
    rows = db.session.execute(
        select(
            ClientSpan.customer_id,
            _raw(ClientSpan.last_day),
            ClientSpan.signals,
            ClientSpan.worst_change,
        ).where(*_counted(status, as_of, period_days))
    )
    return [
        Listed(
            cid,
            _day(last_day),
            tuple(signals.split()),
            None if worst is None else Fraction(worst),
        )
        for cid, last_day, signals, worst in rows
    ]


def count_at(as_of: date, status: str, period_days: int) -> int:
    """How many clients ``listed_at`` would give."""
    where = _counted(status, as_of, period_days)
    return db.session.scalar(select(func.count()).select_from(ClientSpan).where(*where))


@dataclass
class LostClient:
    """A client lost at D: when they became lost, their first and last purchase, and per
    currency their revenue before leaving and total spend."""

    customer_id: int
    lost_on: date
    first_day: date
    last_day: date
    revenue_before: dict[str, Decimal]
    spend_total: dict[str, Decimal]


def lost_since(as_of: date, after: date) -> list[LostClient]:
    """The clients lost at ``as_of`` who became lost after ``after`` (an index range over the
    day they became lost, which is on or before ``as_of``): one query, a row per client and
    currency."""
    rows = db.session.execute(
        select(
            ClientSpan.customer_id,
            _raw(ClientSpan.lost_on),
            _raw(ClientSpan.first_day),
            _raw(ClientSpan.last_day),
            SpanMoney.currency,
            SpanMoney.revenue_before,
            SpanMoney.spend_total,
        )
        .join(
            SpanMoney,
            (SpanMoney.customer_id == ClientSpan.customer_id)
            & (SpanMoney.valid_from == ClientSpan.valid_from),
        )
        .where(
            ClientSpan.status == "lost",
            ClientSpan.lost_on > after,
            ClientSpan.lost_on <= as_of,
            _at(as_of),
        )
    )
    found: dict[int, LostClient] = {}
    for cid, lost_on, first_day, last_day, currency, revenue, spend in rows:
        client = found.get(cid)
        if client is None:
            client = found[cid] = LostClient(
                cid, _day(lost_on), _day(first_day), _day(last_day), {}, {}
            )
        if revenue is not None:
            client.revenue_before[currency] = revenue
        client.spend_total[currency] = spend
    return list(found.values())


def _raw(column):
    """A date column as the driver gives it: SQLite's text is parsed by ``_day`` in C, not
    by the column type's per-row processor."""
    return type_coerce(column, String)


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)
