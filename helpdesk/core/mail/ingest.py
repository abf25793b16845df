"""One received mail in, one ticket change out: a new ticket, a message on a ticket, or a
deliberate drop, or the quarantine. Idempotent by Message-ID: a mail seen before (even one
delivered twice at the same moment) never makes a second ticket or message.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import inspect, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from helpdesk.core import services
from helpdesk.core.attachments import Upload
from helpdesk.core.customers import find_or_create_customer
from helpdesk.core.errors import NotFound, ValidationError
from helpdesk.core.mail import loops, threading
from helpdesk.core.mail.parse import ParsedMail, parse_mail, strip_mbox_line
from helpdesk.core.mail.quarantine import hold, mark_done, read
from helpdesk.core.models import Agent, Customer, MailQuarantine, Message, Ticket, utcnow
from helpdesk.core.validation import email_key
from helpdesk.extensions import db

NO_TEXT = "(This mail has no text.)"
NO_SUBJECT = "(no subject)"


@dataclass(frozen=True)
class Outcome:
    """What became of a mail: ``created``, ``added``, ``duplicate``, ``dropped`` (sent by a
    machine and belonging to no ticket) or ``quarantined``; ``reason`` says why."""

    status: str
    ticket_id: int | None = None
    reason: str = ""
    quarantine_id: int | None = None


def _fit_body(mail: ParsedMail) -> tuple[str, list[Upload]]:
    """The body within ``MAX_BODY_LENGTH`` and attachments within ``MAX_ATTACHMENTS``; when
    either is cut, the whole mail is attached as ``original.eml`` so nothing is lost."""
    limit = current_app.config["MAX_BODY_LENGTH"]
    most = current_app.config["MAX_ATTACHMENTS"]
    body = body_of(mail)
    uploads = list(mail.attachments)
    if len(body) <= limit and len(uploads) <= most:
        return body, uploads
    if len(body) > limit:
        note = "\n\n[…] (cut here: the whole mail is attached as original.eml)"
        body = body[: limit - len(note)] + note
    uploads = [*uploads[: most - 1], Upload("original.eml", "message/rfc822", mail.raw)]
    return body, uploads


def body_of(mail: ParsedMail) -> str:
    """The text a mail's message gets (before the length limit is applied)."""
    return mail.body.replace("\x00", "") or NO_TEXT


def subject_of(mail: ParsedMail) -> str:
    """The subject a mail's ticket gets, within ``MAX_SUBJECT_LENGTH``."""
    limit = current_app.config["MAX_SUBJECT_LENGTH"]
    return (mail.subject.replace("\x00", "") or NO_SUBJECT)[:limit]


def _mark_bounced(mail: ParsedMail) -> None:
    """A hard bounce about mail of ours marks the failed addresses as bouncing."""
    keys = [email_key(address) for address in mail.failed_recipients]
    if keys:
        db.session.execute(
            update(Customer).where(Customer.email_key.in_(keys)).values(email_bounced_at=utcnow())
        )


def _author(sender: tuple[str, str], agent: Agent | None) -> Agent | Customer:
    name, address = sender
    return agent or find_or_create_customer(address, name[:200])


def _store(mail: ParsedMail, automated: str | None, agent: Agent | None) -> Outcome:
    assert mail.sender is not None
    key = email_key(mail.sender[1])
    references = mail.references + (mail.reported_ids if automated else [])
    ticket, how = threading.find_ticket(references, mail.subject, key, agent)
    if ticket is None and automated:
        return Outcome("dropped", reason=automated)
    body, uploads = _fit_body(mail)
    ours = {key, email_key(str(current_app.config.get("MAIL_DEFAULT_SENDER") or ""))}
    newcomers = tuple(k for k in (email_key(a) for a in mail.cc) if k not in ours)
    if ticket is not None and how == "signed" and agent is None and not automated:
        newcomers += (key,)  # someone the thread reached: their next mail threads too
    fields = services.MailFields(
        message_id=mail.message_id,
        body_html=mail.body_html,
        automated=bool(automated),
        participants=newcomers if not automated else (),
    )
    if ticket is None:
        created = services.open_ticket(
            subject=subject_of(mail),
            body=body,
            customer_email=mail.sender[1],
            customer_name=mail.sender[0][:200],
            source="email",
            uploads=uploads,
            mail=fields,
        )
        return Outcome("created", _id_of(created), how)
    if automated:
        _mark_bounced(mail)
    services.add_message(
        ticket,
        body=body,
        author=_author(mail.sender, agent),
        source="email",
        uploads=uploads,
        # A machine's mail never reopens a waiting ticket.
        new_status=ticket.status if automated else None,
        mail=fields,
    )
    return Outcome("added", _id_of(ticket), how)


