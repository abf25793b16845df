"""The public customer portal: the complaint / support request form and the private status page.

No login: a customer reaches their ticket only through the signed link they get after
submitting the form (``tokens.ticket_link_token``); every bad, expired or revoked link answers
the same 404. Every POST is rate-limited per client address and carries a honeypot field.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from helpdesk.core import attachments, extending, ratelimit, services, tokens
from helpdesk.core.errors import ValidationError
from helpdesk.core.models import KINDS, Ticket

bp = Blueprint("portal", __name__)

HONEYPOT_FIELD = "website"
REQUEST_FIELDS = ("name", "email", "phone", "kind", "subject", "body")
# The service names customer fields ``customer.<field>``; the form calls them ``<field>``.
_FORM_FIELD = {"customer.email": "email", "customer.name": "name", "customer.phone": "phone"}
# No real token is anywhere near this long; longer ones are refused before any work.
MAX_TOKEN_LENGTH = 512


@bp.after_request
def _no_store(response: Response) -> Response:
    """Portal pages carry a private link or a customer's words: never cache them."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _guard_post() -> None:
    """Count the POST against the client's rate limit, then turn bots away (400)."""
    ratelimit.hit(f"portal:{request.remote_addr}", "PORTAL_RATE_LIMIT")
    if request.form.get(HONEYPOT_FIELD):
        abort(
            400,
            description=_(
                "This form was filled in by a program, so it was not sent. "
                "If you are a person, leave the field marked “leave this empty” empty "
                "and send the form again."
            ),
        )


def _notify(message: str) -> None:
    """Show ``message`` on the next page, replacing any not yet shown: a client that never
    follows the redirect must not grow its session cookie with every post."""
    session.pop("_flashes", None)
    flash(message, "info")


def _uploads() -> list[attachments.Upload]:
    return attachments.read_uploads(request.files.getlist("attachments"))


def _form_errors(errors: dict[str, str]) -> dict[str, str]:
    """The service's field errors under the names of the form's fields."""
    return {_FORM_FIELD.get(field, field): message for field, message in errors.items()}


def _limits() -> dict[str, Any]:
    config = current_app.config
    return {
        "subject": config["MAX_SUBJECT_LENGTH"],
        "name": config["MAX_NAME_LENGTH"],
        "body": config["MAX_BODY_LENGTH"],
        "attachment_size": config["MAX_ATTACHMENT_SIZE"],
        "attachments": config["MAX_ATTACHMENTS"],
    }


def _request_form(
    values: dict[str, str], errors: dict[str, str], status: int = 200
) -> ResponseReturnValue:
    return (
        render_template(
            "portal/new_request.html",
            values=values,
            errors=errors,
            kinds=_kind_labels(),
            guided=extending.portal_forms(),
            limits=_limits(),
        ),
        status,
    )


def _kind_labels() -> dict[str, str]:
    labels = {
        "support": _("Support request: a question, or help with a problem"),
        "complaint": _("Complaint: something went wrong and you want it put right"),
    }
    return {kind: labels[kind] for kind in sorted(KINDS, reverse=True)}


def _status_words() -> dict[str, str]:
    return {
        "new": _("Received: our team will look at it soon"),
        "open": _("Our team is working on it"),
        "pending": _("Waiting for your answer"),
        "resolved": _("Resolved. If it is not, reply and it opens again"),
        "closed": _("Closed. If you reply, it opens again"),
    }


@bp.route("/", methods=["GET", "POST"])
def new_request() -> ResponseReturnValue:
    """The public complaint / support request form; a valid one opens a ticket."""
    if request.method == "GET":
        guided = extending.portal_forms().get(request.args.get("kind", ""))
        return redirect(guided, 303) if guided else _request_form({}, {})
    _guard_post()
    values = {field: request.form.get(field, "") for field in REQUEST_FIELDS}
    try:
        ticket = services.open_ticket(
            subject=values["subject"],
            body=values["body"],
            kind=values["kind"],
            customer_email=values["email"],
            customer_name=values["name"],
            customer_phone=values["phone"],
            uploads=_uploads(),
            source="web",
            require_customer_name=True,
        )
    except ValidationError as exc:
        return _request_form(values, _form_errors(exc.errors), exc.status_code)
    link = url_for("portal.status", token=tokens.ticket_link_token(ticket), _external=True)
    _notify(
        _(
            "Thank you. Your request has the reference %(reference)s. Keep this page's link "
            "(bookmark or copy it): it is the only way to follow your request and reply. %(link)s",
            reference=ticket.reference,
            link=link,
        )
    )
    return redirect(link, 303)


def _linked_ticket(token: str) -> Ticket:
    """The ticket a status link opens, or the same 404 for every kind of bad link."""
    ticket = tokens.ticket_from_link_token(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if ticket is None:
        abort(404)
    return ticket


def _status_page(
    token: str,
    linked: Ticket,
    *,
    reply: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    ticket = services.final_ticket(linked)
    return (
        render_template(
            "portal/status.html",
            token=token,
            ticket=ticket,
            merged_from=linked if linked.id != ticket.id else None,
            messages=services.conversation(ticket, include_internal=False),
            status_words=_status_words(),
            reply=reply,
            errors=errors or {},
            limits=_limits(),
        ),
        status,
    )


@bp.route("/status/<token>")
def status(token: str) -> ResponseReturnValue:
    """A customer's private page: the public conversation of their ticket and a reply form."""
    return _status_page(token, _linked_ticket(token))


@bp.route("/status/<token>/reply", methods=["POST"])
def reply(token: str) -> ResponseReturnValue:
    """The customer's reply; it reopens a pending, resolved or closed ticket."""
    _guard_post()
    linked = _linked_ticket(token)
    body = request.form.get("body", "")
    try:
        services.add_message(
            services.final_ticket(linked),
            body=body,
            author=linked.customer,
            uploads=_uploads(),
            source="web",
        )
    except ValidationError as exc:
        return _status_page(token, linked, reply=body, errors=exc.errors, status=exc.status_code)
    _notify(_("Thank you. Your reply was added."))
    return redirect(url_for("portal.status", token=token), 303)


@bp.route("/status/<token>/attachments/<int:attachment_id>")
def attachment(token: str, attachment_id: int) -> ResponseReturnValue:
    """A file of a public message of the linked ticket; only safe images are shown inline."""
    ticket = services.final_ticket(_linked_ticket(token))
    found = services.ticket_attachment(ticket, attachment_id, include_internal=False)
    if found is None:
        abort(404)
    path = attachments.storage_path(found.storage_key)
    if not path.is_file():
        abort(404)
    inline = attachments.served_inline(found)
    return send_file(
        path,
        download_name=found.filename,
        as_attachment=not inline,
        mimetype=found.content_type if inline else "application/octet-stream",
        max_age=0,
    )
