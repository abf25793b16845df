"""The surveys plugin against real parts: resolve a ticket, the real worker sends the SMS to a
local fake of the Twilio API over HTTP, signed webhooks bring the answer, and the score shows
on the appraisal; with the skip reasons, quiet hours, retries, refusals, opt-out, low scores
and every bad input the issue lists."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from helpdesk import ChannelUnavailable, DeliveryRefused, ValidationError, hookimpl, utcnow
from helpdesk.core import customers, services
from helpdesk.core.accounts import create_agent, create_team
from helpdesk.core.models import Agent, Customer, Message, OutboxItem, Team, Ticket
from helpdesk.core.worker import deliver_due
from helpdesk.extensions import db
from plugins.surveys import gateways, service, text
from plugins.surveys.models import SmsOptOut, SmsReply, Survey, SurveyTemplate
from tests.conftest import PASSWORD, login, post_form
from tests.fake_twilio import FakeTwilio, FakeTwilioProcess, FakeTwilioServer

API = "/api/v1"
PUBLIC_URL = "https://help.example.com"
MOBILE = "+3546111234"  # Iceland: UTC all year, so quiet hours are easy to reason about
MOBILE_2 = "+3546111235"
LANDLINE = "+3545512345"
GREEK_MOBILE = "+306912345678"  # Europe/Athens
FROM = "+15005550006"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilioServer() as server:
        yield server


@pytest.fixture(autouse=True)
def surveys_on(app_config: dict[str, Any], fake: FakeTwilio) -> dict[str, Any]:
    """The plugin switched on (the suite pins it off), talking to the fake gateway."""
    app_config.update(
        PLUGINS_DISABLED=[name for name in app_config["PLUGINS_DISABLED"] if name != "surveys"],
        PUBLIC_URL=PUBLIC_URL,
        SURVEYS_SMS_BACKEND="twilio",
        SURVEYS_TWILIO_BASE_URL=fake.url,
        SURVEYS_TWILIO_ACCOUNT_SID=fake.account_sid,
        SURVEYS_TWILIO_AUTH_TOKEN=fake.auth_token,
        SURVEYS_SMS_FROM=FROM,
        SURVEYS_TWILIO_TIMEOUT=0.3,
        SURVEYS_QUIET_HOURS="",
        MAIL_SUPPRESS_SEND=True,
        MAIL_NOTIFY_RESOLVED=False,  # the counts below are about SMS
    )
    return app_config


def new_customer(phone: str | None = MOBILE, email: str = "cleo@example.com", **extra) -> Customer:
    customer = customers.register_customer({"email": email, "name": "Cleo Client"})
    customer.phone = phone  # as stored (legacy rows and imports may hold anything)
    for name, value in extra.items():
        setattr(customer, name, value)
    db.session.commit()
    return customer


def new_ticket(customer: Customer, team: Team | None = None) -> Ticket:
    return services.open_ticket(
        subject="Broken kettle", body="It leaks.", customer=customer, team=team, acknowledge=False
    )


def resolve(ticket: Ticket, agent: Agent) -> Survey | None:
    services.update_ticket(ticket, {"status": "resolved"}, actor=agent)
    return latest(ticket)


def latest(ticket: Ticket) -> Survey | None:
    db.session.rollback()
    return db.session.scalar(
        select(Survey).where(Survey.ticket_id == ticket.id).order_by(Survey.id.desc())
    )


def later(hours: float = 2) -> datetime:
    return utcnow() + timedelta(hours=hours)


def sign(path: str, data: dict[str, str], token: str) -> str:
    return gateways.signature(PUBLIC_URL + path, data.items(), token)


def post_signed(client: FlaskClient, path: str, data: dict[str, str], token: str, **kw):
    headers = {"X-Twilio-Signature": sign(path, data, token)}
    return client.post(path, data=data, headers=headers, **kw)


_sids = iter(range(1, 10**6))


def sms(
    client: FlaskClient, body: str, fake: FakeTwilio, sender: str = MOBILE, sid: str | None = None
):
    data = {
        "MessageSid": sid or f"SMin{next(_sids):028d}",
        "From": sender,
        "To": FROM,
        "Body": body,
        "AccountSid": fake.account_sid,
    }
    return post_signed(client, "/sms/inbound", data, fake.auth_token)


def sent_survey(agent: Agent, phone: str = MOBILE, email: str = "cleo@example.com") -> Survey:
    """A survey resolved by ``agent`` and sent through the worker."""
    ticket = new_ticket(new_customer(phone, email=email))
    resolve(ticket, agent)
    deliver_due(now=later())
    return latest(ticket)


def count(model: type) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


# --- the core path -------------------------------------------------------------------------


@pytest.mark.hooks("helpdesk_ticket_status_changing", "helpdesk_outbox_senders")
def test_resolve_sms_answer_and_appraisal(
    app: Flask, client: FlaskClient, fake: FakeTwilio, agent: Agent, api_headers
):
    ticket = new_ticket(new_customer())
    survey = resolve(ticket, agent)
    assert (survey.status, survey.agent_id) == ("scheduled", agent.id)
    assert survey.due_at - survey.created_at == timedelta(hours=1)

    assert deliver_due().total == 0  # not before the delay
    assert fake.requests == []
    assert deliver_due(now=later()).sent == 1
    [request] = fake.requests
    assert request.auth == (fake.account_sid, fake.auth_token)
    assert request.path.endswith(f"/Accounts/{fake.account_sid}/Messages.json")
    assert request.form["To"] == MOBILE and request.form["From"] == FROM
    assert f"Ana help you with request #{ticket.id}" in request.form["Body"]
    assert request.form["StatusCallback"] == PUBLIC_URL + "/sms/status"
    survey = latest(ticket)
    assert survey.status == "sent" and survey.message_sid.startswith("SM")
    assert survey.phone == MOBILE  # read when sent, in E.164

    status = {"MessageSid": survey.message_sid, "MessageStatus": "delivered"}
    assert post_signed(client, "/sms/status", status, fake.auth_token).status_code == 200
    assert latest(ticket).status == "delivered"

    answer = sms(client, "5 Ana was great", fake)
    assert answer.status_code == 200 and answer.mimetype == "application/xml"
    assert "<Message>" not in answer.get_data(as_text=True)
    survey = latest(ticket)
    assert (survey.status, survey.score, survey.comment) == ("answered", 5, "Ana was great")

    today = utcnow().date().isoformat()
    report = client.get(f"{API}/reports/appraisal?from={today}&to={today}", headers=api_headers)
    [row] = report.get_json()["items"]
    assert row["agent"] == {"id": agent.id, "email": agent.email, "name": agent.name}
    assert (row["resolved"], row["sent"], row["answered"]) == (1, 1, 1)
    assert (row["response_rate"], row["average_score"], row["csat_percent"]) == (100, 5, 100)
    assert row["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}

    [item] = client.get(f"{API}/surveys?ticket={ticket.id}", headers=api_headers).get_json()[
        "items"
    ]
    assert item["status"] == "answered" and item["score"] == 5 and item["error"] is None
    assert item["agent"]["id"] == agent.id and item["sent_at"] and item["answered_at"]


def test_the_customers_language_picks_the_text(app, fake: FakeTwilio, agent: Agent):
    ticket = new_ticket(new_customer(GREEK_MOBILE, language="el"))
    resolve(ticket, agent)
    deliver_due(now=later())
    assert fake.sent[0]["Body"].startswith("Πώς σας βοήθησε ο/η Ana")
    assert text.segments(fake.sent[0]["Body"])["encoding"] == "UCS-2"


# --- skipped, with a reason ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        (None, "no_phone"),
        ("", "no_phone"),
        ("+1 (555) 0100", "invalid_phone"),
        ("12", "invalid_phone"),
        (LANDLINE, "landline"),
    ],
)
def test_numbers_that_cannot_take_an_sms_are_skipped_with_the_reason(
    app, fake: FakeTwilio, agent: Agent, phone, reason
):
    ticket = new_ticket(new_customer(phone))
    assert resolve(ticket, agent).status == "scheduled"  # the worker reads the number
    assert deliver_due(now=later()).sent == 1  # the outbox item ends, sending nothing
    survey = latest(ticket)
    assert (survey.status, survey.reason) == ("skipped", reason)
    assert fake.requests == [] and survey.sent_at is None


def test_the_core_refuses_such_numbers_on_the_customer_form(app):
    for bad in ("12", "+1 (555) 0100"):
        with pytest.raises(ValidationError) as refused:
            customers.register_customer({"email": "x@example.com", "phone": bad})
        assert "phone" in refused.value.errors


def test_at_most_one_survey_per_customer_in_n_days(app, fake: FakeTwilio, agent: Agent):
    customer = new_customer()
    first = resolve(new_ticket(customer), agent)
    second_ticket = new_ticket(customer)
    resolve(second_ticket, agent)
    deliver_due(now=later())
    assert len(fake.requests) == 1
    assert latest_by_id(first.id).status == "sent"
    second = latest(second_ticket)
    assert (second.status, second.reason) == ("skipped", "too_recent")


def test_fifteen_days_later_the_customer_is_asked_again(app, fake: FakeTwilio, agent: Agent):
    customer = new_customer()
    first = resolve(new_ticket(customer), agent)
    deliver_due(now=later())

    def sent_days_ago(days: int) -> Survey:
        latest_by_id(first.id).sent_at = utcnow() - timedelta(days=days)
        db.session.commit()
        ticket = new_ticket(customer)
        resolve(ticket, agent)
        deliver_due(now=later())
        return latest(ticket)

    assert sent_days_ago(13).reason == "too_recent"
    assert sent_days_ago(15).status == "sent"
    assert len(fake.requests) == 2


def test_a_reopen_before_sending_drops_the_survey(app, fake: FakeTwilio, agent: Agent):
    ticket = new_ticket(new_customer())
    resolve(ticket, agent)
    services.update_ticket(ticket, {"status": "open"}, actor=agent)
    survey = latest(ticket)
    assert (survey.status, survey.reason) == ("skipped", "reopened")
    assert deliver_due(now=later()).sent == 1  # the outbox item ends, sending nothing
    assert fake.requests == []
    resolved_again = resolve(ticket, agent)
    assert resolved_again.status == "scheduled" and resolved_again.id != survey.id


def test_a_customers_reply_that_reopens_drops_it_too(app, fake: FakeTwilio, agent: Agent):
    ticket = new_ticket(new_customer())
    resolve(ticket, agent)
    services.add_message(ticket, body="Still leaking!", author=ticket.customer)
    assert latest(ticket).reason == "reopened"


# --- quiet hours -----------------------------------------------------------------------------


@pytest.fixture
def quiet(surveys_on: dict[str, Any]) -> None:
    surveys_on["SURVEYS_QUIET_HOURS"] = "21-9"


@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize(
    ("phone", "resolved", "due"),
    [
        # Reykjavik (UTC): 20:30 + 1 h = 21:30, quiet: the next morning at 09:00.
        (MOBILE, datetime(2026, 1, 15, 20, 30), datetime(2026, 1, 16, 9, 0)),
        # 02:00 + 1 h: the same morning at 09:00.
        (MOBILE, datetime(2026, 1, 15, 2, 0), datetime(2026, 1, 15, 9, 0)),
        # Not quiet: the delay only.
        (MOBILE, datetime(2026, 1, 15, 12, 0), datetime(2026, 1, 15, 13, 0)),
        # Athens (UTC+2 in January): 05:00 UTC + 1 h = 08:00 there: 09:00 there = 07:00 UTC.
        (GREEK_MOBILE, datetime(2026, 1, 15, 5, 0), datetime(2026, 1, 15, 7, 0)),
    ],
)
def test_quiet_hours_in_the_customers_time_zone(
    app, fake: FakeTwilio, agent: Agent, monkeypatch, phone, resolved, due
):
    resolved, due = resolved.replace(tzinfo=UTC), due.replace(tzinfo=UTC)
    clock = [resolved]  # the plugin's clock, and the worker's (``now``)
    monkeypatch.setattr(service, "utcnow", lambda: clock[0])
    ticket = new_ticket(new_customer(phone))
    ticket.status = "resolved"  # as update_ticket does, with the clock at ``resolved``
    service.schedule(ticket, agent.id, now=resolved)
    db.session.commit()
    clock[0] = resolved + timedelta(hours=1)
    deliver_due(now=clock[0])  # due after the delay: sent, or held by the quiet hours
    survey = latest(ticket)
    if due > clock[0]:
        assert (survey.status, survey.due_at, survey.phone) == ("scheduled", due, phone)
        assert fake.requests == [] and survey.reason == ""
        clock[0] = due - timedelta(minutes=1)
        assert deliver_due(now=clock[0]).total == 0
        clock[0] = due
        assert deliver_due(now=clock[0]).sent == 1
    assert latest(ticket).status == "sent" and len(fake.requests) == 1
    assert latest(ticket).sent_at == due


# --- the gateway: retries, refusals, crashes ---------------------------------------------------


def test_gateway_down_for_ten_minutes_then_all_sent_once(app, fake: FakeTwilio, agent: Agent):
    from tests.fake_twilio import Failure

    tickets = [
        new_ticket(new_customer(f"+35461112{n:02d}", email=f"c{n}@example.com")) for n in range(5)
    ]
    for ticket in tickets:
        resolve(ticket, agent)
    fake.down = Failure("500")
    start = later()
    for minute in range(0, 11):
        deliver_due(now=start + timedelta(minutes=minute))
    assert fake.requests == []
    assert all(latest(t).status == "scheduled" for t in tickets)
    fake.down = None
    summary = deliver_due(now=start + timedelta(hours=2))
    assert summary.sent == 5
    assert sorted(r.form["To"] for r in fake.requests) == sorted(
        f"+35461112{n:02d}" for n in range(5)
    )
    assert deliver_due(now=start + timedelta(days=1)).total == 0
    assert len(fake.requests) == 5  # none twice


@pytest.mark.parametrize("kind", ["429", "500", "timeout"])
def test_429_5xx_and_time_outs_are_retried_with_backoff(
    app, fake: FakeTwilio, agent: Agent, kind: str
):
    ticket = new_ticket(new_customer())
    resolve(ticket, agent)
    fake.fail(kind)
    start = later()
    summary = deliver_due(now=start)
    assert (summary.sent, summary.retried) == (0, 1)
    [item] = db.session.scalars(select(OutboxItem).where(OutboxItem.channel == "sms")).all()
    assert item.status == "pending" and item.next_attempt_at > start
    assert latest(ticket).status == "scheduled"
    assert deliver_due(now=item.next_attempt_at).sent == 1
    assert latest(ticket).status == "sent" and len(fake.requests) == 1


def test_a_permanent_refusal_fails_the_survey_with_the_gateways_code(
    app, client, fake: FakeTwilio, agent: Agent, api_headers
):
    ticket = new_ticket(new_customer())
    resolve(ticket, agent)
    fake.fail("400", code=21610, message="Attempt to send to unsubscribed recipient")
    assert deliver_due(now=later()).dead == 1
    survey = latest(ticket)
    assert (survey.status, survey.error_code) == ("failed", "21610")
    assert survey.error_message == "Attempt to send to unsubscribed recipient"
    item = db.session.scalar(select(OutboxItem).where(OutboxItem.channel == "sms"))
    assert item.status == "dead" and item.last_error.startswith("21610: ")
    assert deliver_due(now=later(48)).total == 0  # never retried
    [row] = client.get(f"{API}/surveys?status=failed", headers=api_headers).get_json()["items"]
    assert row["error"] == {"code": "21610", "message": "Attempt to send to unsubscribed recipient"}


def test_a_rejected_login_fails_the_survey_and_is_not_retried(app, fake: FakeTwilio, agent: Agent):
    ticket = new_ticket(new_customer())
    resolve(ticket, agent)
    app.config["SURVEYS_TWILIO_AUTH_TOKEN"] = "wrong"  # the gateway answers 401
    assert deliver_due(now=later()).dead == 1
    survey = latest(ticket)
    assert (survey.status, survey.error_code, survey.error_message) == (
        "failed",
        "20003",
        "Authenticate",
    )
    assert deliver_due(now=later(48)).total == 0 and fake.requests == []


def test_a_retry_after_a_crash_never_sends_twice(app, fake: FakeTwilio, agent: Agent):
    survey = sent_survey(agent)
    item = db.session.scalar(select(OutboxItem).where(OutboxItem.channel == "sms"))
    item.status, item.claimed_until = "pending", None  # as if the worker died before recording
    db.session.commit()
    assert deliver_due(now=later(3)).sent == 1
    assert len(fake.requests) == 1 and latest_by_id(survey.id).status == "sent"


def latest_by_id(survey_id: int) -> Survey:
    db.session.rollback()
    return db.session.get(Survey, survey_id)


def test_an_opt_out_between_scheduling_and_sending_stops_the_sms(
    app, client, fake: FakeTwilio, agent: Agent
):
    ticket = new_ticket(new_customer())
    resolve(ticket, agent)
    assert sms(client, "STOP", fake).status_code == 200
    deliver_due(now=later())
    assert fake.requests == []
    assert (latest(ticket).status, latest(ticket).reason) == ("skipped", "opted_out")


# --- answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "score", "comment"),
    [
        ("5", 5, ""),
        ("٥", 5, ""),
        ("５ thanks", 5, "thanks"),
        ("4 - quick and kind", 4, "quick and kind"),
        ("three", 3, ""),
        ("Fimm takk", 5, "takk"),
        ("tvær", 2, ""),
        ("þrjú", 3, ""),
        ("ארבעה", 4, ""),
        ("אחת", 1, ""),
        ("Τέσσερις", 4, ""),
        ("μία", 1, ""),
        ("⭐⭐⭐⭐⭐", 5, ""),
        ("⭐️⭐️⭐️ ok", 3, "ok"),
        ("★★", 2, ""),
    ],
)
def test_scores_in_any_script_words_and_stars(reply: str, score: int, comment: str):
    assert text.read_score(reply) == (score, comment)


@pytest.mark.parametrize("reply", ["0", "6", "11", "-1", "4.5", "4,5", "⭐" * 6, "great", ""])
def test_what_is_not_a_score(reply: str):
    assert text.read_score(reply) is None


@pytest.mark.parametrize("reply", ["0", "6", "11", "-1", "4.5"])
def test_a_reply_that_is_not_a_score_asks_once_more(
    app, client, fake: FakeTwilio, agent: Agent, reply: str
):
    survey = sent_survey(agent)
    first = sms(client, reply, fake)
    assert "<Message>Sorry, we did not understand." in first.get_data(as_text=True)
    second = sms(client, "no idea", fake)
    assert "<Message>" not in second.get_data(as_text=True)  # asked once only
    third = sms(client, "2", fake)
    assert "<Message>" not in third.get_data(as_text=True)
    survey = latest_by_id(survey.id)
    assert survey.asked_again and survey.score == 2 and "no idea" in survey.comment
    kinds = db.session.scalars(select(SmsReply.kind).order_by(SmsReply.id)).all()
    assert kinds == ["ask_again", "comment", "score"]


def test_the_first_score_counts_and_later_replies_are_comments(
    app, client, fake: FakeTwilio, agent: Agent
):
    survey = sent_survey(agent)
    sms(client, "4 good", fake)
    sms(client, "5", fake)
    sms(client, "actually it broke again", fake)
    survey = latest_by_id(survey.id)
    assert survey.score == 4
    assert survey.comment == "good\n5\nactually it broke again"


def test_the_reply_goes_to_the_latest_survey_sent_to_that_number(
    app, client, fake: FakeTwilio, agent: Agent
):
    older = sent_survey(agent, email="a@example.com")
    newer = sent_survey(agent, email="b@example.com")
    sms(client, "3", fake)
    assert latest_by_id(newer.id).score == 3 and latest_by_id(older.id).score is None


def test_a_replayed_message_sid_changes_nothing(app, client, fake: FakeTwilio, agent: Agent):
    survey = sent_survey(agent)
    sms(client, "4 nice", fake, sid="SMreplay")
    sms(client, "4 nice", fake, sid="SMreplay")
    sms(client, "another", fake, sid="SMreplay")
    assert count(SmsReply) == 1
    assert latest_by_id(survey.id).comment == "nice"


def test_a_reply_from_an_unknown_number_is_kept_unmatched(app, client, fake: FakeTwilio):
    response = sms(client, "5", fake, sender="+3546999999")
    assert response.status_code == 200
    [reply] = db.session.scalars(select(SmsReply)).all()
    assert (reply.kind, reply.survey_id, reply.body) == ("unmatched", None, "5")


def test_a_reply_after_seven_days_is_unmatched(app, client, fake: FakeTwilio, agent: Agent):
    survey = sent_survey(agent)
    survey.sent_at = utcnow() - timedelta(days=7, minutes=1)
    db.session.commit()
    sms(client, "5", fake)
    assert latest_by_id(survey.id).score is None
    assert db.session.scalar(select(SmsReply.kind)) == "unmatched"


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Twilio-Signature": "forged"}, {"X-Twilio-Signature": "AAAA" * 7}],
)
def test_a_forged_or_missing_signature_is_403_and_nothing_is_stored(
    app, client, fake: FakeTwilio, agent: Agent, headers
):
    survey = sent_survey(agent)
    data = {"MessageSid": "SMforged", "From": MOBILE, "To": FROM, "Body": "1"}
    assert client.post("/sms/inbound", data=data, headers=headers).status_code == 403
    status = {"MessageSid": survey.message_sid, "MessageStatus": "failed"}
    assert client.post("/sms/status", data=status, headers=headers).status_code == 403
    assert count(SmsReply) == 0 and latest_by_id(survey.id).status == "sent"


def test_a_signature_made_for_other_fields_or_another_url_fails(
    app, client, fake: FakeTwilio, agent: Agent
):
    sent_survey(agent)
    data = {"MessageSid": "SMx", "From": MOBILE, "To": FROM, "Body": "5"}
    signed_for = sign("/sms/inbound", {**data, "Body": "1"}, fake.auth_token)
    assert (
        client.post("/sms/inbound", data=data, headers={"X-Twilio-Signature": signed_for})
    ).status_code == 403
    other_url = gateways.signature("http://localhost/sms/inbound", data.items(), fake.auth_token)
    assert (
        client.post("/sms/inbound", data=data, headers={"X-Twilio-Signature": other_url})
    ).status_code == 403
    assert count(SmsReply) == 0


def test_a_100_kb_body_is_413(app, client, fake: FakeTwilio):
    data = {"MessageSid": "SMbig", "From": MOBILE, "To": FROM, "Body": "x" * 100_000}
    response = post_signed(client, "/sms/inbound", data, fake.auth_token)
    assert response.status_code == 413 and count(SmsReply) == 0


def test_a_signed_post_without_the_required_fields_is_refused(app, client, fake: FakeTwilio):
    response = post_signed(client, "/sms/inbound", {"Body": "5"}, fake.auth_token)
    assert response.status_code == 422 and count(SmsReply) == 0


def test_no_auth_token_configured_means_every_webhook_is_refused(
    surveys_on, app_config, fake: FakeTwilio
):
    app_config["SURVEYS_TWILIO_AUTH_TOKEN"] = ""
    from helpdesk import create_app

    app = create_app(app_config)
    with app.test_client() as client:
        data = {"MessageSid": "SMx", "From": MOBILE, "Body": "5"}
        headers = {"X-Twilio-Signature": sign("/sms/inbound", data, "")}
        assert client.post("/sms/inbound", data=data, headers=headers).status_code == 403


# --- opt-out and opt-in ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "word", ["STOP", "stop", "StopAll", "UNSUBSCRIBE", "cancel", "End", "QUIT"]
)
def test_stop_then_a_new_resolved_ticket_sends_no_sms(
    app, client, fake: FakeTwilio, agent: Agent, word: str, api_headers
):
    customer = new_customer()
    sms(client, word, fake)
    row = db.session.get(SmsOptOut, MOBILE)
    assert row.opted_out and row.keyword == word.upper() and row.changed_at is not None
    customer_json = client.get(f"{API}/customers/{customer.id}", headers=api_headers).get_json()
    assert customer_json["sms_opt_out"] is True
    ticket = new_ticket(customer)
    resolve(ticket, agent)
    deliver_due(now=later())
    assert fake.requests == []
    assert (latest(ticket).status, latest(ticket).reason) == ("skipped", "opted_out")


def test_customer_json_carries_the_latest_score(app, client, fake, agent: Agent, api_headers):
    survey = sent_survey(agent)
    url = f"{API}/customers/{survey.customer_id}"
    assert client.get(url, headers=api_headers).get_json()["surveys_last_score"] is None
    sms(client, "4 quick and kind", fake)
    assert client.get(url, headers=api_headers).get_json()["surveys_last_score"] == 4


@pytest.mark.parametrize("word", ["START", "unstop", "Yes"])
def test_start_opts_back_in(app, client, fake: FakeTwilio, agent: Agent, word: str, api_headers):
    customer = new_customer()
    sms(client, "STOP", fake)
    sms(client, word, fake)
    assert db.session.get(SmsOptOut, MOBILE).opted_out is False
    customer_json = client.get(f"{API}/customers/{customer.id}", headers=api_headers).get_json()
    assert customer_json["sms_opt_out"] is False
    resolve(new_ticket(customer), agent)
    deliver_due(now=later())
    assert len(fake.requests) == 1


def test_stop_after_a_survey_is_recorded_on_its_customer(app, client, fake, agent: Agent):
    survey = sent_survey(agent)
    sms(client, "STOP", fake)
    assert db.session.get(SmsOptOut, MOBILE).customer_id == survey.customer_id
    assert db.session.scalar(select(SmsReply.kind)) == "opt_out"


# --- delivery reports ------------------------------------------------------------------------


def test_status_callbacks_move_forward_and_record_the_error(app, client, fake, agent: Agent):
    survey = sent_survey(agent)
    token = fake.auth_token

    def report(status: str, **extra: str) -> int:
        data = {"MessageSid": survey.message_sid, "MessageStatus": status, **extra}
        return post_signed(client, "/sms/status", data, token).status_code

    assert report("sent") == 200
    assert report("undelivered", ErrorCode="30003", ErrorMessage="Unreachable handset") == 200
    survey = latest_by_id(survey.id)
    assert (survey.status, survey.delivery_status, survey.error_code) == (
        "failed",
        "undelivered",
        "30003",
    )
    assert report("sent") == 200 and latest_by_id(survey.id).delivery_status == "undelivered"
    assert report("bogus") == 422
    unknown = {"MessageSid": "SMunknown", "MessageStatus": "delivered"}
    assert post_signed(client, "/sms/status", unknown, token).status_code == 200


# --- low scores ------------------------------------------------------------------------------


@pytest.fixture
def lead(app: Flask, team: Team) -> Agent:
    boss = create_agent(email="lead@example.com", name="Lea Lead", password=PASSWORD)
    team.lead_id = boss.id
    db.session.commit()
    return boss


def test_a_low_score_notes_mails_the_lead_and_asks_for_a_follow_up(
    app, client, fake, agent: Agent, team: Team, lead: Agent, api_headers
):
    ticket = new_ticket(new_customer(), team=team)
    resolve(ticket, agent)
    deliver_due(now=later())
    sms(client, "1 rude and slow", fake)
    survey = latest(ticket)
    assert survey.score == 1 and survey.follow_up
    note = db.session.scalar(
        select(Message).where(Message.ticket_id == ticket.id, Message.internal)
    )
    assert "1 of 5" in note.body and "rude and slow" in note.body
    mail = db.session.scalar(
        select(OutboxItem).where(OutboxItem.channel == "mail", OutboxItem.dedupe_key.like("%low%"))
    )
    assert [address for _name, address in mail.payload["to"]] == [lead.email]
    assert f"#{ticket.id}" in mail.payload["subject"]

    found = client.get(f"{API}/tickets?low_score=1", headers=api_headers).get_json()["items"]
    assert [t["id"] for t in found] == [ticket.id]
    agent_client = app.test_client()
    login(agent_client, agent.email)
    queue = agent_client.get("/tickets?low_score=1").get_data(as_text=True)
    assert "Low score" in queue
    page = agent_client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "Score: 1 of 5" in page and "rude and slow" in page
    post_form(
        agent_client,
        f"/surveys/tickets/{ticket.id}/follow-up",
        {},
        page=f"/tickets/{ticket.id}",
    )
    found = client.get(f"{API}/tickets?low_score=1", headers=api_headers).get_json()["items"]
    assert found == []


def test_with_no_team_lead_the_admins_are_mailed(app, client, fake, agent: Agent, admin: Agent):
    sent_survey(agent)
    sms(client, "two", fake)
    mail = db.session.scalar(
        select(OutboxItem).where(OutboxItem.channel == "mail", OutboxItem.dedupe_key.like("%low%"))
    )
    assert [address for _name, address in mail.payload["to"]] == [admin.email]


def test_a_good_score_asks_for_nothing(app, client, fake, agent: Agent, admin: Agent):
    survey = sent_survey(agent)
    sms(client, "3", fake)
    assert not latest_by_id(survey.id).follow_up
    assert db.session.scalar(select(func.count()).select_from(Message).where(Message.internal)) == 0


# --- the SMS text ------------------------------------------------------------------------------


def test_a_template_with_a_syntax_error_is_refused_and_the_text_kept(
    app, admin_client: FlaskClient
):
    for body in ("How did {agent help?", "Hi {name}", "{agent.__class__}", "}"):
        response = post_form(
            admin_client,
            "/surveys/templates",
            {"language": "en", "body": body, "action": "save"},
        )
        assert response.status_code == 422
        assert body.replace("{", "") in response.get_data(as_text=True).replace("{", "")
    assert count(SurveyTemplate) == 0


def test_a_saved_template_is_used_and_previewed_with_its_segments(
    app, admin_client: FlaskClient, fake: FakeTwilio, agent: Agent
):
    hebrew = "שלום, איך {agent} טיפל/ה בפנייה {reference}? השב/י 1 עד 5."
    preview = post_form(
        admin_client,
        "/surveys/templates",
        {"language": "he", "body": hebrew, "action": "preview"},
    ).get_data(as_text=True)
    assert "UCS-2" in preview and "SMS segment" in preview
    saved = post_form(
        admin_client, "/surveys/templates", {"language": "he", "body": hebrew, "action": "save"}
    )
    assert saved.status_code == 302
    resolve(new_ticket(new_customer(language="he")), agent)
    deliver_due(now=later())
    assert fake.sent[0]["Body"].startswith("שלום, איך Ana טיפל/ה")


def test_agents_cannot_edit_the_template(app, agent_client: FlaskClient):
    assert agent_client.get("/surveys/templates").status_code == 403


@pytest.mark.parametrize(
    ("message", "encoding", "count_"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("€" * 80, "GSM-7", 1),  # two septets each
        ("€" * 81, "GSM-7", 2),
        ("ש" * 70, "UCS-2", 1),
        ("ש" * 71, "UCS-2", 2),
        ("Πώς" * 30, "UCS-2", 2),
        ("ΔΦΓ" * 50, "GSM-7", 1),  # capital Greek letters GSM-7 has
    ],
)
def test_sms_segments(message: str, encoding: str, count_: int):
    found = text.segments(message)
    assert (found["encoding"], found["segments"]) == (encoding, count_)


# --- the appraisal ------------------------------------------------------------------------------


def answered(agent: Agent, score: int, n: int, client, fake) -> None:
    survey = sent_survey(agent, phone=f"+354611{n:04d}", email=f"s{n}@example.com")
    sms(client, str(score), fake, sender=survey.phone)


def test_the_report_per_agent_and_team_csv_and_chart(
    app, client, fake, agent: Agent, admin: Agent, team: Team, admin_client, api_headers
):
    other = create_agent(
        email="bo@example.com", name="Bo Other", password=PASSWORD, team_ids=[team.id]
    )
    for n, (who, score) in enumerate([(agent, 5), (agent, 4), (agent, 1), (other, 3)]):
        answered(who, score, n, client, fake)
    sent_survey(other, phone="+3546119999", email="quiet@example.com")  # never answered
    today = utcnow().date().isoformat()
    items = admin_api(client, admin, f"/reports/appraisal?from={today}&to={today}")["items"]
    rows = {row["agent"]["email"]: row for row in items}
    assert rows[agent.email]["distribution"] == {"1": 1, "2": 0, "3": 0, "4": 1, "5": 1}
    assert rows[agent.email]["average_score"] == 3.33
    assert rows[agent.email]["csat_percent"] == 66.7
    assert (rows[other.email]["sent"], rows[other.email]["response_rate"]) == (2, 50)

    mine = client.get(f"{API}/reports/appraisal", headers=api_headers).get_json()["items"]
    assert [row["agent"]["id"] for row in mine] == [agent.id]  # an agent sees only their own

    page = admin_client.get(f"/reports/appraisal?from={today}&to={today}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<svg" in html and "Bo Other" in html
    assert "Low scores" in html
    by_team = admin_client.get(f"/reports/appraisal?by=team&format=csv&from={today}&to={today}")
    assert by_team.mimetype == "text/csv"
    lines = by_team.get_data(as_text=True).splitlines()
    assert lines[0].startswith("team,resolved,sent") and lines[1].startswith("Support,5,5")


def admin_api(client, admin: Agent, path: str) -> dict[str, Any]:
    from helpdesk.core import tokens

    token = tokens.create_api_token(admin, "report")
    return client.get(API + path, headers={"Authorization": f"Bearer {token}"}).get_json()


def test_an_agent_sees_only_their_own_scores(app, client, fake, agent: Agent, team: Team):
    other = create_agent(email="bo@example.com", name="Bo Other", password=PASSWORD)
    answered(agent, 5, 1, client, fake)
    answered(other, 2, 2, client, fake)
    agent_client = app.test_client()
    login(agent_client, agent.email)
    html = agent_client.get("/reports/appraisal").get_data(as_text=True)
    assert "Ana Agent" in html and "Bo Other" not in html


@pytest.mark.parametrize(
    "query",
    ["from=yesterday", "to=2026-13-01", "from=2026-02-01&to=2026-01-01", "by=planet"],
)
def test_bad_report_arguments_are_422(app, client, api_headers, query: str):
    assert client.get(f"{API}/reports/appraisal?{query}", headers=api_headers).status_code == 422


def test_from_and_to_are_inclusive_dates(app, client, fake, agent: Agent, api_headers):
    survey = sent_survey(agent)
    day = survey.created_at.date()
    one_day = f"from={day.isoformat()}&to={day.isoformat()}"
    assert client.get(f"{API}/reports/appraisal?{one_day}", headers=api_headers).get_json()["items"]
    before = day - timedelta(days=1)
    other_day = f"from={before.isoformat()}&to={before.isoformat()}"
    assert (
        client.get(f"{API}/reports/appraisal?{other_day}", headers=api_headers).get_json()["items"]
        == []
    )


# --- the surveys API -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["agent=x", "ticket=-1", "status=lost", "from=2026-99-01", "page=0", "per_page=100000"],
)
def test_bad_survey_filters_are_422(app, client, api_headers, query: str):
    assert client.get(f"{API}/surveys?{query}", headers=api_headers).status_code == 422


def test_survey_filters_reasons_and_expired(app, client, fake, agent: Agent, api_headers):
    skipped = resolve(new_ticket(new_customer(LANDLINE, email="l@example.com")), agent)
    sent = sent_survey(agent)
    sent.sent_at = utcnow() - timedelta(days=8)
    db.session.commit()

    def ids(query: str) -> list[int]:
        body = client.get(f"{API}/surveys?{query}", headers=api_headers).get_json()
        return [item["id"] for item in body["items"]]

    assert ids("status=skipped") == [skipped.id]
    assert ids("status=expired") == [sent.id] and ids("status=sent") == []
    [row] = client.get(f"{API}/surveys?status=skipped", headers=api_headers).get_json()["items"]
    assert row["reason"] == "landline"
    assert ids(f"customer={sent.customer_id}") == [sent.id]
    assert ids(f"agent={agent.id}&per_page=1") == [sent.id]
    assert set(ids(f"agent={agent.id}")) == {sent.id, skipped.id}


def test_an_agent_lists_only_their_own_surveys(app, client, fake, agent: Agent, api_headers):
    other = create_agent(email="bo@example.com", name="Bo Other", password=PASSWORD)
    resolve(new_ticket(new_customer(email="a@example.com")), other)
    mine = resolve(new_ticket(new_customer(email="b@example.com")), agent)
    body = client.get(f"{API}/surveys?agent={other.id}", headers=api_headers).get_json()
    assert body["items"] == []
    body = client.get(f"{API}/surveys", headers=api_headers).get_json()
    assert [item["id"] for item in body["items"]] == [mine.id]


def test_listing_surveys_takes_the_same_queries_for_more_rows(
    app, client, agent: Agent, api_headers, count_queries
):
    def listed() -> int:
        with count_queries:
            assert client.get(f"{API}/surveys", headers=api_headers).status_code == 200
        return count_queries.count

    for n in range(2):
        resolve(new_ticket(new_customer(email=f"a{n}@example.com")), agent)
    few = listed()
    for n in range(2, 12):
        other = create_agent(email=f"o{n}@example.com", name=f"O {n}", password=PASSWORD)
        resolve(new_ticket(new_customer(email=f"a{n}@example.com")), other)
    admin = create_agent(email="adm@example.com", name="Adm", password=PASSWORD, role="admin")
    from helpdesk.core import tokens

    headers = {"Authorization": f"Bearer {tokens.create_api_token(admin, 'x')}"}
    with count_queries:
        assert len(client.get(f"{API}/surveys", headers=headers).get_json()["items"]) == 12
    assert count_queries.count <= few


def test_the_openapi_document_lists_the_routes(app, client, api_headers):
    document = client.get(f"{API}/openapi.json", headers=api_headers).get_json()
    assert document["paths"]["/surveys"]["get"]["operationId"] == "surveys_api.list_surveys"
    assert "/reports/appraisal" in document["paths"]


# --- panels ----------------------------------------------------------------------------------


def test_the_customer_page_shows_scores_and_opt_out(
    app, client, fake, agent: Agent, agent_client: FlaskClient
):
    survey = sent_survey(agent)
    sms(client, "4 fine", fake)
    sms(client, "STOP", fake)
    html = agent_client.get(f"/customers/{survey.customer_id}").get_data(as_text=True)
    assert "Opted out of SMS" in html and "fine" in html


def test_the_ticket_page_shows_why_a_survey_was_not_sent(app, agent: Agent, agent_client):
    ticket = new_ticket(new_customer(None))
    resolve(ticket, agent)
    deliver_due(now=later())
    html = agent_client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "Not sent: no_phone" in html


# --- backends ----------------------------------------------------------------------------------


class Pigeon:
    """A plugin adding an SMS backend."""

    def __init__(self) -> None:
        self.carried: list[dict[str, Any]] = []
        self.refuse = False

    @hookimpl
    def helpdesk_sms_backends(self):
        return {"pigeon": self.make}

    def make(self, config) -> Any:
        def send(message: dict[str, Any]) -> str:
            if self.refuse:
                error = DeliveryRefused("no such loft")
                error.code = "P1"
                raise error
            self.carried.append(message)
            return f"PIGEON{len(self.carried)}"

        return send


pigeon = Pigeon()


@pytest.fixture
def app_plugins() -> list[Any]:
    from tests.plugin_support import HELLO

    pigeon.carried.clear()
    pigeon.refuse = False
    return [HELLO, pigeon]


@pytest.mark.hooks("helpdesk_sms_backends")
def test_a_plugin_adds_a_backend(surveys_on, app_config, agent_factory_app):
    _app, agent = agent_factory_app
    ticket = new_ticket(new_customer())
    resolve(ticket, agent)
    deliver_due(now=later())
    [message] = pigeon.carried
    assert message["to"] == MOBILE and latest(ticket).message_sid == "PIGEON1"
    pigeon.refuse = True
    second = new_ticket(new_customer(MOBILE_2, email="d@example.com"))
    resolve(second, agent)
    deliver_due(now=later())
    assert (latest(second).status, latest(second).error_code) == ("failed", "P1")


@pytest.fixture
def agent_factory_app(surveys_on, app_config) -> Iterator[tuple[Flask, Agent]]:
    surveys_on["SURVEYS_SMS_BACKEND"] = "pigeon"
    from helpdesk import create_app
    from tests.conftest import _empty_database
    from tests.plugin_support import HELLO

    app = create_app(app_config, plugins=[HELLO, pigeon])
    with app.app_context():
        _empty_database()
        team = create_team("Support")
        agent = create_agent(
            email="ana@example.com", name="Ana Agent", password=PASSWORD, team_ids=[team.id]
        )
        yield app, agent
        db.session.remove()
        db.engine.dispose()


def test_an_unknown_backend_waits_for_the_setting_to_be_fixed(surveys_on, app_config):
    surveys_on["SURVEYS_SMS_BACKEND"] = "nope"
    from helpdesk import create_app
    from tests.conftest import _empty_database

    app = create_app(app_config)
    with app.app_context():
        _empty_database()
        agent = create_agent(email="ana@example.com", name="Ana Agent", password=PASSWORD)
        resolve(new_ticket(new_customer()), agent)
        summary = deliver_due(now=later())
        assert summary.retried == 1
        db.session.rollback()
        item = db.session.scalar(select(OutboxItem).where(OutboxItem.channel == "sms"))
        assert "no SMS backend 'nope'" in item.last_error
        db.session.remove()
        db.engine.dispose()


def test_the_console_backend_logs_the_sms(surveys_on, app_config, caplog):
    surveys_on["SURVEYS_SMS_BACKEND"] = "console"
    from helpdesk import create_app
    from tests.conftest import _empty_database

    app = create_app(app_config)
    with app.app_context():
        _empty_database()
        agent = create_agent(email="ana@example.com", name="Ana Agent", password=PASSWORD)
        resolve(new_ticket(new_customer()), agent)
        with caplog.at_level("WARNING", logger="plugins.surveys.gateways"):
            assert deliver_due(now=later()).sent == 1
        assert MOBILE in caplog.text and "How did Ana help you" in caplog.text
        db.session.remove()
        db.engine.dispose()


def test_the_twilio_client_maps_answers_to_outcomes(fake: FakeTwilio):
    config = {
        "SURVEYS_TWILIO_BASE_URL": fake.url,
        "SURVEYS_TWILIO_ACCOUNT_SID": fake.account_sid,
        "SURVEYS_TWILIO_AUTH_TOKEN": fake.auth_token,
        "SURVEYS_SMS_FROM": "MG" + "1" * 32,
        "SURVEYS_TWILIO_TIMEOUT": 0.3,
    }
    send = gateways.make_twilio(config)
    message = {"to": MOBILE, "body": "hi", "status_callback": None}
    assert send(message).startswith("SM")
    assert fake.sent[0]["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in fake.sent[0]
    fake.fail("400", code=21211, message="Invalid 'To' Phone Number")
    with pytest.raises(DeliveryRefused) as refused:
        send(message)
    assert refused.value.code == "21211"
    for kind in ("429", "500", "timeout"):
        fake.fail(kind)
        with pytest.raises(ChannelUnavailable):
            send(message)
    wrong = gateways.make_twilio({**config, "SURVEYS_TWILIO_AUTH_TOKEN": "wrong"})
    with pytest.raises(DeliveryRefused) as rejected:  # a refusal, not retried
        wrong(message)
    assert (rejected.value.code, str(rejected.value)) == ("20003", "Authenticate")
    lost = gateways.make_twilio({**config, "SURVEYS_TWILIO_ACCOUNT_SID": "AC" + "9" * 32})
    with pytest.raises(DeliveryRefused) as rejected:
        lost(message)
    assert rejected.value.code == "20003"
    nowhere = gateways.make_twilio({**config, "SURVEYS_TWILIO_BASE_URL": fake.url + "/elsewhere"})
    with pytest.raises(DeliveryRefused) as rejected:
        nowhere(message)
    assert (rejected.value.code, str(rejected.value)) == ("20404", "Not found")
    closed = gateways.make_twilio({**config, "SURVEYS_TWILIO_BASE_URL": "http://127.0.0.1:9"})
    with pytest.raises(ChannelUnavailable):
        closed(message)


def test_the_fake_serves_from_a_process_of_its_own():
    # The benchmark's gateway: a separate process, as a real one is (it shares no GIL).
    with FakeTwilioProcess() as fake:
        send = gateways.make_twilio(
            {
                "SURVEYS_TWILIO_BASE_URL": fake.url,
                "SURVEYS_TWILIO_ACCOUNT_SID": fake.account_sid,
                "SURVEYS_TWILIO_AUTH_TOKEN": fake.auth_token,
                "SURVEYS_SMS_FROM": FROM,
                "SURVEYS_TWILIO_TIMEOUT": 5,
            }
        )
        message = {"to": MOBILE, "body": "hi", "status_callback": None}
        assert [send(message)[:2] for _ in range(3)] == ["SM"] * 3
        assert fake.accepted() == 3
        process = fake.process
    assert process is not None and process.returncode == 0


def test_signature_matches_twilios_documented_example():
    # From Twilio's "Webhooks security" documentation.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    assert gateways.signature(url, params.items(), "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    repeated = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        *[("Digits", d) for d in ["5678", "1234", "1234"]],
    ]
    assert gateways.signature(url, repeated, "12345") == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_query_strings_count_in_the_signed_url(app, client, fake: FakeTwilio):
    data = {"MessageSid": "SMq", "From": MOBILE, "Body": "5"}
    path = "/sms/inbound?" + urlencode({"x": "1"})
    headers = {"X-Twilio-Signature": sign(path, data, fake.auth_token)}
    assert client.post(path, data=data, headers=headers).status_code == 200


# --- by client category (with the categories plugin) ------------------------------------------


@pytest.fixture
def with_categories(surveys_on: dict[str, Any]) -> None:
    surveys_on["PLUGINS_DISABLED"].remove("categories")


@pytest.mark.usefixtures("with_categories")
def test_the_appraisal_by_client_category(app, client, fake, agent: Agent, admin_client):
    from plugins.categories import service as categories

    categories.create_category({"name": "Ordinary", "color": "grey"})
    vip = categories.create_category({"name": "VIP", "color": "gold"})
    answered(agent, 5, 1, client, fake)
    survey = sent_survey(agent, phone="+3546110002", email="vip@example.com")
    customer = db.session.get(Customer, survey.customer_id)
    categories.set_customer_category(customer, vip, agent=None, reason="test")
    sms(client, "2", fake, sender=survey.phone)
    page = admin_client.get("/reports/appraisal?by=category&format=csv")
    lines = page.get_data(as_text=True).splitlines()
    assert lines[0].startswith("category,")
    assert lines[1].startswith("Ordinary,1,1,") and lines[2].startswith("VIP,1,1,")
    assert lines[2].endswith(",0,1,0,0,0")


def test_without_categories_there_is_no_such_breakdown(app, admin_client):
    html = admin_client.get("/reports/appraisal").get_data(as_text=True)
    assert "client category" not in html
    csv_text = admin_client.get("/reports/appraisal?by=category&format=csv").get_data(as_text=True)
    assert csv_text.startswith("agent,")
