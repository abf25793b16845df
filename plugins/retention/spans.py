"""Each client's figures as spans of reference dates (``timeline``), kept in tables so that
the figures of every client at any date are an indexed range query.

The spans follow the orders: ``ensure_current`` (run before each read) compares the highest
order id (pages; the review also the orders' count) with those the spans were built from. New
orders (recorded on a page, by the API, imported, or inserted behind the app's back) rebuild
the spans of their customers only, and write those that changed; anything else (orders gone,
other rules) rebuilds everything. Refunds change no figure (they are not deducted), so they
need nothing, and nothing is done on the path of an order. ``helpdesk retention rebuild``
rebuilds all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, NamedTuple

from flask import current_app, has_request_context
from sqlalchemy import String, delete, func, select, tuple_, type_coerce
from sqlalchemy.exc import IntegrityError

from helpdesk import HelpdeskError, Order, db, utcnow, write_intent
from plugins.retention.compute import purchases_by_customer
from plugins.retention.definitions import Rules
from plugins.retention.models import ClientSpan, SpanLength, SpanMoney, SpanState
from plugins.retention.timeline import OPEN_END, Span, timeline

STATE_ID = 1
# Span rows written per statement.
WRITE_BATCH = 5000
# Customers whose spans are replaced per statement.
IDS_PER_QUERY = 1000


@dataclass
class BuildSummary:
    """What a rebuild did."""

    customers: int = 0
    spans: int = 0  # written (a partial build leaves the spans that stay the same)
    full: bool = False
    # Per status, the days the longest span written lasts (``SpanLength``).
    longest: dict[str, int] = field(default_factory=dict)


def _rules() -> Rules:
    return Rules.from_config(current_app.config)


def _orders_now() -> tuple[int, int]:
    """How many orders there are and the highest id (the count reads a whole index)."""
    count, last_id = db.session.execute(select(func.count(), func.max(Order.id))).one()
    return count, last_id or 0


def _orders_since(state: SpanState) -> tuple[int, int] | None:
    """The orders' count and highest id if only orders newer than ``state``'s were added (an
    index range); ``None`` when there is none."""
    added, newest = db.session.execute(
        select(func.count(), func.max(Order.id)).where(Order.id > state.last_order_id)
    ).one()
    return (state.orders_count + added, newest) if added else None


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
            return _bring_up_to_date(rules, progress, limit, thorough=thorough)
        except IntegrityError:
            # Another worker brought them up to date at the same time: theirs stand.
            db.session.rollback()
            return None


class SpansBehind(HelpdeskError):
    """Too many clients' spans to rebuild within a request: the CLI must do it."""

    status_code = 503


