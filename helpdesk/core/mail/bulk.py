"""Received mail stored a run at a time: the common mails of a batch (a person's new request,
a customer's reply to one of their tickets, text without attachments) in a few statements
for the whole run instead of some twenty for each mail.

``plan`` looks at the next mails of a batch with one query per kind of fact (known
Message-IDs, agents, customers, threaded tickets, participants, rate limits) and returns the
longest run of them that ``ingest`` would store plainly and that do not depend on one another
(no two mails of a run share a sender, a Message-ID or a ticket, nor refer to one another),
so writing them together gives what writing them one after the other would. ``write`` then
stores a run with the same rows, events, counters, search documents, acknowledgements and
rate-limit counts as ``ingest``. Every other mail (automatic, from an agent, with attachments,
refused, a duplicate, a merged ticket, ...) goes through ``ingest`` on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from helpdesk.core import events, ratelimit, search, services
from helpdesk.core.customers import clean_customer_fields
from helpdesk.core.errors import ValidationError
from helpdesk.core.mail import compose, loops
from helpdesk.core.mail.ids import ticket_id_from_message_id
from helpdesk.core.mail.ingest import Outcome, body_of, subject_of
from helpdesk.core.mail.parse import parse_mail, strip_mbox_line
from helpdesk.core.mail.threading import MAX_REFERENCES, SUBJECT_TAG
from helpdesk.core.models import (
    Agent,
    Customer,
    Message,
    Ticket,
    TicketEvent,
    TicketParticipant,
    new_public_key,
    utcnow,
)
from helpdesk.core.outbox import enqueue_many
from helpdesk.core.validation import clean_body, clean_text, email_key
from helpdesk.extensions import db

SENDER_LIMIT = "MAIL_SENDER_RATE_LIMIT"
AUTO_REPLY_LIMIT = "MAIL_AUTO_REPLY_RATE_LIMIT"


@dataclass
class Plain:
    """A received mail that ``ingest`` would store plainly: its cleaned fields and what
    threads it (plain data, cheap to send between processes)."""

    message_id: str
    key: str  # the sender's address, ``email_key`` form
    email: str
    name: str
    subject: str
    body: str
    body_html: str | None
    newcomers: tuple[str, ...]  # CC addresses (``email_key``) that become participants
    references: list[str]  # those ``threading`` looks at, in its order
    tag: int | None  # the ticket number in the subject's tag


@dataclass
class Planned:
    """A mail of a run: a new ticket (``ticket`` is None) or a reply to ``ticket``."""

    plain: Plain
    customer: Customer | None  # None: a new customer
    ticket: Ticket | None
    how: str  # "new", "signed", "reference", "subject"
    # An acknowledgement is asked for (and counted against its rate limit), and sent.
    asks_acknowledgement: bool = False
    acknowledge: bool = False


@dataclass
class _Facts:
    """What the database says about the mails looked at, read in one query per kind."""

    known_ids: set[str]
    agents: set[str]
    customers: dict[str, Customer]
    stored: dict[str, int]  # Message-ID -> ticket id
    tickets: dict[int, Ticket]
    participants: set[tuple[int, str]]
    sender_limit: int
    sender_counts: dict[str, int]
    auto_limit: int
    auto_counts: dict[str, int]


@dataclass
class _Run:
    """The run being planned, and what its mails claim (a later mail touching it ends it)."""

    planned: list[Planned] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    message_ids: set[str] = field(default_factory=set)
    tickets: set[int] = field(default_factory=set)


def receive(raw: bytes) -> Plain | None:
    """``raw`` parsed and cleaned when it can take the bulk path as far as the mail alone
    tells (size, MIME, sender, a person's mail, text only, valid fields); else ``None``."""
    raw = strip_mbox_line(raw)
    if len(raw) > current_app.config["MAIL_MAX_MESSAGE_BYTES"]:
        return None
    try:
        mail = parse_mail(raw)
    except Exception:  # ingest quarantines it, saying why
        return None
    if mail.sender is None or mail.attachments:
        return None
    if loops.automated_reason(mail.message, mail.sender[1]):
        return None
    try:
        customer = clean_customer_fields(
            {"email": mail.sender[1], "name": mail.sender[0][:200], "phone": None}
        )
        body = clean_body(body_of(mail))
        subject = clean_text(
            subject_of(mail), "subject", max_length=current_app.config["MAX_SUBJECT_LENGTH"]
        )
    except ValidationError:
        return None
    key = email_key(mail.sender[1])
    ours = {key, email_key(str(current_app.config.get("MAIL_DEFAULT_SENDER") or ""))}
    newcomers = tuple(k for k in (email_key(a) for a in mail.cc) if k not in ours)
    tag = SUBJECT_TAG.search(mail.subject or "")
    return Plain(
        message_id=mail.message_id,
        key=key,
        email=customer["email"],
        name=customer["name"],
        subject=subject,
        body=body,
        body_html=mail.body_html,
        newcomers=newcomers,
        references=mail.references[:MAX_REFERENCES],
        tag=int(tag.group(1)) if tag else None,
    )


def _facts(plains: Sequence[Plain]) -> _Facts:
    keys = {p.key for p in plains}
    customer_keys = {email_key(p.email) for p in plains}
    references = {ref for p in plains for ref in p.references}
    stored = dict(
        db.session.execute(
            select(Message.message_id, Message.ticket_id).where(Message.message_id.in_(references))
        ).all()
    )
    ticket_ids = set(stored.values())
    for plain in plains:
        ticket_ids.update(t for t in (ticket_id_from_message_id(r) for r in plain.references) if t)
        ticket_ids.add(plain.tag or 0)
    ticket_ids.discard(0)
    tickets = {
        t.id: t
        for t in db.session.scalars(
            select(Ticket).options(joinedload(Ticket.customer)).where(Ticket.id.in_(ticket_ids))
        )
    }
    participants = set(
        db.session.execute(
            select(TicketParticipant.ticket_id, TicketParticipant.email_key).where(
                TicketParticipant.ticket_id.in_(tickets),
                TicketParticipant.email_key.in_(keys | {k for p in plains for k in p.newcomers}),
            )
        ).all()
    )
    sender_limit, sender_counts = ratelimit.limit_and_counts(
        [f"mail-in:{k}" for k in keys], SENDER_LIMIT
    )
    auto_limit, auto_counts = ratelimit.limit_and_counts(
        [f"mail-auto:{k}" for k in customer_keys], AUTO_REPLY_LIMIT
    )
    return _Facts(
        known_ids=set(
            db.session.scalars(
                select(Message.message_id).where(
                    Message.message_id.in_([p.message_id for p in plains])
                )
            )
        ),
        agents=set(db.session.scalars(select(Agent.email).where(Agent.email.in_(keys)))),
        customers={
            c.email_key: c
            for c in db.session.scalars(
                select(Customer).where(Customer.email_key.in_(customer_keys))
            )
        },
        stored=stored,
        tickets=tickets,
        participants=participants,
        sender_limit=sender_limit,
        sender_counts=sender_counts,
        auto_limit=auto_limit,
        auto_counts=auto_counts,
    )


def _thread(plain: Plain, facts: _Facts, run: _Run) -> tuple[Ticket | None, str] | None:
    """``threading.find_ticket`` from the facts read: the ticket and how it was found,
    ``(None, "new")``, or ``None`` when the run cannot tell (a ticket not read, merged, or
    one the run's own mails may create or change)."""
    for reference in plain.references:
        ticket_id = ticket_id_from_message_id(reference)
        if ticket_id is None:
            continue
        if ticket_id not in facts.tickets:
            return None
        return facts.tickets[ticket_id], "signed"
    candidates: list[tuple[str, int | None]] = []
    stored = next((facts.stored[r] for r in plain.references if r in facts.stored), None)
    if any(r in run.message_ids for r in plain.references):
        return None
    candidates.append(("reference", stored))
    tag = plain.tag
    if tag is not None and tag not in facts.tickets:
        return None
    candidates.append(("subject", tag))
    for how, ticket_id in candidates:
        ticket = facts.tickets.get(ticket_id) if ticket_id else None
        if ticket is not None and ticket.merged_into_id is not None:
            return None  # ingest follows the merge
        if ticket is not None and (
            ticket.customer.email_key == plain.key or (ticket.id, plain.key) in facts.participants
        ):
            return ticket, how
    return None, "new"


def _planned(plain: Plain, facts: _Facts, run: _Run) -> Planned | None:
    """How ``plain`` joins the run, or ``None`` when it must wait (or go through ingest)."""
    if (
        plain.message_id in facts.known_ids
        or plain.message_id in run.message_ids
        or plain.key in facts.agents
        or plain.key in run.keys
        or facts.sender_counts.get(f"mail-in:{plain.key}", 0) >= facts.sender_limit
    ):
        return None
    threaded = _thread(plain, facts, run)
    if threaded is None:
        return None
    ticket, how = threaded
    customer = facts.customers.get(email_key(plain.email))
    if customer is not None and (
        customer.email_key in run.keys or (not customer.name and plain.name)
    ):
        return None  # ingest fills a missing name in and re-indexes the customer's tickets
    if ticket is None:
        asks = _asks_acknowledgement(customer)
        used = facts.auto_counts.get(f"mail-auto:{email_key(plain.email)}", 0)
        return Planned(plain, customer, None, how, asks, asks and used < facts.auto_limit)
    if customer is None or ticket.merged_into_id is not None or ticket.id in run.tickets:
        return None
    return Planned(plain, customer, ticket, how)


def _asks_acknowledgement(customer: Customer | None) -> bool:
    """``outbound.ticket_opened``'s conditions before its rate limit (which counts every
    acknowledgement asked for, sent or not)."""
    return bool(current_app.config["MAIL_SEND_ACKNOWLEDGEMENT"]) and (
        customer is None or customer.email_bounced_at is None
    )


def plan(plains: Sequence[Plain]) -> list[Planned]:
    """The longest run at the head of ``plains`` that can be written together (perhaps
    empty: then the first mail goes through ``ingest``)."""
    facts = _facts(plains)
    run = _Run()
    for plain in plains:
        planned = _planned(plain, facts, run)
        if planned is None:
            break
        run.planned.append(planned)
        run.keys.update({plain.key, email_key(plain.email), *plain.newcomers})
        run.message_ids.add(plain.message_id)
        if planned.ticket is not None:
            run.tickets.add(planned.ticket.id)
    return run.planned


def write(run: Sequence[Planned]) -> list[Outcome]:
    """Store a planned run in the current transaction and commit it (inside a
    ``batch.MailBatch``: release its savepoint), queueing the events ``ingest`` would."""
    now = utcnow()
    new = [p for p in run if p.ticket is None]
    replies = [p for p in run if p.ticket is not None]
    _add_customers(new, now)
    opened = _open_tickets(new, now)
    added = _add_replies(replies, now)
    ratelimit.hit_many([f"mail-in:{p.plain.key}" for p in run], SENDER_LIMIT)
    ratelimit.hit_many(
        [f"mail-auto:{email_key(p.plain.email)}" for p in new if p.asks_acknowledgement],
        AUTO_REPLY_LIMIT,
    )
    payloads = [
        (compose.acknowledgement_later(t), t.id)
        for p, t in zip(new, opened, strict=True)
        if p.acknowledge
    ]
    enqueue_many(
        "mail", [(payload, payload["message_id"], ticket_id) for payload, ticket_id in payloads]
    )
    events.commit()
    results = {id(p): Outcome("created", t.id, "new") for p, t in zip(new, opened, strict=True)}
    results.update({id(p): Outcome("added", p.ticket.id, p.how) for p in added if p.ticket})
    return [results[id(p)] for p in run]


def _add_customers(new: Sequence[Planned], now: datetime) -> None:
    """Insert the run's new customers (one statement) and queue their registration events."""
    wanted: dict[str, Planned] = {}
    for planned in new:
        if planned.customer is None:
            wanted.setdefault(email_key(planned.plain.email), planned)
    if not wanted:
        return
    rows = [
        {
            "email": p.plain.email,
            "email_key": key,
            "name": p.plain.name,
            "notes": "",
            "created_at": now,
            "updated_at": now,
        }
        for key, p in wanted.items()
    ]
    # Matched to their rows by address: asking for the rows' order would make SQLAlchemy
    # insert them one statement each on SQLite.
    by_key = {
        c.email_key: c for c in db.session.scalars(insert(Customer).returning(Customer), rows)
    }
    created = [by_key[key] for key in wanted]
    for planned in new:
        if planned.customer is None:
            planned.customer = by_key[email_key(planned.plain.email)]
    for customer in created:
        events.queue("helpdesk_customer_registered", customer=customer)


def _open_tickets(new: Sequence[Planned], now: datetime) -> list[Ticket]:
    """Insert the run's new tickets, their first messages, events, participants, counters
    and search documents; queue their ``helpdesk_ticket_created`` events."""
    if not new:
        return []
    requests = [
        {
            "customer": planned.customer,
            "subject": planned.plain.subject,
            "kind": "support",
            "priority": None,
            "team_id": None,
            "assignee_id": None,
        }
        for planned in new
    ]
    rows = [
        {
            **values,
            "customer_id": request["customer"].id,
            "status": "new",
            "source": "email",
            "created_at": now,
            "updated_at": now,
            "last_activity_at": now,
            "version": 1,
            "public_key": new_public_key(),
        }
        for request, values in zip(
            requests, services.opening_values_many(requests, now=now), strict=True
        )
    ]
    by_key = {t.public_key: t for t in db.session.scalars(insert(Ticket).returning(Ticket), rows)}
    tickets = [by_key[row["public_key"]] for row in rows]
    for planned, ticket in zip(new, tickets, strict=True):
        set_committed_value(ticket, "customer", planned.customer)
    _insert_messages(new, tickets, now, returning=False)
    _insert_participants(zip(tickets, (p.plain.newcomers for p in new), strict=True), set())
    db.session.execute(
        insert(TicketEvent),
        [
            {
                "ticket_id": ticket.id,
                "kind": "created",
                "data": {"source": "email", "priority": ticket.priority},
                "actor_type": "customer",
                "customer_id": ticket.customer_id,
                "created_at": now,
            }
            for ticket in tickets
        ],
    )
    counts: dict[tuple[int | None, str], int] = {}
    for ticket in tickets:
        counts[(ticket.team_id, "new")] = counts.get((ticket.team_id, "new"), 0) + 1
    services.count_statuses(counts)
    limit = current_app.config["SEARCH_MAX_DOCUMENT_CHARS"]
    search.write_documents(
        [
            (t.id, t.subject, p.plain.body[:limit], f"{p.customer.name} {p.customer.email}")
            for p, t in zip(new, tickets, strict=True)
            if p.customer is not None
        ]
    )
    for ticket in tickets:
        events.queue("helpdesk_ticket_created", ticket=ticket)
    return list(tickets)


def _insert_messages(
    planned: Sequence[Planned], tickets: Sequence[Ticket], now: datetime, *, returning: bool
) -> list[Message]:
    rows = [
        {
            "ticket_id": ticket.id,
            "body": p.plain.body,
            "internal": False,
            "source": "email",
            "author_type": "customer",
            "customer_id": p.customer.id if p.customer else None,
            "message_id": p.plain.message_id,
            "body_html": p.plain.body_html,
            "automated": False,
            "created_at": now,
        }
        for p, ticket in zip(planned, tickets, strict=True)
    ]
    if not returning:
        db.session.execute(insert(Message), rows)
        return []
    by_id = {m.message_id: m for m in db.session.scalars(insert(Message).returning(Message), rows)}
    return [by_id[row["message_id"]] for row in rows]


def _insert_participants(
    wanted: Iterable[tuple[Ticket, tuple[str, ...]]], known: set[tuple[int, str]]
) -> None:
    rows = [
        {"ticket_id": ticket.id, "email_key": key, "role": "cc"}
        for ticket, keys in wanted
        for key in dict.fromkeys(keys)
        if (ticket.id, key) not in known
    ]
    if rows:
        db.session.execute(insert(TicketParticipant), rows)


# The columns a reply changes, for many tickets in one statement, each row only if it is still
# the version read (an ORM flush would write them one statement each).
_UPDATE_TICKET = (
    update(Ticket.__table__)
    .where(
        Ticket.__table__.c.id == bindparam("b_id"),
        Ticket.__table__.c.version == bindparam("b_version"),
    )
    .values(
        status=bindparam("b_status"),
        resolved_at=bindparam("b_resolved_at"),
        last_activity_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
        version=bindparam("b_version") + 1,
    )
)


def _update_tickets(tickets: Sequence[Ticket], now: datetime, *, reopened: set[int]) -> None:
    """Write what the replies change on their tickets (activity, and a reopened one's
    status), raising ``StaleDataError`` (nothing written) if any changed meanwhile; the
    instances are brought in line with their rows."""
    rows = []
    for ticket in tickets:
        if ticket.id in reopened:
            status, resolved_at = "open", services.resolved_at_after("open", ticket.resolved_at)
        else:
            status, resolved_at = ticket.status, ticket.resolved_at
        rows.append(
            {
                "b_id": ticket.id,
                "b_version": ticket.version,
                "b_status": status,
                "b_resolved_at": resolved_at,
                "b_now": now,
            }
        )
    written = db.session.execute(_UPDATE_TICKET, rows).rowcount
    if written != len(rows):
        raise StaleDataError(f"{len(rows) - written} of the run's tickets changed meanwhile")
    for ticket, row in zip(tickets, rows, strict=True):
        for key, value in (
            ("status", row["b_status"]),
            ("resolved_at", row["b_resolved_at"]),
            ("last_activity_at", now),
            ("updated_at", now),
            ("version", row["b_version"] + 1),
        ):
            set_committed_value(ticket, key, value)


def _add_replies(replies: Sequence[Planned], now: datetime) -> list[Planned]:
    """Add the run's customer replies to their tickets (``services.add_message``'s rows: a
    reply reopens a waiting or finished ticket) and queue their events."""
    if not replies:
        return []
    tickets = [p.ticket for p in replies if p.ticket is not None]
    messages = _insert_messages(replies, tickets, now, returning=True)
    known = set(
        db.session.execute(
            select(TicketParticipant.ticket_id, TicketParticipant.email_key).where(
                TicketParticipant.ticket_id.in_([t.id for t in tickets])
            )
        ).all()
    )
    _insert_participants(
        (
            (ticket, p.plain.newcomers + ((p.plain.key,) if p.how == "signed" else ()))
            for p, ticket in zip(replies, tickets, strict=True)
        ),
        known,
    )
    db.session.execute(
        insert(TicketEvent),
        [
            {
                "ticket_id": ticket.id,
                "kind": "reply",
                "data": {"message_id": message.id, "attachments": 0},
                "actor_type": "customer",
                "customer_id": message.customer_id,
                "created_at": now,
            }
            for ticket, message in zip(tickets, messages, strict=True)
        ],
    )
    moves = [
        (ticket, planned.customer, ticket.status, "open")
        for planned, ticket in zip(replies, tickets, strict=True)
        if ticket.status in services.REOPENING_STATUSES
    ]
    _update_tickets(tickets, now, reopened={ticket.id for ticket, *_ in moves})
    services.record_status_changes(moves)
    for ticket, message in zip(tickets, messages, strict=True):
        events.queue("helpdesk_message_added", ticket=ticket, message=message)
    bodies: dict[int, list[str]] = {t.id: [] for t in tickets}
    rows = db.session.execute(
        select(Message.ticket_id, Message.body)
        .where(Message.ticket_id.in_(bodies))
        .order_by(Message.ticket_id, Message.id)
    )
    for ticket_id, body in rows:
        bodies[ticket_id].append(body)
    search.write_documents(
        [
            (
                t.id,
                t.subject,
                search.document_body(bodies[t.id]),
                f"{t.customer.name} {t.customer.email}",
            )
            for t in tickets
        ]
    )
    return list(replies)
