"""Fixtures against real parts: a migrated database (SQLite file, or a PostgreSQL 15 cluster
started here with initdb/pg_ctl), the app, a test client with real CSRF, logged-in agents,
and a live server for the browser tests.

Choose the database with ``pytest --db=sqlite`` (default) or ``--db=postgresql``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, g, request_started
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.serving import make_server

from helpdesk import create_app
from helpdesk.core import tokens
from helpdesk.core.accounts import create_agent, create_team
from helpdesk.core.models import STATUSES, Agent
from helpdesk.extensions import db
from helpdesk.plugins import current_plugins
from tests.pg import PostgresServer, postgres_unavailable_reason

pytest_plugins = ["tests.plugin_support", "tests.browser_support"]

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="database engine the suite runs against",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"helpdesk database: {config.getoption('--db')}"


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    """A migrated, empty database for the whole session."""
    if request.config.getoption("--db") == "postgresql":
        reason = postgres_unavailable_reason()
        if reason:
            pytest.skip(f"PostgreSQL tests skipped: {reason}")
        server = PostgresServer(tmp_path_factory.mktemp("pg"))
        server.start()
        url = server.create_database("helpdesk_test")
    else:
        server = None
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'helpdesk.sqlite3'}"
    from tests.plugin_support import HELLO

    # The example plugin's table too: test apps register it (see tests/plugin_support.py).
    migrate_app = create_app(
        {"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test"}, plugins=[HELLO]
    )
    with migrate_app.app_context():
        current_plugins().upgrade()
        db.engine.dispose()
    yield url
    if server is not None:
        server.stop()


def _empty_database() -> None:
    """Delete every row (fast, and keeps the migrated schema)."""
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        extra = ["ticket_search"]
        db.session.execute(text(f"TRUNCATE {', '.join(extra + tables)} RESTART IDENTITY CASCADE"))
    else:
        for name in ["ticket_fts", *tables]:
            db.session.execute(text(f"DELETE FROM {name}"))
    db.session.execute(
        text("INSERT INTO status_counts (team_key, status, count) VALUES (0, :s, 0)"),
        [{"s": status} for status in STATUSES],
    )
    db.session.commit()


@pytest.fixture
def app_config(database_url: str, tmp_path: Path) -> dict[str, Any]:
    """The config each test's app is built with; tests may change it before ``app`` is used."""
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        "ATTACHMENTS_DIR": str(tmp_path / "attachments"),
        "SERVER_NAME": None,
        # Fast hashing: a test suite logs in hundreds of times (production keeps scrypt).
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        # Counted statements stay the same from run to run (tests/test_api.py prunes).
        "RATE_LIMIT_PRUNE_PROBABILITY": 0,
        # The example plugin is installed (its revision is in the database, so Alembic must
        # find it) but pinned off; tests/test_plugins.py switches it on. So are the built-in
        # plugins: the core's tests see the core alone; each plugin's tests switch it on.
        "PLUGINS_DISABLED": ["hello", "categories", "surveys", "loyalty", "letters", "retention"],
    }


@pytest.fixture
def app_plugins() -> list[Any]:
    """Extra plugin objects registered on the test app (tests override this fixture)."""
    from tests.plugin_support import HELLO

    return [HELLO]


def _fresh_g(sender: Flask, **extra: Any) -> None:
    """Start each request with an empty ``g``, as a request of a real server does.

    Test requests share the app context (and so ``g``) that the ``app`` fixture keeps pushed.
    Flask-Login caches the user and Flask-WTF the CSRF token there, so without this one
    client's login and token would leak into the next request of another client.
    """
    g.__dict__.clear()


class FreshGlobalsClient(FlaskClient):
    """A test client whose every request starts with an empty ``g``, as in production.

    The test's app context (and so its database session) is shared with the requests, so
    tests can look at rows directly; but ``g`` caches per-request things (the logged-in
    agent, the CSRF token) that must not leak from one client's request to another's.
    """

    def open(self, *args: Any, **kwargs: Any):
        vars(g._get_current_object()).clear()
        return super().open(*args, **kwargs)


@pytest.fixture
def app(app_config: dict[str, Any], app_plugins: list[Any]) -> Iterator[Flask]:
    application = create_app(app_config, plugins=app_plugins)
    application.test_client_class = FreshGlobalsClient
    request_started.connect(_fresh_g, application)
    with application.app_context():
        _empty_database()
        yield application
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


def csrf_from(client: FlaskClient, path: str) -> str:
    """The CSRF token of the form on ``path`` (as a browser would read it)."""
    page = client.get(path)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({page.status_code})"
    return match.group(1)


def post_form(
    client: FlaskClient, path: str, data: dict[str, Any], *, page: str | None = None, **kwargs: Any
):
    """POST ``data`` to ``path`` with the CSRF token of the form on ``page`` (default ``path``)."""
    payload = {"csrf_token": csrf_from(client, page or path), **data}
    return client.post(path, data=payload, **kwargs)


@pytest.fixture
def team(app: Flask):
    return create_team("Support")


@pytest.fixture
def agent(app: Flask, team) -> Agent:
    return create_agent(
        email="agent@example.com", name="Ana Agent", password=PASSWORD, team_ids=[team.id]
    )


@pytest.fixture
def admin(app: Flask) -> Agent:
    return create_agent(
        email="admin@example.com", name="Ada Admin", password=PASSWORD, role="admin"
    )


def login(client: FlaskClient, email: str, password: str = PASSWORD):
    """Log in through the real form."""
    return post_form(client, "/login", {"email": email, "password": password})


@pytest.fixture
def agent_client(app: Flask, agent: Agent) -> FlaskClient:
    """A client logged in as ``agent``."""
    client = app.test_client()
    response = login(client, agent.email)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def admin_client(app: Flask, admin: Agent) -> FlaskClient:
    """A client logged in as ``admin``."""
    client = app.test_client()
    assert login(client, admin.email).status_code == 302
    return client


@pytest.fixture
def api_token(app: Flask, agent: Agent) -> str:
    return tokens.create_api_token(agent, "tests")


@pytest.fixture
def api_headers(api_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token}"}


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The test app served over HTTP on a free port of 127.0.0.1, in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


class QueryCounter:
    """Counts the SQL statements the app sends while active (``with counter: ...``)."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.active = False

    def __enter__(self) -> QueryCounter:
        self.statements.clear()
        self.active = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.active = False

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(app: Flask) -> Iterator[QueryCounter]:
    """Use ``with count_queries as q: client.get(...)`` then assert on ``q.count``."""
    from sqlalchemy import event

    counter = QueryCounter()

    def before_cursor_execute(conn, cursor, statement, *args: Any) -> None:
        if counter.active and not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA")):
            counter.statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", before_cursor_execute)
    yield counter
    event.remove(db.engine, "before_cursor_execute", before_cursor_execute)
