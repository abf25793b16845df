#!/usr/bin/env python
"""Seed a fresh helpdesk database with many realistic tickets, fast, for the benchmarks.

    .venv/bin/python benchmarks/seed.py                      # 20,000 tickets, SQLite file
    .venv/bin/python benchmarks/seed.py --tickets 1000000 --path /tmp/bench-1m.sqlite3
    .venv/bin/python benchmarks/seed.py --database-url postgresql://user@host/empty_db

The schema comes from the project's own migrations; teams and agents are made by the account
services. Customers, tickets, messages, events, the status counters and the search index are
written with bulk inserts (``executemany`` on SQLite, ``COPY`` on PostgreSQL) in big
transactions, with secondary indexes dropped during the load and rebuilt from the migration's
own definitions afterwards. The rows are what the services would have written: the same
columns, JSON event data, timestamps format, a random ``public_key`` and ``version`` 1 per
ticket, a ``created`` event (and reply/assignee/status events as the ticket lived), counters
equal to the real counts and one search document per ticket.
"""

from __future__ import annotations

import functools
import json
import random
import secrets
import sqlite3
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import psycopg

# Run as a script, this directory comes first on the path; the built-in plugins live at the root.
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from flask import Flask
from sqlalchemy.engine import make_url

from helpdesk import create_app
from helpdesk.core.accounts import create_agent, create_team
from helpdesk.extensions import db

RARE_WORD = "quokkaglass"
COMMON_WORD = "delivery"
RARE_TICKETS = 7
BENCH_AGENT_EMAIL = "bench-admin@example.com"
BENCH_PASSWORD = "bench-password-2024"
DEFAULT_PATH = Path(__file__).resolve().parent / "results" / "bench.sqlite3"
CHUNK = 10_000
SPAN_DAYS = 3 * 365
BULK_TABLES = ("customers", "tickets", "messages", "ticket_events", "ticket_search")

