"""The plugin's pages: the customers' guided complaint form (``/complaint``, no login), the
agents' letter composer and claim forms on a ticket (``/tickets/<id>/letter``,
``/tickets/<id>/claim``...), and the template library (``/letters/templates``; admins edit)."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from helpdesk import (
    Conflict,
    Ticket,
    Upload,
    ValidationError,
    add_message,
    admin_required,
    customer_groupings,
    db,
    login_required,
    open_ticket,
    rate_limit_hit,
    read_uploads,
    report_period,
    ticket_link_token,
)
from plugins.letters import compose, pdf, report, service
from plugins.letters.models import COSTS, GRANTS, OUTCOMES, LetterTemplate
from plugins.letters.render import RenderRefused, TemplateRefused, check

bp = Blueprint(
    "letters",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/letters/static",
)
MAX_ID = 2**31 - 1
TICKET_URL = f"/tickets/<int(max={MAX_ID}):ticket_id>"
TEMPLATE_URL = f"/letters/templates/<int(max={MAX_ID}):template_id>"
PERSON_FIELDS = ("name", "email", "phone")
HONEYPOT_FIELD = "website"
# Status choices after sending a letter.
AFTER_SEND = ("", "pending", "resolved")


# --- the customer's guided complaint ------------------------------------------------------


def _answers() -> tuple[dict[str, str], list[str]]:
    values = {
        field: request.form.get(field, "")
        for field in (*PERSON_FIELDS, *compose.ANSWER_FIELDS, "letter")
    }
    costs = [cost for cost in request.form.getlist("costs") if cost in COSTS]
    return values, costs


def _claim_input(values: dict[str, str], costs: list[str]) -> dict[str, Any]:
    return {
        "outcome_wanted": values["outcome_wanted"] or None,
        "amount_claimed": values["amount_claimed"],
        "currency": values["currency"] if values["amount_claimed"] else "",
        "incident_date": values["incident_date"],
        "order_reference": values["order_reference"],
        "costs": costs,
    }


def _complaint_page(
    values: dict[str, str],
    costs: list[str],
    errors: dict[str, str],
    status: int = 200,
    preview: dict[str, str] | None = None,
) -> ResponseReturnValue:
    config = current_app.config
    if not values.get("currency"):
        values["currency"] = config["LETTERS_DEFAULT_CURRENCY"] or config["DEFAULT_CURRENCY"]
    return (
        render_template(
            "letters/complaint.html",
            values=values,
            costs=costs,
            errors=errors,
            preview=preview,
            hints=compose.tone_hints(preview["text"]) if preview else [],
            outcomes=OUTCOMES,
            cost_choices=COSTS,
            limits={
                "subject": config["MAX_SUBJECT_LENGTH"],
                "name": config["MAX_NAME_LENGTH"],
                "body": config["MAX_BODY_LENGTH"],
                "attachment_size": config["MAX_ATTACHMENT_SIZE"],
                "attachments": config["MAX_ATTACHMENTS"],
            },
        ),
        status,
    )


def _letter(values: dict[str, str], costs: list[str]) -> dict[str, str]:
    composed = compose.compose(values, costs, values["name"])
    if values["letter"].strip():
        composed["text"] = values["letter"]
    return composed


@bp.route("/complaint", methods=["GET", "POST"])
def complaint() -> ResponseReturnValue:
    """The guided complaint form: short sections with hints, a preview of the letter the
    customer is about to send, then a ticket with the answers as a structured claim."""
    if request.method == "GET":
        return _complaint_page({}, [], {})
    values, costs = _answers()
    if request.form.get("action") == "preview":
        letter = _letter(values, costs)
        values["letter"] = letter["text"]
        return _complaint_page(values, costs, {}, preview=letter)
    rate_limit_hit(f"portal:{request.remote_addr}", "PORTAL_RATE_LIMIT")
    if request.form.get(HONEYPOT_FIELD):
        abort(400, description=_("This form was filled in by a program, so it was not sent."))
    claim = _claim_input(values, costs)
    letter = _letter(values, costs)
    has_story = bool(values["story"].strip() or values["letter"].strip())
    try:
        ticket = open_ticket(
            # Empty when the product or the story is missing: the core refuses them with the rest.
            subject=letter["subject"] if values["product"].strip() else "",
            body=letter["text"] if has_story else "",
            kind="complaint",
            customer_email=values["email"],
            customer_name=values["name"],
            customer_phone=values["phone"],
            uploads=read_uploads(request.files.getlist("attachments")),
            source="web",
            require_customer_name=True,
            extra={"claim": claim},
        )
    except ValidationError as exc:
        errors = {**_claim_errors(claim), **_form_errors(exc.errors, has_story)}
        return _complaint_page(values, costs, errors, exc.status_code)
    link = url_for("portal.status", token=ticket_link_token(ticket), _external=True)
    session.pop("_flashes", None)
    flash(
        _(
            "Thank you. Your complaint has the reference %(reference)s. Keep this page's link "
            "(bookmark or copy it): it is the only way to follow your complaint and reply. "
            "%(link)s",
            reference=ticket.reference,
            link=link,
        ),
        "info",
    )
    return redirect(link, 303)


def _claim_errors(claim: dict[str, Any]) -> dict[str, str]:
    try:
        service.clean_claim(claim, prefix="")
    except ValidationError as exc:
        return exc.errors
    return {}


def _form_errors(errors: dict[str, str], has_story: bool) -> dict[str, str]:
    """The services' field names (``customer.email``, ``claim.currency``, ``body``) as the
    form's."""
    renamed = {"body": "letter" if has_story else "story", "subject": "product"}
    found = {}
    for field, message in errors.items():
        name = field.removeprefix("customer.").removeprefix("claim.")
        found[renamed.get(name, name)] = message
    return found


