"""The plugin's pages: ``GET /hello`` and ``POST /hello/tickets/<id>/greet``."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from helpdesk import Ticket, db, login_required
from helpdesk_hello.models import Greeting

bp = Blueprint("hello", __name__, template_folder="templates", url_prefix="/hello")
MAX_ID = 2**31 - 1


@bp.get("/")
@login_required
def index():
    """The greeting, and how many tickets were greeted."""
    total = db.session.scalar(select(func.count(Greeting.id)))
    return render_template(
        "hello/index.html", greeting=current_app.config["HELLO_GREETING"], total=total
    )


@bp.post(f"/tickets/<int(max={MAX_ID}):ticket_id>/greet")
@login_required
def greet(ticket_id: int):
    """Greet a ticket, then go back to it."""
    if db.session.get(Ticket, ticket_id) is None:
        abort(404)
    db.session.add(Greeting(ticket_id=ticket_id, agent_id=current_user.id))
    db.session.commit()
    flash(_("Greeted."), "success")
    return redirect(url_for("agent.ticket", ticket_id=ticket_id))