TEAMS = {
    "Complaints": [("Ana Jónsdóttir", "ana"), ("Pierre Dubois", "pierre"), ("Li Wei", "li")],
    "Support": [("Yossi Cohen", "yossi"), ("Eleni Papadopoulou", "eleni"), ("Kim Lee", "kim")],
}
FIRST_NAMES = [
    "Maria",
    "John",
    "Guðrún",
    "Noa",
    "Nikos",
    "Amara",
    "Sofia",
    "Ólafur",
    "Priya",
    "Kenji",
    "Fatima",
    "Lars",
    "Chloé",
    "Mateo",
    "Aisha",
    "Tomasz",
    "Ingrid",
    "Rahul",
    "Zeynep",
    "Oliver",
    "Emma",
    "Lucas",
    "Hana",
    "Diego",
    "Mei",
    "Jonas",
    "Elif",
    "Arjun",
    "Sara",
    "Omar",
    "Anna",
    "Pedro",
    "Freya",
    "Ravi",
    "Leila",
    "Hugo",
    "Nora",
    "Felix",
    "Yara",
    "Ivan",
]
LAST_NAMES = [
    "Garcia",
    "Smith",
    "Þórsdóttir",
    "Levi",
    "Papadakis",
    "Okafor",
    "Rossi",
    "Ragnarsson",
    "Sharma",
    "Tanaka",
    "Haddad",
    "Nielsen",
    "Martin",
    "Fernández",
    "Bello",
    "Kowalski",
    "Berg",
    "Gupta",
    "Yilmaz",
    "Brown",
    "Müller",
    "Silva",
    "Novak",
    "López",
    "Chen",
    "Weber",
    "Demir",
    "Patel",
    "Johansson",
    "Hassan",
]
PRODUCTS = [
    "blue kettle",
    "desk lamp",
    "office chair",
    "coffee grinder",
    "winter jacket",
    "running shoes",
    "bookshelf",
    "phone case",
    "garden hose",
    "toaster",
    "backpack",
    "wall clock",
    "bed frame",
    "rice cooker",
]
SUBJECTS = {
    "complaint": [
        "Order arrived damaged",
        "Charged twice for one order",
        "Refund still not received",
        "Wrong size delivered",
        "The {product} stopped working",
        "Late delivery of my {product}",
        "Missing parts in the box",
        "Rude answer on the phone",
        "Courier left the parcel in the rain",
        "Invoice shows the wrong amount",
    ],
    "support": [
        "How do I change my delivery address?",
        "Invoice for my company",
        "Password reset does not arrive",
        "Is the {product} back in stock?",
        "Opening hours over the holidays",
        "Question about the warranty",
        "Can I return an unopened {product}?",
        "Tracking number does not work",
        "Gift wrapping for an order",
        "Assembly instructions for the {product}",
    ],
}
OPENINGS = [
    "Hello,",
    "Hi there,",
    "Good morning,",
    "Dear support team,",
    "To whom it may concern,",
    "Hello again,",
]
DETAILS = [
    "I ordered the {product} {days} days ago and it still has not arrived.",
    "The {product} arrived with a cracked cover and a dent on the side.",
    "My card was charged twice for order {order}, please check.",
    "The tracking page for order {order} has not changed for {days} days.",
    "Could you tell me when the {product} will be available again?",
    "The delivery driver left the box at the wrong address.",
    "I would like a refund for the {product}, it is not what the photos showed.",
    "The instructions that came with the {product} are missing two pages.",
    "I changed my address last week but the delivery still went to the old one.",
    "Your website says the {product} ships in two days, but it took {days}.",
    "The invoice for order {order} lists a {product} I never ordered.",
    "Please cancel order {order}, I found the {product} elsewhere.",
    "The colour of the {product} is quite different from the picture.",
    "I tried to call but waited forty minutes and nobody answered.",
    "Is there a way to pay the remaining balance in instalments?",
    "The delivery window was between nine and noon but nobody came.",
]
CLOSINGS = ["Thanks,", "Kind regards,", "Best wishes,", "Thank you in advance,", "Cheers,", ""]
AGENT_REPLIES = [
    "Thank you for writing. I have checked order {order} and a replacement is on its way.",
    "Sorry for the trouble. The refund for order {order} was issued today; it takes "
    "three to five working days to reach your card.",
    "Thanks for your patience. The {product} is back in stock next week; I put one aside.",
    "I have asked the courier to deliver again tomorrow between nine and noon.",
    "Could you send a photo of the damage so we can file the claim with the carrier?",
    "I updated the delivery address on order {order}. You will get a new tracking link.",
    "The invoice is attached to this message with your company's VAT number.",
    "We are sorry about the wait on the phone; I have passed this on to the team lead.",
]
FOLLOW_UPS = [
    "Thank you, that helped!",
    "Here is the photo you asked for.",
    "Still nothing arrived, can you check again?",
    "Great, I will wait for the delivery then.",
]
NOTES = [
    "Checked the order history; see ERP note.",
    "Customer called twice about this; escalate if no answer by Friday.",
    "Carrier claim filed, reference in the shared sheet.",
]
RARE_SENTENCE = f"The {RARE_WORD} seal on the lid was missing as well."
NEW_WINDOW_SHARE = 0.03  # the newest 3% of tickets are still being worked
RECENT_MIX = (("new", 20), ("open", 30), ("pending", 20), ("resolved", 30))
OLD_MIX = (("closed", 900), ("resolved", 90), ("open", 6), ("pending", 4))
PRIORITY_MIX = (("low", 15), ("normal", 60), ("high", 20), ("urgent", 5))
SOURCE_MIX = (("web", 55), ("email", 35), ("api", 5), ("phone", 5))


@dataclass
class SeedResult:
    """What a seed run made, and how long it took."""

    database_url: str
    tickets: int
    customers: int
    messages: int
    events: int
    agents: int
    teams: int
    statuses: dict[str, int]
    rare_ticket_ids: list[int]
    seconds: float
    size_bytes: int | None
    checks: dict[str, bool] = field(default_factory=dict)


@dataclass
class Context:
    """The fixed things every generated ticket draws from."""

    rng: random.Random
    now: float
    customers: list[tuple[int, str, str]]  # id, name, email
    team_ids: dict[str, int]
    team_agents: dict[int, list[tuple[int, str]]]  # team id -> [(agent id, name)]
    all_agents: list[tuple[int, str]]
    rare_positions: set[int]
    fmt: Callable[[float], Any]
    sla_hours: dict[str, int]
    max_document_chars: int
    next_message_id: int = 1
    next_event_id: int = 1


