"""The appraisal's daily roll-up (``survey_daily``): per UTC day of the resolve and agent, the
surveys resolved, sent, delivered and scored 1-5, counting every survey that has left
``scheduled`` (a scheduled one has no figures but "resolved", and the report reads those few
from ``surveys``).

Kept in step in the transaction of each change, by the code that makes it, each time on a row
it holds: ``settle`` when a survey leaves ``scheduled`` (an ``UPDATE ... WHERE status =
'scheduled'`` that matched), ``add`` when a delivery report first sets ``delivered_at`` or the
first score is taken (the survey row locked ``FOR UPDATE``). ``rebuild`` recounts it all from
``surveys`` (``helpdesk surveys rebuild-rollup``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, case, cast, delete, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite

from helpdesk import db, write_intent
from plugins.surveys.models import Survey, SurveyDaily

SCORES = (1, 2, 3, 4, 5)
COUNTS = ("resolved", "sent", "delivered", *(f"score_{s}" for s in SCORES))
END = datetime(9999, 1, 1, tzinfo=UTC)


@functools.cache
def _upsert(dialect_name: str) -> Any:
    """The upsert of ``add`` for a database, built once (every count bound at each call)."""
    table = SurveyDaily.__table__
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(table)
    return statement.on_conflict_do_update(
        index_elements=["day", "agent_id"],
        set_={name: table.c[name] + statement.excluded[name] for name in COUNTS},
    )


def add(created_at: datetime, agent_id: int | None, **counts: int) -> None:
    """Add ``counts`` (``resolved=1``, ``score_4=1``, ...) to the row of the survey resolved
    at ``created_at`` by ``agent_id``, in the current transaction (one upsert)."""
    values = {name: counts.get(name, 0) for name in COUNTS}
    day = created_at.astimezone(UTC).date()
    db.session.execute(
        _upsert(db.engine.dialect.name), {"day": day, "agent_id": agent_id or 0, **values}
    )


def settle(
    created_at: datetime, agent_id: int | None, *, sent: bool = False, delivered: bool = False
) -> None:
    """Count a survey that has just left ``scheduled`` (sent, failed or skipped)."""
    add(created_at, agent_id, resolved=1, sent=int(sent), delivered=int(delivered))


def day_of(column: Any) -> Any:
    """SQL for the UTC date of a stored (naive UTC) time, on either database."""
    if db.engine.dialect.name == "postgresql":
        return cast(column, Date)
    return func.date(column)


def waiting(since: datetime, until: datetime) -> Any:
    """The condition for the surveys the roll-up does not count yet, resolved in the period."""
    return Survey.status == "scheduled", Survey.created_at >= since, Survey.created_at < until


@dataclass
class Rebuilt:
    """What ``rebuild`` did: day rows written, surveys counted, rows that were wrong before."""

    rows: int = 0
    surveys: int = 0
    corrected: int = 0


def _months(first: date, last: date) -> list[tuple[datetime, datetime]]:
    """The calendar months from ``first`` to ``last`` as UTC ``[start, end)`` pairs."""
    spans = []
    start = first.replace(day=1)
    while start <= last:
        end = (start + timedelta(days=32)).replace(day=1)
        spans.append((datetime.combine(start, time.min, UTC), datetime.combine(end, time.min, UTC)))
        start = end
    return spans


def spans() -> list[tuple[datetime, datetime]]:
    """The months ``rebuild`` goes through, one step of its progress each."""
    first, last = db.session.execute(
        select(func.min(Survey.created_at), func.max(Survey.created_at))
    ).one()
    db.session.rollback()
    if first is None:
        return [(datetime.min.replace(tzinfo=UTC), END)]
    months = _months(first.astimezone(UTC).date(), last.astimezone(UTC).date())
    # Open-ended, for a survey resolved while the rebuild starts.
    months[-1] = (months[-1][0], END)
    return months


def rebuild(
    months: list[tuple[datetime, datetime]], progress: Callable[[int], None] | None = None
) -> Rebuilt:
    """Recount the roll-up from ``surveys`` (``months``: from ``spans()``), a month at a time,
    in one transaction that holds off every other writer of the roll-up (so a survey changing
    meanwhile is counted once). Commits."""
    with write_intent():
        return _rebuild(months, progress)


def _rebuild(
    months: list[tuple[datetime, datetime]], progress: Callable[[int], None] | None
) -> Rebuilt:
    db.session.rollback()  # the lock and the counts in one fresh transaction
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("LOCK TABLE survey_daily IN EXCLUSIVE MODE"))
    before = {
        (row.day, row.agent_id): tuple(getattr(row, name) for name in COUNTS)
        for row in db.session.execute(select(SurveyDaily.__table__))
    }
    db.session.execute(delete(SurveyDaily))
    day, agent = day_of(Survey.created_at), func.coalesce(Survey.agent_id, 0)
    figures = select(
        day,
        agent,
        func.count(),
        func.count(Survey.sent_at),
        func.count(Survey.delivered_at),
        *[func.count(case((Survey.score == s, 1))) for s in SCORES],
    ).where(Survey.status != "scheduled")
    for since, until in months:
        db.session.execute(
            insert(SurveyDaily.__table__).from_select(
                ["day", "agent_id", *COUNTS],
                figures.where(Survey.created_at >= since, Survey.created_at < until).group_by(
                    day, agent
                ),
            )
        )
        if progress is not None:
            progress(1)
    after = {
        (row.day, row.agent_id): tuple(getattr(row, name) for name in COUNTS)
        for row in db.session.execute(select(SurveyDaily.__table__))
    }
    db.session.commit()
    keys = set(before) | set(after)
    return Rebuilt(
        rows=len(after),
        surveys=sum(counts[0] for counts in after.values()),
        corrected=sum(1 for key in keys if before.get(key) != after.get(key)),
    )