@bp.post("/complaint/preview")
def complaint_preview() -> Response:
    """The letter composed from the answers so far, with tone hints (for the live preview)."""
    values, costs = _answers()
    letter = compose.compose(values, costs, values["name"])
    shown = values["letter"] if values["letter"].strip() else letter["text"]
    return jsonify(
        subject=letter["subject"], composed=letter["text"], hints=compose.tone_hints(shown)
    )


# --- the agent's letters on a ticket ------------------------------------------------------


def _ticket(ticket_id: int) -> Ticket:
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        abort(404)
    return ticket


def _pick(templates: list[LetterTemplate], wanted: Any, ticket: Ticket) -> LetterTemplate | None:
    """The template asked for, else the first suggested one; the customer's language variant
    of it when there is one."""
    chosen = service.get_template(wanted) if wanted else None
    if chosen is None and templates:
        chosen = templates[0]
    language = ticket.customer.language
    if chosen is not None and language and chosen.language != language and not wanted:
        variant = next(
            (t for t in templates if t.key == chosen.key and t.language == language), None
        )
        chosen = variant or chosen
    return chosen


def _compose_page(
    ticket: Ticket, *, body: str | None = None, errors: dict[str, str] | None = None
) -> ResponseReturnValue:
    query = request.values.get("q", "")[:100]
    claim = service.claim_of(ticket)
    templates = service.suggested(service.list_templates(query), claim)
    chosen = _pick(templates, request.values.get("template", ""), ticket)
    letter, problem = None, None
    if chosen is not None:
        try:
            letter = service.fill(chosen, service.ticket_context(ticket, current_user))
        except RenderRefused as exc:
            problem = exc.message
    status = 422 if (problem or errors) else 200
    return (
        render_template(
            "letters/compose.html",
            ticket=ticket,
            claim=claim,
            query=query,
            templates=templates,
            chosen=chosen,
            letter=letter,
            letter_html=Markup(letter["html"]) if letter else None,  # escaped by the sandbox
            problem=problem,
            body=body if body is not None else (letter["text"] if letter else ""),
            errors=errors or {},
            after_send=AFTER_SEND,
        ),
        status,
    )


@bp.get(TICKET_URL + "/letter", endpoint="compose")
@login_required
def compose_letter(ticket_id: int) -> ResponseReturnValue:
    """Pick a template (searchable, suggested by the claim), see it filled in, edit it."""
    return _compose_page(_ticket(ticket_id))


@bp.get(TICKET_URL + "/letter/filled")
@login_required
def filled_letter(ticket_id: int) -> ResponseReturnValue:
    """A template filled in for the ticket as JSON (``subject``, ``text``): what the ticket
    page's "insert into the reply" button puts in the reply box."""
    ticket = _ticket(ticket_id)
    template = service.get_template(request.args.get("template", ""))
    if template is None:
        abort(404)
    try:
        letter = service.fill(template, service.ticket_context(ticket, current_user))
    except RenderRefused as exc:
        return jsonify(error="invalid", message=exc.message), 422
    return jsonify(subject=letter["subject"], text=letter["text"])


@bp.get(TICKET_URL + "/letter.pdf")
@login_required
def letter_as_pdf(ticket_id: int) -> ResponseReturnValue:
    """The chosen template filled in for the ticket, as the PDF letter the customer would get."""
    ticket = _ticket(ticket_id)
    template = service.get_template(request.args.get("template", ""))
    if template is None:
        abort(404)
    letter = service.fill(template, service.ticket_context(ticket, current_user))
    document = pdf.letter_pdf(letter["subject"], letter["text"], language=template.language)
    return Response(
        document,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="letter-{ticket.id}.pdf"'},
    )


