"""The outbox worker: delivers what the services and plugins put in the ``outbox`` table:
mail itself, over SMTP, and every other channel (SMS, ...) through the deliverer a plugin gives
with ``helpdesk_outbox_senders``.

A round claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a ``BEGIN IMMEDIATE``
write transaction on SQLite) by setting ``claimed_until`` and committing, so several workers
never take the same row. It then sends them outside any transaction (all mail over one SMTP
connection), and records each outcome: sent, retried later (exponential backoff), or dead after
``OUTBOX_MAX_ATTEMPTS``. A worker that dies between sending and recording leaves its rows
claimed until the claim runs out; they are then sent again with the same Message-ID
(at least once, and a duplicate is recognisable).
"""

from __future__ import annotations

import logging
import signal
import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_mail import Connection
from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from helpdesk.cli import _clear_errors
from helpdesk.core.mail import compose
from helpdesk.core.models import OutboxItem, utcnow
from helpdesk.core.outbox import ChannelUnavailable, Deliverer, Delivery, DeliveryRefused
from helpdesk.extensions import db, write_intent
from helpdesk.plugins import call_each, current_plugins

log = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 2000
# A refusal of this one mail (its recipient, its content): the connection still works.
ITEM_ERRORS = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPDataError,
    smtplib.SMTPNotSupportedError,
    KeyError,
    TypeError,
    ValueError,
)


@dataclass
class Summary:
    """What a run did: items sent, items to retry later, items given up on."""

    sent: int = 0
    retried: int = 0
    dead: int = 0

    def add(self, other: Summary) -> None:
        """Count ``other``'s outcomes in this summary too."""
        self.sent += other.sent
        self.retried += other.retried
        self.dead += other.dead

    @property
    def total(self) -> int:
        """Every item handled."""
        return self.sent + self.retried + self.dead


@dataclass
class Outcomes:
    """How each claimed item's try went: ``errors[id]`` is ``None`` when it was sent;
    ``refused`` holds the ids refused for good; ``unavailable`` the channels that were away,
    with the error that said so."""

    errors: dict[int, str | None]
    refused: set[int]
    unavailable: dict[str, str]


