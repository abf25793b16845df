"""The appraisal's daily roll-up (``survey_daily``) against real parts: after every kind of
change (resolve, send, refusal, skip, reopen, opt-out, delivery report, score, a later reply
that tries to re-score) it equals a recount from ``surveys``, and the report's figures equal
ones computed by hand from the surveys themselves. ``helpdesk surveys rebuild-rollup``
repairs a roll-up that went wrong."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, select, update

from helpdesk import utcnow
from helpdesk.core import services
from helpdesk.core.accounts import create_agent
from helpdesk.core.models import Agent
from helpdesk.core.worker import deliver_due
from helpdesk.extensions import db
from plugins.surveys import report, rollup, service
from plugins.surveys.models import Survey, SurveyDaily
from tests.conftest import PASSWORD
from tests.fake_twilio import FakeTwilio, FakeTwilioServer
from tests.test_surveys import (  # noqa: F401 (surveys_on: the plugin on, autouse)
    later,
    latest,
    new_customer,
    new_ticket,
    post_signed,
    resolve,
    sms,
    surveys_on,
)

COUNTS = rollup.COUNTS


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilioServer() as server:
        yield server


def stored() -> dict[tuple[date, int], tuple[int, ...]]:
    """The roll-up's rows (zeros left out)."""
    db.session.rollback()
    rows = db.session.scalars(select(SurveyDaily)).all()
    found = {(r.day, r.agent_id): tuple(getattr(r, n) for n in COUNTS) for r in rows}
    return {key: counts for key, counts in found.items() if any(counts)}


def recounted() -> dict[tuple[date, int], tuple[int, ...]]:
    """What the roll-up must hold, counted in Python from every survey not scheduled."""
    db.session.rollback()
    totals: dict[tuple[date, int], list[int]] = {}
    for s in db.session.scalars(select(Survey).where(Survey.status != "scheduled")):
        row = totals.setdefault((s.created_at.astimezone(UTC).date(), s.agent_id or 0), [0] * 8)
        row[0] += 1
        row[1] += s.sent_at is not None
        row[2] += s.delivered_at is not None
        if s.score:
            row[2 + s.score] += 1
    return {key: tuple(values) for key, values in totals.items()}


def in_step() -> dict[tuple[date, int], tuple[int, ...]]:
    rows = stored()
    assert rows == recounted()
    return rows


def by_hand(start: date, end: date) -> dict[int | None, dict[str, Any]]:
    """The appraisal per agent computed from the surveys, without SQL aggregates."""
    db.session.rollback()
    rows: dict[int | None, dict[str, Any]] = {}
    for s in db.session.scalars(select(Survey)):
        if not start <= s.created_at.astimezone(UTC).date() <= end:
            continue
        row = rows.setdefault(s.agent_id, {"resolved": 0, "sent": 0, "scores": Counter()})
        row["resolved"] += 1
        row["sent"] += s.sent_at is not None
        if s.score:
            row["scores"][s.score] += 1
    for row in rows.values():
        answered = sum(row["scores"].values())
        points = sum(score * n for score, n in row["scores"].items())
        row["answered"] = answered
        row["average"] = (
            (Decimal(points) / answered).quantize(Decimal("0.01"), ROUND_HALF_UP)
            if answered
            else None
        )
        row["distribution"] = {str(n): row["scores"][n] for n in range(1, 6)}
    return rows


def assert_report_is_the_hand_count(start: date, end: date) -> None:
    expected = by_hand(start, end)
    rows = report.appraisal(start, end)
    assert {row.key for row in rows} == set(expected)
    for row in rows:
        want = expected[row.key]
        assert (row.resolved, row.sent, row.answered) == (
            want["resolved"],
            want["sent"],
            want["answered"],
        )
        assert row.distribution == want["distribution"] and row.average_score == want["average"]


def status(client, fake: FakeTwilio, survey: Survey, value: str) -> None:
    data = {"MessageSid": survey.message_sid, "MessageStatus": value}
    assert post_signed(client, "/sms/status", data, fake.auth_token).status_code == 200


def test_the_roll_up_follows_every_change(app: Flask, client, fake: FakeTwilio, agent: Agent):
    today = utcnow().date()
    ticket = new_ticket(new_customer())
    resolve(ticket, agent)
    assert in_step() == {}  # scheduled: counted from surveys by the report
    assert_report_is_the_hand_count(today, today)

    deliver_due(now=later())
    survey = latest(ticket)
    assert in_step() == {(today, agent.id): (1, 1, 0, 0, 0, 0, 0, 0)}
    status(client, fake, survey, "delivered")
    status(client, fake, survey, "delivered")  # a repeated report counts once
    status(client, fake, survey, "sent")  # a late one changes nothing
    assert in_step() == {(today, agent.id): (1, 1, 1, 0, 0, 0, 0, 0)}

    sms(client, "4 kind", fake)
    sms(client, "1 actually bad", fake)  # a later score is a comment: no re-score
    assert latest(ticket).score == 4
    assert in_step() == {(today, agent.id): (1, 1, 1, 0, 0, 0, 1, 0)}
    assert_report_is_the_hand_count(today, today)

    sms(client, "STOP", fake)  # opted out: the next survey is skipped, counted as resolved
    second = new_ticket(new_customer(email="again@example.com"))
    resolve(second, agent)
    deliver_due(now=later())
    assert (latest(second).status, latest(second).reason) == ("skipped", "opted_out")
    assert in_step() == {(today, agent.id): (2, 1, 1, 0, 0, 0, 1, 0)}
    assert_report_is_the_hand_count(today, today)


