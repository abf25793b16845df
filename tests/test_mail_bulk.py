"""A batch of received mail stores its common mails a run at a time (``helpdesk.core.mail.bulk``)
and the rest one by one. Whatever the split, the database must end up exactly as if every mail
had been ingested alone: the same customers, tickets, messages, history, participants, status
counters, search documents, acknowledgements, rate-limit counts and plugin events."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import re
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm.exc import StaleDataError

from helpdesk import hookimpl
from helpdesk.core import services
from helpdesk.core.mail import batch as mail_batch
from helpdesk.core.mail import bulk
from helpdesk.core.mail.batch import MailBatch
from helpdesk.core.mail.ids import make_message_id
from helpdesk.core.mail.ingest import ingest
from helpdesk.core.mail.readahead import ParseAhead
from helpdesk.core.models import (
    Agent,
    Customer,
    Message,
    OutboxItem,
    RateLimitHit,
    Ticket,
    TicketEvent,
    TicketParticipant,
)
from helpdesk.extensions import db, write_intent
from tests.conftest import _empty_database

SAMPLES = Path(__file__).parent / "mail_samples"
HELPDESK = "helpdesk@example.com"


class Recorder:
    """Hears the events of stored mail and raises the priority of one customer's tickets."""

    def __init__(self) -> None:
        self.heard: Counter[tuple[str, str]] = Counter()

    @hookimpl
    def helpdesk_ticket_defaults(self, customer, ticket_data):
        return {"priority": "high"} if customer.email_key == "vip@example.org" else None

    @hookimpl
    def helpdesk_customer_registered(self, customer):
        self.heard["registered", customer.email] += 1

    @hookimpl
    def helpdesk_ticket_created(self, ticket):
        self.heard["created", f"{ticket.id} {ticket.customer.email}"] += 1

    @hookimpl
    def helpdesk_message_added(self, ticket, message):
        self.heard["added", f"{ticket.id} {message.message_id}"] += 1

    @hookimpl
    def helpdesk_ticket_status_changed(self, ticket, old, new):
        self.heard["status", f"{ticket.id} {old}>{new}"] += 1


RECORDER = Recorder()


@pytest.fixture
def app_plugins():
    RECORDER.heard.clear()
    return [RECORDER]


@pytest.fixture
def bulk_app(app_config, tmp_path, app):
    app.config.update(
        MAIL_DEFAULT_SENDER=HELPDESK,
        MAIL_QUARANTINE_DIR=str(tmp_path / "quarantine"),
        MAIL_FETCH_BATCH_SIZE=12,
        MAIL_SENDER_RATE_LIMIT="2/3600",
        MAIL_AUTO_REPLY_RATE_LIMIT="1/3600",
    )
    return app


def mail(
    n: int,
    sender: str,
    subject: str = "Broken parcel",
    *,
    headers: str = "",
    html: bool = False,
    message_id: str = "",
) -> bytes:
    """A person's mail (text, or text and HTML)."""
    head = (
        f"From: {sender}\r\nTo: {HELPDESK}\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id or f'<bulk-{n}@example.org>'}\r\n{headers}"
    )
    if not html:
        return (head + f"Content-Type: text/plain; charset=utf-8\r\n\r\nMail {n}.\r\n").encode()
    return (
        head + "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nMail {n}, caf\u00e9.\r\n"
        f"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Mail {n}<script>x</script>"
        "</p>\r\n--b--\r\n"
    ).encode()


def seed() -> dict[str, int]:
    """Two customers with tickets (one resolved, one with a stored Message-ID) and an agent."""
    db.session.add(Agent(email="agent@example.com", name="Agent", role="agent", active=True))
    db.session.commit()
    resolved = services.open_ticket(
        subject="Old order", body="Hello", customer_email="ann@example.org", customer_name="Ann"
    )
    resolved.status = "resolved"
    services.count_status(None, "new", -1)
    services.count_status(None, "resolved", +1)
    db.session.commit()
    waiting = services.open_ticket(
        subject="Refund",
        body="Hello",
        customer_email="bob@example.org",
        customer_name="Bob",
        mail=services.MailFields(message_id="<bob-first@example.org>"),
    )
    return {"resolved": resolved.id, "waiting": waiting.id}


