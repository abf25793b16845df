"""Outgoing mail against real parts: the services queue mail in the outbox in the same
transaction as the change, and the worker delivers it to a real SMTP server (aiosmtpd on
127.0.0.1) with headers that thread, retries, dead letters, and no double sends."""

from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk import enqueue, hookimpl
from helpdesk.core import services
from helpdesk.core.mail import compose, outbound
from helpdesk.core.mail.ids import make_message_id, ticket_id_from_message_id
from helpdesk.core.models import Customer, Message, OutboxItem, Ticket, utcnow
from helpdesk.core.worker import Summary, backoff, claim, deliver_due, deliverers, send
from helpdesk.extensions import db, write_intent
from tests.conftest import post_form
from tests.smtp import SmtpServer

HELP_DESK = "help@desk.example"
PUBLIC_URL = "https://help.example/desk"
AUTO = ("Auto-Submitted", "X-Auto-Response-Suppress", "Precedence")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app_config(app_config: dict[str, Any], smtp: SmtpServer) -> dict[str, Any]:
    app_config.update(
        smtp.config(),
        MAIL_DEFAULT_SENDER=f"Help Desk <{HELP_DESK}>",
        PUBLIC_URL=PUBLIC_URL,
        PORTAL_RATE_LIMIT="1000/60",
    )
    return app_config


def web_ticket(client: FlaskClient, **changes: Any) -> Ticket:
    """Open a ticket through the public form, as a customer does."""
    data = {
        "name": "Guðrún Jónsdóttir",
        "email": "gudrun@example.is",
        "phone": "",
        "kind": "support",
        "subject": "Printer on fire",
        "body": "It smokes.",
        "website": "",
        **changes,
    }
    response = post_form(client, "/", data)
    assert response.status_code == 303, response.get_data(as_text=True)
    return db.session.scalar(select(Ticket).order_by(Ticket.id.desc()).limit(1))


def reply(client: FlaskClient, ticket: Ticket, body: str, **extra: str):
    path = f"/tickets/{ticket.id}"
    response = post_form(client, f"{path}/reply", {"body": body, **extra}, page=path)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def deliver(**kwargs: Any) -> Summary:
    """Run the worker as its own process would, with the test's session out of the way (the
    shared test app context keeps a request's transaction open otherwise)."""
    db.session.commit()
    return deliver_due(**kwargs)


def outbox(kind: str | None = None) -> list[OutboxItem]:
    db.session.expire_all()
    items = db.session.scalars(select(OutboxItem).order_by(OutboxItem.id)).all()
    return [item for item in items if kind is None or item.payload["kind"] == kind]


