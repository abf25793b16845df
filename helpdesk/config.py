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
    # Counted rate-limit windows are kept a day; a hit deletes the older ones now and then
    # (this share of hits), so the table stays small without a job of its own.
    "RATE_LIMIT_PRUNE_PROBABILITY": 0.01,
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
    # Inbound mail: a larger mail is not processed but kept in the quarantine.
    "MAIL_MAX_MESSAGE_BYTES": 25 * 1024 * 1024,
    # Header values longer than this are cut before decoding (hostile or broken headers).
    "MAIL_MAX_HEADER_CHARS": 16_384,
    # Mail accepted per sender ("count/seconds"); more goes to the quarantine (stops loops).
    "MAIL_SENDER_RATE_LIMIT": "30/3600",
    # Automatic answers (acknowledgements) per recipient address ("count/seconds").
    "MAIL_AUTO_REPLY_RATE_LIMIT": "5/3600",
    # Where quarantined mail is kept whole (default: instance/quarantine).
    "MAIL_QUARANTINE_DIR": None,
    # The IMAP mailbox `helpdesk mail fetch` reads (TLS: "ssl" = IMAPS, or "starttls").
    "MAIL_IMAP_HOST": None,
    "MAIL_IMAP_PORT": 993,
    "MAIL_IMAP_SECURITY": "ssl",
    "MAIL_IMAP_USER": None,
    "MAIL_IMAP_PASSWORD": None,
    "MAIL_IMAP_MAILBOX": "INBOX",
    # CA certificates to trust for the IMAP server (default: the system's).
    "MAIL_IMAP_CA_FILE": None,
    "MAIL_IMAP_TIMEOUT": 60,
    # `helpdesk mail fetch` commits this many mails (or this many bytes of them) at a time,
    # each in its own savepoint; a mail leaves the mailbox only once its batch is committed.
    "MAIL_FETCH_BATCH_SIZE": 200,
    "MAIL_FETCH_BATCH_BYTES": 32 * 1024 * 1024,
    # Helper processes that parse fetched mail while the fetching one writes (None: one when
    # the machine has more than one CPU, else none), and the seconds one may take for a chunk
    # of mails before the rest are parsed by the fetching process itself.
    "MAIL_FETCH_PARSE_PROCESSES": None,
    "MAIL_FETCH_PARSE_TIMEOUT": 60,
    # Outgoing mail: the address links in mails are built on (never a request's Host header),
    # the subject tag ({id} is the ticket number), which automatic mails are sent, and how long
    # one SMTP conversation may stall (seconds).
    "PUBLIC_URL": "http://127.0.0.1:5000",
    "MAIL_SUBJECT_TAG": "[#{id}]",
    "MAIL_SEND_ACKNOWLEDGEMENT": True,
    "MAIL_NOTIFY_RESOLVED": True,
    "MAIL_TIMEOUT_SECONDS": 30,
    # The outbox worker (`helpdesk worker`): rows claimed per round, seconds a claim lasts
    # (another worker takes the rows over after that), seconds between rounds when idle, and
    # retries: attempts before an item is dead, first delay, longest delay (doubling between).
    "WORKER_BATCH_SIZE": 100,
    "WORKER_CLAIM_SECONDS": 300,
    "WORKER_POLL_SECONDS": 5,
    "OUTBOX_MAX_ATTEMPTS": 10,
    "OUTBOX_RETRY_SECONDS": 60,
    "OUTBOX_RETRY_MAX_SECONDS": 3600,
    # Orders: the currency the order form starts with (ISO 4217), and how many CSV rows an
    # import commits at a time and the longest line (bytes) it reads.
    "DEFAULT_CURRENCY": "EUR",
    "ORDERS_IMPORT_BATCH_SIZE": 500,
    "ORDERS_IMPORT_MAX_LINE_BYTES": 1024 * 1024,
    # The name shown in page titles and the top bar.
    "HELPDESK_NAME": "Helpdesk",
    # Which plugins to load from the "helpdesk" entry-point group (None: all installed).
    "PLUGINS": None,
    # Plugins pinned on / off whatever the admin page or `helpdesk plugins` says (lists of names).
    "PLUGINS_ENABLED": [],
    "PLUGINS_DISABLED": [],
    # How plugins' price offers combine: "best" (largest discount) or "stack" (all, in turn).
    "PRICE_POLICY_COMBINE": "best",
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
