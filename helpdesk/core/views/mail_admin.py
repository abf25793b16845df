"""The mail quarantine page for admins, and the template helpers that fold quoted history and
show a received mail's HTML."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from helpdesk.core.errors import NotFound
from helpdesk.core.mail import quarantine
from helpdesk.core.mail.display import display_html
from helpdesk.core.mail.fold import Folded, split_quoted
from helpdesk.core.mail.ingest import reprocess
from helpdesk.extensions import login_manager

bp = Blueprint("mail_admin", __name__)


@bp.app_template_global("split_quoted")
def _split_quoted(body: str) -> Folded:
    """``split_quoted`` for templates: the new part of a message and its folded history."""
    return split_quoted(body or "")


@bp.app_template_global("mail_html")
def _mail_html(markup: str | None) -> Markup:
    """``display_html`` for templates: a received mail's HTML, cleaned again for display."""
    return display_html(markup)


@bp.before_request
def _require_admin():
    """Admins only (others get 403; anonymous visitors are sent to log in)."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403)
    return None


@bp.get("/admin/mail/quarantine")
def quarantine_list():
    """The mail held in quarantine, newest first, each with a re-process button."""
    return render_template("admin/mail_quarantine.html", items=quarantine.held())


@bp.post("/admin/mail/quarantine/<int:item_id>/retry")
def quarantine_retry(item_id: int):
    """Process a quarantined mail again and say what became of it."""
    try:
        outcome = reprocess(item_id)
    except NotFound:
        abort(404)
    if outcome.status == "quarantined":
        flash(_("Mail #%(id)s is still held: %(reason)s.", id=item_id, reason=outcome.reason))
    elif outcome.ticket_id:
        flash(
            _(
                "Mail #%(id)s was processed: ticket #%(ticket)s.",
                id=item_id,
                ticket=outcome.ticket_id,
            )
        )
    else:
        flash(_("Mail #%(id)s was processed (%(status)s).", id=item_id, status=outcome.status))
    return redirect(url_for("mail_admin.quarantine_list"))