def text_part(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def html_part(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()


def by_id(smtp: SmtpServer) -> dict[str, EmailMessage]:
    return {message["Message-ID"]: message for message in smtp.messages()}


def test_public_form_queues_an_acknowledgement_with_the_status_link(client, smtp):
    ticket = web_ticket(client)
    [item] = outbox()
    assert (item.status, item.payload["kind"], item.ticket_id) == (
        "pending",
        "acknowledgement",
        ticket.id,
    )
    assert smtp.received == []  # the request only queues; the worker sends

    assert deliver() == Summary(sent=1)
    [received] = smtp.received
    assert received.rcpt_tos == ("gudrun@example.is",)
    mail = received.parsed()
    assert ticket_id_from_message_id(mail["Message-ID"]) == ticket.id
    assert mail["Message-ID"] == item.dedupe_key == make_message_id(ticket.id, f"ack{ticket.id}")
    assert mail["To"].addresses[0].display_name == "Guðrún Jónsdóttir"
    assert mail["Reply-To"].addresses[0].addr_spec == HELP_DESK
    assert mail["From"].addresses[0].addr_spec == HELP_DESK
    assert f"[#{ticket.id}]" in mail["Subject"] and "Printer on fire" in mail["Subject"]
    assert (mail["Auto-Submitted"], mail["X-Auto-Response-Suppress"], mail["Precedence"]) == (
        "auto-replied",
        "All",
        "bulk",
    )
    assert mail["In-Reply-To"] is None  # a web form has no mail to answer
    link = re.search(rf"{re.escape(PUBLIC_URL)}/status/\S+", text_part(mail)).group(0)
    assert f'href="{link}"' in html_part(mail)
    assert client.get(link.removeprefix(PUBLIC_URL)).status_code == 200
    db.session.expire_all()
    assert db.session.get(OutboxItem, item.id).status == "sent"


def test_acknowledgement_is_composed_by_the_worker_and_answers_only_what_came_before(
    client, agent_client, smtp
):
    ticket = web_ticket(client)
    [ack] = outbox()
    assert "raw" not in ack.payload and "text" not in ack.payload  # the request only queued it
    assert f"[#{ticket.id}]" in ack.payload["subject"]  # what the outbox page shows
    reply(agent_client, ticket, "Already on it")  # queued before the worker gets to the ack

    assert deliver() == Summary(sent=2)
    mails = by_id(smtp)
    acknowledgement = mails[ack.dedupe_key]
    assert acknowledgement["In-Reply-To"] is None  # not the reply queued after it
    assert "Printer on fire" in text_part(acknowledgement)
    [answer] = [mail for key, mail in mails.items() if key != ack.dedupe_key]
    assert answer["In-Reply-To"] == ack.dedupe_key


def test_an_acknowledgement_whose_ticket_is_gone_is_dead_at_once(client, smtp):
    ticket = web_ticket(client)
    [ack] = outbox()
    # As if the ticket had been removed between queueing and sending.
    ack.payload = {**ack.payload, "ticket_id": ticket.id + 1000}
    db.session.commit()
    assert deliver() == Summary(dead=1)
    assert smtp.received == []
    db.session.expire_all()
    assert "no longer exists" in db.session.get(OutboxItem, ack.id).last_error


def _later(ticket: Ticket) -> OutboxItem:
    """Queue the ticket's acknowledgement to be composed by the worker, as ``open_ticket`` does."""
    item = outbound.queue_mail(compose.acknowledgement_later(ticket), ticket_id=ticket.id)
    db.session.commit()
    return item


def _comparable(payload: dict[str, Any]) -> dict[str, Any]:
    """A composed payload without what differs between two composings of one mail: the raw
    message (its MIME boundaries) and the status link's signing time."""
    link = re.compile(r"/status/[\w.-]+")
    return {
        **{key: value for key, value in payload.items() if key != "raw"},
        "text": link.sub("/status/LINK", payload["text"]),
        "html": link.sub("/status/LINK", payload["html"]),
    }


def test_a_batch_of_acknowledgements_is_composed_as_each_one_alone(app, agent, count_queries):
    """The worker composes a claimed batch together (tickets, customers and threads read in
    one query each, whatever the batch's size); each mail is what composing it alone makes,
    threads included: a customer's own Message-ID, mail queued before the acknowledgement but
    not after it, even when more than ``MAX_REFERENCES`` came after it."""
    app.config["MAIL_SEND_ACKNOWLEDGEMENT"] = False
    opened = {"body": "Hello", "source": "email"}
    by_web = services.open_ticket(subject="By web", customer_email="w@example.com", **opened)
    by_mail = services.open_ticket(
        subject="By mail",
        customer_email="m@example.com",
        mail=services.MailFields(message_id="<first@client.example>"),
        **opened,
    )
    answered = services.open_ticket(subject="Answered", customer_email="a@example.com", **opened)
    busy = services.open_ticket(subject="Busy", customer_email="b@example.com", **opened)
    gone_id = busy.id + 1000
    _queue_copies(busy, 3, prefix="before")
    later = [_later(ticket) for ticket in (by_web, by_mail, answered, busy)]
    services.add_message(answered, body="On it.", author=agent)  # after its acknowledgement
    _queue_copies(busy, compose.MAX_REFERENCES + 2, prefix="after")
    last = services.open_ticket(subject="Last", customer_email="l@example.com", **opened)
    later.append(_later(last))
    db.session.expire_all()
    payloads = [item.payload for item in later]
    composed = outbox("reply")[0].payload
    gone = {**payloads[0], "ticket_id": gone_id}

    with count_queries as few:
        ready = compose.ready_to_send([payloads[0], composed, payloads[1], payloads[2]])
    assert len(few.statements) == 3  # tickets with customers, our thread ids, theirs
    assert ready[1] is composed  # a mail composed when queued goes as it is
    with count_queries as all_of_them:
        batch = compose.ready_to_send([*payloads, gone])
    # The busy ticket's newest ten mails came after its acknowledgement: read again alone.
    assert len(all_of_them.statements) == 3 + 2
    assert isinstance(batch[-1], compose.TicketGone)

    tickets = [by_web, by_mail, answered, busy, last]
    for ticket, payload, made in zip(tickets, payloads, batch, strict=False):
        alone = compose.acknowledgement_mail(ticket, date=payload["date"])
        assert _comparable(made) == _comparable(alone)
        assert made["message_id"] == payload["message_id"] and "raw" in made
    headers = [made["headers"].get("References", "").split() for made in batch[:5]]
    assert headers[0] == headers[2] == headers[4] == []  # the reply is not answered
    assert headers[1] == ["<first@client.example>"]
    before = [make_message_id(busy.id, f"before{number}") for number in range(3)]
    assert headers[3] == before


def test_headers_and_parts_are_written_as_compat32_writes_them(app, agent, monkeypatch):
    """Messages are written with the boundaries set ahead and short ASCII headers unfolded:
    byte for byte what the stdlib's own way writes (the boundaries apart, which are random)."""
    ticket = services.open_ticket(
        subject="Ünïcode " + "long subject " * 12 + " Bcc: x@evil.example",
        body="x",
        customer_email="z@example.com",
        customer_name='Zoë "Z" O\'Brien, 👩‍💻 ' + "name " * 20,
    )
    message = services.add_message(ticket, body="=== a line of = signs ===\n" * 40, author=agent)
    payloads = [
        compose.acknowledgement_mail(ticket),
        compose.reply_mail(ticket, message, agent),
        compose.resolved_mail(ticket),
    ]
    boundary = re.compile(r"={15}\d+==")
    ours = [boundary.sub("B", compose.with_raw(payload)["raw"]) for payload in payloads]
    monkeypatch.setattr(compose, "_set_boundaries", lambda message: None)
    monkeypatch.setattr(compose, "_SMTP_POLICY", email_policy.compat32.clone(linesep="\r\n"))
    stdlib = [boundary.sub("B", compose.with_raw(payload)["raw"]) for payload in payloads]
    assert ours == stdlib
    assert all(raw.count("--B") == 5 for raw in ours)  # two multiparts, three parts
    reference = email_policy.compat32.clone(linesep="\r\n")
    values = ["", "a", " a", "a ", "a  b", "x" * 72, "x" * 73, "a\tb", "=?utf-8?q?x?=", "é"]
    for name in ("To", "Subject", "X-Auto-Response-Suppress"):
        for value in values:
            assert compose._SMTP_POLICY.fold(name, value) == reference.fold(name, value)


def test_agent_reply_goes_out_threaded_with_human_headers(client, agent_client, smtp):
    ticket = web_ticket(client)
    deliver()
    ack_id = smtp.messages()[0]["Message-ID"]

    long_line = "word " * 1200
    reply(agent_client, ticket, f"<script>alert(1)</script> Hello\n\nSecond paragraph\n{long_line}")
    assert [item.payload["kind"] for item in outbox()] == ["acknowledgement", "reply"]
    assert deliver() == Summary(sent=1)
    message = db.session.scalars(select(Message).order_by(Message.id.desc())).first()
    mail = by_id(smtp)[make_message_id(ticket.id, f"m{message.id}")]
    assert ticket_id_from_message_id(mail["Message-ID"]) == ticket.id
    assert mail["In-Reply-To"] == ack_id and ack_id in mail["References"]
    assert mail["Reply-To"].addresses[0].addr_spec == HELP_DESK
    assert "Ana Agent" in mail["From"].addresses[0].display_name
    assert mail["Subject"] == f"Re: [#{ticket.id}] Printer on fire"
    assert all(mail[name] is None for name in AUTO)  # a person wrote this one
    body = html_part(mail)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Hello" in body and "<script>" not in body
    assert '<p dir="auto">Second paragraph<br>' in body
    assert "<script>alert(1)</script> Hello" in text_part(mail)
    assert long_line.strip() in text_part(mail)
    raw = smtp.received[-1].content
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998  # quoted-printable bodies

    reply(agent_client, ticket, "And one more thing.")
    deliver()
    latest = db.session.scalars(select(Message).order_by(Message.id.desc())).first()
    second = by_id(smtp)[make_message_id(ticket.id, f"m{latest.id}")]
    assert second["In-Reply-To"] == mail["Message-ID"]
    assert second["References"].split() == [ack_id, mail["Message-ID"]]


def test_replies_thread_to_the_customers_own_mail(app, agent, smtp):
    app.config["MAIL_SEND_ACKNOWLEDGEMENT"] = False
    ticket = services.open_ticket(
        subject="Order 1234", body="Where is it?", customer_email="c@example.com", source="email"
    )
    first = db.session.scalar(select(Message).where(Message.ticket_id == ticket.id))
    first.message_id = "<CAF=first@mail.client.example>"
    db.session.commit()
    services.add_message(ticket, body="On its way.", author=agent)
    later = services.add_message(ticket, body="Thanks!", author=ticket.customer, source="email")
    later.message_id = "<second@mail.client.example>"
    db.session.commit()
    hostile = services.add_message(ticket, body="x", author=ticket.customer, source="email")
    hostile.message_id = "<a@b>\r\nBcc: x@evil.example"  # stored by a careless importer
    db.session.commit()
    services.add_message(ticket, body="Good to hear.", author=agent)
    deliver()
    first_reply, second_reply = smtp.messages()
    assert first_reply["In-Reply-To"] == "<CAF=first@mail.client.example>"
    assert second_reply["In-Reply-To"] == "<second@mail.client.example>"
    assert second_reply["References"].split() == [
        "<CAF=first@mail.client.example>",
        first_reply["Message-ID"],
        "<second@mail.client.example>",
    ]
    assert second_reply["Bcc"] is None and b"evil" not in smtp.received[-1].content


def test_internal_notes_and_customer_messages_send_nothing(client, agent_client, agent, smtp):
    ticket = web_ticket(client)
    reply(agent_client, ticket, "Check the stock first", internal="1")
    services.add_message(ticket, body="Any news?", author=ticket.customer)
    assert [item.payload["kind"] for item in outbox()] == ["acknowledgement"]
    assert deliver() == Summary(sent=1)
    assert len(smtp.received) == 1


def test_acknowledgements_only_for_customers_own_web_or_mail_tickets(app, agent, smtp):
    opened = {"customer_email": "c@example.com", "body": "Hello"}
    services.open_ticket(subject="Phone call", opened_by=agent, source="phone", **opened)
    services.open_ticket(subject="From the API", opened_by=agent, source="api", **opened)
    services.open_ticket(subject="Auto-reply", source="email", acknowledge=False, **opened)
    assert outbox() == []
    mailed = services.open_ticket(subject="By mail", source="email", **opened)
    assert [item.ticket_id for item in outbox("acknowledgement")] == [mailed.id]
    app.config["MAIL_SEND_ACKNOWLEDGEMENT"] = False
    services.open_ticket(subject="Quiet", source="web", **opened)
    assert len(outbox()) == 1
    app.config["MAIL_SEND_ACKNOWLEDGEMENT"] = True
    mailed.customer.email_bounced_at = utcnow()  # a hard bounce: no more automatic mail
    db.session.commit()
    services.open_ticket(subject="Bounced", source="web", **opened)
    services.update_ticket(mailed, {"status": "resolved"}, actor=agent)
    assert len(outbox()) == 1


def test_acknowledgements_to_one_address_stop_at_the_rate_limit(app, smtp):
    """An auto-responder that does not say so (no Auto-Submitted) answers every
    acknowledgement with a new mail: the loop stops after MAIL_AUTO_REPLY_RATE_LIMIT."""
    app.config["MAIL_AUTO_REPLY_RATE_LIMIT"] = "3/3600"
    opened = {"body": "I am out of the office", "source": "email"}
    for n in range(5):
        services.open_ticket(subject=f"Away {n}", customer_email="Bot@Example.com", **opened)
    services.open_ticket(subject="Human", customer_email="person@example.com", **opened)
    acknowledged = [item.payload["to"][0][1] for item in outbox("acknowledgement")]
    assert acknowledged.count("Bot@example.com") == 3  # the domain is case-folded
    assert acknowledged.count("person@example.com") == 1
    assert db.session.scalar(select(func.count(Ticket.id))) == 6  # every mail kept as a ticket


def test_resolving_notifies_once_and_a_resolving_reply_says_it_itself(app, agent, smtp):
    app.config["MAIL_SEND_ACKNOWLEDGEMENT"] = False
    opened = {"customer_email": "c@example.com", "body": "Hello", "source": "web"}
    quiet = services.open_ticket(subject="Resolved quietly", **opened)
    services.update_ticket(quiet, {"status": "resolved"}, actor=agent)
    [notice] = outbox()
    assert (notice.payload["kind"], notice.ticket_id) == ("resolved", quiet.id)

    answered = services.open_ticket(subject="Resolved by a reply", **opened)
    services.add_message(answered, body="Fixed it.", author=agent, new_status="resolved")
    assert [item.payload["kind"] for item in outbox() if item.ticket_id == answered.id] == ["reply"]
    assert "marked your request as resolved" in outbox("reply")[0].payload["text"]

    app.config["MAIL_NOTIFY_RESOLVED"] = False
    silent = services.open_ticket(subject="No notice", **opened)
    services.update_ticket(silent, {"status": "resolved"}, actor=agent)
    assert len(outbox()) == 2

    deliver()
    resolved = by_id(smtp)[notice.dedupe_key]
    assert resolved["Auto-Submitted"] == "auto-replied" and resolved["Precedence"] == "bulk"
    assert f"[#{quiet.id}] Resolved: Resolved quietly" == resolved["Subject"]


def _assert_single_recipient(smtp: SmtpServer, address: str) -> EmailMessage:
    [received] = smtp.received
    assert received.rcpt_tos == (address,)
    header_block = received.content.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"(?im)^bcc:", header_block)
    mail = received.parsed()
    assert mail["Bcc"] is None and len(mail["To"].addresses) == 1
    return mail


def test_no_header_injection_through_the_public_form(client, smtp):
    injected = "Eve\r\nBcc: x@evil.example"
    web_ticket(client, name=injected, subject="Help\r\nBcc: x@evil.example\nX-Evil: 1")
    deliver()
    mail = _assert_single_recipient(smtp, "gudrun@example.is")
    assert mail["X-Evil"] is None


def test_no_header_injection_even_from_raw_rows(app, smtp):
    """Names and subjects that skipped input cleaning (an import, a future entrance) still
    reach no header with a line break in them."""
    customer = Customer(
        email="eve@example.com",
        email_key="eve@example.com",
        name="Eve\r\nBcc: x@evil.example\x85\u2028Cc: y@evil.example",
    )
    ticket = Ticket(subject="Hi\nBcc: x@evil.example\rX-Evil: 1\x1b", customer=customer)
    db.session.add(ticket)
    db.session.flush()
    outbound.queue_mail(compose.acknowledgement_mail(ticket), ticket_id=ticket.id)
    db.session.commit()
    assert deliver() == Summary(sent=1)
    mail = _assert_single_recipient(smtp, "eve@example.com")
    assert mail["Cc"] is None and mail["X-Evil"] is None
    assert mail["To"].addresses[0].display_name.startswith("Eve Bcc: x@evil.example")


UNICODE_PEOPLE = [
    ("דוד כהן", "בעיה בהזמנה שלי"),
    ("Ελένη Παπαδοπούλου", "Πρόβλημα με την παραγγελία"),
    ("Þórður Ægisson", "Vandamál með pöntun – ð þ æ ö"),
    ('Zoë "Z" O\'Brien, 👩‍💻', "Broken 🎉 emoji subject " + "long " * 20),
]


def test_unicode_names_and_subjects_round_trip(client, smtp):
    for number, (name, subject) in enumerate(UNICODE_PEOPLE):
        web_ticket(client, name=name, subject=subject, email=f"p{number}@example.com")
    assert deliver() == Summary(sent=len(UNICODE_PEOPLE))
    received = {item.rcpt_tos[0]: item for item in smtp.received}
    for number, (name, subject) in enumerate(UNICODE_PEOPLE):
        item = received[f"p{number}@example.com"]
        header_block = item.content.split(b"\r\n\r\n", 1)[0]
        header_block.decode("ascii")  # RFC 2047 encoded words, no raw 8-bit
        assert b"=?utf-8?" in header_block
        mail = item.parsed()
        assert mail["To"].addresses[0].display_name == name
        assert " ".join(subject.split()) in mail["Subject"]
        assert name in text_part(mail) and name in html.unescape(html_part(mail))


def test_smtp_server_down_for_ten_minutes_loses_nothing(client, smtp):
    tickets = [web_ticket(client, email=f"c{n}@example.com") for n in range(5)]
    smtp.stop()
    start = utcnow()
    for minute in range(11):
        now = start + timedelta(minutes=minute)
        assert deliver(now=now).sent == 0
        for item in outbox():
            assert item.status == "pending" and item.next_attempt_at > now
    items = outbox()
    assert {item.attempts for item in items} == {4}  # at 0, 1, 3 and 7 minutes
    assert all("Connection refused" in item.last_error for item in items)

    smtp.start()
    later = max(item.next_attempt_at for item in items)
    assert deliver(now=later) == Summary(sent=5)
    assert sorted(by_id(smtp)) == sorted(item.dedupe_key for item in items)
    assert len(smtp.received) == len(tickets)
    assert {item.status for item in outbox()} == {"sent"}


def test_backoff_doubles_up_to_the_cap(app):
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 7, 8, 20)] == [
        60,
        120,
        240,
        3600,
        3600,
        3600,
    ]


