"""The staff appraisal: per agent or team over a period, tickets resolved, surveys sent,
delivered and answered, response rate, average score, CSAT and the 1-5 distribution, read
from the daily roll-up ``survey_daily`` (plus the few surveys still scheduled; a team's
figures are its agents' summed); the weekly trend from the same; per client category, the
low-score tickets and the latest comments from ``surveys``; a CSV export."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import case, func, literal_column, select, union_all
from sqlalchemy.orm import selectinload

from helpdesk import Agent, Grouping, Team, db, spreadsheet_safe
from plugins.surveys import rollup
from plugins.surveys.models import Survey, SurveyDaily

SCORES = rollup.SCORES
CENTS = Decimal("0.01")
COLUMNS = (
    "resolved",
    "sent",
    "delivered",
    "answered",
    "response_rate",
    "average_score",
    "csat_percent",
)


@dataclass
class Row:
    """One agent's (or team's) figures; ratios are ``None`` without a denominator."""

    key: int | None
    name: str
    email: str = ""
    resolved: int = 0
    sent: int = 0
    delivered: int = 0
    answered: int = 0
    distribution: dict[str, int] = field(default_factory=lambda: {str(s): 0 for s in SCORES})
    response_rate: Decimal | None = None
    average_score: Decimal | None = None
    csat_percent: Decimal | None = None


def _ratio(numerator: int, denominator: int, scale: int = 1, places: str = "0.1") -> Decimal | None:
    if not denominator:
        return None
    value = Decimal(numerator * scale) / Decimal(denominator)
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def period(start: date, end: date) -> tuple[datetime, datetime]:
    """``start`` 00:00 to the day after ``end`` 00:00, UTC (both days included)."""
    return (
        datetime.combine(start, time.min, UTC),
        datetime.combine(end + timedelta(days=1), time.min, UTC),
    )


def _figures(start: date, end: date, agent_id: int | None):
    """Per agent (0: none) and UTC day: surveys resolved, sent, delivered and scored 1-5, from
    the daily roll-up plus the surveys still scheduled (one statement, so one snapshot)."""
    since, until = period(start, end)
    daily = SurveyDaily
    settled = select(
        daily.agent_id,
        daily.day,
        daily.resolved,
        daily.sent,
        daily.delivered,
        *[getattr(daily, f"score_{s}") for s in SCORES],
    ).where(daily.day >= start, daily.day <= end)
    zero = literal_column("0")
    scheduled = select(
        func.coalesce(Survey.agent_id, 0),
        rollup.day_of(Survey.created_at),
        literal_column("1"),
        zero,
        zero,
        *[zero for _ in SCORES],
    ).where(*rollup.waiting(since, until))
    if agent_id is not None:
        settled = settled.where(daily.agent_id == agent_id)
        scheduled = scheduled.where(Survey.agent_id == agent_id)
    return union_all(settled, scheduled).subquery()


def appraisal(
    start: date, end: date, *, by: str = "agent", agent_id: int | None = None
) -> list[Row]:
    """Each agent's (``by="agent"``) or team's figures for surveys of tickets resolved from
    ``start`` to ``end``; only ``agent_id``'s when given. A team's are the sum of its
    agents' (an agent in two teams counts in both). Read from the daily roll-up (and the
    few surveys still scheduled): two or three queries."""
    figures = _figures(start, end, agent_id)
    counts = [figures.c[name] for name in rollup.COUNTS]
    rows = db.session.execute(
        select(figures.c.agent_id, *[func.sum(c) for c in counts]).group_by(figures.c.agent_id)
    ).all()
    ids = [values[0] for values in rows if values[0]]
    agents = {a.id: a for a in db.session.scalars(select(Agent).where(Agent.id.in_(ids)))}
    result = [_row((values[0] or None, *values[1:]), agents.get(values[0])) for values in rows]
    if by == "team":
        result = _by_team(result)
    return sorted(result, key=lambda r: (r.key is None, r.name.casefold()))


def _by_team(agent_rows: list[Row]) -> list[Row]:
    """The agents' rows summed per team."""
    teams = db.session.scalars(select(Team).options(selectinload(Team.agents))).all()
    member_of: dict[int, list[Team]] = {}
    for team in teams:
        for agent in team.agents:
            member_of.setdefault(agent.id, []).append(team)
    totals: dict[int | None, Row] = {}
    for row in agent_rows:
        for team in member_of.get(row.key, []) or [None]:
            key = team.id if team is not None else None
            total = totals.setdefault(key, Row(key, team.name if team is not None else "—"))
            total.resolved += row.resolved
            total.sent += row.sent
            total.delivered += row.delivered
            for score in total.distribution:
                total.distribution[score] += row.distribution[score]
    for total in totals.values():
        _ratios(total)
    return list(totals.values())


