"""The plugin's REST API under ``/api/v1``: the surveys and the appraisal report. An agent
who is not an admin sees only their own surveys and row."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from helpdesk import ValidationError, api_auth_required, db, utcnow
from plugins.surveys import report, service
from plugins.surveys.models import Survey

bp = Blueprint("surveys_api", __name__, url_prefix="/api/v1")
MAX_ID = 2**31 - 1


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def survey_json(survey: Survey, now: datetime) -> dict[str, Any]:
    """A survey as the API shows it."""
    agent = survey.agent
    error = (
        {"code": survey.error_code or None, "message": survey.error_message}
        if survey.error_code or survey.error_message
        else None
    )
    return {
        "id": survey.id,
        "ticket_id": survey.ticket_id,
        "customer_id": survey.customer_id,
        "agent": None
        if agent is None
        else {"id": agent.id, "email": agent.email, "name": agent.name},
        "phone": survey.phone,
        "status": service.public_status(survey, now),
        "score": survey.score,
        "comment": survey.comment,
        "reason": survey.reason or None,
        "error": error,
        "due_at": _time(survey.due_at),
        "sent_at": _time(survey.sent_at),
        "delivered_at": _time(survey.delivered_at),
        "answered_at": _time(survey.answered_at),
    }


def _id(name: str, errors: dict[str, str]) -> int | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        errors[name] = "must be a positive whole number"
        return None
    return int(raw)


def _date(name: str, errors: dict[str, str]) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = "must be a date (YYYY-MM-DD)"
        return None


def _page(errors: dict[str, str]) -> tuple[int, int]:
    pages = {}
    for name, default, top in (
        ("page", 1, 100_000),
        ("per_page", current_app.config["PAGE_SIZE"], current_app.config["MAX_PAGE_SIZE"]),
    ):
        raw = request.args.get(name, "").strip()
        if raw and (not raw.isdigit() or not 1 <= int(raw) <= top):
            errors[name] = f"must be between 1 and {top}"
        pages[name] = int(raw) if raw.isdigit() and 1 <= int(raw) <= top else default
    return pages["page"], pages["per_page"]


@bp.get("/surveys")
@api_auth_required
def list_surveys():
    """Surveys, newest first, filtered by ``agent``, ``ticket``, ``customer``, ``status``,
    ``from`` and ``to`` (dates of the resolve, both included)."""
    errors: dict[str, str] = {}
    agent_id, ticket_id, customer_id = (_id(n, errors) for n in ("agent", "ticket", "customer"))
    start, end = _date("from", errors), _date("to", errors)
    status = request.args.get("status", "").strip()
    if status and status not in service.PUBLIC_STATUSES:
        errors["status"] = "one of " + ", ".join(service.PUBLIC_STATUSES)
    page, per_page = _page(errors)
    if errors:
        raise ValidationError(errors)
    now = utcnow()
    query = select(Survey).options(joinedload(Survey.agent))
    if not g.api_agent.is_admin:
        agent_id = g.api_agent.id if agent_id in (None, g.api_agent.id) else -1
    for column, value in (
        (Survey.agent_id, agent_id),
        (Survey.ticket_id, ticket_id),
        (Survey.customer_id, customer_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if status:
        query = query.where(service.status_condition(status, now))
    if start is not None:
        query = query.where(Survey.created_at >= report.period(start, start)[0])
    if end is not None:
        query = query.where(Survey.created_at < report.period(end, end)[1])
    query = query.order_by(Survey.id.desc()).offset((page - 1) * per_page).limit(per_page + 1)
    rows = list(db.session.scalars(query))
    has_next = len(rows) > per_page
    return jsonify(
        items=[survey_json(s, now) for s in rows[:per_page]],
        page=page,
        per_page=per_page,
        has_next=has_next,
        next_page=page + 1 if has_next else None,
    )


@bp.get("/reports/appraisal")
@api_auth_required
def appraisal():
    """The appraisal per agent (``by=team``: per team, admins only) from ``from`` to ``to``
    (dates, both included; default the last 90 days)."""
    errors: dict[str, str] = {}
    today = date.today()
    start = _date("from", errors) or date.fromordinal(today.toordinal() - 90)
    end = _date("to", errors) or today
    if start > end:
        errors["to"] = "must not be before from"
    by = request.args.get("by", "agent")
    if by not in ("agent", "team"):
        errors["by"] = "agent or team"
    if errors:
        raise ValidationError(errors)
    mine = None if g.api_agent.is_admin else g.api_agent.id
    by = by if mine is None else "agent"
    rows = report.appraisal(start, end, by=by, agent_id=mine)
    return jsonify(
        {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "items": [report.to_json(r, by) for r in rows],
        }
    )