def _dead_letter(app: Flask, client: FlaskClient, smtp: SmtpServer) -> OutboxItem:
    app.config["OUTBOX_MAX_ATTEMPTS"] = 3
    web_ticket(client, subject="Never arrives")
    smtp.stop()
    now = utcnow()
    summaries = []
    for _ in range(3):
        summaries.append(deliver(now=now))
        now = outbox()[0].next_attempt_at
    assert summaries == [Summary(retried=1), Summary(retried=1), Summary(dead=1)]
    [item] = outbox()
    assert item.status == "dead" and item.attempts == 3 and "refused" in item.last_error
    assert deliver(now=now + timedelta(days=1)) == Summary()  # dead stays dead
    return item


def test_dead_letters_are_listed_for_admins_and_retried_on_request(
    app, client, admin_client, agent_client, smtp
):
    item = _dead_letter(app, client, smtp)
    page = admin_client.get("/admin/outbox")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Never arrives" in html and "Connection refused" in html and "Dead (1)" in html
    assert f"/admin/outbox/{item.id}/retry" in html
    assert agent_client.get("/admin/outbox").status_code == 403
    assert admin_client.get("/admin/outbox?status=nonsense").status_code == 404
    retry_path = f"/admin/outbox/{item.id}/retry"
    assert admin_client.post(retry_path, data={"status": "dead"}).status_code == 400  # no CSRF

    smtp.start()
    response = post_form(admin_client, retry_path, {"status": "dead"}, page="/admin/outbox")
    assert response.status_code == 303
    [requeued] = outbox()
    assert (requeued.status, requeued.attempts) == ("pending", 0)
    assert deliver() == Summary(sent=1)
    assert smtp.messages()[0]["Subject"].endswith("Never arrives")

    again = post_form(
        admin_client, retry_path, {"status": "sent"}, page="/admin/outbox?status=sent"
    )
    assert again.status_code == 303
    assert "sent already" in admin_client.get(again.location).get_data(as_text=True)
    assert len(smtp.received) == 1 and outbox()[0].status == "sent"
    missing = post_form(admin_client, "/admin/outbox/999999/retry", {}, page="/admin/outbox")
    assert missing.status_code == 404


