"""The outbox for mail: the services call these while they change a ticket, and the mail is
written to the ``outbox`` table in the same transaction. A rollback leaves no mail behind; a
commit leaves a mail the worker (``helpdesk worker``) will deliver, however long the SMTP
server is away.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from helpdesk.core.errors import Conflict, NotFound
from helpdesk.core.mail import compose, loops
from helpdesk.core.models import Agent, Message, OutboxItem, Ticket, utcnow
from helpdesk.core.outbox import enqueue
from helpdesk.extensions import db

OUTBOX_STATUSES = ("pending", "dead", "sent")
ACKNOWLEDGED_SOURCES = ("web", "email")
_NOTICES_KEY = "helpdesk_resolved_notices"


def _reachable(ticket: Ticket) -> bool:
    """Whether automatic mail may go to the ticket's customer: not after a hard bounce said
    the address does not exist (agents' own replies still go: they chose to write)."""
    return ticket.customer.email_bounced_at is None


def queue_mail(payload: dict[str, Any], *, ticket_id: int | None) -> OutboxItem:
    """Put a composed mail (see ``compose``) in the outbox, in the current transaction.

    Its Message-ID is the row's ``dedupe_key``: the same mail is never queued twice, and a
    mail sent again after a crash carries the same Message-ID, so it is recognisable.
    """
    return enqueue("mail", payload, dedupe_key=payload["message_id"], ticket_id=ticket_id)


def ticket_opened(ticket: Ticket, *, opened_by: Agent | None, acknowledge: bool = True) -> None:
    """Queue the acknowledgement of a ticket a customer opened (by the web form or by mail).

    None when an agent opened it, when ``MAIL_SEND_ACKNOWLEDGEMENT`` is off, or when the
    caller says not to (``acknowledge=False``: the mail ingester does so for mail that looks
    automatic, so that we never answer an auto-responder).
    """
    if (
        acknowledge
        and opened_by is None
        and ticket.source in ACKNOWLEDGED_SOURCES
        and current_app.config["MAIL_SEND_ACKNOWLEDGEMENT"]
        and _reachable(ticket)
        and loops.may_answer_automatically(ticket.customer.email_key)
    ):
        queue_mail(compose.acknowledgement_later(ticket), ticket_id=ticket.id)


def message_added(ticket: Ticket, message: Message) -> None:
    """Queue the mail that takes an agent's public reply to the customer (internal notes and
    customers' own messages send nothing). A reply that also resolves the ticket says so
    itself, so the separate resolved notice of this transaction is withdrawn."""
    if message.internal or message.author_type != "agent" or message.agent is None:
        return
    notice = db.session.info.get(_NOTICES_KEY, {}).pop(ticket.id, None)
    if notice is not None:
        if notice in db.session.new:
            db.session.expunge(notice)
        else:
            db.session.delete(notice)
    queue_mail(compose.reply_mail(ticket, message, message.agent), ticket_id=ticket.id)


def status_changed(ticket: Ticket, old: str, new: str) -> None:
    """Queue the notice that a ticket was resolved (setting ``MAIL_NOTIFY_RESOLVED``)."""
    if new != "resolved" or old == "resolved" or not current_app.config["MAIL_NOTIFY_RESOLVED"]:
        return
    if not _reachable(ticket):
        return
    item = queue_mail(compose.resolved_mail(ticket), ticket_id=ticket.id)
    db.session.info.setdefault(_NOTICES_KEY, {})[ticket.id] = item


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget_notices(session: Session) -> None:
    session.info.pop(_NOTICES_KEY, None)


def outbox_counts() -> dict[str, int]:
    """How many outbox rows are in each state."""
    counts = dict.fromkeys(OUTBOX_STATUSES, 0)
    rows = db.session.execute(select(OutboxItem.status, func.count()).group_by(OutboxItem.status))
    counts.update({status: int(count) for status, count in rows})
    return counts


def list_outbox(status: str, *, limit: int) -> list[OutboxItem]:
    """The outbox rows in ``status``, the most recent first (at most ``limit``)."""
    if status not in OUTBOX_STATUSES:
        raise NotFound(f"no outbox state {status!r}")
    query = select(OutboxItem).where(OutboxItem.status == status)
    return list(db.session.scalars(query.order_by(OutboxItem.id.desc()).limit(limit)))


def retry_now(item_id: int) -> OutboxItem:
    """Send a pending or dead item at the worker's next round, with a fresh set of attempts."""
    item = db.session.get(OutboxItem, item_id)
    if item is None:
        raise NotFound("no such outbox item")
    if item.status == "sent":
        raise Conflict("this item was sent already; retrying it would send it twice")
    item.status = "pending"
    item.attempts = 0
    item.next_attempt_at = utcnow()
    item.claimed_until = None
    db.session.commit()
    return item