def _bring_up_to_date(
    rules: Rules,
    progress: Callable[[int], None] | None,
    limit: int | None = None,
    *,
    thorough: bool = True,
) -> BuildSummary | None:
    """Rebuild what changed; with ``limit``, refuse (``SpansBehind``) when more clients than
    that would be rebuilt. Not ``thorough`` (a page) and with orders newer than the state's,
    the orders are counted as the state's count and the newer ones, without reading the whole
    index (orders also deleted behind the app's back are then found by the review)."""
    state = db.session.scalar(
        select(SpanState)
        .where(SpanState.id == STATE_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    orders = None
    if not thorough and state is not None and state.rules == repr(rules):
        orders = _orders_since(state)
    if orders is None:
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
    _record_lengths(summary)
    if state is None:
        state = SpanState(id=STATE_ID)
        db.session.add(state)
    state.rules, state.orders_count, state.last_order_id = repr(rules), *orders
    state.built_at = utcnow()
    db.session.commit()
    return summary


def _record_lengths(summary: BuildSummary) -> None:
    """Keep ``SpanLength`` at least the longest span of each status: set by a full build,
    raised by a partial one (the spans it replaced may have been the longest: then the stored
    length stays above the truth, which bounds the reads all the same)."""
    stored = {row.status: row for row in db.session.scalars(select(SpanLength))}
    if summary.full:
        for status in stored.keys() - summary.longest.keys():
            db.session.delete(stored.pop(status))
    for status, days in summary.longest.items():
        row = stored.get(status)
        if row is None:
            db.session.add(SpanLength(status=status, longest_days=days))
        elif summary.full or days > row.longest_days:
            row.longest_days = days


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
        _replace(customer_ids[start : start + IDS_PER_QUERY], rules, summary, progress)
    return summary


# A span as stored: its row, and its money rows (by currency).
Stored = tuple[dict[str, Any], tuple[dict[str, Any], ...]]


def _replace(
    chunk: list[int],
    rules: Rules,
    summary: BuildSummary,
    progress: Callable[[int], None] | None,
) -> None:
    """Rewrite those spans of the customers ``chunk`` that their orders now give otherwise,
    and only those: new orders change a client's latest spans, the others stay as they are,
    index entries and all (a request then writes a few pages, not every span of its
    clients)."""
    fresh: dict[tuple[int, date], Stored] = {}
    for customer_id, purchases in purchases_by_customer(None, rules, chunk):
        for span in timeline(purchases, rules):
            row, money = _span_row(customer_id, span), tuple(_money_rows(customer_id, span))
            fresh[customer_id, span.start] = (row, money)
            _note_length(summary, span)
        summary.customers += 1
        if progress is not None:
            progress(1)
    stored = _stored(chunk)
    gone = [key for key, kept in stored.items() if fresh.get(key) != kept]
    for start in range(0, len(gone), IDS_PER_QUERY):
        keys = gone[start : start + IDS_PER_QUERY]
        # The customers' ids too: an index range, where SQLite scans the table for the pairs.
        owners = {customer_id for customer_id, _ in keys}
        for table in (SpanMoney, ClientSpan):
            db.session.execute(
                delete(table).where(
                    table.customer_id.in_(owners),
                    tuple_(table.customer_id, table.valid_from).in_(keys),
                )
            )
    spans: list[dict[str, Any]] = []
    money: list[dict[str, Any]] = []
    for key, (row, amounts) in fresh.items():
        if stored.get(key) != (row, amounts):
            spans.append(row)
            money += amounts
        if len(spans) >= WRITE_BATCH:
            summary.spans += _flush(spans, money)
    summary.spans += _flush(spans, money)


def _stored(chunk: list[int]) -> dict[tuple[int, date], Stored]:
    """The stored spans of the customers ``chunk``, as ``_replace`` compares them."""
    found: dict[tuple[int, date], Stored] = {}
    spans, money = ClientSpan.__table__, SpanMoney.__table__
    for row in db.session.execute(select(spans).where(spans.c.customer_id.in_(chunk))):
        found[row.customer_id, row.valid_from] = (row._asdict(), ())
    amounts = db.session.execute(
        select(money)
        .where(money.c.customer_id.in_(chunk))
        .order_by(money.c.customer_id, money.c.valid_from, money.c.currency)
    )
    for amount in amounts:
        row, kept = found[amount.customer_id, amount.valid_from]
        found[amount.customer_id, amount.valid_from] = (row, (*kept, amount._asdict()))
    return found


def _note_length(summary: BuildSummary, span: Span) -> None:
    """Raise the build's longest span of ``span``'s status to it."""
    days = (span.end - span.start).days
    if days > summary.longest.get(span.status, 0):
        summary.longest[span.status] = days


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
            _note_length(summary, span)
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
        "worst_order": None if span.worst_change is None else float(span.worst_change),
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
            "valid_to": span.end,
            "lost_on": span.lost_on,
            "span_days": (span.last_day - span.first_day).days,
        }
        for currency, spend in span.spend_total
    ]


# --- reading ------------------------------------------------------------------------------


def held_at(as_of: date):
    """The spans that hold at ``as_of``."""
    return (ClientSpan.valid_from <= as_of) & (ClientSpan.valid_to > as_of)


