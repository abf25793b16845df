"""Figures for the surveys plugin, on SQLite:

1. N tickets resolved one after another (``update_ticket``), with the plugin off and on: the
   milliseconds the survey's scheduling adds to each status change, in wall-clock and in CPU
   time (target: at most 1 ms);
2. the worker (``deliver_due``) sending those N surveys to the local fake of the Twilio API
   over HTTP (the fake runs in a process of its own, as a real gateway would): SMS per second
   (target: at least 100);
3. the appraisal report (``report.appraisal``, and the weekly trend the report page adds) over
   M surveys seeded with bulk inserts and counted into the daily roll-up with the rebuild
   (``helpdesk surveys rebuild-rollup``) (target: at most 1 s for 1,000,000).

    .venv/bin/python benchmarks/bench_surveys.py [--tickets 10000] [--surveys 1000000]
    .venv/bin/python benchmarks/bench_surveys.py --smoke      # a few seconds: shows it runs
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpdesk import create_app  # noqa: E402
from helpdesk.core import services  # noqa: E402
from helpdesk.core.accounts import create_agent, create_team  # noqa: E402
from helpdesk.core.models import Customer, Ticket, utcnow  # noqa: E402
from helpdesk.core.worker import deliver_due  # noqa: E402
from helpdesk.extensions import db  # noqa: E402
from helpdesk.plugins import current_plugins  # noqa: E402
from plugins.surveys import report, rollup  # noqa: E402
from plugins.surveys.models import Survey  # noqa: E402
from tests.fake_twilio import FakeTwilioProcess  # noqa: E402

BATCH = 50_000
FAST_HASH = "pbkdf2:sha256:1000"  # seeded agents never log in
CHUNK = 250  # resolves measured with the plugin off, then on, in turn (cancels drift)


def _config(path: Path, fake_url: str, account: str, token: str, **extra: Any) -> dict:
    return {
        "DATABASE_URL": f"sqlite:///{path}",
        "SECRET_KEY": "bench",
        "PLUGINS": ["surveys"],
        "PASSWORD_HASH_METHOD": FAST_HASH,
        "MAIL_SUPPRESS_SEND": True,
        "MAIL_NOTIFY_RESOLVED": False,
        "SURVEYS_SMS_BACKEND": "twilio",
        "SURVEYS_TWILIO_BASE_URL": fake_url,
        "SURVEYS_TWILIO_ACCOUNT_SID": account,
        "SURVEYS_TWILIO_AUTH_TOKEN": token,
        "SURVEYS_SMS_FROM": "+15005550006",
        "SURVEYS_QUIET_HOURS": "",
        **extra,
    }


def _seed_tickets(count: int) -> list[int]:
    """``count`` open tickets, each of its own customer with a mobile number (bulk inserts)."""
    now = utcnow()
    customers = [
        {
            "email": f"c{n}@example.com",
            "email_key": f"c{n}@example.com",
            "name": f"Client {n}",
            "phone": f"+354{6110000 + n}",
            "notes": "",
            "created_at": now,
            "updated_at": now,
        }
        for n in range(count)
    ]
    db.session.execute(insert(Customer), customers)
    ids = db.session.scalars(select(Customer.id).order_by(Customer.id)).all()
    db.session.execute(
        insert(Ticket),
        [
            {
                "subject": "Kettle leaks",
                "status": "open",
                "priority": "normal",
                "kind": "support",
                "source": "web",
                "customer_id": customer_id,
                "public_key": f"k{customer_id}",
                "created_at": now,
                "updated_at": now,
                "last_activity_at": now,
                "version": 1,
            }
            for customer_id in ids
        ],
    )
    db.session.execute(
        text("UPDATE status_counts SET count = count + :n WHERE team_key = 0 AND status = 'open'"),
        {"n": count},
    )
    db.session.commit()
    return list(db.session.scalars(select(Ticket.id).order_by(Ticket.id)))


def _resolve(app, ticket_ids: list[int], agent_id: int) -> tuple[float, float]:
    """Seconds spent in ``update_ticket`` resolving ``ticket_ids`` in ``app``: wall clock and
    this process's CPU time (the second is less moved by the other work on the machine)."""
    wall = cpu = 0.0
    with app.app_context():
        from helpdesk.core.models import Agent

        agent = db.session.get(Agent, agent_id)
        for ticket_id in ticket_ids:
            ticket = db.session.get(Ticket, ticket_id)
            began, began_cpu = time.perf_counter(), time.process_time()
            services.update_ticket(ticket, {"status": "resolved"}, actor=agent)
            wall += time.perf_counter() - began
            cpu += time.process_time() - began_cpu
        db.session.remove()
    return wall, cpu


