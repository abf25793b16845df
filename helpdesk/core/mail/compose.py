"""Outgoing mail: agent replies, new-ticket acknowledgements and status notices, rendered from
the templates in ``templates/mail/`` (text + HTML) into a payload the worker sends as it is.

Every mail carries one of our signed Message-IDs (so the customer's answer threads back to its
ticket), ``In-Reply-To``/``References`` to the ticket's previous mail, ``Reply-To`` the help
desk and the subject tag. Automatic mails say so (``Auto-Submitted`` and friends), so
auto-responders do not answer them. Nothing a user wrote reaches a header unsanitised.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.charset import QP, Charset
from email.generator import Generator
from email.mime.base import MIMEBase
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import parseaddr, quote
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_mail import Message as FlaskMailMessage
from sqlalchemy import Select, bindparam, func, select

from helpdesk.core import tokens
from helpdesk.core.mail.ids import make_message_id
from helpdesk.core.models import Agent, Message, OutboxItem, Ticket
from helpdesk.extensions import db

log = logging.getLogger(__name__)

AUTO_HEADERS = {
    "Auto-Submitted": "auto-replied",
    "X-Auto-Response-Suppress": "All",
    "Precedence": "bulk",
}
MAX_REFERENCES = 10  # RFC 5322 lets a long thread's References be trimmed to the first + latest
MAX_HEADER_TEXT = 200  # characters of a name or subject put in a header

# Line breaks and other control characters (C0, DEL, C1, Unicode line/paragraph separators).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MESSAGE_ID = re.compile(r"<[^<>\s\x00-\x1f\x7f]{1,250}>")
_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|vs|ynt|antw)\s*:\s*", re.IGNORECASE)


def header_text(value: str | None, max_length: int | None = MAX_HEADER_TEXT) -> str:
    """``value`` made safe for a header: control characters and line breaks become spaces,
    runs of white space one space, and it is cut to ``max_length`` characters."""
    return " ".join(_UNSAFE.sub(" ", value or "").split())[:max_length]


def help_desk_address() -> tuple[str, str]:
    """The help desk's own ``(name, address)`` from ``MAIL_DEFAULT_SENDER`` (a string such as
    ``"Support <help@example.com>"`` or a ``[name, address]`` pair)."""
    sender = current_app.config["MAIL_DEFAULT_SENDER"]
    if isinstance(sender, list | tuple):
        name, address = str(sender[0]), str(sender[1])
    else:
        name, address = parseaddr(str(sender))
    return header_text(name) or header_text(current_app.config["HELPDESK_NAME"]), address


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute link for a mail, built on ``PUBLIC_URL`` (never on a request's Host header,
    which a client chooses)."""
    base = urlsplit(current_app.config["PUBLIC_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "https"
    )
    return adapter.build(endpoint, values, force_external=True)


def status_link(ticket: Ticket) -> str:
    """The customer's private status link for ``ticket``."""
    return public_url("portal.status", token=tokens.ticket_link_token(ticket))


def paragraphs(text: str) -> list[list[str]]:
    """Plain text as paragraphs of lines, for the HTML part (the template escapes each line)."""
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    return [block.split("\n") for block in blocks if block.strip()]


def _tagged(ticket: Ticket, subject: str) -> str:
    tag = current_app.config["MAIL_SUBJECT_TAG"].format(id=ticket.id)
    return subject if tag in subject else f"{tag} {subject}"


def _clean_message_id(value: str | None) -> str | None:
    """A stored (perhaps hostile) Message-ID, if it is one and safe to put in a header."""
    value = (value or "").strip()
    if value and not value.startswith("<"):
        value = f"<{value}>"
    return value if _MESSAGE_ID.fullmatch(value) else None


def _thread(ticket: Ticket, until: datetime | None = None) -> list[str]:
    """The Message-IDs of the ticket's mail so far (or up to ``until``: a mail composed after it
    was queued answers only what came before it), oldest first: ours from the outbox and the
    customer's as the mail ingester stored them (``Message.message_id``, when it exists)."""
    ours = select(OutboxItem.created_at, OutboxItem.dedupe_key).where(
        OutboxItem.ticket_id == ticket.id, OutboxItem.channel == "mail"
    )
    stored = getattr(Message, "message_id", None)
    theirs = None
    if stored is not None:
        theirs = select(Message.created_at, stored).where(
            Message.ticket_id == ticket.id, stored.is_not(None)
        )
    if until is not None:
        ours = ours.where(OutboxItem.created_at < until)
        theirs = None if theirs is None else theirs.where(Message.created_at <= until)
    found = list(db.session.execute(ours.order_by(OutboxItem.id.desc()).limit(MAX_REFERENCES)))
    if theirs is not None:
        found += db.session.execute(theirs.order_by(Message.id.desc()).limit(MAX_REFERENCES))
    return _thread_ids(found)


def _thread_ids(found: Iterable[tuple[datetime, str | None]]) -> list[str]:
    """The safe, distinct Message-IDs of ``(created_at, Message-ID)`` rows, oldest first (the
    sort is stable: rows of one time keep their order)."""
    ids: list[str] = []
    for _when, value in sorted(found, key=lambda row: row[0]):
        clean = _clean_message_id(value)
        if clean and clean not in ids:
            ids.append(clean)
    return ids


def _latest_per_ticket(columns: tuple[Any, ...], *conditions: Any) -> Select[Any]:
    """A statement for the ``MAX_REFERENCES`` newest rows per ticket (``columns``: ticket id,
    time, Message-ID, row id) of the tickets ``:ids`` meeting ``conditions``, each ticket's
    newest first."""
    ticket_id, created_at, value, row_id = columns
    ranked = (
        select(
            ticket_id.label("ticket_id"),
            created_at.label("created_at"),
            value.label("value"),
            func.row_number().over(partition_by=ticket_id, order_by=row_id.desc()).label("rank"),
        )
        .where(ticket_id.in_(bindparam("ids", expanding=True)), *conditions)
        .subquery()
    )
    return (
        select(ranked.c.ticket_id, ranked.c.created_at, ranked.c.value)
        .where(ranked.c.rank <= MAX_REFERENCES)
        .order_by(ranked.c.ticket_id, ranked.c.rank)
    )


# Built once: what ``_thread`` reads, for a batch of tickets at once (``:until`` the latest
# time any of them is composed for; each ticket's own limit is applied in Python).
_OURS_LATEST = _latest_per_ticket(
    (OutboxItem.ticket_id, OutboxItem.created_at, OutboxItem.dedupe_key, OutboxItem.id),
    OutboxItem.channel == "mail",
    OutboxItem.created_at < bindparam("until"),
)
_THEIRS_LATEST = _latest_per_ticket(
    (Message.ticket_id, Message.created_at, Message.message_id, Message.id),
    Message.message_id.is_not(None),
    Message.created_at <= bindparam("until"),
)
_TICKETS = select(Ticket).where(Ticket.id.in_(bindparam("ids", expanding=True)))


def _threads(
    tickets: dict[int, Ticket], wanted: set[tuple[int, datetime]]
) -> dict[tuple[int, datetime], list[str]]:
    """``_thread(ticket, until)`` for each ``(ticket id, until)`` in ``wanted``, read in two
    queries for all of them. A ticket whose newest rows all came after its ``until`` (so the
    batch read may have cut older ones it needs) is read on its own, as ``_thread`` does."""
    params = {"ids": sorted({ticket_id for ticket_id, _until in wanted})}
    params["until"] = max(until for _ticket_id, until in wanted)
    ours: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    theirs: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for rows, statement in ((ours, _OURS_LATEST), (theirs, _THEIRS_LATEST)):
        for ticket_id, created_at, value in db.session.execute(statement, params):
            rows[ticket_id].append((created_at, value))
    threads: dict[tuple[int, datetime], list[str]] = {}
    for ticket_id, until in wanted:
        mine = [row for row in ours[ticket_id] if row[0] < until]
        their = [row for row in theirs[ticket_id] if row[0] <= until]
        cut = any(
            len(rows[ticket_id]) == MAX_REFERENCES and len(kept) < MAX_REFERENCES
            for rows, kept in ((ours, mine), (theirs, their))
        )
        found = _thread(tickets[ticket_id], until) if cut else _thread_ids(mine + their)
        threads[ticket_id, until] = found
    return threads


def _reference_headers(ids: list[str]) -> dict[str, str]:
    """``In-Reply-To`` and ``References`` for a mail answering the thread ``ids``."""
    if not ids:
        return {}
    references = ids if len(ids) <= MAX_REFERENCES else [ids[0], *ids[-(MAX_REFERENCES - 1) :]]
    return {"In-Reply-To": ids[-1], "References": " ".join(references)}


def _language(ticket: Ticket) -> str:
    language = ticket.customer.language
    if language in current_app.config["LANGUAGES"]:
        return language
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def _payload(
    ticket: Ticket,
    *,
    kind: str,
    key: str,
    sender_name: str,
    subject: str,
    template: str,
    automatic: bool,
    date: float | None = None,
    thread: list[str] | None = None,
    **context: Any,
) -> dict[str, Any]:
    name, address = help_desk_address()
    customer = ticket.customer
    if thread is None:
        thread = _thread(ticket, None if date is None else _queued_at(date))
    headers = _reference_headers(thread)
    if automatic:
        headers.update(AUTO_HEADERS)
    context.update(
        ticket=ticket,
        customer_name=header_text(customer.name) or customer.email,
        helpdesk_name=current_app.config["HELPDESK_NAME"],
        status_link=status_link(ticket),
    )
    return with_raw(
        {
            "kind": kind,
            "message_id": make_message_id(ticket.id, key),
            "date": time.time() if date is None else date,
            "from": [header_text(sender_name) or name, address],
            "to": [[header_text(customer.name), customer.email]],
            "reply_to": [name, address],
            "subject": header_text(subject),
            "text": render_template(f"mail/{template}.txt", **context),
            "html": render_template(f"mail/{template}.html", **context),
            "headers": headers,
        }
    )


def reply_mail(ticket: Ticket, message: Message, agent: Agent) -> dict[str, Any]:
    """The mail that carries an agent's public reply to the customer."""
    with force_locale(_language(ticket)):
        subject = _REPLY_PREFIX.sub("", ticket.subject)
        return _payload(
            ticket,
            kind="reply",
            key=f"m{message.id}",
            sender_name=_(
                "%(agent)s at %(helpdesk)s",
                agent=header_text(agent.name),
                helpdesk=current_app.config["HELPDESK_NAME"],
            ),
            subject=_("Re: %(subject)s", subject=_tagged(ticket, subject)),
            template="reply",
            automatic=False,
            body=message.body,
            body_paragraphs=paragraphs(message.body),
            agent=agent,
            signature_paragraphs=paragraphs(agent.signature or ""),
        )


def _queued_at(date: float) -> datetime:
    return datetime.fromtimestamp(date, UTC)


def acknowledgement_mail(
    ticket: Ticket, *, date: float | None = None, thread: list[str] | None = None
) -> dict[str, Any]:
    """The automatic mail that tells a customer their new request arrived, with its reference
    and their private status link (``date``: when it was queued, default now; ``thread``: the
    Message-IDs it answers, read from the database when not given)."""
    with force_locale(_language(ticket)):
        return _payload(
            ticket,
            kind="acknowledgement",
            key=f"ack{ticket.id}",
            date=date,
            thread=thread,
            sender_name="",
            subject=_acknowledgement_subject(ticket),
            template="acknowledgement",
            automatic=True,
        )


def _acknowledgement_subject(ticket: Ticket) -> str:
    return _tagged(ticket, _("We received your request: %(subject)s", subject=ticket.subject))


def acknowledgement_later(ticket: Ticket) -> dict[str, Any]:
    """What the outbox keeps of an acknowledgement until the worker sends it: its kind,
    addressee, subject, time and Message-ID (reserved now, so it is never queued twice), no
    body. The worker composes the mail (``ready_to_send``), so a customer's request does not
    wait for templates and MIME."""
    customer = ticket.customer
    with force_locale(_language(ticket)):
        subject = header_text(_acknowledgement_subject(ticket))
    return {
        "kind": "acknowledgement",
        "compose": "acknowledgement",
        "subject": subject,
        "ticket_id": ticket.id,
        "message_id": make_message_id(ticket.id, f"ack{ticket.id}"),
        "date": time.time(),
        "to": [[header_text(customer.name), customer.email]],
    }


class TicketGone(LookupError):
    """A mail was to be composed about a ticket that no longer exists."""


def ready_to_send(payloads: Sequence[dict[str, Any]]) -> list[dict[str, Any] | Exception]:
    """Each of ``payloads`` as the worker sends it, in order: a composed mail as queued; one
    queued to be composed later (``acknowledgement_later``) composed now, with the Message-ID
    and date it was given when queued. One that cannot be composed is replaced by the exception
    that stopped it (``TicketGone``, a template's or the database's fault); the others go on.

    The tickets (with their customers) and the threads' Message-IDs of the whole batch are read
    in one query each, not per mail."""
    later = [payload for payload in payloads if "compose" in payload]
    if not later:
        return list(payloads)
    try:
        found = db.session.scalars(_TICKETS, {"ids": sorted({p["ticket_id"] for p in later})})
        tickets = {ticket.id: ticket for ticket in found.unique()}
        wanted = {
            (p["ticket_id"], _queued_at(p["date"])) for p in later if p["ticket_id"] in tickets
        }
        threads = _threads(tickets, wanted) if wanted else {}
    except Exception as exc:  # the database's fault: each of these waits for its retry
        log.exception("could not read the tickets of %d mails to compose", len(later))
        return [exc if "compose" in payload else payload for payload in payloads]
    ready: list[dict[str, Any] | Exception] = []
    for payload in payloads:
        if "compose" not in payload:
            ready.append(payload)
            continue
        ticket = tickets.get(payload["ticket_id"])
        if ticket is None:
            ready.append(TicketGone(f"ticket {payload['ticket_id']} no longer exists"))
            continue
        thread = threads[ticket.id, _queued_at(payload["date"])]
        try:
            ready.append(acknowledgement_mail(ticket, date=payload["date"], thread=thread))
        except Exception as exc:  # a template's or a config's fault must not stop the batch
            log.exception("mail about ticket %s could not be composed", ticket.id)
            ready.append(exc)
    return ready


def resolved_mail(ticket: Ticket) -> dict[str, Any]:
    """The automatic mail that tells a customer their request was resolved."""
    with force_locale(_language(ticket)):
        return _payload(
            ticket,
            kind="resolved",
            key=f"resolved{secrets.token_hex(4)}",
            sender_name="",
            subject=_tagged(ticket, _("Resolved: %(subject)s", subject=ticket.subject)),
            template="resolved",
            automatic=True,
        )


_UNFOLDED = 1_000_000  # the line length ``email.header`` takes for "do not fold" (0 or None)


class _SmtpCompat32(Compat32):
    """``compat32`` with CRLF line ends (SMTP's), writing a header of printable ASCII without
    white space at its ends that needs no folding as it is: what ``compat32`` makes of it
    anyway, through an ``email.header.Header`` round trip that took a fifth of a mail's
    composing."""

    def fold(self, name: str, value: Any) -> str:
        """``name: value`` as ``compat32`` writes it."""
        if (
            isinstance(value, str)
            and value.isascii()
            and value.isprintable()
            and value == value.strip()
            and len(name) + 2 + len(value) <= (self.max_line_length or _UNFOLDED)
        ):
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)


