"""The admins' plugin page (``/admin/plugins``: list, enable, disable) and the agents' report
index (``/reports``: the report pages plugins add)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from helpdesk.core import extending
from helpdesk.core.views.decorators import admin_required
from helpdesk.plugins import PluginError, current_plugins

bp = Blueprint("plugins_admin", __name__)
ACTIONS = {"enable": True, "disable": False}


def _page(error: str | None = None, status: int = 200):
    return render_template(
        "admin/plugins.html", plugins=current_plugins().describe(), error=error
    ), status


@bp.get("/admin/plugins")
@admin_required
def index():
    """Every installed plugin: version, description, state, and a button to switch it."""
    return _page()


@bp.post("/admin/plugins/<name>")
@admin_required
def switch(name: str):
    """Enable (applying its migrations) or disable one plugin, for every worker at once."""
    enabled = ACTIONS.get(request.form.get("action", ""))
    if enabled is None or name not in current_plugins().infos:
        abort(404)
    try:
        current_plugins().set_enabled(name, enabled, actor=current_user.email)
    except PluginError as exc:
        return _page(exc.message, exc.status_code)
    flash(
        _("Plugin %(name)s enabled.", name=name)
        if enabled
        else _("Plugin %(name)s disabled; its data is kept.", name=name),
        "success",
    )
    return redirect(url_for(".index"))


@bp.get("/reports")
@login_required
def reports():
    """The report pages of the enabled plugins."""
    return render_template("reports.html", reports=extending.reports())
