"""Configuration: defaults, then an optional instance file, then ``HELPDESK_*`` environment.

Every limit the app enforces is a setting here, so deployers and benchmarks can change it.
Set any key from the environment with the ``HELPDESK_`` prefix: ``HELPDESK_MAX_BODY_LENGTH=2000``.
Values are parsed as JSON where possible (Flask's ``from_prefixed_env``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask


class ConfigError(RuntimeError):
    """The configuration cannot run the app (e.g. no secret key in production)."""


DEFAULTS: dict[str, Any] = {
    # Database: SQLite (WAL) under instance/ unless DATABASE_URL says otherwise.
    "DATABASE_URL": None,
    "SQLITE_BUSY_TIMEOUT_MS": 10_000,
    # Sessions and cookies.
    "SECRET_KEY": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": False,
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": None,
    # Request and content limits.
    "MAX_CONTENT_LENGTH": 30 * 1024 * 1024,
    "MAX_FORM_MEMORY_SIZE": 2 * 1024 * 1024,
    "MAX_SUBJECT_LENGTH": 200,
    "MAX_NAME_LENGTH": 200,
    "MAX_BODY_LENGTH": 100_000,
    "MAX_NOTES_LENGTH": 20_000,
    "MAX_SEARCH_LENGTH": 200,
    "MAX_ATTACHMENT_SIZE": 10 * 1024 * 1024,
    "MAX_ATTACHMENTS": 10,
    "ATTACHMENTS_DIR": None,
    # Rate limits: "count/seconds". Shared between workers through the database.
    "LOGIN_RATE_LIMIT_ACCOUNT": "5/900",
    "LOGIN_RATE_LIMIT_IP": "30/900",
    "PORTAL_RATE_LIMIT": "10/60",
    "API_RATE_LIMIT": "600/60",
    # Customer status links.
    "PORTAL_LINK_MAX_AGE_DAYS": 365,
    # Phone numbers without a country code are read in this region (ISO 3166 code).
    "PHONE_DEFAULT_REGION": None,
    # Paging and search.
    "PAGE_SIZE": 25,
    "MAX_PAGE_SIZE": 100,
    "SEARCH_RANK_WINDOW": 1000,
    "SEARCH_MAX_DOCUMENT_CHARS": 200_000,
    # Service levels: hours until a ticket of each priority is due.
    "SLA_HOURS": {"urgent": 4, "high": 24, "normal": 72, "low": 168},
    # How agents' passwords are hashed (werkzeug's generate_password_hash method).
    "PASSWORD_HASH_METHOD": "scrypt",
    # Invitations for new agents.
    "INVITE_MAX_AGE_HOURS": 72,
    # Localisation.
    "BABEL_DEFAULT_LOCALE": "en",
    "BABEL_DEFAULT_TIMEZONE": "UTC",
    "LANGUAGES": ["en"],
    # Mail (Flask-Mail keys).
    "MAIL_SERVER": "localhost",
    "MAIL_PORT": 25,
    "MAIL_DEFAULT_SENDER": "helpdesk@localhost",
    # Domain of our Message-IDs (default: the domain of MAIL_DEFAULT_SENDER).
    "MAIL_MESSAGE_ID_DOMAIN": None,
    # The name shown in page titles and the top bar.
    "HELPDESK_NAME": "Helpdesk",
    # Which plugins to load from the "helpdesk" entry-point group (None: all installed).
    "PLUGINS": None,
}

DEV_SECRET_KEY = "dev-only-not-secret"
RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur", "yi", "ps", "sd", "ug", "dv"})


def load_config(app: Flask, overrides: dict[str, Any] | None = None) -> None:
    """Fill ``app.config``: defaults, ``instance/helpdesk.cfg``, env, then ``overrides``."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("helpdesk.cfg", silent=True)
    app.config.from_prefixed_env("HELPDESK")
    if overrides:
        app.config.from_mapping(overrides)
    _finish(app)


def _finish(app: Flask) -> None:
    cfg = app.config
    instance = Path(app.instance_path)
    if not cfg["DATABASE_URL"]:
        instance.mkdir(parents=True, exist_ok=True)
        cfg["DATABASE_URL"] = f"sqlite:///{instance / 'helpdesk.sqlite3'}"
    cfg["SQLALCHEMY_DATABASE_URI"] = _normalise_db_url(cfg["DATABASE_URL"])
    engine_options = cfg.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    if cfg["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        connect_args = engine_options.setdefault("connect_args", {})
        connect_args.setdefault("timeout", cfg["SQLITE_BUSY_TIMEOUT_MS"] / 1000)
    else:
        engine_options.setdefault("pool_pre_ping", True)
    if not cfg.get("ATTACHMENTS_DIR"):
        cfg["ATTACHMENTS_DIR"] = str(instance / "attachments")
    if not cfg.get("SECRET_KEY"):
        if _is_development(app):
            cfg["SECRET_KEY"] = DEV_SECRET_KEY
        else:
            raise ConfigError(
                "HELPDESK_SECRET_KEY is not set. Generate one with "
                "`python -c 'import secrets; print(secrets.token_hex(32))'` and export it."
            )


def _is_development(app: Flask) -> bool:
    return bool(
        app.debug
        or app.testing
        or app.config.get("TESTING")
        or app.config.get("ENV") == "development"
        or os.environ.get("HELPDESK_ENV") == "development"
    )


def _normalise_db_url(url: str) -> str:
    """Accept ``postgres://`` and plain ``postgresql://`` URLs; use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def parse_rate(value: str) -> tuple[int, int]:
    """Parse a ``"count/seconds"`` rate-limit setting."""
    try:
        count, seconds = (int(part) for part in str(value).split("/", 1))
    except ValueError as exc:
        raise ConfigError(f"rate limit {value!r} must look like '10/60'") from exc
    if count < 1 or seconds < 1:
        raise ConfigError(f"rate limit {value!r} must be positive")
    return count, seconds
