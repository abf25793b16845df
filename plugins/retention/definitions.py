"""The definitions of issue 10, as pure functions over one client's dated purchases.

Nothing here touches the database: ``evaluate(purchases, as_of, rules)`` answers every
question about one client at the reference date ``as_of`` (called D below), and the tests check
it against hand-computed examples.

- Only orders dated on or before D count; "the N days up to D" are the dates in (D − N, D].
- Orders on the same day are one purchase for counting orders and for intervals.
- **Regular**: at least ``regular_purchases`` (3) purchases.
- **Usual interval**: the median of the days between consecutive purchases (for an even count
  of gaps, the mean of the two middle ones). A day computed from it is rounded up.
- **Lost**: regular, and the last purchase more than max(90, 3 × usual interval) days before D;
  they became lost on last purchase + that threshold (rounded up).
- **Won back**: a purchase in the 365 days up to D whose previous purchase came more than
  max(90, 3 × the usual interval of the purchases before it) earlier, after at least 3.
- **At risk**: regular, not lost, more than 2 × usual interval since the last purchase.
- **Drying up**: regular, neither lost nor at risk, and a signal: ``aov_drop`` (the average
  order value of the 90 days up to D at least 25 % below that of the 90 days before, both with
  an order, in some currency) or ``line_stopped`` (a product line in at least 3 purchases in
  (D − 455, D − 90], in none in (D − 90, D], while another line was bought in (D − 90, D]).
- One status each, the first that holds: lost, at risk, drying up, won back, regular, new.

Money stays exact: sums are ``Decimal``, ratios ``Fraction``; rounding (half-up, to the
currency's places) happens once, where a figure is shown.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Any, NamedTuple

STATUSES = ("lost", "at_risk", "drying_up", "won_back", "regular", "new")
SIGNALS = ("aov_drop", "line_stopped")
# Days in an average month (365.25 / 12): "months between first and last order".
DAYS_PER_MONTH = Fraction(304375, 10000)


class Purchase(NamedTuple):
    """One order: its date, currency, amount and product lines (possibly none)."""

    day: date
    currency: str
    amount: Decimal
    lines: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Rules:
    """The thresholds of the definitions (each a ``RETENTION_*`` setting)."""

    regular_purchases: int = 3
    lost_min_days: int = 90
    lost_intervals: int = 3
    at_risk_intervals: int = 2
    aov_window_days: int = 90
    aov_drop_percent: Decimal = Decimal(25)
    line_history_days: int = 455
    line_min_purchases: int = 3
    period_days: int = 365
    lifetime_months: Decimal = Decimal(24)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Rules:
        """The rules as the app's settings give them."""
        return cls(
            regular_purchases=int(config["RETENTION_REGULAR_PURCHASES"]),
            lost_min_days=int(config["RETENTION_LOST_MIN_DAYS"]),
            lost_intervals=int(config["RETENTION_LOST_INTERVALS"]),
            at_risk_intervals=int(config["RETENTION_AT_RISK_INTERVALS"]),
            aov_window_days=int(config["RETENTION_AOV_WINDOW_DAYS"]),
            aov_drop_percent=Decimal(str(config["RETENTION_AOV_DROP_PERCENT"])),
            line_history_days=int(config["RETENTION_LINE_HISTORY_DAYS"]),
            line_min_purchases=int(config["RETENTION_LINE_MIN_PURCHASES"]),
            period_days=int(config["RETENTION_PERIOD_DAYS"]),
            lifetime_months=Decimal(str(config["RETENTION_LIFETIME_MONTHS"])),
        )


@dataclass(slots=True)
class Figures:
    """Everything the definitions say about one client at D. Money per currency, exact."""

    status: str
    purchases: int
    first_day: date | None = None
    last_day: date | None = None
    usual_interval: Fraction | None = None
    signals: list[str] = field(default_factory=list)
    stopped_lines: list[str] = field(default_factory=list)
    lost_on: date | None = None
    won_back_on: date | None = None
    spend_total: dict[str, Decimal] = field(default_factory=dict)
    aov_last: dict[str, Fraction] = field(default_factory=dict)
    aov_prev: dict[str, Fraction] = field(default_factory=dict)
    revenue_before: dict[str, Decimal] = field(default_factory=dict)
    lifetime_value_lost: dict[str, Fraction] = field(default_factory=dict)

    @property
    def aov_change_percent(self) -> dict[str, Fraction]:
        """(last − previous) ÷ previous × 100 per currency with both (negative for a drop)."""
        return aov_changes(self.aov_last, self.aov_prev)


def aov_changes(last: Mapping[str, Fraction], prev: Mapping[str, Fraction]) -> dict[str, Fraction]:
    """(last − previous) ÷ previous × 100 per currency with both (negative for a drop)."""
    return {
        currency: (last[currency] - previous) / previous * 100
        for currency, previous in prev.items()
        if currency in last
    }


