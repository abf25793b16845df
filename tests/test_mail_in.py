"""Inbound mail: real client samples, threading, loops, bounces, quarantine, idempotency,
hostile input, and the folded quoted history on the ticket page."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from helpdesk.core import services
from helpdesk.core.attachments import storage_path
from helpdesk.core.mail import quarantine
from helpdesk.core.mail.addresses import parse_address, parse_addresses
from helpdesk.core.mail.fold import split_quoted
from helpdesk.core.mail.ids import make_message_id
from helpdesk.core.mail.ingest import ingest, reprocess
from helpdesk.core.mail.loops import may_answer_automatically
from helpdesk.core.models import (
    Attachment,
    Customer,
    MailQuarantine,
    Message,
    OutboxItem,
    Ticket,
    TicketParticipant,
)
from helpdesk.extensions import db

SAMPLES = Path(__file__).parent / "mail_samples"


@pytest.fixture
def mail_config(app_config, tmp_path):
    app_config.update(
        MAIL_DEFAULT_SENDER="helpdesk@example.com",
        MAIL_QUARANTINE_DIR=str(tmp_path / "quarantine"),
        MAIL_SENDER_RATE_LIMIT="5/3600",
    )
    return app_config


@pytest.fixture
def mail_app(mail_config, app):
    return app


def sample(name: str, **replace: str) -> bytes:
    raw = (SAMPLES / name).read_bytes()
    for key, value in replace.items():
        raw = raw.replace(key.encode(), value.encode())
    return raw


def simple(
    sender: str = "carol@example.org",
    subject: str = "Hello",
    body: str = "Some text.",
    message_id: str = "<m1@example.org>",
    extra: str = "",
) -> bytes:
    return (
        f"From: {sender}\r\nTo: helpdesk@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def messages_of(ticket_id: int) -> list[Message]:
    return list(
        db.session.scalars(
            select(Message).where(Message.ticket_id == ticket_id).order_by(Message.id)
        )
    )


def ticket_for(customer_email: str, subject: str = "Where is my parcel") -> Ticket:
    return services.open_ticket(subject=subject, body="First.", customer_email=customer_email)


# --- real samples -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sender", "subject", "text"),
    [
        (
            "gmail_alternative_utf8.eml",
            "maria.lopez@gmail.example",
            "Broken lid",
            "arrived broken –",
        ),
        ("outlook_windows1252_qp.eml", "john.smith@outlook.example", "RE: Your order", "€49.90"),
        ("apple_mail_iso8859_1_inline_image.eml", "gudrun@icloud.example", "Þvottavélin", "Góðan"),
        ("thunderbird_hebrew_iso8859_8_base64.eml", "noa.cohen@walla.example", "ההזמנה", "שלום"),
        ("greek_iso8859_7_qp.eml", "nikos@otenet.example", "Οδηγίες", "Καλησπέρα"),
        ("broken_mime_no_boundary.eml", "old.client@example.org", "help", "blank pages"),
    ],
)
def test_client_samples_open_tickets(mail_app, name, sender, subject, text):
    outcome = ingest(sample(name))
    assert outcome.status == "created"
    ticket = db.session.get(Ticket, outcome.ticket_id)
    assert ticket.source == "email"
    assert ticket.customer.email_key == sender
    assert subject in ticket.subject
    (message,) = messages_of(ticket.id)
    assert text in message.body
    assert message.message_id.startswith("<") and not message.automated


def test_html_is_sanitised_and_kept(mail_app):
    outcome = ingest(sample("gmail_alternative_utf8.eml"))
    (message,) = messages_of(outcome.ticket_id)
    assert "<div>" in message.body_html and "replacement" in message.body_html
    assert "<script" not in message.body_html and "onerror" not in message.body_html
    assert "alert" not in message.body  # the text part is the text, not the HTML


def test_inline_image_tnef_and_forward_are_attachments(mail_app):
    apple = ingest(sample("apple_mail_iso8859_1_inline_image.eml"))
    tnef = ingest(sample("outlook_winmail_dat.eml"))
    forward = ingest(sample("forward_message_rfc822.eml"))
    names = {
        outcome.status: [
            a.filename
            for a in db.session.scalars(
                select(Attachment).where(Attachment.ticket_id == outcome.ticket_id)
            )
        ]
        for outcome in (apple, tnef, forward)
    }
    assert names  # three tickets
    files = {a.filename: a for a in db.session.scalars(select(Attachment))}
    assert {"IMG_0042.jpeg", "winmail.dat", "Order confirmation 99812.eml"} <= set(files)
    assert files["IMG_0042.jpeg"].content_type == "image/jpeg"
    raw = (SAMPLES / "outlook_winmail_dat.eml").read_bytes()
    assert storage_path(files["winmail.dat"].storage_key).read_bytes()[:4] == b"\x78\x9f\x3e\x22"
    assert raw  # sample read
    (fwd,) = messages_of(forward.ticket_id)
    assert "Only one chair" in fwd.body and "2 x Garden chair" in fwd.body


def test_traversal_names_are_made_safe(mail_app, tmp_path):
    outcome = ingest(sample("traversal_attachment_names.eml"))
    rows = list(
        db.session.scalars(select(Attachment).where(Attachment.ticket_id == outcome.ticket_id))
    )
    assert sorted(a.filename for a in rows) == ["evil.zip", "index.html"]
    for row in rows:
        assert storage_path(row.storage_key).is_file()
        assert "/" not in row.filename and "\\" not in row.filename
    assert not (tmp_path / "etc").exists()


# --- addresses (CVE-2023-27043) --------------------------------------------------------------


def test_strict_address_parsing():
    assert parse_address('"a@b.c"@evil.example') is None
    assert parse_address("Alice <alice@example.com>") == ("Alice", "alice@example.com")
    assert parse_address("alice@example.com, bob@example.com") is None
    assert parse_address("alice@example.com <bob@evil.example>") in (
        None,
        ("alice@example.com", "bob@evil.example"),
    )
    pairs = parse_addresses(['x@example.com, "a@b.c"@evil.example'])
    assert ("", "a@b.c") not in pairs and all(a != "a@b.c" for _, a in pairs)


def test_quoted_local_part_sender_is_not_read_as_another(mail_app):
    victim = ticket_for("a@b.c")
    outcome = ingest(sample("quoted_local_part_sender.eml", TICKET_ID=str(victim.id)))
    assert outcome.status == "quarantined" and outcome.reason == "no_sender"
    assert len(messages_of(victim.id)) == 1
    assert count(Customer) == 1


# --- threading --------------------------------------------------------------------------------


def test_reply_with_signed_reference_threads(mail_app):
    ticket = ticket_for("dan@example.org")
    ours = make_message_id(ticket.id)
    raw = simple(
        "Dan <DAN@example.org>",
        "Re: anything",
        "Thanks",
        "<r1@example.org>",
        f"In-Reply-To: {ours}\r\nReferences: <x@y> {ours}\r\n",
    )
    outcome = ingest(raw)
    assert (outcome.status, outcome.ticket_id, outcome.reason) == ("added", ticket.id, "signed")
    assert count(Customer) == 1  # matched case-insensitively


def test_forged_signature_does_not_thread(mail_app):
    ticket = ticket_for("dan@example.org")
    forged = make_message_id(ticket.id).replace(".", "X", 3)
    raw = simple("eve@example.net", "Re: hi", "x", "<f1@example.net>", f"In-Reply-To: {forged}\r\n")
    assert ingest(raw).status == "created"
    assert len(messages_of(ticket.id)) == 1


def test_subject_tag_threads_only_for_participants(mail_app):
    ticket = ticket_for("dan@example.org")
    stranger = ingest(simple("eve@example.net", f"Re: [#{ticket.id}] give me", "x", "<s1@e.net>"))
    assert stranger.status == "created" and stranger.ticket_id != ticket.id
    customer = ingest(simple("dan@example.org", f"Re: [#{ticket.id}] more", "y", "<s2@e.org>"))
    assert (customer.status, customer.ticket_id, customer.reason) == ("added", ticket.id, "subject")


def test_stored_reference_and_cc_participants(mail_app):
    first = ingest(
        simple(
            "dan@example.org",
            "Printer",
            "broken",
            "<p1@example.org>",
            "Cc: Boss <Boss@Example.org>\r\n",
        )
    )
    assert db.session.get(TicketParticipant, (first.ticket_id, "boss@example.org")) is not None
    boss = ingest(
        simple(
            "boss@example.org",
            "Re: Printer",
            "please hurry",
            "<p2@example.org>",
            "In-Reply-To: <p1@example.org>\r\n",
        )
    )
    assert (boss.status, boss.ticket_id, boss.reason) == ("added", first.ticket_id, "reference")
    stranger = ingest(
        simple(
            "eve@example.net",
            "Re: Printer",
            "me too",
            "<p3@example.net>",
            "In-Reply-To: <p1@example.org>\r\n",
        )
    )
    assert stranger.ticket_id != first.ticket_id


def test_mail_from_agent_updates_ticket_as_agent(mail_app, agent):
    ticket = ticket_for("dan@example.org")
    raw = simple(
        "Ana <Agent@Example.com>", f"Re: [#{ticket.id}] x", "We sent it.", "<a1@example.com>"
    )
    outcome = ingest(raw)
    assert outcome.ticket_id == ticket.id
    last = messages_of(ticket.id)[-1]
    assert last.author_type == "agent" and last.agent_id == agent.id


# --- idempotency ------------------------------------------------------------------------------


def test_same_message_id_twice_is_one_message(mail_app):
    raw = sample("gmail_alternative_utf8.eml")
    assert ingest(raw).status == "created"
    assert ingest(raw).status == "duplicate"
    assert ingest(b"From x\n" + raw).status == "duplicate"  # mbox From line tolerated
    assert (count(Ticket), count(Message)) == (1, 1)


def test_no_message_id_gets_a_stable_one(mail_app):
    raw = simple(message_id="").replace(b"Message-ID: \r\n", b"")
    first = ingest(raw)
    assert first.status == "created"
    assert ingest(raw).status == "duplicate"
    (message,) = messages_of(first.ticket_id)
    assert message.message_id.endswith("@generated.invalid>")


# --- loops and bounces ------------------------------------------------------------------------


def test_out_of_office_is_stored_but_does_not_reopen(mail_app, agent):
    ticket = ticket_for("pierre.dubois@corp.example", "Invoice copy")
    services.update_ticket(ticket, {"status": "pending"}, actor=agent)
    ours = make_message_id(ticket.id)
    outcome = ingest(
        sample("out_of_office_exchange.eml", OUR_MESSAGE_ID=ours, TICKET_ID=str(ticket.id))
    )
    assert (outcome.status, outcome.ticket_id) == ("added", ticket.id)
    assert messages_of(ticket.id)[-1].automated
    assert db.session.get(Ticket, ticket.id).status == "pending"


def test_automated_mail_about_no_ticket_is_dropped(mail_app):
    for extra in (
        "Auto-Submitted: auto-replied\r\n",
        "Precedence: bulk\r\n",
        "X-Autoreply: yes\r\n",
        "X-Loop: helpdesk@example.com\r\n",
        "Return-Path: <>\r\n",
        "X-Failed-Recipients: x@example.org\r\n",
    ):
        outcome = ingest(simple(extra=extra, message_id=f"<{hash(extra)}@x>"))
        assert outcome.status == "dropped", extra
    daemon = ingest(simple("MAILER-DAEMON@mx.example.org", message_id="<d@x>"))
    assert daemon.status == "dropped"
    assert ingest(simple(extra="Auto-Submitted: no\r\n", message_id="<n@x>")).status == "created"
    assert count(Ticket) == 1


def test_hard_bounce_marks_the_address(mail_app):
    ticket = ticket_for("gone.customer@example.net")
    ours = make_message_id(ticket.id)
    outcome = ingest(
        sample("dsn_bounce_postfix.eml", OUR_MESSAGE_ID=ours, TICKET_ID=str(ticket.id))
    )
    assert (outcome.status, outcome.ticket_id) == ("added", ticket.id)
    assert messages_of(ticket.id)[-1].automated
    assert db.session.get(Customer, ticket.customer_id).email_bounced_at is not None


def test_bounce_with_forged_reference_is_dropped(mail_app):
    ticket = ticket_for("gone.customer@example.net")
    outcome = ingest(
        sample(
            "dsn_bounce_postfix.eml",
            OUR_MESSAGE_ID="<hd.1.x.0000@example.com>",
            TICKET_ID=str(ticket.id),
        )
    )
    assert outcome.status == "dropped"
    assert db.session.get(Customer, ticket.customer_id).email_bounced_at is None


def test_auto_responder_loop_stops_at_the_rate_limit(mail_app):
    """An auto-responder that does not say so answers every mail: after MAIL_SENDER_RATE_LIMIT
    (5 here) its mail goes to quarantine (kept) instead of making tickets, and automatic
    answers to it stop too."""
    outcomes = [
        ingest(
            simple("bot@autoresponder.example", f"Re: ticket {n}", "I got your mail", f"<bot{n}@a>")
        )
        for n in range(12)
    ]
    assert [o.status for o in outcomes[:5]] == ["created"] * 5
    assert {o.status for o in outcomes[5:]} == {"quarantined"}
    assert {o.reason for o in outcomes[5:]} == {"rate_limited"}
    assert count(Ticket) == 5 and count(MailQuarantine) == 7
    acknowledgements = db.session.scalars(select(OutboxItem)).all()
    assert len(acknowledgements) == 5  # MAIL_AUTO_REPLY_RATE_LIMIT (5 per hour) is used up
    assert may_answer_automatically("bot@autoresponder.example") is False


# --- quarantine and hostile input -----------------------------------------------------------


def test_too_large_is_quarantined_whole_and_reprocessable(mail_app, app_config):
    payload = b"A" * (30 * 1024 * 1024)
    raw = simple(body="see attachment", message_id="<big@example.org>") + payload
    outcome = ingest(raw)
    assert (outcome.status, outcome.reason) == ("quarantined", "too_large")
    item = db.session.get(MailQuarantine, outcome.quarantine_id)
    assert quarantine.path_of(item).read_bytes() == raw and item.size == len(raw)
    assert count(Ticket) == 0
    again = reprocess(item.id)
    assert again.status == "created"
    assert db.session.get(MailQuarantine, item.id).status == "done"
    (message,) = messages_of(again.ticket_id)
    assert message.body.endswith("attached as original.eml)")


def test_no_from_is_quarantined(mail_app):
    outcome = ingest(sample("no_from_no_message_id.eml"))
    assert (outcome.status, outcome.reason) == ("quarantined", "no_sender")
    assert ingest(sample("no_from_no_message_id.eml")).quarantine_id == outcome.quarantine_id
    assert count(MailQuarantine) == 1


def test_encoded_word_bomb_and_huge_header(mail_app):
    bomb = " ".join(["=?utf-8?q?=41=42?="] * 50_000)
    outcome = ingest(simple(subject=bomb, message_id="<bomb@x>"))
    assert outcome.status == "created"
    ticket = db.session.get(Ticket, outcome.ticket_id)
    assert ticket.subject.startswith("ABAB") and len(ticket.subject) <= 200
    huge = "X-Junk: " + "a" * 100_000 + "\r\n"
    outcome = ingest(simple(subject="huge header", message_id="<huge@x>", extra=huge))
    assert outcome.status == "created"


def test_unparsable_garbage_is_kept(mail_app):
    outcome = ingest(b"\x00\xff" * 100)
    assert outcome.status in ("quarantined", "created")
    if outcome.status == "quarantined":
        assert quarantine.path_of(db.session.get(MailQuarantine, outcome.quarantine_id)).exists()


# --- folding quoted history -------------------------------------------------------------------


def test_split_quoted():
    gmail = (
        "Thanks, that works.\n\n"
        "On Tue, 12 Mar 2024 at 10:00, Helpdesk <h@example.com> wrote:\n> Try again\n"
    )
    assert split_quoted(gmail).new == "Thanks, that works."
    assert split_quoted(gmail).quoted.startswith("On Tue")
    outlook = "Fine.\n\nFrom: Helpdesk <h@example.com>\nSent: Monday\nTo: x\n\nold"
    assert split_quoted(outlook).new == "Fine."
    assert split_quoted("Hi\n-- \nJohn\n+1 555").quoted.startswith("-- ")
    assert split_quoted("> only a quote\n> more").new == "> only a quote\n> more"
    inline = "> q1\nanswer 1\n> q2\nanswer 2"
    assert split_quoted(inline).new == inline


def test_ticket_page_folds_quoted_history(mail_app, agent_client):
    outcome = ingest(sample("outlook_windows1252_qp.eml"))
    page = agent_client.get(f"/tickets/{outcome.ticket_id}").get_data(as_text=True)
    assert '<details class="quoted-history">' in page
    assert "Thank you for your order." in page  # folded, not deleted
    (message,) = messages_of(outcome.ticket_id)
    assert "Sent: Monday" in message.body


# --- admin page -------------------------------------------------------------------------------


def test_admin_quarantine_page_and_retry(mail_app, admin_client, agent_client):
    from tests.conftest import post_form

    outcome = ingest(sample("no_from_no_message_id.eml"))
    assert agent_client.get("/admin/mail/quarantine").status_code == 403
    page = admin_client.get("/admin/mail/quarantine").get_data(as_text=True)
    assert "no_sender" in page and "who am I" in page
    response = post_form(
        admin_client,
        f"/admin/mail/quarantine/{outcome.quarantine_id}/retry",
        {},
        page="/admin/mail/quarantine",
    )
    assert response.status_code == 302
    assert db.session.get(MailQuarantine, outcome.quarantine_id).status == "held"  # still no From
    assert (
        post_form(
            admin_client, "/admin/mail/quarantine/999999/retry", {}, page="/admin/mail/quarantine"
        ).status_code
        == 404
    )
