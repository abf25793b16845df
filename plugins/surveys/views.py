"""The plugin's pages: the gateway's webhooks (``POST /sms/inbound``, ``POST /sms/status``,
signed, no CSRF), the SMS text editor for admins (``/surveys/templates``), the appraisal report
(``/reports/appraisal``) and an agent clearing a ticket's follow-up."""

from __future__ import annotations

from xml.sax.saxutils import escape

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from helpdesk import (
    Ticket,
    ValidationError,
    admin_required,
    csrf_exempt,
    customer_groupings,
    db,
    login_required,
    report_period,
)
from plugins.surveys import gateways, report, service
from plugins.surveys.text import FIELDS

bp = Blueprint("surveys", __name__, template_folder="templates")
MAX_ID = 2**31 - 1
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response>{}</Response>'


def _signed_form():
    """The webhook's form, after its size (413) and ``X-Twilio-Signature`` (403) checks."""
    limit = current_app.config["SURVEYS_WEBHOOK_MAX_BYTES"]
    if (request.content_length or 0) > limit:
        abort(413)
    request.max_content_length = limit
    form = request.form
    url = current_app.config["PUBLIC_URL"].rstrip("/") + request.full_path.rstrip("?")
    params = [(name, value) for name, values in form.lists() for value in values]
    token = current_app.config["SURVEYS_TWILIO_AUTH_TOKEN"]
    if not gateways.verify(url, params, token, request.headers.get("X-Twilio-Signature", "")):
        abort(403)
    return form


def _twiml(message: str | None) -> Response:
    body = f"<Message>{escape(message)}</Message>" if message else ""
    return Response(TWIML.format(body), mimetype="application/xml")


@bp.post("/sms/inbound")
@csrf_exempt
def inbound():
    """An SMS from a customer: a score, a comment, STOP/START. Answers with TwiML."""
    sms = service.Inbound.from_form(_signed_form())
    return _twiml(service.receive(sms))


@bp.post("/sms/status")
@csrf_exempt
def status():
    """The gateway's delivery report for one SMS."""
    service.delivery_report(_signed_form())
    return _twiml(None)


def _templates_page(status: int = 200, **context):
    body = context.get("body")
    return render_template(
        "surveys/templates.html",
        templates=service.templates(),
        fields=FIELDS,
        preview=service.preview(body) if body else None,
        errors=context.pop("errors", {}),
        **context,
    ), status


@bp.get("/surveys/templates")
@admin_required
def templates():
    """The SMS text per language, with a preview and its length in SMS segments."""
    language = request.args.get("language", "")
    body = service.templates().get(language, "") if language else ""
    return _templates_page(language=language, body=body)


@bp.post("/surveys/templates")
@admin_required
def save_template():
    """Preview a template, or save it (a syntax error is refused, the text kept)."""
    language = request.form.get("language", "")
    body = request.form.get("body", "")
    if request.form.get("action") == "preview":
        return _templates_page(language=language, body=body)
    try:
        service.save_template(language, body, agent=current_user)
    except ValidationError as exc:
        db.session.rollback()
        return _templates_page(422, errors=exc.errors, language=language, body=body)
    flash(_("SMS text saved."), "success")
    return redirect(url_for(".templates", language=language))


@bp.post(f"/surveys/tickets/<int(max={MAX_ID}):ticket_id>/follow-up")
@login_required
def follow_up_done(ticket_id: int):
    """An agent followed up a low score: the ticket leaves the "low score" filter."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        abort(404)
    service.follow_up_done(ticket)
    flash(_("Follow-up marked as done."), "success")
    return redirect(url_for("agent.ticket", ticket_id=ticket_id))


@bp.get("/reports/appraisal")
@login_required
def report_page():
    """The appraisal per agent, team or client category (when the categories plugin is
    enabled), the weekly trend, low scores and comments; an agent who is not an admin sees
    only their own."""
    start, end, errors = report_period(90)
    mine = None if current_user.is_admin else current_user.id
    grouping = customer_groupings().get("category")
    with_categories = grouping is not None
    by = request.args.get("by", "agent")
    if by not in ("team", "category") or (by == "team" and mine is not None):
        by = "agent"
    if by == "category" and grouping is not None:
        rows = report.by_group(start, end, grouping, agent_id=mine)
    else:
        by = "team" if by == "team" else "agent"
        rows = report.appraisal(start, end, by=by, agent_id=mine)
    if request.args.get("format") == "csv" and not errors:
        name = f"appraisal-{by}-{start.isoformat()}-{end.isoformat()}.csv"
        return Response(
            report.to_csv(rows, by),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    trend = report.weekly_trend(start, end, agent_id=mine)
    return render_template(
        "surveys/report.html",
        rows=rows,
        by=by,
        bars=report.chart_bars(trend),
        low=report.low_scores(start, end, agent_id=mine),
        comments=report.comments(start, end, agent_id=mine),
        args={"from": start.isoformat(), "to": end.isoformat()},
        errors=errors,
        admin=mine is None,
        with_categories=with_categories,
    ), (422 if errors else 200)