@dataclass(slots=True)
class DryingUp:
    """What the drying-up list shows of a drying-up client at D (its signals and last
    purchase as ``Figures`` has them), from their purchases of the line history's days up to
    D alone: the lines they stopped buying and the two periods' average order values."""

    last_day: date
    signals: list[str]
    stopped_lines: list[str]
    aov_last: dict[str, Fraction]
    aov_prev: dict[str, Fraction]

    @property
    def aov_change_percent(self) -> dict[str, Fraction]:
        """As ``Figures.aov_change_percent``."""
        return aov_changes(self.aov_last, self.aov_prev)


def drying_up(
    recent: Iterable[Purchase], as_of: date, rules: Rules, last_day: date, signals: list[str]
) -> DryingUp:
    """``DryingUp`` of a client drying up at ``as_of`` whose last purchase and signals are
    known, from ``recent``: at least their purchases in the line history's days up to D. Each
    figure is computed as ``figures_at`` computes it."""
    counted = [p for p in recent if p.day <= as_of]
    aov_last, aov_prev = aov_windows(counted, as_of, rules)
    return DryingUp(last_day, signals, stopped_lines(counted, as_of, rules), aov_last, aov_prev)


def purchase_days(purchases: Iterable[Purchase]) -> list[date]:
    """The distinct days with an order, oldest first (same-day orders are one purchase)."""
    return sorted({p.day for p in purchases})


def usual_interval(days: list[date]) -> Fraction | None:
    """The median of the days between consecutive purchases; ``None`` with fewer than two."""
    doubled = _double_median(sorted((b - a).days for a, b in pairwise(days)))
    return None if doubled is None else Fraction(doubled, 2)


def _double_median(gaps: list[int]) -> int | None:
    """Twice the median of sorted ``gaps`` (the sum of the two middle ones for an even count):
    a whole number, so the thresholds compare exactly without fractions."""
    if not gaps:
        return None
    middle = len(gaps) // 2
    if len(gaps) % 2:
        return 2 * gaps[middle]
    return gaps[middle - 1] + gaps[middle]


def lost_threshold(interval: Fraction, rules: Rules) -> Fraction:
    """max(90 days, 3 × usual interval), exact."""
    return max(Fraction(rules.lost_min_days), rules.lost_intervals * interval)


def _double_lost_threshold(double_median: int, rules: Rules) -> int:
    """Twice ``lost_threshold``."""
    return max(2 * rules.lost_min_days, rules.lost_intervals * double_median)


def days_up(value: Fraction) -> int:
    """A number of days computed from an interval, rounded up."""
    return math.ceil(value)


def lost_on(days: list[date], as_of: date, rules: Rules) -> date | None:
    """The day the client became lost, if lost at ``as_of`` (days on or before it)."""
    if len(days) < rules.regular_purchases:
        return None
    threshold = lost_threshold(usual_interval(days), rules)
    if (as_of - days[-1]).days <= threshold:
        return None
    return days[-1] + timedelta(days=days_up(threshold))


def win_backs(days: list[date], rules: Rules) -> list[date]:
    """Every purchase whose previous one came more than the lost threshold of the purchases
    before it earlier, after at least ``regular_purchases`` of them."""
    found = []
    gaps = sorted((b - a).days for a, b in pairwise(days[: rules.regular_purchases]))
    for index in range(rules.regular_purchases, len(days)):
        gap = (days[index] - days[index - 1]).days
        if 2 * gap > _double_lost_threshold(_double_median(gaps), rules):
            found.append(days[index])
        bisect.insort(gaps, gap)
    return found


def _aov(totals: dict[str, Decimal], days: dict[str, set[date]]) -> dict[str, Fraction]:
    return {c: Fraction(totals[c]) / len(days[c]) for c in sorted(totals)}


def stopped_lines(purchases: list[Purchase], as_of: date, rules: Rules) -> list[str]:
    """Product lines in at least 3 purchases in (D − 455, D − 90] and none in (D − 90, D],
    when another line was bought in (D − 90, D]."""
    recent_from = as_of - timedelta(days=rules.aov_window_days)
    history_from = as_of - timedelta(days=rules.line_history_days)
    earlier: dict[str, set[date]] = defaultdict(set)
    recent: set[str] = set()
    for p in purchases:
        if not p.lines:
            continue
        if p.day > recent_from:
            recent |= p.lines
        elif p.day > history_from:
            for line in p.lines:
                earlier[line].add(p.day)
    if not recent:
        return []
    return sorted(
        line
        for line, days in earlier.items()
        if len(days) >= rules.line_min_purchases and line not in recent
    )


