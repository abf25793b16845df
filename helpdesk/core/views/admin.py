"""Admin pages (agents, teams) and every agent's own API tokens.

Agents and teams are for admins only (403 for other agents); ``/account/tokens`` is for any
logged-in agent and only ever shows or changes that agent's own tokens.
"""

from __future__ import annotations

from flask import (
    Blueprint,
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

from helpdesk.core import accounts, tokens
from helpdesk.core.errors import Conflict, NotFound, ValidationError
from helpdesk.core.mail import outbound
from helpdesk.core.models import ROLES, Agent, Team
from helpdesk.core.validation import clean_text
from helpdesk.extensions import db, login_manager

bp = Blueprint("admin", __name__)

TOKEN_NAME_LENGTH = 100  # the width of ``ApiToken.name``
MAX_ID = 2**31 - 1  # the largest id an INTEGER column holds; larger ones are simply not found


@bp.before_request
def _require_admin():
    """Log in first; then only admins get past, except to their own tokens."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if request.endpoint != "admin.tokens" and not current_user.is_admin:
        abort(403)
    return None


def _me() -> Agent:
    return current_user._get_current_object()


def _form_id(value: str) -> int | None:
    """A form value that names a row by id, or ``None`` when it cannot be one."""
    if value.isdigit() and len(value) <= len(str(MAX_ID)) and int(value) <= MAX_ID:
        return int(value)
    return None


def _team_ids(values: list[str]) -> list[int]:
    ids = [_form_id(value) for value in values]
    if None in ids:
        raise ValidationError({"teams": _("names a team that does not exist")})
    return [team_id for team_id in ids if team_id is not None]


def _invite_link(agent: Agent) -> str:
    return url_for("auth.accept_invite", token=tokens.invite_token(agent), _external=True)


def _get_or_404(model: type[Agent] | type[Team], row_id: int):
    row = db.session.get(model, row_id)
    if row is None:
        abort(404)
    return row


def _blank_invite() -> dict:
    return {"email": "", "name": "", "role": "agent", "teams": []}


@bp.route("/admin/agents", methods=["GET", "POST"])
def agents():
    """The agents, and a form to invite one (the invitation link is shown once)."""
    form = _blank_invite()
    errors: dict[str, str] = {}
    invited, invite_link, status = None, None, 200
    if request.method == "POST":
        form = {
            "email": request.form.get("email", ""),
            "name": request.form.get("name", ""),
            "role": request.form.get("role", "agent"),
            "teams": request.form.getlist("teams"),
        }
        try:
            invited = accounts.create_agent(
                email=form["email"],
                name=form["name"],
                role=form["role"],
                team_ids=_team_ids(form["teams"]),
                password=None,
            )
        except ValidationError as exc:
            errors, status = exc.errors, 422
        except Conflict:
            errors, status = {"email": _("An agent with this e-mail already exists.")}, 409
        else:
            invite_link, form = _invite_link(invited), _blank_invite()
    return render_template(
        "admin/agents.html",
        agents=accounts.list_agents(),
        teams=accounts.list_teams(),
        roles=ROLES,
        form=form,
        errors=errors,
        invited=invited,
        invite_link=invite_link,
    ), status


@bp.route(f"/admin/agents/<int(max={MAX_ID}):agent_id>", methods=["GET", "POST"])
def agent(agent_id: int):
    """Edit an agent's name, role, teams and whether they may work; make a new invite link."""
    agent = _get_or_404(Agent, agent_id)
    form = {
        "name": agent.name,
        "role": agent.role,
        "active": agent.active,
        "teams": [str(team.id) for team in agent.teams],
    }
    errors: dict[str, str] = {}
    invite_link = None
    if request.method == "POST" and request.form.get("action") == "invite":
        if agent.active:
            invite_link = _invite_link(agent)
        else:
            errors["invite"] = _("Reactivate the agent first: invitations of inactive agents fail.")
    elif request.method == "POST":
        form = {
            "name": request.form.get("name", ""),
            "role": request.form.get("role", ""),
            "active": request.form.get("active") == "1",
            "teams": request.form.getlist("teams"),
        }
        try:
            accounts.update_agent(
                agent,
                actor=_me(),
                name=form["name"],
                role=form["role"],
                active=form["active"],
                team_ids=_team_ids(form["teams"]),
            )
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("admin.agent", agent_id=agent_id), 303)
    return render_template(
        "admin/agent.html",
        agent=agent,
        teams=accounts.list_teams(),
        roles=ROLES,
        form=form,
        errors=errors,
        invite_link=invite_link,
    ), 422 if errors else 200


