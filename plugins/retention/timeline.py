"""A client's figures as a function of the reference date: the spans of dates over which what
the summary, the lists and the review read of them stays the same.

Between two purchase days the counted purchases are fixed, and what ``definitions.evaluate``
answers changes only on a finite set of dates derived from them:

- a purchase day ``p`` enters the last AOV window at ``p``, leaves it for the previous one at
  ``p + 90`` and leaves that at ``p + 180``; its product lines enter the line history at
  ``p + 90`` and leave it at ``p + 455``;
- the latest win-back ``b`` stops counting at ``b + 365``;
- the client turns at risk once more than 2 × usual interval has passed since the last
  purchase, and lost once more than the lost threshold has.

So ``timeline`` evaluates the tested definitions at each of those dates (the AOV and line
dates only while the client is neither at risk nor lost: signals are not looked at then) and
keeps one ``Span`` per run of dates with the same answer. Whatever date D falls in a span, the
figures it stores are exactly ``evaluate(purchases, D)``'s; ``tests/test_retention_spans.py``
checks that over random clients and dates.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from plugins.retention.definitions import (
    Figures,
    History,
    Purchase,
    Rules,
    figures_at,
    history,
    worst_change,
)

# The end of a span that lasts until the client's next purchase, which has not happened.
OPEN_END = date(9999, 12, 31)


class Span(NamedTuple):
    """What ``evaluate`` says of one client for every D in ``[start, end)``."""

    start: date
    end: date
    status: str
    first_day: date
    last_day: date
    lost_on: date | None
    won_back_on: date | None
    signals: tuple[str, ...]
    # The largest fall of AOV over the currencies, when drying up (the dashboard's sort).
    worst_change: Fraction | None
    # Lost clients only: per currency.
    revenue_before: tuple[tuple[str, Decimal], ...]
    spend_total: tuple[tuple[str, Decimal], ...]

    def same_figures(self, other: Span) -> bool:
        """Whether two spans store the same answer (then they merge)."""
        return self[2:] == other[2:]


def timeline(purchases: Iterable[Purchase], rules: Rules) -> list[Span]:
    """Every span of one client's figures, oldest first, from their first purchase on (no
    span before it: the client is not counted then)."""
    ordered = sorted(purchases, key=lambda p: p.day)
    order_days = [p.day for p in ordered]
    days = sorted(set(order_days))
    spans: list[Span] = []
    for index, day in enumerate(days):
        end = days[index + 1] if index + 1 < len(days) else OPEN_END
        past = history(ordered[: bisect.bisect_right(order_days, day)], rules)
        for start, stop in _pieces(past, end, rules):
            span = span_of(figures_at(past, start, rules), start, stop)
            if spans and spans[-1].end == start and spans[-1].same_figures(span):
                spans[-1] = spans[-1]._replace(end=stop)
            else:
                spans.append(span)
    return spans


def _pieces(past: History, end: date, rules: Rules) -> list[tuple[date, date]]:
    """The dates in ``[last purchase, end)`` where the answer may change, as pieces
    ``(start, stop)``."""
    days = past.days
    last = days[-1]
    points = {last}
    if len(days) >= rules.regular_purchases:
        double_median = past.double_median
        double_lost = max(2 * rules.lost_min_days, rules.lost_intervals * double_median)
        at_risk_from = last + timedelta(days=rules.at_risk_intervals * double_median // 2 + 1)
        lost_from = last + timedelta(days=double_lost // 2 + 1)
        points |= {at_risk_from, lost_from}
        active_end = min(at_risk_from, lost_from, end)
        # Signals are looked at only before the client turns at risk or lost.
        window = rules.aov_window_days
        moved = set()
        for day in days[bisect.bisect_right(days, last - timedelta(days=2 * window)) :]:
            moved.update(day + timedelta(days=shift) for shift in (window, 2 * window))
        # Only purchases with product lines move the line history.
        history_days = timedelta(days=rules.line_history_days)
        for purchase in past.counted[bisect.bisect_right(past.counted_days, last - history_days) :]:
            if purchase.lines:
                moved.add(purchase.day + history_days)
        points.update(day for day in moved if day < active_end)
        if past.backs:
            points.add(past.backs[-1] + timedelta(days=rules.period_days))
    ordered = sorted(p for p in points if last <= p < end)
    return list(zip(ordered, [*ordered[1:], end], strict=True))


def span_of(figures: Figures, start: date, end: date) -> Span:
    """The stored part of ``figures``, valid over ``[start, end)``."""
    lost = figures.status == "lost"
    return Span(
        start=start,
        end=end,
        status=figures.status,
        first_day=figures.first_day,
        last_day=figures.last_day,
        lost_on=figures.lost_on,
        won_back_on=figures.won_back_on,
        signals=tuple(figures.signals),
        worst_change=worst_change(figures) if figures.status == "drying_up" else None,
        revenue_before=tuple(figures.revenue_before.items()) if lost else (),
        spend_total=tuple(figures.spend_total.items()) if lost else (),
    )