def test_skips_refusals_and_reopens_count_as_resolved_only(app, fake: FakeTwilio, agent: Agent):
    today = utcnow().date()
    reopened = new_ticket(new_customer(email="r@example.com"))
    resolve(reopened, agent)
    services.update_ticket(reopened, {"status": "open"}, actor=agent)
    no_phone = new_ticket(new_customer(None, email="n@example.com"))
    resolve(no_phone, agent)
    refused = new_ticket(new_customer("+3546111299", email="f@example.com"))
    resolve(refused, agent)
    fake.fail("400", code=21610, message="Attempt to send to unsubscribed recipient")
    assert in_step() == {(today, agent.id): (1, 0, 0, 0, 0, 0, 0, 0)}  # the reopen
    deliver_due(now=later())
    assert {latest(t).status for t in (reopened, no_phone, refused)} == {"skipped", "failed"}
    assert in_step() == {(today, agent.id): (3, 0, 0, 0, 0, 0, 0, 0)}
    resolve(reopened, agent)  # resolved again: a new survey, scheduled
    assert in_step() == {(today, agent.id): (3, 0, 0, 0, 0, 0, 0, 0)}
    assert_report_is_the_hand_count(today, today)


def test_days_agents_teams_and_weeks_match_the_surveys(
    app, client, fake: FakeTwilio, agent: Agent, team
):
    other = create_agent(
        email="bo@example.com", name="Bo Other", password=PASSWORD, team_ids=[team.id]
    )
    # Resolved over three weeks (Monday 2026-01-05 is a week's first day), sent and answered.
    plan = [
        (agent, datetime(2026, 1, 4, 23, 59), 5),
        (agent, datetime(2026, 1, 5, 0, 0), 4),
        (other, datetime(2026, 1, 5, 12, 0), 2),
        (agent, datetime(2026, 1, 11, 23, 0), None),
        (other, datetime(2026, 1, 12, 8, 0), 3),
        (None, datetime(2026, 1, 13, 8, 0), 1),
    ]
    for n, (who, when, score) in enumerate(plan):
        phone = f"+354611{n:04d}"
        ticket = new_ticket(new_customer(phone, email=f"p{n}@example.com"))
        ticket.status = "resolved"
        service.schedule(ticket, who.id if who else None, now=when.replace(tzinfo=UTC))
        db.session.commit()
        deliver_due(now=later())
        if score:
            sms(client, str(score), fake, sender=phone)
    waiting = new_ticket(new_customer("+3546119999", email="w@example.com"))
    waiting.status = "resolved"
    service.schedule(waiting, other.id, now=datetime(2026, 1, 13, 9, 0, tzinfo=UTC))
    db.session.commit()  # still scheduled: in the report through surveys
    in_step()
    start, end = date(2026, 1, 1), date(2026, 1, 31)
    assert_report_is_the_hand_count(start, end)
    assert_report_is_the_hand_count(date(2026, 1, 5), date(2026, 1, 11))
    [mine] = report.appraisal(start, end, agent_id=agent.id)
    assert (mine.resolved, mine.answered, mine.average_score) == (3, 2, Decimal("4.50"))
    [support, none] = report.appraisal(start, end, by="team")
    assert (support.name, support.resolved, support.sent) == (team.name, 6, 5)
    assert (none.key, none.resolved, none.distribution["1"]) == (None, 1, 1)
    assert report.weekly_trend(start, end) == [
        {"week": "2025-12-29", "answered": 1, "average": Decimal("5.00")},
        {"week": "2026-01-05", "answered": 2, "average": Decimal("3.00")},
        {"week": "2026-01-12", "answered": 2, "average": Decimal("2.00")},
    ]
    assert report.weekly_trend(start, end, agent_id=agent.id)[1] == {
        "week": "2026-01-05",
        "answered": 1,
        "average": Decimal("4.00"),
    }


def test_rebuild_repairs_the_roll_up(app, client, runner, fake: FakeTwilio, agent: Agent):
    for n in range(3):
        ticket = new_ticket(new_customer(f"+354611{n:04d}", email=f"c{n}@example.com"))
        resolve(ticket, agent)
        deliver_due(now=later())
        sms(client, str(n + 3), fake, sender=f"+354611{n:04d}")
    good = in_step()
    db.session.execute(update(SurveyDaily).values(sent=SurveyDaily.sent + 7))
    db.session.execute(
        SurveyDaily.__table__.insert().values(
            day=date(2020, 1, 1), agent_id=agent.id, **dict.fromkeys(COUNTS, 1)
        )
    )
    db.session.commit()
    assert stored() != good
    result = runner.invoke(args=["surveys", "rebuild-rollup"])
    assert result.exit_code == 0, result.output
    assert "3 surveys in 1 day rows; 2 rows corrected" in result.output
    assert in_step() == good
    again = runner.invoke(args=["surveys", "rebuild-rollup"])
    assert "0 rows corrected" in again.output


def test_rebuild_of_an_empty_table(app, runner):
    db.session.execute(delete(SurveyDaily))
    db.session.commit()
    result = runner.invoke(args=["surveys", "rebuild-rollup"])
    assert result.exit_code == 0 and "0 surveys in 0 day rows; 0 rows corrected" in result.output