def status_changes(path: Path, fake, tickets: int) -> tuple[dict[str, float], int]:
    """Mean ms per resolve with the plugin off and on (``off``, ``on``: wall clock;
    ``off_cpu``, ``on_cpu``: CPU time), and how many surveys were scheduled."""
    on = create_app(_config(path, fake.url, fake.account_sid, fake.auth_token))
    off = create_app(
        _config(path, fake.url, fake.account_sid, fake.auth_token, PLUGINS_DISABLED=["surveys"])
    )
    with on.app_context():
        current_plugins().upgrade()
        create_team("Support")
        agent = create_agent(email="ana@example.com", name="Ana Agent", password="x" * 12)
        agent_id = agent.id
        ids = _seed_tickets(2 * tickets)
        db.session.remove()
    spent = dict.fromkeys(("off", "on", "off_cpu", "on_cpu"), 0.0)
    for first in range(0, tickets, CHUNK):
        for name, app, chunk in (
            ("off", off, ids[2 * first : 2 * first + CHUNK]),
            ("on", on, ids[2 * first + CHUNK : 2 * first + 2 * CHUNK]),
        ):
            wall, cpu = _resolve(app, chunk, agent_id)
            spent[name] += wall
            spent[f"{name}_cpu"] += cpu
    with on.app_context():
        scheduled = db.session.scalar(
            select(db.func.count()).select_from(Survey).where(Survey.status == "scheduled")
        )
        db.session.remove()
    return {name: seconds / tickets * 1000 for name, seconds in spent.items()}, scheduled


def worker(path: Path, fake) -> tuple[int, float, float]:
    """Send every scheduled survey to the fake: (SMS sent, seconds, CPU seconds of this
    process)."""
    app = create_app(_config(path, fake.url, fake.account_sid, fake.auth_token))
    with app.app_context():
        began, began_cpu = time.perf_counter(), time.process_time()
        summary = deliver_due(now=utcnow() + timedelta(hours=2))
        seconds, cpu = time.perf_counter() - began, time.process_time() - began_cpu
        db.session.remove()
    assert summary.sent == fake.accepted(), (summary, fake.accepted())
    return summary.sent, seconds, cpu