@bp.post(TICKET_URL + "/letter")
@login_required
def send_letter(ticket_id: int) -> ResponseReturnValue:
    """Send the (edited) letter to the customer as a reply: it goes out by mail, threaded."""
    ticket = _ticket(ticket_id)
    body = request.form.get("body", "")
    try:
        uploads = []
        if request.form.get("pdf") and body.strip():
            subject = request.form.get("subject", "")[:200] or ticket.subject
            document = pdf.letter_pdf(subject, body, language=ticket.customer.language)
            uploads.append(Upload(f"letter-{ticket.id}.pdf", "application/pdf", document))
        add_message(
            ticket,
            body=body,
            author=current_user._get_current_object(),
            source="web",
            uploads=uploads,
            new_status=request.form.get("status") or None,
        )
    except ValidationError as exc:
        return _compose_page(ticket, body=body, errors=exc.errors)
    flash(_("The letter was sent to the customer."), "info")
    return redirect(url_for("agent.ticket", ticket_id=ticket.id), 303)


@bp.post(TICKET_URL + "/claim")
@login_required
def set_claim(ticket_id: int) -> ResponseReturnValue:
    """An agent adds or corrects a ticket's claim (e.g. a complaint that came by mail)."""
    ticket = _ticket(ticket_id)
    form = request.form
    data = {
        "outcome_wanted": form.get("outcome_wanted") or None,
        "amount_claimed": form.get("amount_claimed", ""),
        "currency": form.get("currency", "") if form.get("amount_claimed") else "",
        "incident_date": form.get("incident_date", ""),
        "order_reference": form.get("order_reference", ""),
        "costs": [c for c in form.getlist("costs") if c in COSTS],
    }
    try:
        service.set_claim(ticket, data)
    except ValidationError as exc:
        return _claim_problem(ticket, "claim", data, exc.errors)
    flash(_("The claim was saved."), "info")
    return redirect(url_for("agent.ticket", ticket_id=ticket.id), 303)


@bp.get(TICKET_URL + "/claim")
@login_required
def claim_form(ticket_id: int) -> ResponseReturnValue:
    """The form to add a claim to a ticket or correct its claim."""
    ticket = _ticket(ticket_id)
    return _claim_page(ticket, "claim", {}, {}, 200)


def _claim_problem(
    ticket: Ticket, form: str, values: dict[str, Any], errors: dict[str, str]
) -> ResponseReturnValue:
    """The claim or resolve form again, with what was typed and what is wrong (422)."""
    return _claim_page(ticket, form, values, errors, 422)


def _claim_page(
    ticket: Ticket, form: str, values: dict[str, Any], errors: dict[str, str], status: int
) -> ResponseReturnValue:
    claim = service.claim_of(ticket)
    return (
        render_template(
            "letters/claim_page.html",
            ticket=ticket,
            form=form if claim else "claim",
            claim=claim,
            claim_data=service.claim_json(claim),
            values=values,
            errors=errors,
            outcomes=OUTCOMES,
            outcome_labels=service.outcome_labels(),
            grants=GRANTS,
            costs=COSTS,
        ),
        status,
    )


@bp.post(TICKET_URL + "/claim/resolve")
@login_required
def resolve_claim(ticket_id: int) -> ResponseReturnValue:
    """Record what was granted and resolve the ticket."""
    ticket = _ticket(ticket_id)
    data = {field: request.form.get(field, "") for field in ("granted", "amount", "code", "reason")}
    try:
        service.record_resolution(ticket, data, agent=current_user._get_current_object())
    except ValidationError as exc:
        return _claim_problem(ticket, "resolve", data, exc.errors)
    flash(_("What was granted is recorded and the ticket is resolved."), "info")
    return redirect(url_for("agent.ticket", ticket_id=ticket.id), 303)


# --- the template library -----------------------------------------------------------------


def _template(template_id: int) -> LetterTemplate:
    template = db.session.get(LetterTemplate, template_id)
    if template is None:
        abort(404)
    return template


@bp.get("/letters/templates")
@login_required
def templates() -> ResponseReturnValue:
    """Every letter template (searchable); admins edit them."""
    query = request.args.get("q", "")[:100]
    return render_template(
        "letters/templates.html", templates=service.list_templates(query), query=query
    )


