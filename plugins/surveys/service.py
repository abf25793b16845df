"""The survey's rules: schedule one when a ticket is resolved (or say why not), drop it when
the ticket is reopened, send it through the worker, read the answers, opt-outs and delivery
reports, and act on a low score. The views, the API and the hooks all call these."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, url_for
from flask_babel import gettext as _
from sqlalchemy import Row, Select, and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from helpdesk import (
    Agent,
    ChannelUnavailable,
    Customer,
    Delivery,
    DeliveryRefused,
    Message,
    Team,
    Ticket,
    ValidationError,
    call_each,
    db,
    enqueue,
    notify_agents,
    utcnow,
)
from plugins.surveys import gateways, phones, rollup, text
from plugins.surveys.models import STATUSES, SmsOptOut, SmsReply, Survey, SurveyTemplate

CHANNEL = "sms"
SENT_STATUSES = ("sent", "delivered", "answered")
LOW_SCORES = (1, 2)
MAX_SMS_LENGTH = 1600
MAX_SID_LENGTH = 64
DELIVERY_STATUSES = ("queued", "sending", "sent", "delivered", "undelivered", "failed")
PUBLIC_STATUSES = (*STATUSES, "expired")
# A survey's row as a resolve adds it (a Core statement: no unit-of-work work).
NEW_SURVEY = Survey.__table__.insert()
# A reopened ticket's surveys not sent yet are skipped (built once: reopening is frequent).
DROP_REOPENED = (
    update(Survey.__table__)
    .where(
        Survey.__table__.c.ticket_id == bindparam("reopened_ticket_id"),
        Survey.__table__.c.status == "scheduled",
    )
    .values(status="skipped", reason="reopened")
    .returning(Survey.__table__.c.created_at, Survey.__table__.c.agent_id)
)
# A scheduled survey's end as the worker records it: the columns to set are the parameters
# given besides ``survey_id`` (compiled once per set of columns).
SETTLE = update(Survey.__table__).where(
    Survey.__table__.c.id == bindparam("survey_id"), Survey.__table__.c.status == "scheduled"
)


def _config(key: str) -> Any:
    return current_app.config[key]


def region() -> str | None:
    """The region for numbers written without a country code."""
    return _config("SURVEYS_DEFAULT_REGION") or _config("PHONE_DEFAULT_REGION")


# --- scheduling ------------------------------------------------------------------------------


def template_body(language: str) -> tuple[str, str]:
    """``(language, template)`` for a customer's ``language``: the saved one, the shipped
    default, else the deployment's default language's."""
    default = _config("BABEL_DEFAULT_LOCALE")
    wanted = [lang for lang in (language, language.split("_")[0], default, "en") if lang]
    saved = dict(
        db.session.execute(
            select(SurveyTemplate.language, SurveyTemplate.body).where(
                SurveyTemplate.language.in_(wanted)
            )
        ).all()
    )
    for lang in wanted:
        body = saved.get(lang) or text.DEFAULT_TEMPLATES.get(lang)
        if body:
            return lang, body
    return "en", text.DEFAULT_TEMPLATES["en"]


def sms_text(body: str, *, agent_name: str | None, reference: str, customer_name: str) -> str:
    """The template ``body`` filled in for the ticket ``reference`` (``#1234``) of the customer
    ``customer_name``, resolved by the agent ``agent_name`` (``None``: no agent)."""
    first_name = (agent_name.split() or [""])[0] if agent_name is not None else ""
    return text.fill(
        body,
        {
            "agent": first_name or _config("HELPDESK_NAME"),
            "reference": reference,
            "customer": customer_name,
            "helpdesk": _config("HELPDESK_NAME"),
        },
    )


def schedule(ticket: Ticket, agent_id: int | None, *, now: datetime | None = None) -> str:
    """Schedule the survey for ``ticket``, being resolved by agent ``agent_id``: one row and
    its outbox item (due after ``SURVEYS_DELAY_SECONDS``), added to the current transaction
    without a query (it rides on the status change's own). Everything that may stop or hold
    the SMS (the number, opt-out, too recent, reopened, quiet hours) is decided by the worker
    when it is due. Returns the outbox key."""
    now = now or utcnow()
    key = f"survey-{ticket.id}-{secrets.token_hex(8)}"
    due = now + timedelta(seconds=_config("SURVEYS_DELAY_SECONDS"))
    row = {
        "ticket_id": ticket.id,
        "customer_id": ticket.customer_id,
        "agent_id": agent_id,
        "team_id": ticket.team_id,
        "created_at": now,
        "due_at": due,
        "outbox_key": key,
    }
    # Both rows by Core statements on the transaction's connection: no unit-of-work work, and
    # the ticket's own changes are flushed with its commit. The outbox item first: were the
    # survey's row refused, an item finding no survey sends nothing (the other way round, a
    # survey would wait for an item that never comes).
    enqueue(
        CHANNEL, {"survey_key": key}, dedupe_key=key, ticket_id=ticket.id, due_at=due, track=False
    )
    db.session.connection().execute(NEW_SURVEY, row)
    return key


def drop_reopened(ticket: Ticket) -> None:
    """Skip the ticket's surveys not sent yet (reason ``reopened``), in the current
    transaction."""
    dropped = db.session.execute(DROP_REOPENED, {"reopened_ticket_id": ticket.id}).all()
    for created_at, agent_id in dropped:
        rollup.settle(created_at, agent_id)


# --- sending (the worker) --------------------------------------------------------------------


def backend() -> gateways.Send:
    """The sender of ``SURVEYS_SMS_BACKEND``, made once per app and backend name."""
    name = _config("SURVEYS_SMS_BACKEND")
    made = current_app.extensions.setdefault("surveys_sms_senders", {})
    if name not in made:
        found: dict[str, Any] = {}
        for backends in call_each("helpdesk_sms_backends"):
            for key, make in backends.items():
                found.setdefault(key, make)
        if name not in found:
            raise ChannelUnavailable(f"no SMS backend {name!r} (SURVEYS_SMS_BACKEND)")
        made[name] = found[name](current_app.config)
    return made[name]


def status_callback_url() -> str:
    """Where the gateway reports delivery (on ``PUBLIC_URL``, as the signature needs)."""
    return _config("PUBLIC_URL").rstrip("/") + "/sms/status"


@functools.cache
def _due_query() -> Select:
    """The query of ``_due_survey``, built once (``key``, ``since`` and ``language`` are bound
    at each call). Columns, not ORM objects: the worker reads one row per SMS."""
    survey, ticket, customer = Survey.__table__, Ticket.__table__, Customer.__table__
    agent, template, opt_out = Agent.__table__, SurveyTemplate.__table__, SmsOptOut.__table__
    earlier = survey.alias("earlier")
    recent = (
        select(earlier.c.id)
        .where(
            earlier.c.customer_id == survey.c.customer_id,
            earlier.c.id != survey.c.id,
            earlier.c.sent_at >= bindparam("since"),
        )
        .exists()
    )
    language = func.coalesce(func.nullif(customer.c.language, ""), bindparam("language"))
    # The number's opt-out when the customer's is stored in E.164 already (the usual case).
    opted_out = select(opt_out.c.opted_out).where(opt_out.c.phone == customer.c.phone)
    return (
        select(
            survey.c.id,
            survey.c.status,
            survey.c.message_sid,
            survey.c.created_at,
            survey.c.agent_id,
            survey.c.ticket_id,
            ticket.c.status.label("ticket_status"),
            agent.c.name.label("agent_name"),
            customer.c.name.label("customer_name"),
            customer.c.phone,
            customer.c.language,
            recent.label("recent"),
            opted_out.scalar_subquery().label("opted_out"),
            template.c.body.label("template"),
        )
        .select_from(
            survey.join(ticket, ticket.c.id == survey.c.ticket_id)
            .join(customer, customer.c.id == survey.c.customer_id)
            .outerjoin(agent, agent.c.id == survey.c.agent_id)
            .outerjoin(template, template.c.language == language)
        )
        .where(survey.c.outbox_key == bindparam("key"))
    )


def _due_survey(key: str, now: datetime) -> Row | None:
    """The survey of outbox key ``key`` with what sending it needs, in one query: its ``id``,
    ``status``, ``message_sid``, ``created_at``, ``agent_id``, ``ticket_id``; the ticket's
    ``ticket_status``; ``agent_name``; the customer's ``customer_name``, ``phone`` and
    ``language``; ``recent`` (another survey sent to the customer lately); ``opted_out`` (for
    the number as the customer's record has it); the saved ``template`` of their language."""
    since = now - timedelta(days=_config("SURVEYS_MIN_DAYS_BETWEEN"))
    language = _config("BABEL_DEFAULT_LOCALE")
    return db.session.execute(
        _due_query(), {"key": key, "since": since, "language": language}
    ).first()


def _opted_out(phone: phones.Phone, stored_phone: str | None, stored: bool | None) -> bool:
    """Whether ``phone`` opted out (``stored``: the answer for the number as the customer's
    record has it, ``stored_phone``, read with the survey)."""
    if phone.e164 == stored_phone:
        return bool(stored)
    return bool(db.session.scalar(select(SmsOptOut.opted_out).where(SmsOptOut.phone == phone.e164)))


def _reason_now(
    ticket_status: str, phone: phones.Phone, opted_out: Callable[[], bool], recent: bool
) -> str:
    """Why the survey is not sent, checked in this order; empty when it goes."""
    if ticket_status not in ("resolved", "closed"):
        return "reopened"
    if phone.reason:
        return phone.reason
    if opted_out():
        return "opted_out"
    return "too_recent" if recent else ""


def _wake(phone: phones.Phone, now: datetime) -> datetime:
    """``now``, or the end of the quiet hours in the number's time zone when now is in them."""
    tz = phones.zone(phone.time_zone, _config("BABEL_DEFAULT_TIMEZONE"))
    return phones.outside_quiet_hours(now, tz, phones.quiet_hours(_config("SURVEYS_QUIET_HOURS")))


def deliver(delivery: Delivery) -> None:
    """Send one survey (the worker calls this outside any transaction). A survey already sent
    (a retry after a crash) or dropped is not sent again; one whose ticket was reopened, whose
    customer has no mobile number, opted out or was sent another survey within
    ``SURVEYS_MIN_DAYS_BETWEEN`` days is skipped with that reason; one due in the quiet hours
    of the customer's time zone is queued again for their end (it stays ``scheduled``)."""
    now = utcnow()
    db.session.rollback()  # read a fresh snapshot, not one a caller left open
    found = _due_survey(str(delivery.payload.get("survey_key")), now)
    if found is None or found.status != "scheduled" or found.message_sid:
        db.session.rollback()
        return
    phone = phones.parse(found.phone, region())
    reason = _reason_now(
        found.ticket_status,
        phone,
        lambda: _opted_out(phone, found.phone, found.opted_out),
        found.recent,
    )
    language = found.language or _config("BABEL_DEFAULT_LOCALE")
    template = found.template or text.DEFAULT_TEMPLATES.get(language)
    if template is None:
        language, template = template_body(language)
    body = sms_text(
        template,
        agent_name=found.agent_name,
        reference=f"#{found.ticket_id}",  # as ``Ticket.reference``
        customer_name=found.customer_name,
    )
    sms = {"to": phone.e164, "body": body, "status_callback": status_callback_url()}
    settled = _Settled(found.id, found.created_at, found.agent_id, phone.e164, language)
    # Writes go in transactions of their own (on SQLite a read transaction cannot always
    # become a writing one), and no transaction stays open while the gateway is called.
    db.session.rollback()
    if reason:
        settled.mark(status="skipped", reason=reason)
        return
    wake = _wake(phone, now)
    if wake > now:
        _hold(settled, found.ticket_id, wake)
        return
    try:
        sid = backend()(sms)
    except DeliveryRefused as exc:
        code = str(getattr(exc, "code", "") or "")[:16]
        settled.mark(status="failed", body=body, error_code=code, error_message=str(exc)[:500])
        raise DeliveryRefused(f"{code}: {exc}" if code else str(exc)) from exc
    settled.mark(
        status="sent",
        body=body,
        sent_at=utcnow(),
        message_sid=str(sid)[:MAX_SID_LENGTH],
        delivery_status="sent",
    )


@dataclass(frozen=True)
class _Settled:
    """A due survey as the worker read it: what its end is recorded with."""

    id: int
    created_at: datetime
    agent_id: int | None
    phone: str
    language: str

    def mark(self, **values: Any) -> None:
        """Record how the send went (and count it in the roll-up), unless the survey left
        ``scheduled`` meanwhile. Commits."""
        result = db.session.connection().execute(
            SETTLE, {"survey_id": self.id, "phone": self.phone, "language": self.language, **values}
        )
        if result.rowcount:
            rollup.settle(self.created_at, self.agent_id, sent="sent_at" in values)
        db.session.commit()


def _hold(survey: _Settled, ticket_id: int, wake: datetime) -> None:
    """Queue the survey again for the end of the quiet hours (its outbox item ends). Commits."""
    key = f"survey-{ticket_id}-{secrets.token_hex(8)}"
    held = db.session.execute(
        update(Survey.__table__)
        .where(Survey.id == survey.id, Survey.status == "scheduled")
        .values(due_at=wake, outbox_key=key, phone=survey.phone, language=survey.language)
    )
    if held.rowcount:
        enqueue(CHANNEL, {"survey_key": key}, dedupe_key=key, ticket_id=ticket_id, due_at=wake)
    db.session.commit()


# --- answers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbound:
    """One SMS as the gateway posted it."""

    message_sid: str
    sender: str
    to: str
    body: str

    @classmethod
    def from_form(cls, form: Any) -> Inbound:
        """Read the webhook's form; ``ValidationError`` when a required field is missing."""
        sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
        sender = (form.get("From") or "").strip()
        errors = {}
        if not sid or len(sid) > MAX_SID_LENGTH:
            errors["MessageSid"] = "required, at most 64 characters"
        if not sender:
            errors["From"] = "required"
        if errors:
            raise ValidationError(errors)
        return cls(
            message_sid=sid,
            sender=phones.e164_or_raw(sender, region()),
            to=(form.get("To") or "").strip()[:32],
            body=(form.get("Body") or "")[:MAX_SMS_LENGTH],
        )


def receive(sms: Inbound, *, now: datetime | None = None) -> str | None:
    """Take in one SMS: an opt-out or opt-in, a score, a comment, or unmatched (kept). Returns
    the text to answer with (asking again for a score), or ``None``. Idempotent by
    ``MessageSid``: a replay changes nothing. Commits."""
    now = now or utcnow()
    if db.session.scalar(select(SmsReply.id).where(SmsReply.message_sid == sms.message_sid)):
        return None
    reply = SmsReply(
        message_sid=sms.message_sid,
        from_number=sms.sender,
        to_number=sms.to,
        body=sms.body,
        received_at=now,
    )
    answer = _take(reply, sms, now)
    db.session.add(reply)
    try:
        db.session.commit()
    except IntegrityError:  # the same MessageSid posted twice at once: the other one won
        db.session.rollback()
        return None
    return answer


def _take(reply: SmsReply, sms: Inbound, now: datetime) -> str | None:
    word = text.keyword(sms.body)
    survey = _latest_survey(sms.sender, now)
    reply.survey_id = survey.id if survey is not None else None
    if word:
        reply.kind = word
        set_opt_out(
            sms.sender,
            word == "opt_out",
            keyword=sms.body.strip().upper()[:16],
            customer_id=survey.customer_id if survey is not None else None,
            now=now,
        )
        return None
    if survey is None:
        reply.kind = "unmatched"
        return None
    if survey.score is not None:
        reply.kind = "comment"
        survey.comment = "\n".join(part for part in (survey.comment, sms.body.strip()) if part)
        return None
    found = text.read_score(sms.body)
    if found is None:
        if survey.asked_again:
            reply.kind = "comment"
            survey.comment = "\n".join(p for p in (survey.comment, sms.body.strip()) if p)
            return None
        reply.kind = "ask_again"
        survey.asked_again = True
        return text.ASK_AGAIN.get(survey.language, text.ASK_AGAIN["en"])
    reply.kind = "score"
    survey.score, comment = found
    survey.comment = "\n".join(p for p in (survey.comment, comment) if p)
    survey.status, survey.answered_at = "answered", now
    rollup.add(survey.created_at, survey.agent_id, **{f"score_{survey.score}": 1})
    if survey.score in LOW_SCORES:
        _low_score(survey)
    return None


def _latest_survey(phone: str, now: datetime) -> Survey | None:
    """The latest survey sent to ``phone`` within the reply window, locked until the commit
    (two replies at once take their turns: the first score counts once, in the roll-up too)."""
    since = now - timedelta(days=_config("SURVEYS_REPLY_DAYS"))
    return db.session.scalar(
        select(Survey)
        .where(Survey.phone == phone, Survey.sent_at >= since, Survey.status.in_(SENT_STATUSES))
        .order_by(Survey.sent_at.desc(), Survey.id.desc())
        .limit(1)
        .with_for_update()
    )


def set_opt_out(
    phone: str, opted_out: bool, *, keyword: str, customer_id: int | None, now: datetime
) -> SmsOptOut:
    """Record that ``phone`` opted out (or back in), with the time and the customer."""
    row = db.session.get(SmsOptOut, phone)
    if row is None:
        row = SmsOptOut(phone=phone)
        db.session.add(row)
    row.opted_out, row.keyword, row.changed_at = opted_out, keyword, now
    if customer_id is not None:
        row.customer_id = customer_id
    return row


def _low_score(survey: Survey) -> None:
    """A score of 1-2: an internal note on the ticket, a mail to the team lead (else the
    admins), and the ticket marked for a follow-up."""
    survey.follow_up = True
    ticket = db.session.get(Ticket, survey.ticket_id)
    agent = db.session.get(Agent, survey.agent_id) if survey.agent_id else None
    summary = _(
        "SMS survey: the customer gave %(score)s of 5 for %(agent)s.",
        score=survey.score,
        agent=agent.name if agent else "—",
    )
    comment = _("Comment: %(c)s", c=survey.comment) if survey.comment else ""
    db.session.add(
        Message(
            ticket_id=ticket.id,
            author_type="customer",
            customer_id=survey.customer_id,
            body="\n\n".join(p for p in (summary, comment) if p),
            internal=True,
            source="sms",
        )
    )
    link = _config("PUBLIC_URL").rstrip("/") + url_for("agent.ticket", ticket_id=ticket.id)
    notify_agents(
        _recipients(survey.team_id, agent),
        _("Low survey score on %(ref)s: %(score)s of 5", ref=ticket.reference, score=survey.score),
        "\n\n".join(
            p for p in (summary, comment, f"{ticket.reference} {ticket.subject}", link) if p
        ),
        key=f"survey{survey.id}low",
        ticket_id=ticket.id,
    )


def _recipients(team_id: int | None, agent: Agent | None) -> list[Agent]:
    """The lead of the ticket's team (else of the agent's teams), else the admins."""
    teams = [db.session.get(Team, team_id)] if team_id else (agent.teams if agent else [])
    for team in teams:
        if team is not None and team.lead is not None and team.lead.active:
            return [team.lead]
    return list(
        db.session.scalars(select(Agent).where(Agent.role == "admin", Agent.active.is_(True)))
    )


def delivery_report(form: Any) -> Survey | None:
    """A gateway's status callback: the SMS's delivery status and error code. Statuses only
    move forward (a late "sent" never undoes "delivered"). Commits."""
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()[:MAX_SID_LENGTH]
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not sid or status not in DELIVERY_STATUSES:
        raise ValidationError({"MessageStatus": "required: " + ", ".join(DELIVERY_STATUSES)})
    # Locked until the commit: two reports at once count a delivery once.
    survey = db.session.scalar(select(Survey).where(Survey.message_sid == sid).with_for_update())
    if survey is None:
        return None
    if DELIVERY_STATUSES.index(status) > DELIVERY_STATUSES.index(
        survey.delivery_status or "queued"
    ):
        survey.delivery_status = status
        if status == "delivered":
            survey.delivered_at = utcnow()
            rollup.add(survey.created_at, survey.agent_id, delivered=1)
            if survey.status == "sent":
                survey.status = "delivered"
        elif status in ("undelivered", "failed"):
            survey.error_code = (form.get("ErrorCode") or "").strip()[:16]
            survey.error_message = (form.get("ErrorMessage") or status).strip()[:500]
            if survey.status in ("sent", "delivered"):
                survey.status = "failed"
    db.session.commit()
    return survey


# --- opt-out state, panels, follow-ups ---------------------------------------------------------


def last_scores(customer_ids: list[int]) -> dict[int, int]:
    """Each customer's latest survey score (customers never scored are left out), in one
    query."""
    rows = db.session.execute(
        select(Survey.customer_id, Survey.score)
        .where(Survey.customer_id.in_(customer_ids), Survey.score.is_not(None))
        .order_by(Survey.customer_id, Survey.answered_at.desc(), Survey.id.desc())
    )
    found: dict[int, int] = {}
    for customer_id, score in rows:
        found.setdefault(customer_id, score)
    return found


def opt_out_states(customers: list[Customer]) -> dict[int, SmsOptOut | None]:
    """Each customer's opt-out record (by their number, else by customer), in one query."""
    numbers = {c.id: phones.e164_or_raw(c.phone, region()) if c.phone else "" for c in customers}
    ids = [c.id for c in customers]
    rows = db.session.scalars(
        select(SmsOptOut).where(
            or_(
                SmsOptOut.phone.in_([n for n in numbers.values() if n]),
                SmsOptOut.customer_id.in_(ids),
            )
        )
    ).all()
    by_phone = {row.phone: row for row in rows}
    by_customer = {row.customer_id: row for row in rows if row.customer_id is not None}
    return {c.id: by_phone.get(numbers[c.id]) or by_customer.get(c.id) for c in customers}


_TICKET_SURVEYS = (
    select(Survey)
    .options(selectinload(Survey.agent))  # no second query when there is no survey
    .where(Survey.ticket_id == bindparam("ticket_id"))
    .order_by(Survey.id.desc())
)


def ticket_surveys(ticket: Ticket) -> list[Survey]:
    """The ticket's surveys, newest first, with their agents."""
    return list(db.session.scalars(_TICKET_SURVEYS, {"ticket_id": ticket.id}))


def customer_surveys(customer: Customer, limit: int = 10) -> list[Survey]:
    """The customer's latest surveys, with their agents."""
    return list(
        db.session.scalars(
            select(Survey)
            .options(joinedload(Survey.agent))
            .where(Survey.customer_id == customer.id)
            .order_by(Survey.id.desc())
            .limit(limit)
        )
    )


_FOLLOW_UP_TICKET_IDS = select(Survey.ticket_id).where(
    Survey.follow_up.is_(True), Survey.ticket_id.in_(bindparam("ids", expanding=True))
)


def follow_up_ticket_ids(ticket_ids: list[int]) -> set[int]:
    """Which of ``ticket_ids`` wait for a follow-up after a low score."""
    if not ticket_ids:
        return set()
    return set(db.session.scalars(_FOLLOW_UP_TICKET_IDS, {"ids": ticket_ids}))


def follow_up_done(ticket: Ticket) -> int:
    """Clear the ticket's follow-up marks. Commits; returns how many were cleared."""
    result = db.session.execute(
        update(Survey)
        .where(Survey.ticket_id == ticket.id, Survey.follow_up.is_(True))
        .values(follow_up=False)
    )
    db.session.commit()
    return result.rowcount


def public_status(survey: Survey, now: datetime | None = None) -> str:
    """The survey's status as the API shows it (``expired`` when a sent survey got no answer
    within ``SURVEYS_REPLY_DAYS``)."""
    cutoff = (now or utcnow()) - timedelta(days=_config("SURVEYS_REPLY_DAYS"))
    waiting = survey.status in ("sent", "delivered") and survey.sent_at is not None
    return "expired" if waiting and survey.sent_at < cutoff else survey.status


def status_condition(status: str, now: datetime):
    """SQL for surveys whose ``public_status`` is ``status``."""
    cutoff = now - timedelta(days=_config("SURVEYS_REPLY_DAYS"))
    waiting = Survey.status.in_(("sent", "delivered"))
    if status == "expired":
        return and_(waiting, Survey.sent_at < cutoff)
    if status in ("sent", "delivered"):
        return and_(Survey.status == status, Survey.sent_at >= cutoff)
    return Survey.status == status


# --- templates ---------------------------------------------------------------------------------


def save_template(language: str, body: str, *, agent: Agent | None) -> SurveyTemplate:
    """Save the SMS text for ``language``; a syntax error or unknown field is refused
    (``ValidationError``) and nothing is saved. Commits."""
    errors: dict[str, str] = {}
    lang = (language or "").strip()
    if not lang or len(lang) > 16 or not lang.replace("_", "").replace("-", "").isalnum():
        errors["language"] = "a language code such as en or pt_BR"
    try:
        clean = text.check_template(body or "")
    except text.TemplateError as exc:
        errors["body"] = str(exc)
    if errors:
        raise ValidationError(errors)
    row = db.session.get(SurveyTemplate, lang) or SurveyTemplate(language=lang)
    row.body, row.updated_at = clean, utcnow()
    row.updated_by_id = agent.id if agent is not None else None
    db.session.add(row)
    db.session.commit()
    return row


def templates() -> dict[str, str]:
    """Every language's SMS text: the shipped defaults, overridden by the saved ones."""
    saved = dict(db.session.execute(select(SurveyTemplate.language, SurveyTemplate.body)).all())
    return {**text.DEFAULT_TEMPLATES, **saved}


def preview(body: str) -> dict[str, Any]:
    """The template filled in with an example, and its length in characters and segments
    (``error`` when it does not parse)."""
    try:
        clean = text.check_template(body)
    except text.TemplateError as exc:
        return {"error": str(exc)}
    example = text.fill(
        clean,
        {
            "agent": "Ana",
            "reference": "#1234",
            "customer": "Cleo",
            "helpdesk": _config("HELPDESK_NAME"),
        },
    )
    return {"text": example, **text.segments(example)}
