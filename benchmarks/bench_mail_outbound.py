#!/usr/bin/env python
"""How fast ``helpdesk worker --once`` empties the outbox into a local SMTP server.

    .venv/bin/python benchmarks/bench_mail_outbound.py                 # 2000 mails, SQLite
    .venv/bin/python benchmarks/bench_mail_outbound.py --mails 10000 --batch 500
    .venv/bin/python benchmarks/bench_mail_outbound.py --acks 2000     # fresh acknowledgements only
    .venv/bin/python benchmarks/bench_mail_outbound.py --database-url postgresql://u@h/empty_db

A fresh database (a temporary SQLite file unless ``--database-url`` names an empty one) gets
its schema from the migrations, then ``--tickets`` tickets opened through the services (half
by the web form, half by mail; each queues its real acknowledgement) and acknowledgements
rendered for them until ``--mails`` mails wait in the outbox. ``--acks N`` makes the
all-acknowledgements mix instead: N tickets opened by customers, so N acknowledgements the
worker composes itself and nothing else (the web form's and the mail ingester's load). An
aiosmtpd server on 127.0.0.1 receives them. The time measured is the whole ``helpdesk worker
--once`` process, start-up included, and the time the worker itself reports (its own loop);
the script checks that every mail arrived exactly once and prints mails per second for both
(target: 200/s or more). The SMTP server is Python (aiosmtpd) in this process: it shares the
CPUs with the worker.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import click
from aiosmtpd.controller import Controller

from helpdesk import create_app
from helpdesk.core import services
from helpdesk.core.mail import compose, outbound
from helpdesk.core.mail.ids import make_message_id
from helpdesk.extensions import db
from helpdesk.plugins import current_plugins

SECRET = "bench-secret"
TARGET_PER_SECOND = 200


class _Counter:
    """Keeps the Message-ID of every mail the SMTP server accepts."""

    def __init__(self) -> None:
        self.message_ids: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        headers = BytesHeaderParser().parsebytes(envelope.content)
        with self.lock:
            self.message_ids.append(headers["Message-ID"])
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _fill_outbox(database_url: str, tickets: int, mails: int) -> None:
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": SECRET})
    with app.app_context():
        current_plugins().upgrade()  # the core's and plugins' migrations, as init-db runs them
        opened = [
            services.open_ticket(
                subject=f"Parcel {number} never arrived – Þórður’s order",
                body="Hello,\n\nmy parcel has not arrived yet. Could you check?\n\nThanks",
                customer_email=f"customer{number}@example.com",
                customer_name=f"Customer {number} Ægisson",
                # Every other one by mail: its acknowledgement answers the customer's mail.
                source="email" if number % 2 else "web",
                mail=services.MailFields(f"<bench{number}@client.example>") if number % 2 else None,
            )
            for number in range(tickets)
        ]
        templates = {}
        for number in range(mails - tickets):
            ticket = opened[number % tickets]
            if ticket.id not in templates:
                templates[ticket.id] = compose.acknowledgement_mail(ticket)
            message_id = make_message_id(ticket.id, f"bench{number}")
            payload = compose.with_raw({**templates[ticket.id], "message_id": message_id})
            outbound.queue_mail(payload, ticket_id=ticket.id)
        db.session.commit()
        db.engine.dispose()


def _run_worker(database_url: str, port: int, batch: int, instance: str) -> tuple[float, str]:
    env = {
        **os.environ,
        "HELPDESK_INSTANCE_PATH": instance,
        "HELPDESK_DATABASE_URL": database_url,
        "HELPDESK_SECRET_KEY": SECRET,
        "HELPDESK_MAIL_SERVER": "127.0.0.1",
        "HELPDESK_MAIL_PORT": str(port),
    }
    command = [str(Path(sys.executable).parent / "helpdesk"), "worker", "--once"]
    command += ["--batch", str(batch)]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise click.ClickException(f"the worker failed:\n{result.stdout}{result.stderr}")
    return elapsed, result.stdout.strip()


@click.command()
@click.option("--mails", default=2000, show_default=True, help="Mails in the outbox.")
@click.option("--tickets", default=50, show_default=True, help="Tickets they belong to.")
@click.option("--batch", default=100, show_default=True, help="The worker's --batch.")
@click.option(
    "--acks",
    type=click.IntRange(1),
    default=None,
    help="Only N fresh acknowledgements, composed by the worker (sets --mails and --tickets).",
)
@click.option("--database-url", default=None, help="An empty database (default: temp SQLite).")
def main(mails: int, tickets: int, batch: int, acks: int | None, database_url: str | None) -> None:
    """Time `helpdesk worker --once` sending MAILS mails to a local aiosmtpd server."""
    if acks is not None:
        mails = tickets = acks
    tickets = max(1, min(tickets, mails))
    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-mail-") as workdir:
        url = database_url or f"sqlite:///{Path(workdir) / 'outbox.sqlite3'}"
        started = time.perf_counter()
        _fill_outbox(url, tickets, mails)
        click.echo(
            f"Queued {mails} mails ({tickets} acknowledgements to compose, the rest composed) "
            f"in {time.perf_counter() - started:.1f} s."
        )

        counter = _Counter()
        port = _free_port()
        server = Controller(counter, hostname="127.0.0.1", port=port)
        server.start()
        load = os.getloadavg()
        try:
            elapsed, summary = _run_worker(url, port, batch, workdir)
        finally:
            server.stop()

    received = len(counter.message_ids)
    unique = len(set(counter.message_ids))
    match = re.search(r"\(([\d.]+) s\)", summary)
    sending = float(match.group(1)) if match else elapsed
    click.echo(f"worker: {summary}")
    click.echo("load average before the worker: " + " / ".join(f"{n:.2f}" for n in load))
    click.echo("| mails | to compose | batch | measured | seconds | mails/s | target |")
    click.echo("| ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    for label, seconds in (("whole CLI run", elapsed), ("worker's own loop", sending)):
        rate = received / seconds
        click.echo(
            f"| {received} | {tickets} | {batch} | {label} | {seconds:.2f} | {rate:.0f} | "
            f"≥ {TARGET_PER_SECOND} |"
        )
    if received != mails or unique != mails:
        raise click.ClickException(f"expected {mails} distinct mails, got {received} ({unique})")


if __name__ == "__main__":
    main()