def _id_of(ticket: Ticket) -> int:
    """A ticket's id without reloading the row the commit expired."""
    return inspect(ticket).identity[0]


def _known(message_id: str) -> int | None:
    return db.session.scalar(select(Message.id).where(Message.message_id == message_id))


def _quarantine(raw: bytes, reason: str, mail: ParsedMail | None, detail: str = "") -> Outcome:
    sender = mail.sender[1] if mail and mail.sender else ""
    item = hold(
        raw,
        reason,
        detail=detail,
        message_id=mail.message_id if mail else None,
        sender=sender,
        subject=mail.subject if mail else "",
    )
    return Outcome("quarantined", reason=reason, quarantine_id=item.id)


def ingest(raw: bytes, *, trusted: bool = False) -> Outcome:
    """Turn one received mail into a ticket change, committed before this returns (inside a
    ``batch.MailBatch``: its savepoint released, committed with the batch).

    ``trusted`` (an admin re-processing quarantined mail) skips the size and rate limits.
    Errors of the database itself propagate, so the caller can ask for the mail again later;
    everything else that goes wrong puts the mail in the quarantine.
    """
    raw = strip_mbox_line(raw)
    if not trusted and len(raw) > current_app.config["MAIL_MAX_MESSAGE_BYTES"]:
        return _quarantine(raw, "too_large", None, f"{len(raw)} bytes")
    try:
        mail = parse_mail(raw)
    except Exception as exc:  # not a mail at all: keep it for a person to look at
        return _quarantine(raw, "unparsable", None, type(exc).__name__)
    if _known(mail.message_id) is not None:
        return Outcome("duplicate", reason=mail.message_id)
    if mail.sender is None:
        return _quarantine(raw, "no_sender", mail)
    automated = loops.automated_reason(mail.message, mail.sender[1])
    sender_key = email_key(mail.sender[1])
    agent = threading.agent_by_address(sender_key)
    if (
        not trusted
        and not automated  # never answered anyway
        and agent is None
        and loops.over_sender_limit(sender_key)
    ):
        return _quarantine(raw, "rate_limited", mail)
    return _store_or_quarantine(raw, mail, automated, agent)


def _store_or_quarantine(
    raw: bytes, mail: ParsedMail, automated: str | None, agent: Agent | None
) -> Outcome:
    try:
        return _store(mail, automated, agent)
    except IntegrityError:
        db.session.rollback()
        if _known(mail.message_id) is not None:  # the same mail, delivered twice at once
            return Outcome("duplicate", reason=mail.message_id)
        raise
    except ValidationError as exc:
        db.session.rollback()  # a refusal after some rows were written: none of them stays
        detail = "; ".join(f"{field}: {text}" for field, text in exc.errors.items())
        return _quarantine(raw, "rejected", mail, detail)
    except DBAPIError:
        raise
    except Exception as exc:  # a bug met by this mail: keep it, and go on with the next
        db.session.rollback()
        current_app.logger.exception("mail %s could not be processed", mail.message_id)
        return _quarantine(raw, "error", mail, type(exc).__name__)


def reprocess(item_id: int) -> Outcome:
    """Process a quarantined mail again (skipping the size and rate limits: an admin asked).
    It leaves the quarantine when it becomes a ticket change (or is found to be a duplicate)."""
    item = db.session.get(MailQuarantine, item_id)
    if item is None or item.status != "held":
        raise NotFound(f"no mail #{item_id} is held in quarantine")
    outcome = ingest(read(item), trusted=True)
    if outcome.status != "quarantined":
        mark_done(db.session.get(MailQuarantine, item_id))
    return outcome