_SMTP_POLICY = _SmtpCompat32(linesep="\r\n")


class _QuotedPrintableMessage(FlaskMailMessage):
    """Flask-Mail's message with UTF-8 bodies in quoted-printable rather than 8bit, so long
    lines survive every relay (SMTP allows 998 octets per line), and headers written as
    Flask-Mail encoded them (``compat32``): the modern policy Flask-Mail switches to refolds
    long headers by decoding their encoded words and writing names such as ``Smith, John``
    back unquoted, which turns one recipient into two (and it is several times slower)."""

    def _message(self) -> MIMEBase:
        message = super()._message()
        message.policy = _SMTP_POLICY
        _set_boundaries(message)
        return message

    def _mimetext(self, text: str | None, subtype: str = "plain") -> MIMEText:
        charset = Charset("utf-8")
        charset.body_encoding = QP
        return MIMEText(text or "", _subtype=subtype, _charset=charset)


def _set_boundaries(message: MIMEBase) -> None:
    """Give each multipart part its boundary before the generator does: a random one of the
    generator's own form, as it would choose, but without its check that the boundary is not
    in the text (a regular expression compiled for each boundary, a third of the time a mail
    took). That check cannot fail here: the leaves are quoted-printable text, in which "=" is
    always escaped ("=3D"), so no line of theirs is "--" followed by a run of "=", and each
    part's boundary differs from the others'."""
    used: set[str] = set()
    for part in message.walk():
        if part.is_multipart():
            boundary = Generator._make_boundary()
            while boundary in used:
                boundary = Generator._make_boundary()
            used.add(boundary)
            part.set_boundary(boundary)


def build_message(payload: dict[str, Any]) -> FlaskMailMessage:
    """The Flask-Mail message for a payload's parts (as ``reply_mail`` and friends made them)."""
    message = _QuotedPrintableMessage(
        subject=header_text(payload["subject"]),
        recipients=[(header_text(name), address) for name, address in payload["to"]],
        # Flask-Mail turns a (name, address) sender into "name <address>" and parses it
        # again, so the name goes in quoted.
        sender=f'"{quote(header_text(payload["from"][0]))}" <{payload["from"][1]}>',
        reply_to=(header_text(payload["reply_to"][0]), payload["reply_to"][1]),
        body=payload["text"],
        html=payload["html"],
        date=payload["date"],
        extra_headers={
            name: header_text(value, None) for name, value in payload["headers"].items()
        },
    )
    message.msgId = payload["message_id"]
    return message


def with_raw(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with ``raw``: the whole message as the worker sends it, built once when the
    mail is composed (so a resend of a queued reply is byte for byte the same)."""
    return {**payload, "raw": build_message(payload).as_string()}