def _editor(
    template: LetterTemplate | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    *,
    preview: dict[str, str] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    return (
        render_template(
            "letters/edit.html",
            template=template,
            values=values,
            errors=errors or {},
            preview=preview,
            preview_html=Markup(preview["html"]) if preview else None,
            problem=problem,
            grants=GRANTS,
            variables=service.variables(),
        ),
        status,
    )


TEMPLATE_FIELDS = ("name", "language", "outcome", "subject", "body", "key")


def _template_values(template: LetterTemplate | None) -> dict[str, str]:
    if template is None:
        return {"language": "en", "outcome": "", "subject": "", "body": "", "name": ""}
    return {field: str(getattr(template, field)) for field in TEMPLATE_FIELDS} | {
        "version": str(template.version)
    }


def _save(template: LetterTemplate | None) -> ResponseReturnValue:
    values = {field: request.form.get(field, "") for field in (*TEMPLATE_FIELDS, "version")}
    agent = current_user._get_current_object()
    if request.form.get("action") == "preview":
        return _preview(template, values)
    try:
        if template is None:
            template = service.create_template(values, agent=agent)
        else:
            service.update_template(
                template, values, agent=agent, expected_version=values["version"]
            )
    except TemplateRefused as exc:
        return _editor(template, values, exc.errors, status=422)
    except Conflict as exc:
        return _editor(template, values, {"version": exc.message}, status=409)
    flash(_("Saved as version %(v)s.", v=template.version), "info")
    return redirect(url_for("letters.edit_template", template_id=template.id), 303)


def _preview(template: LetterTemplate | None, values: dict[str, str]) -> ResponseReturnValue:
    """The edited text filled in with sample data (nothing saved)."""
    draft = LetterTemplate(subject=values["subject"], body=values["body"])
    names = {name: set(fields) for name, fields in service.variables().items()}
    problems = check(values["subject"], "subject", names) + check(values["body"], "body", names)
    if problems:
        return _editor(template, values, TemplateRefused(problems).errors, status=422)
    try:
        letter = service.fill(draft, service.sample_context())
    except RenderRefused as exc:
        return _editor(template, values, problem=exc.message, status=422)
    return _editor(template, values, preview=letter)


@bp.route("/letters/templates/new", methods=["GET", "POST"])
@admin_required
def new_template() -> ResponseReturnValue:
    """Add a template (or another language's variant of one: give the same key)."""
    if request.method == "GET":
        return _editor(None, _template_values(None) | {"key": request.args.get("key", "")})
    return _save(None)


@bp.route(TEMPLATE_URL, methods=["GET", "POST"])
@admin_required
def edit_template(template_id: int) -> ResponseReturnValue:
    """Edit a template: checked on save, preview with sample data; every save a version."""
    template = _template(template_id)
    if request.method == "GET":
        return _editor(template, _template_values(template))
    return _save(template)


@bp.get(TEMPLATE_URL + "/versions")
@admin_required
def template_versions(template_id: int) -> ResponseReturnValue:
    """Every version with who and when; ``?a=&b=`` shows the diff of two."""
    template = _template(template_id)
    all_versions = service.versions(template)
    old = service.version_of(template, request.args.get("a", ""))
    new = service.version_of(template, request.args.get("b", ""))
    agents = service.agents_by_id(v.agent_id for v in all_versions)
    return render_template(
        "letters/versions.html",
        template=template,
        versions=all_versions,
        agents=agents,
        old=old,
        new=new,
        diff=service.diff(old, new) if old and new else None,
    )


@bp.post(TEMPLATE_URL + "/restore")
@admin_required
def restore_template(template_id: int) -> ResponseReturnValue:
    """Save an old version's text as the newest version."""
    template = _template(template_id)
    old = service.version_of(template, request.form.get("version", ""))
    if old is None:
        abort(404)
    try:
        service.restore(template, old, agent=current_user._get_current_object())
    except TemplateRefused as exc:
        return _editor(template, _template_values(template), exc.errors, status=422)
    flash(_("Version %(old)s restored as version %(v)s.", old=old.version, v=template.version))
    return redirect(url_for("letters.edit_template", template_id=template.id), 303)


# --- the report ---------------------------------------------------------------------------


@bp.get("/reports/complaints")
@login_required
def report_page() -> ResponseReturnValue:
    """Complaints by outcome wanted, asked versus granted per month and per client category
    (when a plugin groups customers), their cost and the time to resolve a claimed ticket; a
    chart and a CSV export."""
    start, end, errors = report_period()
    grouping = next(iter(customer_groupings().values()), None)
    found = report.claims_report(start, end, grouping)
    by_group = request.args.get("by") == "category" and grouping is not None
    if request.args.get("format") == "csv" and not errors:
        return Response(
            report.to_csv(found, by_group=by_group),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="complaints-{start}-{end}.csv"'},
        )
    return (
        render_template(
            "letters/report.html",
            report=found,
            bars=report.chart(found),
            amounts=report.amounts,
            args={"from": start.isoformat(), "to": end.isoformat()},
            errors=errors,
        ),
        422 if errors else 200,
    )