def _queue_copies(ticket: Ticket, count: int, status: str = "pending", prefix: str = "c") -> None:
    """Queue ``count`` copies of the ticket's acknowledgement, each with its own Message-ID."""
    template = compose.acknowledgement_mail(ticket)
    for number in range(count):
        message_id = make_message_id(ticket.id, f"{prefix}{number}")
        payload = compose.with_raw({**template, "message_id": message_id})
        outbound.queue_mail(payload, ticket_id=ticket.id).status = status
    db.session.commit()


def test_outbox_page_queries_do_not_grow_with_rows(app, admin_client, count_queries):
    ticket = services.open_ticket(subject="Many", body="x", customer_email="c@example.com")
    _queue_copies(ticket, 3, "dead")
    with count_queries as few:
        assert admin_client.get("/admin/outbox").status_code == 200
    _queue_copies(ticket, 30, "dead", prefix="more")
    with count_queries as many:
        page = admin_client.get("/admin/outbox")
    assert page.get_data(as_text=True).count("Retry now") == 33
    assert many.count == few.count


def test_two_workers_send_each_mail_exactly_once(app, smtp):
    app.config["MAIL_SEND_ACKNOWLEDGEMENT"] = False
    ticket = services.open_ticket(subject="Busy", body="x", customer_email="c@example.com")
    _queue_copies(ticket, 120)
    barrier = threading.Barrier(2)
    summaries: list[Summary] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with app.app_context():
                barrier.wait()
                summaries.append(deliver_due(batch=7))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sum(summary.sent for summary in summaries) == 120
    ids = [message["Message-ID"] for message in smtp.messages()]
    assert len(ids) == 120 and len(set(ids)) == 120
    assert {item.status for item in outbox()} == {"sent"}


