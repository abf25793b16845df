"""Agents log in and out; invited agents set their first password."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from helpdesk.core import ratelimit
from helpdesk.core.accounts import authenticate, set_password
from helpdesk.core.errors import ValidationError
from helpdesk.core.tokens import agent_from_invite_token
from helpdesk.core.validation import email_key

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after login (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and "\\" not in target:
            return target
    return url_for("agent.queue")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("agent.queue"))
    error = None
    status = 200
    if request.method == "POST":
        email = request.form.get("email", "")[:254]
        password = request.form.get("password", "")[:1024]
        account_key = f"login:account:{email_key(email)}"
        ip_key = f"login:ip:{request.remote_addr}"
        ratelimit.check(account_key, "LOGIN_RATE_LIMIT_ACCOUNT")
        ratelimit.check(ip_key, "LOGIN_RATE_LIMIT_IP")
        agent = authenticate(email, password)
        if agent is not None:
            login_user(agent, remember=bool(request.form.get("remember")))
            return redirect(_safe_next(request.args.get("next")))
        ratelimit.hit(account_key, "LOGIN_RATE_LIMIT_ACCOUNT")
        ratelimit.hit(ip_key, "LOGIN_RATE_LIMIT_IP")
        error = _("Wrong e-mail or password, or the account is deactivated.")
        status = 401
    return render_template("auth/login.html", error=error), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token: str):
    agent = agent_from_invite_token(token)
    if agent is None:
        return render_template(
            "error.html",
            code=404,
            title=_("Invitation not valid"),
            message=_("This invitation link is invalid, expired or was already used."),
        ), 404
    errors: dict[str, str] = {}
    if request.method == "POST":
        password = request.form.get("password", "")
        if password != request.form.get("confirm", ""):
            errors["confirm"] = _("The two passwords differ.")
        else:
            try:
                set_password(agent, password)
            except ValidationError as exc:
                errors = exc.errors
            else:
                login_user(agent)
                flash(_("Welcome, %(name)s. Your password is set.", name=agent.name), "info")
                return redirect(url_for("agent.queue"))
    return render_template("auth/invite.html", agent=agent, errors=errors), 422 if errors else 200
