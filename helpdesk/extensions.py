"""Flask extension objects, created unbound so any app instance can init them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flask import has_request_context, request
from flask_babel import Babel
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
mail = Mail()
babel = Babel()

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_write_intent: ContextVar[bool] = ContextVar("helpdesk_write_intent", default=False)


@contextmanager
def write_intent() -> Iterator[None]:
    """Mark work outside a request (CLI, worker) as writing, so SQLite transactions begun
    inside take the write lock up front (``BEGIN IMMEDIATE``)."""
    token = _write_intent.set(True)
    try:
        yield
    finally:
        _write_intent.reset(token)


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """WAL, foreign keys and a Unicode ``lower()`` on every SQLite connection (the busy
    timeout comes from config).

    The driver's own transaction handling is switched off so that ``_sqlite_begin``
    decides how each transaction starts.
    """
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    dbapi_connection.isolation_level = None
    # SQLite's own lower() folds ASCII only; Python's folds Greek, Icelandic and the rest.
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn) -> None:
    """Start SQLite write transactions with ``BEGIN IMMEDIATE``.

    A deferred transaction that reads and then writes cannot wait for the write lock
    (SQLite answers "database is locked" at once); taking it up front lets concurrent
    writers queue on the busy timeout instead. Which transactions write: requests with an
    unsafe method, and code run under ``write_intent()``; everything else reads without
    locking anyone out.
    """
    if conn.dialect.name != "sqlite":
        return
    writing = _write_intent.get() or (has_request_context() and request.method not in SAFE_METHODS)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")