def seed_surveys(path: Path, count: int, agents: int = 50) -> None:
    """``count`` surveys over 2025 for ``agents`` agents in 5 teams (bulk inserts)."""
    rng = random.Random(8)
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{path}",
            "SECRET_KEY": "b",
            "PLUGINS": ["surveys"],
            "PASSWORD_HASH_METHOD": FAST_HASH,
        }
    )
    with app.app_context():
        current_plugins().upgrade()
        teams = [create_team(f"Team {n}").id for n in range(5)]
        ids = [
            create_agent(
                email=f"a{n}@example.com",
                name=f"Agent {n}",
                password="x" * 12,
                team_ids=[teams[n % 5]],
            ).id
            for n in range(agents)
        ]
        now = utcnow()
        db.session.execute(
            insert(Customer),
            [
                {
                    "email": "c@example.com",
                    "email_key": "c@example.com",
                    "name": "C",
                    "notes": "",
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        customer_id = db.session.scalar(select(Customer.id))
        db.session.execute(
            insert(Ticket),
            [
                {
                    "subject": "x",
                    "status": "resolved",
                    "priority": "normal",
                    "kind": "support",
                    "source": "web",
                    "customer_id": customer_id,
                    "public_key": "k",
                    "created_at": now,
                    "updated_at": now,
                    "last_activity_at": now,
                    "version": 1,
                }
            ],
        )
        ticket_id = db.session.scalar(select(Ticket.id))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    _bulk_surveys(path, count, ids, teams, customer_id, ticket_id, rng)


def _bulk_surveys(
    path: Path,
    count: int,
    ids: list[int],
    teams: list[int],
    customer_id: int,
    ticket_id: int,
    rng: random.Random,
) -> None:
    """Insert the surveys with ``sqlite3.executemany`` (naive UTC text with microseconds, as
    the app stores it)."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    start = datetime(2025, 1, 1)
    columns = (
        "ticket_id, customer_id, agent_id, team_id, phone, language, body, status, reason, "
        "created_at, due_at, sent_at, delivered_at, answered_at, delivery_status, error_code, "
        "error_message, score, comment, asked_again, follow_up"
    )
    for first in range(0, count, BATCH):
        rows = []
        for _n in range(first, min(first + BATCH, count)):
            created = start + timedelta(minutes=rng.randrange(365 * 1440))
            agent = rng.randrange(len(ids))
            fate = rng.random()
            sent = (
                (created + timedelta(hours=1)).isoformat(" ", "microseconds")
                if fate < 0.9
                else None
            )
            score = rng.choice((1, 2, 3, 4, 4, 5, 5, 5)) if fate < 0.45 else None
            rows.append(
                (
                    ticket_id,
                    customer_id,
                    ids[agent],
                    teams[agent % len(teams)],
                    "+3546111234",
                    "en",
                    "",
                    "answered" if score else ("sent" if sent else "skipped"),
                    "" if sent else "too_recent",
                    created.isoformat(" ", "microseconds"),
                    created.isoformat(" ", "microseconds"),
                    sent,
                    sent if fate < 0.8 else None,
                    sent if score else None,
                    "delivered" if sent else "",
                    "",
                    "",
                    score,
                    "",
                    0,
                    0,
                )
            )
        con.executemany(f"INSERT INTO surveys ({columns}) VALUES ({', '.join('?' * 21)})", rows)
    con.commit()
    con.execute("ANALYZE")
    con.close()


def rebuild(path: Path) -> float:
    """Seconds to count the seeded surveys into the daily roll-up."""
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{path}",
            "SECRET_KEY": "b",
            "PLUGINS": ["surveys"],
            "PASSWORD_HASH_METHOD": FAST_HASH,
        }
    )
    with app.app_context():
        began = time.perf_counter()
        rollup.rebuild(rollup.spans())
        seconds = time.perf_counter() - began
        db.session.remove()
    return seconds


def appraisal(path: Path, repeat: int) -> tuple[list[float], list[float], int]:
    """Seconds of each run of the report over 2025 per agent, and of the report with its
    weekly trend (the report page's figures); and the surveys counted."""
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{path}",
            "SECRET_KEY": "b",
            "PLUGINS": ["surveys"],
            "PASSWORD_HASH_METHOD": FAST_HASH,
        }
    )
    alone, page = [], []
    start, end = date(2025, 1, 1), date(2025, 12, 31)
    with app.app_context():
        for _ in range(repeat):
            began = time.perf_counter()
            rows = report.appraisal(start, end)
            alone.append(time.perf_counter() - began)
            report.weekly_trend(start, end)
            page.append(time.perf_counter() - began)
            db.session.rollback()
        db.session.remove()
    return alone, page, sum(row.resolved for row in rows)


def _load() -> str:
    """The machine's load average over 1, 5 and 15 minutes (other work moves the figures)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--surveys", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="500 tickets, 20,000 surveys")
    args = parser.parse_args()
    if args.smoke:
        args.tickets, args.surveys, args.repeat = 500, 20_000, 1
    rows = []
    load = _load()
    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-surveys-") as folder:
        with FakeTwilioProcess() as fake:
            ms, scheduled = status_changes(Path(folder) / "resolve.sqlite3", fake, args.tickets)
            rows.append(
                (
                    f"{args.tickets:,} resolves: ms per status change, plugin off / on",
                    f"wall {ms['off']:.2f} / {ms['on']:.2f} (+{ms['on'] - ms['off']:.2f}), "
                    f"CPU {ms['off_cpu']:.2f} / {ms['on_cpu']:.2f} "
                    f"(+{ms['on_cpu'] - ms['off_cpu']:.2f}); {scheduled:,} scheduled",
                    "≤ 1 ms added",
                )
            )
            sent, seconds, cpu = worker(Path(folder) / "resolve.sqlite3", fake)
            rows.append(
                (
                    f"worker: {sent:,} SMS to the local fake Twilio",
                    f"{sent / seconds:,.0f} SMS/s ({seconds:.1f} s; "
                    f"CPU {cpu / sent * 1000:.2f} ms per SMS)",
                    "≥ 100 SMS/s",
                )
            )
        path = Path(folder) / "appraisal.sqlite3"
        began = time.perf_counter()
        seed_surveys(path, args.surveys)
        seeded = time.perf_counter() - began
        rebuilt = rebuild(path)
        alone, page, counted = appraisal(path, args.repeat)
        rows.append(
            (
                f"appraisal per agent over {counted:,} surveys (seeded in {seeded:.0f} s)",
                f"best {min(alone):.3f} s, worst {max(alone):.3f} s",
                "≤ 1 s at 1,000,000",
            )
        )
        rows.append(
            (
                "… with the weekly trend (the report page's figures)",
                f"best {min(page):.3f} s, worst {max(page):.3f} s",
                "",
            )
        )
        rows.append((f"rebuild-rollup over {counted:,} surveys", f"{rebuilt:.1f} s", ""))
    width = max(len(r[0]) for r in rows)
    print(f"load average before / after: {load} / {_load()}")
    print(f"{'figure':<{width}} | measured | target")
    for name, value, target in rows:
        print(f"{name:<{width}} | {value} | {target}")


if __name__ == "__main__":
    main()