def status_at(status: str, as_of: date) -> tuple:
    """The spans of ``status`` holding at ``as_of``: those ending in the days after it that
    the longest span of the status lasts (``SpanLength``), a short range of the status index
    whatever the date, rather than every span of the status ending after it."""
    found = db.session.get(SpanLength, status)
    longest = 0 if found is None else found.longest_days
    where = (ClientSpan.status == status, held_at(as_of))
    if longest >= (OPEN_END - as_of).days:
        return where
    return (*where, ClientSpan.valid_to <= as_of + timedelta(days=longest))


class Listed(NamedTuple):
    """A client at D as the lists sort them."""

    customer_id: int
    last_day: date
    signals: tuple[str, ...]


def _counted(status: str, as_of: date, period_days: int):
    """The spans of ``status`` at ``as_of`` (``won_back``: those with a win-back order in the
    period, which lies in it whenever the span holds at ``as_of``: a short index range)."""
    if status == "won_back":
        return (
            ClientSpan.won_back_on > as_of - timedelta(days=period_days),
            ClientSpan.won_back_on <= as_of,
            held_at(as_of),
        )
    return status_at(status, as_of)


def statuses_at(as_of: date) -> list[tuple[int, str, date | None]]:
    """``(customer id, status, won-back order counted)`` of every client with an order on or
    before ``as_of``, by customer id."""
    rows = db.session.execute(
        select(ClientSpan.customer_id, ClientSpan.status, raw_date(ClientSpan.won_back_on))
        .where(held_at(as_of))
        .order_by(ClientSpan.customer_id)
    )
    return [(cid, status, None if won is None else parse_day(won)) for cid, status, won in rows]


def listed_at(as_of: date, status: str, period_days: int) -> list[Listed]:
    """The clients of ``status`` at ``as_of`` (``won_back``: whoever has a win-back order in
    the period of ``period_days`` up to it, whatever their status), in no particular order."""
    rows = db.session.execute(
        select(
            ClientSpan.customer_id,
            raw_date(ClientSpan.last_day),
            ClientSpan.signals,
        ).where(*_counted(status, as_of, period_days))
    )
    return [
        Listed(cid, parse_day(last_day), tuple(signals.split())) for cid, last_day, signals in rows
    ]


def shown_at(customer_ids: list[int], as_of: date) -> dict[int, tuple[date, list[str]]]:
    """The last purchase and the signals at ``as_of`` of the clients ``customer_ids`` (those
    with an order on or before it): their span's, by key."""
    rows = db.session.execute(
        select(ClientSpan.customer_id, raw_date(ClientSpan.last_day), ClientSpan.signals).where(
            ClientSpan.customer_id.in_(customer_ids), held_at(as_of)
        )
    )
    return {cid: (parse_day(last_day), signals.split()) for cid, last_day, signals in rows}


def count_at(as_of: date, status: str, period_days: int) -> int:
    """How many clients ``listed_at`` would give."""
    where = _counted(status, as_of, period_days)
    return db.session.scalar(select(func.count()).select_from(ClientSpan).where(*where))


class Lost(NamedTuple):
    """A client lost at D and the day they became lost."""

    customer_id: int
    lost_on: date


def lost_where(as_of: date, after: date) -> tuple:
    """The spans of the clients lost at ``as_of`` who became lost after ``after`` (an index
    range over the day they became lost, which is on or before ``as_of``)."""
    return (
        ClientSpan.status == "lost",
        ClientSpan.lost_on > after,
        ClientSpan.lost_on <= as_of,
        held_at(as_of),
    )


def lost_since(as_of: date, after: date) -> list[Lost]:
    """The clients lost at ``as_of`` who became lost after ``after``."""
    rows = db.session.execute(
        select(ClientSpan.customer_id, raw_date(ClientSpan.lost_on)).where(
            *lost_where(as_of, after)
        )
    )
    return [Lost(cid, parse_day(lost_on)) for cid, lost_on in rows]


def raw_date(column):
    """A date column as the driver gives it: SQLite's text is parsed by ``parse_day`` in C,
    not by the column type's per-row processor."""
    return type_coerce(column, String)


def parse_day(value: date | str) -> date:
    """A date read through ``raw_date``."""
    return value if isinstance(value, date) else date.fromisoformat(value)
