"""The application factory."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_request_context, request
from flask_babel import get_locale

from helpdesk.config import RTL_LANGUAGES, load_config
from helpdesk.core.models import Agent
from helpdesk.extensions import babel, csrf, db, login_manager, mail, migrate
from helpdesk.plugins import EXTENSION_KEY, Plugins

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR.parent / "templates"
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"


def create_app(config: dict[str, Any] | None = None, *, plugins: Iterable[Any] = ()) -> Flask:
    """Build an app: config, extensions, plugins (entry points plus ``plugins``), blueprints."""
    app = Flask(
        "helpdesk",
        template_folder=str(TEMPLATES_DIR),
        static_folder=str(PACKAGE_DIR / "static"),
        instance_path=os.environ.get("HELPDESK_INSTANCE_PATH") or None,
        instance_relative_config=True,
    )
    load_config(app, config)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    csrf.init_app(app)
    mail.init_app(app)
    babel.init_app(app, locale_selector=_select_locale)
    _init_login(app)
    app.extensions[EXTENSION_KEY] = loaded = Plugins(app, plugins)

    from helpdesk.cli import register_commands
    from helpdesk.core import extending
    from helpdesk.core.views import register_views

    register_views(app)
    register_commands(app)
    loaded.register_parts(app)
    extending.init_app(app)
    _init_templates(app)
    return app


def _select_locale() -> str | None:
    """The best of the shipped ``LANGUAGES`` for the browser's Accept-Language; outside a
    request (the worker, a CLI command) the default locale."""
    if not has_request_context():
        return None
    return request.accept_languages.best_match(current_app.config["LANGUAGES"])


def _init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_agent(user_id: str) -> Agent | None:
        agent_id, _, session_key = user_id.partition(":")
        if not agent_id.isdigit():
            return None
        agent = db.session.get(Agent, int(agent_id))
        if agent is None or not agent.active or agent.session_key != session_key:
            return None
        return agent


def _init_templates(app: Flask) -> None:
    @app.context_processor
    def page_language() -> dict[str, str]:
        language = str(get_locale() or app.config["BABEL_DEFAULT_LOCALE"])
        return {
            "page_lang": language,
            "page_dir": "rtl" if language.split("_")[0] in RTL_LANGUAGES else "ltr",
            "helpdesk_name": app.config["HELPDESK_NAME"],
        }

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; object-src 'none'; "
            "frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
        )
        return response
