"""Blueprints and the error pages every entrance shares."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from helpdesk.core.errors import HelpdeskError
from helpdesk.core.ratelimit import RateLimited


def register_views(app: Flask) -> None:
    """Register the core's blueprints and error handlers on ``app``."""
    from helpdesk.core.views import (
        admin,
        agent,
        api,
        auth,
        customers,
        mail_admin,
        plugins_admin,
        portal,
    )

    for module in (auth, agent, customers, admin, mail_admin, plugins_admin, portal, api):
        app.register_blueprint(module.bp)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(HelpdeskError, _helpdesk_error)


def wants_json() -> bool:
    """Whether the answer should be JSON (the REST API) rather than a page."""
    return request.path.startswith("/api/")


def _http_error(exc: HTTPException):
    code = exc.code or 500
    if isinstance(exc, CSRFError):
        message = _(
            "The form was stale or incomplete (missing security token). "
            "Reload the page and try again."
        )
    elif code == 413:
        message = _("What you sent is larger than this help desk accepts.")
    elif code == 404:
        message = _("There is nothing here.")
    else:
        message = exc.description or exc.name
    # Keep the exception's own headers (``Allow`` on a 405), not its HTML content type.
    headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
    if wants_json():
        return jsonify(error=exc.name.lower().replace(" ", "_"), message=message), code, headers
    return (
        render_template("error.html", code=code, title=exc.name, message=message),
        code,
        headers,
    )


def _helpdesk_error(exc: HelpdeskError):
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if wants_json():
        body = {"error": type(exc).__name__.lower(), "message": exc.message}
        if hasattr(exc, "errors"):
            body["fields"] = exc.errors
        return jsonify(body), exc.status_code, headers
    return (
        render_template(
            "error.html", code=exc.status_code, title=_("Not done"), message=exc.message
        ),
        exc.status_code,
        headers,
    )
