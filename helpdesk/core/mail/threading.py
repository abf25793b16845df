"""Which ticket a received mail belongs to, and who wrote it.

In this order: our own signed Message-ID in In-Reply-To/References (an HMAC over the ticket
id, so it cannot be forged); any other Message-ID already stored on a ticket, and the subject
tag ``[#1234]``, both only when the sender is a participant (the ticket's customer, a CC, an
agent); otherwise the mail opens a new ticket.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import select

from helpdesk.core.mail.ids import ticket_id_from_message_id
from helpdesk.core.models import Agent, Message, Ticket, TicketParticipant
from helpdesk.core.services import final_ticket
from helpdesk.extensions import db

SUBJECT_TAG = re.compile(r"\[#(\d{1,9})\]")
MAX_REFERENCES = 50


def agent_by_address(address_key: str) -> Agent | None:
    """The active agent whose e-mail is ``address_key`` (lower-cased), if any."""
    agent = db.session.scalar(select(Agent).where(Agent.email == address_key))
    return agent if agent is not None and agent.active else None


def is_participant(ticket: Ticket, address_key: str, agent: Agent | None) -> bool:
    """Whether mail from ``address_key`` may join ``ticket`` without a signed reference."""
    if agent is not None or ticket.customer.email_key == address_key:
        return True
    return (
        db.session.scalar(
            select(TicketParticipant.ticket_id).where(
                TicketParticipant.ticket_id == ticket.id,
                TicketParticipant.email_key == address_key,
            )
        )
        is not None
    )


def _live(ticket_id: int | None) -> Ticket | None:
    ticket = db.session.get(Ticket, ticket_id) if ticket_id else None
    return final_ticket(ticket) if ticket is not None else None


def by_signed_reference(references: Iterable[str]) -> Ticket | None:
    """The ticket named by the first of our own signed Message-IDs in ``references``."""
    for value in list(references)[:MAX_REFERENCES]:
        ticket = _live(ticket_id_from_message_id(value))
        if ticket is not None:
            return ticket
    return None


def by_stored_reference(references: list[str]) -> Ticket | None:
    """The ticket holding a message with one of these Message-IDs (newest reference first)."""
    wanted = references[:MAX_REFERENCES]
    if not wanted:
        return None
    rows = dict(
        db.session.execute(
            select(Message.message_id, Message.ticket_id).where(Message.message_id.in_(wanted))
        ).all()
    )
    for value in wanted:
        if value in rows:
            return _live(rows[value])
    return None


def by_subject_tag(subject: str) -> Ticket | None:
    """The ticket named by a ``[#1234]`` tag in the subject."""
    match = SUBJECT_TAG.search(subject or "")
    return _live(int(match.group(1))) if match else None


def find_ticket(
    references: list[str], subject: str, address_key: str, agent: Agent | None
) -> tuple[Ticket | None, str]:
    """The ticket a mail threads to and how it was found (``"signed"``, ``"reference"``,
    ``"subject"``), or ``(None, "new")``."""
    ticket = by_signed_reference(references)
    if ticket is not None:
        return ticket, "signed"
    for how, candidate in (
        ("reference", by_stored_reference(references)),
        ("subject", by_subject_tag(subject)),
    ):
        if candidate is not None and is_participant(candidate, address_key, agent):
            return candidate, how
    return None, "new"