@dataclass
class Chunk:
    """The rows of one batch of tickets, per table."""

    tickets: list[tuple] = field(default_factory=list)
    messages: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)
    search: list[tuple] = field(default_factory=list)


COLUMNS = {
    "customers": (
        "id",
        "email",
        "email_key",
        "name",
        "phone",
        "language",
        "notes",
        "created_at",
        "updated_at",
    ),
    "tickets": (
        "id",
        "subject",
        "status",
        "priority",
        "kind",
        "source",
        "customer_id",
        "team_id",
        "assignee_id",
        "merged_into_id",
        "public_key",
        "created_at",
        "updated_at",
        "last_activity_at",
        "due_at",
        "resolved_at",
        "version",
    ),
    "messages": (
        "id",
        "ticket_id",
        "author_type",
        "customer_id",
        "agent_id",
        "body",
        "internal",
        "source",
        "created_at",
    ),
    "ticket_events": (
        "id",
        "ticket_id",
        "actor_type",
        "agent_id",
        "customer_id",
        "kind",
        "data",
        "created_at",
    ),
}


def _weighted(rng: random.Random, mix: Sequence[tuple[str, int]]) -> str:
    return rng.choices([name for name, _ in mix], [weight for _, weight in mix])[0]


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


class Loader:
    """Bulk writes to one database: SQLite through ``sqlite3``, PostgreSQL through ``COPY``."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.postgres = parsed.get_backend_name() == "postgresql"
        if self.postgres:
            plain = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            self.pg = psycopg.connect(plain)
            self.fmt: Callable[[float], Any] = _naive_datetime
        else:
            self.sqlite = sqlite3.connect(parsed.database, isolation_level=None)
            for pragma in (
                "journal_mode=OFF",
                "synchronous=OFF",
                "foreign_keys=OFF",
                "cache_size=-262144",
                "temp_store=MEMORY",
            ):
                self.sqlite.execute(f"PRAGMA {pragma}")
            self.fmt = _sqlite_datetime
            self.sqlite.execute("BEGIN")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run one statement in the current transaction; returns its rows."""
        if self.postgres:
            with self.pg.cursor() as cursor:
                cursor.execute(sql.replace("?", "%s"), params)
                return cursor.fetchall() if cursor.description else []
        return self.sqlite.execute(sql, params).fetchall()

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Append ``rows`` to ``table``."""
        names = ", ".join(columns)
        if self.postgres:
            with (
                self.pg.cursor() as cursor,
                cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            self.sqlite.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)

    def commit(self) -> None:
        """Commit and start the next transaction."""
        if self.postgres:
            self.pg.commit()
        else:
            self.sqlite.execute("COMMIT")
            self.sqlite.execute("BEGIN")

    def drop_indexes(self) -> list[str]:
        """Drop the bulk tables' secondary indexes; returns the statements that rebuild them."""
        if self.postgres:
            rows = self.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
                [list(BULK_TABLES)],
            )
        else:
            marks = ", ".join("?" * len(BULK_TABLES))
            rows = self.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                f"AND tbl_name IN ({marks})",
                BULK_TABLES,
            )
        for name, _ in rows:
            self.execute(f'DROP INDEX "{name}"')
        self.commit()
        return [definition for _, definition in rows]

    def finish(self, index_sql: Sequence[str]) -> None:
        """Rebuild the indexes, make the counters true, and leave the database ready to serve."""
        for statement in index_sql:
            self.execute(statement)
        self.execute("UPDATE status_counts SET count = 0")
        self.execute(
            "INSERT INTO status_counts (team_key, status, count) "
            "SELECT coalesce(team_id, 0), status, count(*) FROM tickets WHERE true "
            "GROUP BY coalesce(team_id, 0), status "
            "ON CONFLICT (team_key, status) DO UPDATE SET count = excluded.count"
        )
        if self.postgres:
            for table in ("customers", "tickets", "messages", "ticket_events"):
                self.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            self.pg.commit()
            self.pg.autocommit = True
            self.execute("VACUUM (ANALYZE)")  # what autovacuum does shortly after a bulk load
            self.pg.close()
        else:
            self.sqlite.execute("COMMIT")
            self.sqlite.execute("PRAGMA journal_mode=WAL")
            self.sqlite.close()

    def search_table(self) -> tuple[str, tuple[str, ...]]:
        """The search index table and its columns on this engine."""
        if self.postgres:
            return "ticket_search", ("ticket_id", "subject", "body", "customer")
        return "ticket_fts", ("rowid", "subject", "body", "customer")