def mails(ids: dict[str, int]) -> list[bytes]:
    """A mix: common mails with every kind of dependency between them, and uncommon ones."""
    signed = make_message_id(ids["resolved"], "seed")
    return [
        mail(1, "New One <new1@example.org>", html=True),
        mail(2, "vip@example.org", "Urgent"),
        mail(3, "Ann <ann@example.org>", "Re: old", headers=f"In-Reply-To: {signed}\r\n"),
        mail(4, "<bob@example.org>", f"Re: [#{ids['waiting']}] Refund"),
        mail(5, "New One <new1@example.org>", "Second request"),  # same sender: a new run
        mail(
            6, "Carol <carol@example.org>", headers="Cc: dan@example.org, helpdesk@example.com\r\n"
        ),
        mail(7, "Dan <dan@example.org>", headers="References: <bulk-6@example.org>\r\n"),
        mail(
            8, "<bob@example.org>", "Re: refund", headers="References: <bob-first@example.org>\r\n"
        ),
        mail(9, "Eve <eve@example.org>", "Re: [#{}] not mine".format(ids["waiting"])),
        mail(10, "Bot <bot@example.org>", headers="Auto-Submitted: auto-replied\r\n"),
        mail(11, "Agent <agent@example.com>", f"Re: [#{ids['resolved']}]"),
        mail(1, "New One <new1@example.org>"),  # the same Message-ID again
        (SAMPLES / "apple_mail_iso8859_1_inline_image.eml").read_bytes(),
        mail(12, "New One <new1@example.org>", "Third"),  # over the sender limit
        mail(13, "Frank <frank@example.org>", message_id="<bulk-13@example.org>"),
        mail(14, "Gina <gina@example.org>", "Re", headers="In-Reply-To: <bulk-13@example.org>\r\n"),
        mail(15, "vip@example.org", "Again"),  # no second acknowledgement: the limit is 1
        mail(16, "=?utf-8?q?J=C3=B6rg?= <jorg@example.org>", "Gr\u00fc\u00dfe"),
        mail(17, "not an address"),
    ]


def snapshot() -> dict[str, Any]:
    """Everything a stored mail leaves, without ids and times that may differ by run."""
    db.session.rollback()
    message_ids = dict(db.session.execute(select(Message.id, Message.message_id)).all())
    search = (
        "SELECT ticket_id, subject, body, customer FROM ticket_search"
        if db.engine.dialect.name == "postgresql"
        else "SELECT rowid, subject, body, customer FROM ticket_fts"
    )

    def event_data(data: dict[str, Any]) -> dict[str, Any]:
        if "message_id" in data:
            data = {**data, "message_id": message_ids.get(data["message_id"])}
        return data

    def outbox_key(key: str) -> str:  # a mail about a message: named by its Message-ID
        about = re.match(r"<hd\.(\d+)\.m(\d+)\.", key)
        return f"#{about[1]} {message_ids.get(int(about[2]))}" if about else key

    return {
        "customers": sorted(
            (c.id, c.email, c.email_key, c.name, c.email_bounced_at is None)
            for c in db.session.scalars(select(Customer))
        ),
        "tickets": sorted(
            (
                t.id,
                t.subject,
                t.status,
                t.priority,
                t.source,
                t.customer_id,
                t.version,
                round((t.due_at - t.created_at).total_seconds() / 60),
            )
            for t in db.session.scalars(select(Ticket))
        ),
        "messages": sorted(
            (
                m.ticket_id,
                m.message_id or "",
                m.author_type,
                m.customer_id or 0,
                m.agent_id or 0,
                m.body,
                m.body_html or "",
                m.automated,
            )
            for m in db.session.scalars(select(Message))
        ),
        "events": sorted(
            (
                e.ticket_id,
                e.kind,
                repr(sorted(event_data(e.data).items())),
                e.actor_type,
                e.customer_id or 0,
                e.agent_id or 0,
            )
            for e in db.session.scalars(select(TicketEvent))
        ),
        "participants": sorted(
            (p.ticket_id, p.email_key, p.role)
            for p in db.session.scalars(select(TicketParticipant))
        ),
        "counts": sorted(db.session.execute(text("SELECT * FROM status_counts")).all()),
        "search": sorted(tuple(row) for row in db.session.execute(text(search))),
        "outbox": sorted(
            (o.channel, o.ticket_id or 0, outbox_key(o.dedupe_key), o.payload.get("subject", ""))
            for o in db.session.scalars(select(OutboxItem))
        ),
        "rate_limits": sorted((r.key, r.count) for r in db.session.scalars(select(RateLimitHit))),
        "quarantined": sorted(
            db.session.execute(text("SELECT reason, message_id FROM mail_quarantine")).all()
        ),
        "events_heard": sorted(RECORDER.heard.items()),
    }


def one_by_one(raws: list[bytes]) -> list[tuple[str, str]]:
    with write_intent():
        return [(o.status, o.reason) for o in map(ingest, raws)]