def by_group(
    start: date, end: date, grouping: Grouping, *, agent_id: int | None = None
) -> list[Row]:
    """The figures per group of the surveyed customers in ``grouping`` (their client
    category, from ``helpdesk.customer_groupings()``; the group they are in now)."""
    since, until = period(start, end)
    groups_of, customer_id, group_name = grouping.subquery()
    query = (
        select(
            group_name,
            func.count(),
            func.count(Survey.sent_at),
            func.count(Survey.delivered_at),
            *[func.count(case((Survey.score == s, 1))) for s in SCORES],
        )
        .select_from(Survey)
        .outerjoin(groups_of, customer_id == Survey.customer_id)
        .where(Survey.created_at >= since, Survey.created_at < until)
        .group_by(group_name)
    )
    if agent_id is not None:
        query = query.where(Survey.agent_id == agent_id)
    totals: dict[str, Row] = {}
    for name, resolved, sent, delivered, *counts in db.session.execute(query):
        name = grouping.otherwise if name is None else str(name)
        total = totals.setdefault(name, Row(None, name))
        total.resolved += int(resolved)
        total.sent += int(sent)
        total.delivered += int(delivered)
        for score, n in zip(SCORES, counts, strict=True):
            total.distribution[str(score)] += int(n or 0)
    return sorted((_ratios(r) for r in totals.values()), key=lambda r: r.name.casefold())


def _row(values: Any, agent: Agent | None) -> Row:
    key, resolved, sent, delivered, *counts = values
    row = Row(key, agent.name if agent else "—", agent.email if agent else "")
    row.resolved, row.sent, row.delivered = int(resolved), int(sent), int(delivered)
    row.distribution = {str(s): int(n or 0) for s, n in zip(SCORES, counts, strict=True)}
    return _ratios(row)


def _ratios(row: Row) -> Row:
    """Fill in the answered count, response rate, average score and CSAT."""
    counts = [row.distribution[str(s)] for s in SCORES]
    row.answered = sum(counts)
    total = sum(s * n for s, n in zip(SCORES, counts, strict=True))
    row.response_rate = _ratio(row.answered, row.sent, 100)
    row.average_score = _ratio(total, row.answered, 1, "0.01")
    row.csat_percent = _ratio(counts[3] + counts[4], row.answered, 100)
    return row


def weekly_trend(start: date, end: date, *, agent_id: int | None = None) -> list[dict[str, Any]]:
    """Per week (Monday first) with surveys resolved: surveys answered and the average score
    (``None`` without answers)."""
    figures = _figures(start, end, agent_id)
    scores = [figures.c[f"score_{s}"] for s in SCORES]
    weeks: dict[date, list[int]] = {}
    for day, *counts in db.session.execute(
        select(figures.c.day, *[func.sum(c) for c in scores]).group_by(figures.c.day)
    ):
        day = day if isinstance(day, date) else date.fromisoformat(str(day))
        total = weeks.setdefault(day - timedelta(days=day.weekday()), [0] * len(SCORES))
        for index, n in enumerate(counts):
            total[index] += int(n or 0)
    trend = []
    for week in sorted(weeks):
        counts = weeks[week]
        answered = sum(counts)
        points = sum(s * n for s, n in zip(SCORES, counts, strict=True))
        average = (Decimal(points) / Decimal(answered)).quantize(CENTS) if answered else None
        trend.append({"week": week.isoformat(), "answered": answered, "average": average})
    return trend


def chart_bars(trend: list[dict[str, Any]], height: int = 160, step: int = 28) -> list[dict]:
    """Bars for the weekly trend: the average score (out of 5) as a height in px."""
    return [
        {
            "x": index * step,
            "height": int((week["average"] or 0) / 5 * height),
            "label": week["week"],
            "value": week["average"],
            "answered": week["answered"],
        }
        for index, week in enumerate(trend)
    ]


def low_scores(start: date, end: date, *, agent_id: int | None = None, limit: int = 100):
    """The surveys scored 1-2 in the period, newest first, with their agents."""
    since, until = period(start, end)
    query = (
        select(Survey)
        .where(Survey.created_at >= since, Survey.created_at < until, Survey.score.in_((1, 2)))
        .order_by(Survey.created_at.desc())
        .limit(limit)
    )
    if agent_id is not None:
        query = query.where(Survey.agent_id == agent_id)
    return list(db.session.scalars(query))


def comments(start: date, end: date, *, agent_id: int | None = None, limit: int = 50):
    """The latest answered surveys with a comment in the period."""
    since, until = period(start, end)
    query = (
        select(Survey)
        .where(
            Survey.created_at >= since,
            Survey.created_at < until,
            Survey.score.is_not(None),
            Survey.comment != "",
        )
        .order_by(Survey.answered_at.desc())
        .limit(limit)
    )
    if agent_id is not None:
        query = query.where(Survey.agent_id == agent_id)
    return list(db.session.scalars(query))


def to_json(row: Row, by: str = "agent") -> dict[str, Any]:
    """A row as the API answers it."""
    ref = (
        {"id": row.key, "email": row.email, "name": row.name}
        if by == "agent"
        else {"id": row.key, "name": row.name}
    )
    return {
        by: ref if row.key is not None else None,
        "resolved": row.resolved,
        "sent": row.sent,
        "delivered": row.delivered,
        "answered": row.answered,
        "response_rate": None if row.response_rate is None else float(row.response_rate),
        "average_score": None if row.average_score is None else float(row.average_score),
        "csat_percent": None if row.csat_percent is None else float(row.csat_percent),
        "distribution": row.distribution,
    }


def to_csv(rows: list[Row], by: str = "agent") -> str:
    """The table as CSV (names guarded against spreadsheet formulas)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([by, *COLUMNS, *[f"score_{s}" for s in SCORES]])
    for row in rows:
        values = [getattr(row, name) for name in COLUMNS]
        writer.writerow(
            [
                spreadsheet_safe(row.name),
                *["" if v is None else v for v in values],
                *[row.distribution[str(s)] for s in SCORES],
            ]
        )
    return out.getvalue()