def test_worker_once_prints_a_summary(app, client, runner, smtp):
    web_ticket(client)
    web_ticket(client, email="second@example.com")
    db.session.commit()
    result = runner.invoke(args=["worker", "--once", "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert "Sent 2, retried 0, dead 0." in result.output
    web_ticket(client, email="third@example.com")
    smtp.stop()
    db.session.commit()
    result = runner.invoke(args=["worker", "--once"])
    assert "Sent 0, retried 1, dead 0." in result.output
    assert runner.invoke(args=["worker", "--batch", "0"]).exit_code == 2


class _PagerPlugin:
    """A plugin with a channel of its own, so the worker's hook calls read plugin states."""

    def __init__(self) -> None:
        self.delivered: list[int] = []

    @hookimpl
    def helpdesk_outbox_senders(self):
        return {"pager": lambda delivery: self.delivered.append(delivery.id)}


class TestWorkerWithAChannelPlugin:
    """``helpdesk worker --once`` writes under ``write_intent`` (SQLite: ``BEGIN IMMEDIATE``):
    asking plugins for their deliverers must not leave a transaction holding the write lock
    that claiming rows needs."""

    plugin = _PagerPlugin()

    @pytest.fixture
    def app_plugins(self):
        self.plugin.delivered.clear()
        return [self.plugin]

    def test_worker_once_sends_mail_and_plugin_items(self, app, client, runner, smtp):
        web_ticket(client)
        item = enqueue("pager", {"text": "hi"}, dedupe_key="pager-1")
        db.session.commit()
        result = runner.invoke(args=["worker", "--once"])
        assert result.exit_code == 0, result.output
        assert "Sent 2, retried 0, dead 0." in result.output
        assert self.plugin.delivered == [item.id]
        assert len(smtp.messages()) == 1

    def test_asking_for_deliverers_ends_its_reads(self, app):
        with app.app_context(), write_intent():
            assert set(deliverers()) == {"pager"}
            assert not db.session().in_transaction()


def test_a_rolled_back_change_leaves_no_mail(app, agent, smtp, monkeypatch):
    ticket = services.open_ticket(subject="Race", body="x", customer_email="c@example.com")
    queued = len(outbox())

    def commit_fails() -> None:
        db.session.flush()  # the reply and its mail were written in the transaction...
        assert len(db.session.scalars(select(OutboxItem)).all()) == queued + 1
        raise RuntimeError("the database went away")  # ...which then fails

    monkeypatch.setattr(services, "_commit_ticket", commit_fails)
    with pytest.raises(RuntimeError):
        services.add_message(ticket, body="Lost with the transaction", author=agent)
    db.session.rollback()
    assert len(outbox()) == queued
    assert db.session.scalar(select(func.count()).select_from(Message)) == 1
    assert deliver() == Summary(sent=queued)


def test_crash_between_send_and_record_sends_again_with_the_same_message_id(app, client, smtp):
    web_ticket(client)
    db.session.commit()
    now = utcnow()
    with Session(db.engine) as session:
        items = claim(session, 10, now)
    send(items)  # ...and the worker dies before recording it
    assert deliver(now=now + timedelta(seconds=60)) == Summary()  # still claimed
    claim_ends = now + timedelta(seconds=app.config["WORKER_CLAIM_SECONDS"] + 1)
    assert deliver(now=claim_ends) == Summary(sent=1)
    first, second = smtp.messages()
    assert first["Message-ID"] == second["Message-ID"]  # a recognisable duplicate


def test_long_running_worker_sends_and_stops_on_sigterm(app, client, smtp, database_url, tmp_path):
    web_ticket(client)
    db.session.commit()
    env = {
        "PATH": os.environ["PATH"],
        "HELPDESK_INSTANCE_PATH": str(tmp_path),
        "HELPDESK_DATABASE_URL": database_url,
        "HELPDESK_SECRET_KEY": "test-secret",
        "HELPDESK_MAIL_SERVER": smtp.host,
        "HELPDESK_MAIL_PORT": str(smtp.port),
        "HELPDESK_MAIL_DEFAULT_SENDER": HELP_DESK,
    }
    command = [str(Path(sys.executable).parent / "helpdesk"), "worker", "--poll-seconds", "0.05"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not smtp.received and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert len(smtp.received) == 1
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Worker started" in out and "Worker stopped. In all: Sent 1, retried 0, dead 0." in out
    assert outbox()[0].status == "sent"