EPOCH = datetime(1970, 1, 1)


def _naive_datetime(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def _sqlite_datetime(seconds: float) -> str:
    # SQLAlchemy's SQLite DateTime format, microseconds always written.
    return (EPOCH + timedelta(seconds=seconds)).isoformat(" ", "microseconds")


@functools.cache
def _json_of(items: tuple[tuple[str, Any], ...]) -> str:
    return json.dumps(dict(items))


def _json(data: dict[str, Any]) -> str:
    """``data`` as SQLAlchemy's JSON type writes it (``json.dumps``), cached: few shapes."""
    if "message_id" in data:
        return f'{{"message_id": {int(data["message_id"])}, "attachments": 0}}'
    return _json_of(tuple(data.items()))


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        product=rng.choice(PRODUCTS),
        days=rng.randint(3, 30),
        order=rng.randint(10_000, 999_999),
    )


def _customer_body(rng: random.Random, name: str, rare: bool) -> str:
    details = " ".join(_fill(rng.choice(DETAILS), rng) for _ in range(rng.randint(1, 3)))
    if rare:
        details += " " + RARE_SENTENCE
    closing = rng.choice(CLOSINGS)
    signature = f"{closing}\n{name.split()[0]}" if closing else name.split()[0]
    return f"{rng.choice(OPENINGS)}\n\n{details}\n\n{signature}"


def _status_for(position: int, total: int, rng: random.Random) -> str:
    recent = total - position <= max(200, int(total * NEW_WINDOW_SHARE))
    return _weighted(rng, RECENT_MIX if recent else OLD_MIX)