def ingested_alone() -> tuple[dict[str, int], list[tuple[str, str]], dict[str, Any]]:
    """The mix ingested mail by mail: the seeded ids, the outcomes and the snapshot; the
    database is then emptied and seeded again (the same ids) for the other way."""
    ids = seed()
    alone = one_by_one(mails(ids))
    expected = snapshot()
    _empty_database()
    RECORDER.heard.clear()
    assert seed() == ids
    return ids, alone, expected


def fetched(
    raws: list[bytes], *, parse_processes: int = 0, parse_timeout: float = 60
) -> list[tuple[str, str]]:
    """The outcomes of ``raws`` fetched a batch at a time, in the order received."""
    outcomes: list[tuple[str, str]] = []
    with (
        write_intent(),
        MailBatch(
            max_mails=12,
            max_bytes=1 << 20,
            on_outcome=lambda o: outcomes.append((o.status, o.reason)),
            parse_processes=parse_processes,
            parse_timeout=parse_timeout,
        ) as batch,
    ):
        for raw in raws:
            batch.ingest(raw, lambda: None)
    return outcomes


@pytest.mark.parametrize("helpers", [0, 1], ids=["parsed here", "parsed by a helper"])
def test_a_batch_stores_exactly_what_mail_by_mail_ingest_stores(bulk_app, monkeypatch, helpers):
    runs = []
    real_write = bulk.write
    monkeypatch.setattr(bulk, "write", lambda run: runs.append(len(run)) or real_write(run))
    monkeypatch.setattr(mail_batch, "PARSE_CHUNK", 3)  # most chunks go to the helper
    helped = []
    real_results = ParseAhead.results
    monkeypatch.setattr(
        ParseAhead,
        "results",
        lambda self, chunk: helped.append(chunk.parsing is not None) or real_results(self, chunk),
    )
    ids, alone, expected = ingested_alone()
    together = fetched(mails(ids), parse_processes=helpers)
    got = snapshot()
    assert any(helped) == bool(helpers)

    assert together == alone
    for part in expected:
        assert got[part] == expected[part], part
    outcomes = Counter(status for status, _ in alone)
    assert outcomes == {"created": 10, "added": 5, "duplicate": 1, "quarantined": 2, "dropped": 1}
    # The common mails went together: some runs, not a mail at a time.
    assert runs and max(runs) > 1 and sum(runs) < outcomes["created"] + outcomes["added"]


def test_a_helper_that_dies_is_given_up_and_its_mails_parsed_here(bulk_app, caplog):
    parser = ParseAhead(1, timeout=2)
    raws = [mail(n, f"person{n}@example.org", html=True) for n in range(800)]
    try:
        assert parser.results(parser.submit(raws[:2])) == [bulk.receive(r) for r in raws[:2]]
        chunk = parser.submit(raws)  # some seconds of work for the helper, now idle
        queued = parser.submit(raws[:3])
        time.sleep(0.1)
        for helper in multiprocessing.active_children():  # killed while parsing the chunk
            os.kill(helper.pid, signal.SIGKILL)
        parsed = parser.results(chunk)
        # A chunk handed over before the give-up is parsed here at once, not waited for.
        assert parser.ready(queued) and parser.results(queued) == parsed[:3]
        assert parser.submit(raws[:1]).parsing is None  # and so is every later chunk
    finally:
        parser.close()
    assert parsed == [bulk.receive(raw) for raw in raws]
    assert "parsing here from now on" in caplog.text


def test_a_run_whose_ticket_changed_meanwhile_is_stored_mail_by_mail(bulk_app, monkeypatch):
    ids, alone, expected = ingested_alone()
    real_plan, real_write, refused = bulk.plan, bulk.write, []

    def plan_then_another_change(plains):
        # Runs of one kind, new mails or replies (a prefix of a run is a run): someone saves
        # the replied tickets between plan and write. (A failed run of new mails would use up
        # ticket ids on PostgreSQL, whose sequences do not roll back.)
        run = real_plan(plains)
        replying = bool(run) and run[0].ticket is not None
        run = list(itertools.takewhile(lambda p: (p.ticket is not None) == replying, run))
        for ticket_id in {p.ticket.id for p in run if p.ticket is not None}:
            db.session.execute(
                text("UPDATE tickets SET version = version + 1 WHERE id = :id"), {"id": ticket_id}
            )
        return run

    def write(run):
        try:
            return real_write(run)
        except StaleDataError:
            refused.append(len(run))
            raise

    monkeypatch.setattr(bulk, "plan", plan_then_another_change)
    monkeypatch.setattr(bulk, "write", write)
    assert fetched(mails(ids)) == alone
    assert refused  # those runs were given up, their mails stored one by one
    got = snapshot()
    for part in expected:
        assert got[part] == expected[part], part