def _teams_page(**context):
    context.setdefault("new_name", "")
    context.setdefault("errors", {})
    context.setdefault("rename_id", None)
    return render_template(
        "admin/teams.html",
        teams=accounts.list_teams(),
        member_counts=accounts.team_member_counts(),
        agents=[agent for agent in accounts.list_agents() if agent.active],
        **context,
    )


@bp.route("/admin/teams", methods=["GET", "POST"])
def teams():
    """The teams with their member counts, and a form to add one."""
    if request.method == "POST":
        name = request.form.get("name", "")
        try:
            accounts.create_team(name)
        except ValidationError as exc:
            db.session.rollback()
            return _teams_page(new_name=name, errors=exc.errors), 422
        flash(_("Team created."), "info")
        return redirect(url_for("admin.teams"), 303)
    return _teams_page()


@bp.route(f"/admin/teams/<int(max={MAX_ID}):team_id>", methods=["POST"])
def team(team_id: int):
    """Rename a team and choose its lead."""
    team = _get_or_404(Team, team_id)
    name, lead = request.form.get("name", ""), request.form.get("lead", "")
    try:
        lead_id = _form_id(lead) if lead else None
        if lead and lead_id is None:
            raise ValidationError({"lead": _("choose an active agent")})
        accounts.update_team(team, name, lead_id)
    except ValidationError as exc:
        db.session.rollback()
        return _teams_page(rename_id=team_id, rename_value=name, errors=exc.errors), 422
    flash(_("Team saved."), "info")
    return redirect(url_for("admin.teams"), 303)


@bp.route("/account/tokens", methods=["GET", "POST"], endpoint="tokens")
def tokens_page():
    """My API tokens: list them, create one (shown once), revoke one."""
    me = _me()
    raw_token, name, errors = None, "", {}
    if request.method == "POST" and "revoke" in request.form:
        token_id = _form_id(request.form["revoke"])
        if token_id is None:
            abort(404)
        tokens.revoke_api_token(me, token_id)
        flash(_("Token revoked. Integrations using it get 401 from now on."), "info")
        return redirect(url_for("admin.tokens"), 303)
    if request.method == "POST":
        name = request.form.get("name", "")
        try:
            label = clean_text(name, "name", max_length=TOKEN_NAME_LENGTH, required=False)
        except ValidationError as exc:
            errors = exc.errors
        else:
            raw_token, name = tokens.create_api_token(me, label), ""
    return render_template(
        "admin/tokens.html",
        tokens=tokens.api_tokens_of(me),
        raw_token=raw_token,
        name=name,
        errors=errors,
    ), 422 if errors else 200


@bp.route("/admin/outbox", endpoint="outbox")
def outbox_page():
    """Outgoing mail by state (dead letters first), each with its last error."""
    status = request.args.get("status", "dead")
    if status not in outbound.OUTBOX_STATUSES:
        abort(404)
    return render_template(
        "admin/outbox.html",
        status=status,
        statuses=outbound.OUTBOX_STATUSES,
        counts=outbound.outbox_counts(),
        items=outbound.list_outbox(status, limit=current_app.config["MAX_PAGE_SIZE"]),
    )


@bp.route(f"/admin/outbox/<int(max={MAX_ID}):item_id>/retry", methods=["POST"])
def outbox_retry(item_id: int):
    """Send a pending or dead mail at the worker's next round."""
    try:
        outbound.retry_now(item_id)
    except NotFound:
        abort(404)
    except Conflict as exc:
        flash(exc.message, "error")
    else:
        flash(_("The mail goes out with the worker's next round."), "info")
    status = request.form.get("status", "dead")
    if status not in outbound.OUTBOX_STATUSES:
        status = "dead"
    return redirect(url_for("admin.outbox", status=status), 303)