def _sum_by_currency(purchases: Iterable[Purchase]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for p in purchases:
        totals[p.currency] += p.amount
    return dict(sorted(totals.items()))


def months_between(first: date, last: date) -> Fraction:
    """Days between first and last order ÷ 30.4375, not rounded, at least 1."""
    return months_of_days((last - first).days)


def months_of_days(days: int) -> Fraction:
    """``days`` ÷ 30.4375, not rounded, at least 1 (``months_between``)."""
    return max(Fraction(1), Fraction(days) / DAYS_PER_MONTH)


def lifetime_value(
    spend: Mapping[str, Decimal], first: date, last: date, rules: Rules
) -> dict[str, Fraction]:
    """Average monthly spend × the expected remaining lifetime, per currency."""
    months = months_between(first, last)
    lifetime = Fraction(rules.lifetime_months)
    return {c: Fraction(amount) / months * lifetime for c, amount in spend.items()}


@dataclass(slots=True)
class History:
    """One client's purchases up to a day, with what does not depend on D: worked out once,
    then ``figures_at`` answers for any D on or after the last purchase."""

    counted: list[Purchase]
    counted_days: list[date]
    days: list[date]
    double_median: int | None
    backs: list[date]
    spend_total: dict[str, Decimal]


def history(counted: Iterable[Purchase], rules: Rules) -> History:
    """The ``History`` of these purchases (all of them count)."""
    ordered = sorted(counted, key=lambda p: p.day)
    days = purchase_days(ordered)
    return History(
        counted=ordered,
        counted_days=[p.day for p in ordered],
        days=days,
        double_median=_double_median(sorted((b - a).days for a, b in pairwise(days))),
        backs=win_backs(days, rules),
        spend_total=_sum_by_currency(ordered),
    )


def evaluate(purchases: Iterable[Purchase], as_of: date, rules: Rules) -> Figures:
    """Every figure of one client at ``as_of`` (orders after it are ignored)."""
    return figures_at(history([p for p in purchases if p.day <= as_of], rules), as_of, rules)


def figures_at(past: History, as_of: date, rules: Rules) -> Figures:
    """Every figure of the client of ``past`` at ``as_of``, on or after their last purchase."""
    days = past.days
    figures = Figures(status="new", purchases=len(days))
    if not days:
        return figures
    figures.first_day, figures.last_day = days[0], days[-1]
    double_median = past.double_median
    figures.usual_interval = None if double_median is None else Fraction(double_median, 2)
    figures.spend_total = dict(past.spend_total)
    window_from = as_of - timedelta(days=2 * rules.aov_window_days)
    figures.aov_last, figures.aov_prev = aov_windows(_since(past, window_from), as_of, rules)
    if past.backs and past.backs[-1] > as_of - timedelta(days=rules.period_days):
        figures.won_back_on = past.backs[-1]
    if len(days) < rules.regular_purchases:
        return figures
    double_since = 2 * (as_of - days[-1]).days
    double_threshold = _double_lost_threshold(double_median, rules)
    if double_since > double_threshold:
        figures.status = "lost"
        figures.lost_on = days[-1] + timedelta(days=(double_threshold + 1) // 2)
        figures.revenue_before = _sum_by_currency(
            _since(past, days[-1] - timedelta(days=rules.period_days))
        )
        figures.lifetime_value_lost = lifetime_value(figures.spend_total, days[0], days[-1], rules)
    elif double_since > rules.at_risk_intervals * double_median:
        figures.status = "at_risk"
    else:
        figures.signals = _signals(figures, past, as_of, rules)
        if figures.signals:
            figures.status = "drying_up"
        elif figures.won_back_on is not None:
            figures.status = "won_back"
        else:
            figures.status = "regular"
    return figures


def _since(past: History, after: date) -> list[Purchase]:
    """The purchases dated after ``after`` (a slice: they are in date order)."""
    return past.counted[bisect.bisect_right(past.counted_days, after) :]


def worst_change(figures: Figures) -> Fraction | None:
    """The largest drop of average order value over the currencies (for sorting)."""
    changes = figures.aov_change_percent.values()
    return min(changes) if changes else None


def aov_windows(
    purchases: Iterable[Purchase], as_of: date, rules: Rules
) -> tuple[dict[str, Fraction], dict[str, Fraction]]:
    """The average order values per currency of the window up to D and of the one before it,
    from ``purchases`` (those outside both windows are left out)."""
    last_from = as_of - timedelta(days=rules.aov_window_days)
    prev_from = last_from - timedelta(days=rules.aov_window_days)
    totals: tuple[dict[str, Decimal], dict[str, Decimal]] = (
        defaultdict(Decimal),
        defaultdict(Decimal),
    )
    days: tuple[dict[str, set[date]], dict[str, set[date]]] = (defaultdict(set), defaultdict(set))
    for p in purchases:
        if prev_from < p.day <= as_of:
            period = 0 if p.day > last_from else 1
            totals[period][p.currency] += p.amount
            days[period][p.currency].add(p.day)
    return _aov(totals[0], days[0]), _aov(totals[1], days[1])


def _signals(figures: Figures, past: History, as_of: date, rules: Rules) -> list[str]:
    """The drying-up signals that hold (``stopped_lines`` is filled in passing)."""
    signals = []
    limit = -rules.aov_drop_percent
    if any(change <= limit for change in figures.aov_change_percent.values()):
        signals.append("aov_drop")
    recent = _since(past, as_of - timedelta(days=rules.line_history_days))
    figures.stopped_lines = stopped_lines(recent, as_of, rules)
    if figures.stopped_lines:
        signals.append("line_stopped")
    return signals