def _ticket(ctx: Context, chunk: Chunk, position: int, total: int) -> None:
    """Generate one ticket as the services would have left it after its life so far."""
    rng, fmt = ctx.rng, ctx.fmt
    ticket_id = position + 1
    # Skewed: a few customers write often, most rarely.
    customer_id, customer_name, customer_email = ctx.customers[
        int(len(ctx.customers) * rng.random() ** 2)
    ]
    kind = "complaint" if rng.random() < 0.35 else "support"
    team_id = (
        None
        if rng.random() < 0.05
        else ctx.team_ids["Complaints" if kind == "complaint" else "Support"]
    )
    workers = ctx.team_agents.get(team_id, ctx.all_agents) if team_id else ctx.all_agents
    status = _status_for(position, total, rng)
    priority = _weighted(rng, PRIORITY_MIX)
    source = _weighted(rng, SOURCE_MIX)
    created = ctx.now - SPAN_DAYS * 86400 * (1 - position / total) - rng.uniform(0, 3600)
    subject = _fill(rng.choice(SUBJECTS[kind]), rng)
    events: list[tuple[float, str, int | None, int | None, str, dict[str, Any]]] = []
    messages: list[tuple[float, str, int | None, int | None, str, bool, str]] = []

    agent_id, agent_name = rng.choice(workers)
    if source == "phone":  # an agent opened it for the caller and wrote the first message
        opener = ("agent", agent_id, None)
        first = f"Phoned in: {_fill(rng.choice(DETAILS), rng)}"
        if position in ctx.rare_positions:
            first += " " + RARE_SENTENCE
    else:
        opener = ("customer", None, customer_id)
        first = _customer_body(rng, customer_name, position in ctx.rare_positions)
    messages.append((created, opener[0], opener[2], opener[1], first, False, source))
    events.append(
        (
            created,
            opener[0],
            opener[1],
            opener[2],
            "created",
            {"source": source, "priority": priority},
        )
    )

    assignee = None
    clock = created
    assigned = rng.random() < (0.15 if status == "new" else 0.8)
    if assigned:
        clock += rng.uniform(60, 7200)
        assignee = agent_id
        events.append(
            (clock, "agent", agent_id, None, "assignee", {"old": None, "new": agent_name})
        )
    if status != "new":
        clock += rng.uniform(60, 86400)
        reply = _fill(rng.choice(AGENT_REPLIES), rng)
        messages.append((clock, "agent", None, agent_id, reply, False, "web"))
        events.append(
            (clock, "agent", agent_id, None, "reply", {"message_id": None, "attachments": 0})
        )
        events.append((clock, "agent", agent_id, None, "status", {"old": "new", "new": "open"}))
        extra = rng.random()
        if extra < 0.05:
            clock += rng.uniform(600, 2 * 86400)
            body = rng.choice(FOLLOW_UPS)
            messages.append((clock, "customer", customer_id, None, body, False, "email"))
            events.append(
                (
                    clock,
                    "customer",
                    None,
                    customer_id,
                    "reply",
                    {"message_id": None, "attachments": 0},
                )
            )
        elif extra < 0.10:
            clock += rng.uniform(60, 3600)
            messages.append((clock, "agent", None, agent_id, rng.choice(NOTES), True, "web"))
            events.append(
                (clock, "agent", agent_id, None, "note", {"message_id": None, "attachments": 0})
            )
    last_activity = min(messages[-1][0], ctx.now)
    resolved_at = None
    if status in ("pending", "resolved", "closed"):
        clock += rng.uniform(3600, 3 * 86400)
        target = "pending" if status == "pending" else "resolved"
        events.append((clock, "agent", agent_id, None, "status", {"old": "open", "new": target}))
        resolved_at = min(clock, ctx.now) if target == "resolved" else None
    if status == "closed":
        clock += 3 * 86400
        events.append(
            (clock, "agent", agent_id, None, "status", {"old": "resolved", "new": "closed"})
        )
    updated = min(clock, ctx.now)

    bodies = []
    message_ids: list[int] = []
    for when, author_type, m_customer, m_agent, body, internal, m_source in messages:
        message_ids.append(ctx.next_message_id)
        chunk.messages.append(
            (
                ctx.next_message_id,
                ticket_id,
                author_type,
                m_customer,
                m_agent,
                body,
                internal,
                m_source,
                fmt(min(when, ctx.now)),
            )
        )
        ctx.next_message_id += 1
        bodies.append(body)
    replies = iter(message_ids[1:])
    for when, actor_type, e_agent, e_customer, kind_, data in events:
        if "message_id" in data:
            data = {"message_id": next(replies), "attachments": 0}
        chunk.events.append(
            (
                ctx.next_event_id,
                ticket_id,
                actor_type,
                e_agent,
                e_customer,
                kind_,
                _json(data),
                fmt(min(when, ctx.now)),
            )
        )
        ctx.next_event_id += 1
    chunk.tickets.append(
        (
            ticket_id,
            subject,
            status,
            priority,
            kind,
            source,
            customer_id,
            team_id,
            assignee,
            None,
            secrets.token_urlsafe(16),
            fmt(created),
            fmt(updated),
            fmt(last_activity),
            fmt(created + ctx.sla_hours[priority] * 3600),
            None if resolved_at is None else fmt(resolved_at),
            1,
        )
    )
    chunk.search.append(
        (
            ticket_id,
            subject,
            "\n\n".join(bodies)[: ctx.max_document_chars],
            f"{customer_name} {customer_email}",
        )
    )


