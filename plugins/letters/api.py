"""The plugin's REST API under ``/api/v1`` (the core's bearer tokens): letter templates, a
letter previewed for a ticket, and what was granted on a claim."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, g, jsonify, url_for

from helpdesk import Ticket, ValidationError, api_auth_required, db, json_body
from plugins.letters import service
from plugins.letters.models import LetterTemplate
from plugins.letters.render import TemplateRefused

bp = Blueprint("letters_api", __name__, url_prefix="/api/v1")
MAX_ID = 2**31 - 1
TICKET_URL = f"/tickets/<int(max={MAX_ID}):ticket_id>"


def template_json(template: LetterTemplate) -> dict[str, Any]:
    """A template as JSON."""
    return {
        "id": template.id,
        "key": template.key,
        "name": template.name,
        "language": template.language,
        "outcome": template.outcome or None,
        "subject": template.subject,
        "body": template.body,
        "version": template.version,
    }


def _admin() -> None:
    if not g.api_agent.is_admin:
        abort(403, description="Only administrators may do this.")


def _refused(exc: TemplateRefused) -> Response:
    response = jsonify(errors=exc.problems)
    response.status_code = 422
    return response


def _ticket(ticket_id: int) -> Ticket:
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        abort(404)
    return ticket


@bp.get("/letter-templates")
@api_auth_required
def list_templates():
    """Every letter template, by name and language."""
    return jsonify({"items": [template_json(t) for t in service.list_templates()]})


@bp.post("/letter-templates")
@api_auth_required
def create_template():
    """Add a template (administrators only); 422 lists each problem with its line."""
    _admin()
    try:
        template = service.create_template(json_body(exact_numbers=True), agent=g.api_agent)
    except TemplateRefused as exc:
        return _refused(exc)
    response = jsonify(template_json(template))
    response.status_code = 201
    response.headers["Location"] = url_for(".list_templates")
    return response


@bp.put(f"/letter-templates/<int(max={MAX_ID}):template_id>")
@api_auth_required
def update_template(template_id: int):
    """Save a new version of a template (administrators only). Send the ``version`` you
    edited: if someone saved since, 409 and nothing is saved."""
    _admin()
    template = db.session.get(LetterTemplate, template_id)
    if template is None:
        abort(404)
    data = json_body(exact_numbers=True)
    try:
        service.update_template(
            template, data, agent=g.api_agent, expected_version=data.get("version")
        )
    except TemplateRefused as exc:
        return _refused(exc)
    return jsonify(template_json(template))


@bp.post(TICKET_URL + "/letters/preview")
@api_auth_required
def preview_letter(ticket_id: int):
    """A template filled in for the ticket: ``subject``, ``text`` and ``html``."""
    ticket = _ticket(ticket_id)
    template = service.get_template(json_body(exact_numbers=True).get("template_id"))
    if template is None:
        raise ValidationError({"template_id": "is not a letter template"})
    return jsonify(service.fill(template, service.ticket_context(ticket, g.api_agent)))


@bp.post(TICKET_URL + "/claim/resolution")
@api_auth_required
def resolve_claim(ticket_id: int):
    """Record what was granted on the ticket's claim, and resolve the ticket."""
    ticket = _ticket(ticket_id)
    claim = service.record_resolution(ticket, json_body(exact_numbers=True), agent=g.api_agent)
    agents = service.agents_by_id([claim.granted_by_id])
    return jsonify(service.claim_json(claim, agents))
