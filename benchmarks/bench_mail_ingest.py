#!/usr/bin/env python
"""How fast received mail becomes tickets: in-process (``ingest`` in a loop) and end to end
(``helpdesk mail fetch --maildir``, CLI start-up included), on SQLite with existing tickets.

    .venv/bin/python benchmarks/bench_mail_ingest.py                   # 20,000 tickets, 2,000 mails
    .venv/bin/python benchmarks/bench_mail_ingest.py --messages 5000 --tickets 20000

The mix is 80% new mails from customers (Gmail-like multipart/alternative, UTF-8,
quoted-printable) and 20% replies to seeded tickets by their customers (half threaded by our
signed Message-ID in In-Reply-To, half by the ``[#id]`` subject tag). Each run starts from
a copy of the same seeded database. Targets: ≥ 500 mails/s in-process, ≥ 300/s end to end.
"""

from __future__ import annotations

import mailbox
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import click
import seed as seeding
from sqlalchemy import text

from helpdesk import create_app
from helpdesk.core.mail.batch import MailBatch
from helpdesk.core.mail.ids import make_message_id
from helpdesk.core.mail.readahead import processes_wanted
from helpdesk.extensions import db, write_intent
from helpdesk.plugins import current_plugins

ROOT = Path(__file__).resolve().parent.parent
WORK_DIR = Path(tempfile.gettempdir()) / "helpdesk-bench"
SECRET = "bench-secret"
SENDER = "helpdesk@example.com"


def settings(url: str, work: Path) -> dict[str, str]:
    """The app's settings for a run (limits raised so the benchmark is not throttled)."""
    return {
        "DATABASE_URL": url,
        "SECRET_KEY": SECRET,
        "MAIL_DEFAULT_SENDER": SENDER,
        "MAIL_SENDER_RATE_LIMIT": "1000000/60",
        "ATTACHMENTS_DIR": str(work / "attachments"),
        "MAIL_QUARANTINE_DIR": str(work / "quarantine"),
    }


def upgrade(url: str) -> None:
    """Bring a seeded database to the current schema, plugins' tables included (what
    ``helpdesk init-db`` does), so a run measures what an installation runs."""
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET})
    with app.app_context():
        current_plugins().upgrade()
        db.engine.dispose()


def new_mail(n: int, rng: random.Random) -> bytes:
    """A new customer's mail, as Gmail sends it."""
    who = f"customer{rng.randrange(5000)}@mail{rng.randrange(50)}.example"
    return (
        f"From: Customer {n} <{who}>\r\nTo: {SENDER}\r\nSubject: Order {n} arrived damaged\r\n"
        f"Message-ID: <bench-new-{n}@mail.example>\r\nDate: Tue, 12 Mar 2024 09:14:02 +0100\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        f"Hello, my order {n} arrived broken =E2=80=93 please send a new one.\r\n"
        "\r\n--b\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n"
        f"<div>Hello, my order {n} arrived <b>broken</b>.</div>\r\n--b--\r\n"
    ).encode()


def reply_mail(n: int, ticket_id: int, email: str) -> bytes:
    """A customer's reply to a seeded ticket (signed reference or subject tag)."""
    threading = f"In-Reply-To: {make_message_id(ticket_id, f'b{n}')}\r\n" if n % 2 else ""
    return (
        f"From: <{email}>\r\nTo: {SENDER}\r\nSubject: Re: [#{ticket_id}] your ticket\r\n"
        f"Message-ID: <bench-reply-{n}@mail.example>\r\n{threading}"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Thanks, one more question about it ({n}).\r\n\r\nOn Tue, Helpdesk wrote:\r\n> Hi\r\n"
    ).encode()


def make_mails(url: str, count: int, work: Path) -> list[bytes]:
    """``count`` mails, 20% of them replies to existing tickets."""
    rng = random.Random(7)
    app = create_app(settings(url, work))
    with app.app_context():
        targets = db.session.execute(
            text(
                "SELECT t.id, c.email FROM tickets t JOIN customers c ON c.id = t.customer_id "
                "ORDER BY t.id DESC LIMIT 2000"
            )
        ).all()
        mails = []
        for n in range(count):
            if n % 5 == 4:
                ticket_id, email = rng.choice(targets)
                mails.append(reply_mail(n, ticket_id, email))
            else:
                mails.append(new_mail(n, rng))
        db.engine.dispose()
    return mails


def in_process(url: str, mails: list[bytes], work: Path) -> tuple[float, dict[str, int]]:
    """Seconds to ingest ``mails`` in this process as ``fetch`` does (batches of
    ``MAIL_FETCH_BATCH_SIZE`` in one transaction each, parsed by the helpers
    ``MAIL_FETCH_PARSE_PROCESSES`` asks for), and the outcomes."""
    app = create_app(settings(url, work))
    outcomes: Counter[str] = Counter()
    with app.app_context(), write_intent():
        started = time.perf_counter()
        with MailBatch(
            max_mails=app.config["MAIL_FETCH_BATCH_SIZE"],
            max_bytes=app.config["MAIL_FETCH_BATCH_BYTES"],
            on_outcome=lambda outcome: outcomes.update([outcome.status]),
            parse_processes=processes_wanted(app.config),
        ) as batch:
            for raw in mails:
                batch.ingest(raw, lambda: None)
        elapsed = time.perf_counter() - started
        db.engine.dispose()
    return elapsed, outcomes


def end_to_end(url: str, mails: list[bytes], work: Path) -> tuple[float, str]:
    """Seconds for ``helpdesk mail fetch --maildir`` over ``mails``, and its summary."""
    box_path = work / "Maildir"
    box = mailbox.Maildir(str(box_path), create=True)
    for raw in mails:
        box.add(raw)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    env.update({f"HELPDESK_{k}": v for k, v in settings(url, work).items()})
    env["HELPDESK_INSTANCE_PATH"] = str(work / "instance")
    started = time.perf_counter()
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "helpdesk"),
            "mail",
            "fetch",
            "--maildir",
            str(box_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, result.stdout.strip().splitlines()[-1]


@click.command()
@click.option("--tickets", default=20_000, show_default=True, type=click.IntRange(1))
@click.option("--messages", default=2_000, show_default=True, type=click.IntRange(10))
def main(tickets: int, messages: int) -> None:
    """Seed, then measure inbound mail throughput in-process and end to end."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    seeded = WORK_DIR / f"mail-seed-{tickets}.sqlite3"
    if not seeded.exists():
        seeding.seed(f"sqlite:///{seeded}", tickets=tickets, customers=max(tickets // 10, 1))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-mail-") as tmp:
        for name in ("in-process", "end to end"):
            work = Path(tmp) / name.replace(" ", "-")
            work.mkdir()
            copy = work / "db.sqlite3"
            shutil.copy(seeded, copy)
            url = f"sqlite:///{copy}"
            upgrade(url)  # the copy: the kept seed stays the core's, whatever code runs next
            mails = make_mails(url, messages, work)
            if name == "in-process":
                seconds, outcomes = in_process(url, mails, work)
                detail = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
            else:
                seconds, detail = end_to_end(url, mails, work)
            rows.append((name, seconds, messages / seconds, detail))
    click.echo(
        f"\nInbound mail, SQLite, {tickets} existing tickets, {messages} mails (20% replies)"
    )
    click.echo(f"{'run':<12} {'seconds':>8} {'mails/s':>9}  outcome")
    for name, seconds, rate, detail in rows:
        click.echo(f"{name:<12} {seconds:8.2f} {rate:9.0f}  {detail}")


if __name__ == "__main__":
    main()