def _customers(rng: random.Random, count: int, now: float, fmt) -> list[tuple]:
    rows = []
    for number in range(1, count + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        name = f"{first} {last}"
        local = f"{_ascii(first) or 'customer'}.{_ascii(last) or 'x'}{number}"
        email = f"{local}@example.com"
        if number % 7 == 0:  # as people type them
            email = f"{local.capitalize()}@Example.com"
        phone = f"+1202555{number % 10_000:04d}" if rng.random() < 0.5 else None
        joined = fmt(now - SPAN_DAYS * 86400 - rng.uniform(0, 365 * 86400))
        rows.append((number, email, email.lower(), name, phone, None, "", joined, joined))
    return rows


def _make_app(url: str) -> Flask:
    return create_app({"DATABASE_URL": url, "SECRET_KEY": "benchmark-seed"})


def _upgrade(app: Flask) -> None:
    """The core's and every enabled plugin's migrations, as ``helpdesk init-db`` applies them."""
    from helpdesk.plugins import current_plugins

    current_plugins().upgrade()


def upgrade_schema(database_url: str) -> None:
    """Apply new migrations to an already seeded database (what ``helpdesk init-db`` does)."""
    app = _make_app(database_url)
    with app.app_context():
        _upgrade(app)
        db.engine.dispose()


def _migrate_and_staff(app: Flask) -> tuple[dict[str, int], dict[int, list[tuple[int, str]]]]:
    """Apply the migrations, then make teams and agents through the account services."""
    from sqlalchemy import text

    _upgrade(app)
    if db.session.scalar(text("SELECT count(*) FROM tickets")):
        raise click.ClickException("the database already has tickets; seed needs an empty one")
    team_ids = {name: create_team(name).id for name in TEAMS}
    team_agents: dict[int, list[tuple[int, str]]] = {}
    for team, people in TEAMS.items():
        for name, handle in people:
            agent = create_agent(
                email=f"{handle}@example.com",
                name=name,
                password=BENCH_PASSWORD,
                team_ids=[team_ids[team]],
            )
            team_agents.setdefault(team_ids[team], []).append((agent.id, agent.name))
    create_agent(
        email=BENCH_AGENT_EMAIL,
        name="Bench Admin",
        password=BENCH_PASSWORD,
        role="admin",
        team_ids=list(team_ids.values()),
    )
    db.session.remove()
    db.engine.dispose()
    return team_ids, team_agents


def _chunks(ctx: Context, total: int) -> Iterator[tuple[int, Chunk]]:
    for start in range(0, total, CHUNK):
        chunk = Chunk()
        stop = min(start + CHUNK, total)
        for position in range(start, stop):
            _ticket(ctx, chunk, position, total)
        yield stop - start, chunk


def _prepare_file(url: str) -> None:
    """A fresh SQLite file: remove an old one and its WAL files."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    path = Path(parsed.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def database_size(url: str) -> int | None:
    """Bytes the database takes on disk (file, or PostgreSQL database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return sum(
            Path(f"{parsed.database}{suffix}").stat().st_size
            for suffix in ("", "-wal")
            if Path(f"{parsed.database}{suffix}").exists()
        )
    plain = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def verify(app: Flask, rare_ticket_ids: Sequence[int]) -> dict[str, bool]:
    """Check the seeded database the way the app reads it: counters, events, search."""
    from sqlalchemy import func, select

    from helpdesk.core import search
    from helpdesk.core.models import StatusCount, Ticket, TicketEvent

    with app.app_context(), app.test_request_context():
        real = {
            (team or 0, status): count
            for team, status, count in db.session.execute(
                select(Ticket.team_id, Ticket.status, func.count()).group_by(
                    Ticket.team_id, Ticket.status
                )
            )
        }
        counters = {
            (row.team_key, row.status): row.count
            for row in db.session.scalars(select(StatusCount))
            if row.count
        }
        tickets = db.session.scalar(select(func.count(Ticket.id)))
        created = db.session.scalar(
            select(func.count(TicketEvent.id)).where(TicketEvent.kind == "created")
        )
        found = sorted(
            row.ticket_id
            for row in db.session.execute(
                select(search.prepare(RARE_WORD, enough=1).matching_ids())
            )
        )
        return {
            "status counters equal real counts per team": counters == real,
            "one created event per ticket": created == tickets,
            f"search for {RARE_WORD!r} finds exactly its tickets": found == sorted(rare_ticket_ids),
        }


def seed(
    database_url: str,
    *,
    tickets: int,
    customers: int,
    random_seed: int = 1,
    progress: bool = True,
) -> SeedResult:
    """Fill a fresh database at ``database_url``; returns what was made."""
    started = time.perf_counter()
    _prepare_file(database_url)
    app = _make_app(database_url)
    with app.app_context():
        team_ids, team_agents = _migrate_and_staff(app)
        sla_hours = dict(app.config["SLA_HOURS"])
        max_chars = app.config["SEARCH_MAX_DOCUMENT_CHARS"]
    rng = random.Random(random_seed)
    loader = Loader(database_url)
    now = (datetime.now(UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() - 60
    customer_rows = _customers(rng, customers, now, loader.fmt)
    rare = {int(tickets * (k + 0.5) / RARE_TICKETS) for k in range(min(RARE_TICKETS, tickets))}
    all_agents = [agent for people in team_agents.values() for agent in people]
    ctx = Context(
        rng=rng,
        now=now,
        customers=[(row[0], row[3], row[1]) for row in customer_rows],
        team_ids=team_ids,
        team_agents=team_agents,
        all_agents=all_agents,
        rare_positions=rare,
        fmt=loader.fmt,
        sla_hours=sla_hours,
        max_document_chars=max_chars,
    )
    index_sql = loader.drop_indexes()
    loader.insert("customers", COLUMNS["customers"], customer_rows)
    search_table, search_columns = loader.search_table()
    with click.progressbar(
        length=tickets, label=f"Seeding {tickets:,} tickets", file=None if progress else _Null()
    ) as bar:
        for size, chunk in _chunks(ctx, tickets):
            loader.insert("tickets", COLUMNS["tickets"], chunk.tickets)
            loader.insert("messages", COLUMNS["messages"], chunk.messages)
            loader.insert("ticket_events", COLUMNS["ticket_events"], chunk.events)
            loader.insert(search_table, search_columns, chunk.search)
            loader.commit()
            bar.update(size)
    if progress:
        click.echo("Rebuilding indexes and counters...")
    loader.finish(index_sql)
    rare_ids = sorted(position + 1 for position in rare)
    checks = verify(app, rare_ids)
    with app.app_context():
        from helpdesk.core import services

        statuses = services.status_counts()
        db.engine.dispose()
    return SeedResult(
        database_url=database_url,
        tickets=tickets,
        customers=customers,
        messages=ctx.next_message_id - 1,
        events=ctx.next_event_id - 1,
        agents=len(all_agents) + 1,
        teams=len(team_ids),
        statuses=statuses,
        rare_ticket_ids=rare_ids,
        seconds=time.perf_counter() - started,
        size_bytes=database_size(database_url),
        checks=checks,
    )


class _Null:
    """A file that swallows the progress bar."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


def summary(result: SeedResult) -> str:
    """The seed run in a few lines of text."""
    size = f"{result.size_bytes / 1e6:,.0f} MB" if result.size_bytes else "?"
    statuses = ", ".join(f"{name} {count:,}" for name, count in result.statuses.items())
    lines = [
        f"Seeded {result.tickets:,} tickets, {result.messages:,} messages, "
        f"{result.events:,} events, {result.customers:,} customers, {result.agents} agents in "
        f"{result.teams} teams in {result.seconds:,.1f} s; database {size}.",
        f"Statuses: {statuses}.",
        f"Rare word {RARE_WORD!r} is in tickets {', '.join(map(str, result.rare_ticket_ids))}; "
        f"common word {COMMON_WORD!r}.",
        f"Log in as {BENCH_AGENT_EMAIL} / {BENCH_PASSWORD}.",
    ]
    lines += [f"  {'ok  ' if ok else 'FAIL'} {name}" for name, ok in result.checks.items()]
    return "\n".join(lines)


@click.command()
@click.option("--tickets", default=20_000, show_default=True, type=click.IntRange(1))
@click.option("--customers", default=2_000, show_default=True, type=click.IntRange(1))
@click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_PATH,
    show_default=True,
    help="SQLite file to create (replaced if it exists).",
)
@click.option("--database-url", help="Seed this (empty) database instead, e.g. PostgreSQL.")
@click.option("--seed", "random_seed", default=1, show_default=True, help="Random seed.")
def main(
    tickets: int, customers: int, path: Path, database_url: str | None, random_seed: int
) -> None:
    """Seed a fresh database with TICKETS tickets (~2 messages each) for the benchmarks."""
    url = database_url or f"sqlite:///{path.resolve()}"
    result = seed(url, tickets=tickets, customers=customers, random_seed=random_seed)
    click.echo(summary(result))
    if not all(result.checks.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
