"""Plain notices to agents (a low survey score, ...): a short text mail, queued in the outbox in
the current transaction like every other mail, so it goes out with retries when the SMTP server
is away."""

from __future__ import annotations

import time
from collections.abc import Iterable

from helpdesk.core.mail.compose import AUTO_HEADERS, header_text, help_desk_address, with_raw
from helpdesk.core.mail.ids import make_message_id
from helpdesk.core.mail.outbound import queue_mail
from helpdesk.core.models import Agent, OutboxItem


def notify_agents(
    agents: Iterable[Agent], subject: str, text: str, *, key: str, ticket_id: int | None = None
) -> OutboxItem | None:
    """Queue one plain-text mail ``subject``/``text`` to the active ``agents`` (none: nothing
    is queued). ``key`` makes the mail unique: the same key never queues a second mail."""
    recipients = [[header_text(agent.name), agent.email] for agent in agents if agent.active]
    if not recipients:
        return None
    name, address = help_desk_address()
    payload = {
        "kind": "notice",
        "message_id": make_message_id(ticket_id or 0, key),
        "date": time.time(),
        "from": [name, address],
        "to": recipients,
        "reply_to": [name, address],
        "subject": header_text(subject),
        "text": text,
        "html": None,
        "headers": dict(AUTO_HEADERS),
    }
    return queue_mail(with_raw(payload), ticket_id=ticket_id)