class _TimedConnection(Connection):
    """Flask-Mail's SMTP connection, with a timeout so a stalled server cannot hang the
    worker (Flask-Mail's own waits forever)."""

    def configure_host(self) -> smtplib.SMTP:
        mail = self.mail
        timeout = current_app.config["MAIL_TIMEOUT_SECONDS"]
        smtp_class = smtplib.SMTP_SSL if mail.use_ssl else smtplib.SMTP
        host = smtp_class(mail.server, mail.port, timeout=timeout)
        host.set_debuglevel(int(mail.debug))
        if mail.use_tls:
            host.starttls()
        if mail.username and mail.password:
            host.login(mail.username, mail.password)
        return host


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed try: doubling from
    ``OUTBOX_RETRY_SECONDS``, at most ``OUTBOX_RETRY_MAX_SECONDS``."""
    config = current_app.config
    base, longest = config["OUTBOX_RETRY_SECONDS"], config["OUTBOX_RETRY_MAX_SECONDS"]
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), longest))


def deliverers() -> dict[str, Deliverer]:
    """The enabled plugins' deliverers by channel (the first for a channel wins). The plugins'
    states are read again, so enabling or disabling one reaches a running worker."""
    session = db.session()
    was_open = session.in_transaction()
    current_plugins().refresh()
    found: dict[str, Deliverer] = {}
    for senders in call_each("helpdesk_outbox_senders"):
        for channel, deliver in senders.items():
            if channel != "mail":
                found.setdefault(channel, deliver)
    if not was_open and session.in_transaction():
        # End the reads at once (the hook call reads the plugins' states too): a long-lived
        # one would pin SQLite's WAL, and under ``write_intent`` (the CLI) it holds the write
        # lock that ``claim`` needs.
        session.commit()
    return found


def claim(
    session: Session, batch: int, now: datetime, channels: list[str] | None = None
) -> list[Delivery]:
    """Take up to ``batch`` due items of ``channels`` (default: mail only) for this worker
    until ``WORKER_CLAIM_SECONDS`` from now."""
    columns = (
        OutboxItem.id,
        OutboxItem.channel,
        OutboxItem.payload,
        OutboxItem.attempts,
        OutboxItem.ticket_id,
    )
    due = (
        select(*columns)
        .where(
            OutboxItem.channel.in_(channels or ["mail"]),
            OutboxItem.status == "pending",
            OutboxItem.next_attempt_at <= now,
            or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until < now),
        )
        .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    until = now + timedelta(seconds=current_app.config["WORKER_CLAIM_SECONDS"])
    with write_intent(), session.begin():
        last = current_app.config["OUTBOX_MAX_ATTEMPTS"] - 1
        rows = [
            Delivery(item_id, channel, payload, attempts, attempts >= last, ticket_id)
            for item_id, channel, payload, attempts, ticket_id in session.execute(due)
        ]
        if rows:
            session.execute(
                update(OutboxItem)
                .where(OutboxItem.id.in_([row.id for row in rows]))
                .values(claimed_until=until)
            )
    return rows


def send(items: list[Delivery], senders: dict[str, Deliverer] | None = None) -> Outcomes:
    """Send ``items``: mail over one SMTP connection, other channels through their deliverer."""
    outcomes = Outcomes(errors={}, refused=set(), unavailable={})
    mail = _composed([item for item in items if item.channel == "mail"], outcomes)
    if mail and send_mail(mail, outcomes.errors):
        outcomes.unavailable["mail"] = outcomes.errors[mail[-1].id] or ""
    for channel, deliver in (senders or {}).items():
        for item in (item for item in items if item.channel == channel):
            if channel in outcomes.unavailable:
                outcomes.errors[item.id] = outcomes.unavailable[channel]
                continue
            try:
                deliver(item)
            except DeliveryRefused as exc:
                outcomes.errors[item.id] = str(exc)[:MAX_ERROR_LENGTH] or "refused"
                outcomes.refused.add(item.id)
            except ChannelUnavailable as exc:
                outcomes.errors[item.id] = outcomes.unavailable[channel] = _describe(exc)
            except Exception as exc:  # a deliverer's bug must not stop the other items
                log.exception("outbox %s deliverer failed on item %s", channel, item.id)
                outcomes.errors[item.id] = _describe(exc)
            else:
                outcomes.errors[item.id] = None
    return outcomes


def _composed(items: list[Delivery], outcomes: Outcomes) -> list[Delivery]:
    """The mail ``items`` ready to send (``compose.ready_to_send``: mail queued to be composed
    later is composed now, the batch's tickets read together). One that cannot be gets its
    error and is left out: dead at once when its ticket is gone, else retried."""
    session = db.session()
    was_open = session.in_transaction()
    ready = []
    payloads = compose.ready_to_send([item.payload for item in items])
    for item, payload in zip(items, payloads, strict=True):
        if isinstance(payload, compose.TicketGone):
            outcomes.errors[item.id] = str(payload)
            outcomes.refused.add(item.id)
        elif isinstance(payload, Exception):
            outcomes.errors[item.id] = _describe(payload)
        else:
            ready.append(item if payload is item.payload else replace(item, payload=payload))
    if not was_open and session.in_transaction():
        session.commit()  # end the reads at once, as ``deliverers`` does
    return ready


def send_mail(items: list[Delivery], outcomes: dict[int, str | None]) -> bool:
    """Send mail ``items`` over one SMTP connection, setting each one's error (``None``: sent)
    in ``outcomes``. Returns whether the connection itself failed (the server is away)."""
    try:
        with _TimedConnection(current_app.extensions["mail"]) as connection:
            for item in items:
                try:
                    _send_one(connection, item.payload)
                except ITEM_ERRORS as exc:
                    outcomes[item.id] = _describe(exc)
                else:
                    outcomes[item.id] = None
    except (OSError, smtplib.SMTPException) as exc:
        error = _describe(exc)
        for item in items:
            outcomes.setdefault(item.id, error)
        return True
    return False


def _send_one(connection: Connection, payload: dict[str, Any]) -> None:
    """Send the message ``compose`` built (``MAIL_SUPPRESS_SEND``,
    as Flask-Mail does, leaves ``host`` unset and sends nothing)."""
    if connection.host is None:
        return
    recipients = [address for _name, address in payload["to"]]
    connection.host.sendmail(payload["from"][1], recipients, payload["raw"].encode("utf-8"))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]


def record(session: Session, items: list[Delivery], outcomes: Outcomes, now: datetime) -> Summary:
    """Mark each item sent, to retry after its backoff, or dead; release the claims."""
    summary = Summary()
    max_attempts = current_app.config["OUTBOX_MAX_ATTEMPTS"]
    sent = [item.id for item in items if outcomes.errors[item.id] is None]
    with write_intent(), session.begin():
        if sent:
            session.execute(
                update(OutboxItem)
                .where(OutboxItem.id.in_(sent))
                .values(
                    status="sent",
                    sent_at=now,
                    attempts=OutboxItem.attempts + 1,
                    claimed_until=None,
                    last_error="",
                )
            )
            summary.sent = len(sent)
        for item in items:
            error = outcomes.errors[item.id]
            if error is None:
                continue
            attempts = item.attempts + 1
            values: dict[str, Any] = {
                "attempts": attempts,
                "claimed_until": None,
                "last_error": error,
            }
            if attempts >= max_attempts or item.id in outcomes.refused:
                values["status"] = "dead"
                summary.dead += 1
            else:
                values["next_attempt_at"] = now + backoff(attempts)
                summary.retried += 1
            session.execute(update(OutboxItem).where(OutboxItem.id == item.id).values(**values))
    return summary


def deliver_batch(batch: int, *, now: datetime | None = None) -> tuple[Summary, bool]:
    """Claim, send and record one batch. Returns its summary and whether to go on now
    (a full batch went out and every channel's service answered)."""
    now = now or utcnow()
    senders = deliverers()
    with Session(db.engine, expire_on_commit=False) as session:
        items = claim(session, batch, now, ["mail", *senders])
        if not items:
            return Summary(), False
        outcomes = send(items, senders)
        summary = record(session, items, outcomes, now)
    for channel, error in outcomes.unavailable.items():
        log.warning(
            "outbox channel %s unavailable (%s); its items wait for their retry", channel, error
        )
    return summary, len(items) == batch and not outcomes.unavailable


def deliver_due(
    *, batch: int | None = None, now: datetime | None = None, stop: threading.Event | None = None
) -> Summary:
    """Deliver every item due now, batch after batch, until none is left (or ``stop`` is set,
    or a channel's service is away)."""
    batch = batch or current_app.config["WORKER_BATCH_SIZE"]
    summary = Summary()
    go_on = True
    while go_on and not (stop is not None and stop.is_set()):
        done, go_on = deliver_batch(batch, now=now)
        summary.add(done)
    return summary


def run(
    *,
    stop: threading.Event,
    batch: int | None = None,
    poll_seconds: float | None = None,
    report: Callable[[Summary], None] | None = None,
) -> Summary:
    """Deliver due items until ``stop`` is set, looking again every ``poll_seconds`` when idle.
    A database that is away is waited for, not fatal. ``report(summary)`` hears of each round
    that did something."""
    poll = current_app.config["WORKER_POLL_SECONDS"] if poll_seconds is None else poll_seconds
    total = Summary()
    while not stop.is_set():
        try:
            done = deliver_due(batch=batch, stop=stop)
        except SQLAlchemyError as exc:
            log.warning("outbox worker: database unavailable (%s); retrying", exc)
            done = Summary()
        total.add(done)
        if done.total and report is not None:
            report(done)
        stop.wait(poll)
    return total


@contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGTERM or SIGINT (the current batch is finished first)."""
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {number: signal.getsignal(number) for number in signals}
    for number in signals:
        signal.signal(number, lambda *_: stop.set())
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _summary_line(summary: Summary) -> str:
    return f"Sent {summary.sent}, retried {summary.retried}, dead {summary.dead}."


@click.command("worker")
@click.option("--once", is_flag=True, help="Send what is due now, print a summary and exit.")
@click.option("--batch", type=click.IntRange(1, 10_000), help="Items claimed per round.")
@click.option(
    "--poll-seconds", type=click.FloatRange(0.01, 3600), help="Pause between rounds when idle."
)
@with_appcontext
@_clear_errors
def worker_command(once: bool, batch: int | None, poll_seconds: float | None) -> None:
    """Deliver the outbox: mail, and the channels plugins add (retries with backoff; several
    workers may run at once)."""
    if once:
        started = time.perf_counter()
        summary = deliver_due(batch=batch)
        click.echo(f"{_summary_line(summary)} ({time.perf_counter() - started:.2f} s)")
        return
    stop = threading.Event()
    with _stopped_by_signals(stop):
        click.echo("Worker started; SIGTERM or Ctrl-C stops it after the current batch.")
        total = run(
            stop=stop,
            batch=batch,
            poll_seconds=poll_seconds,
            report=lambda done: click.echo(_summary_line(done)),
        )
    click.echo(f"Worker stopped. In all: {_summary_line(total)}")
