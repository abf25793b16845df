"""The outbox: work for the outside world (a mail, an SMS) written in the same transaction as
the change that caused it, and delivered later by ``helpdesk worker``.

The core delivers the ``"mail"`` channel itself. A plugin adds a channel by implementing
``helpdesk_outbox_senders`` and queueing items with :func:`enqueue`; its deliverer tells the
worker how each try went by returning (sent) or raising one of the exceptions below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from helpdesk.core.models import OutboxItem, utcnow
from helpdesk.extensions import db


class DeliveryRefused(Exception):
    """The far side refused this item for good (an invalid or unsubscribed number): it is
    marked dead at once, with this message, and never tried again."""


class ChannelUnavailable(Exception):
    """The channel's service is away (refused connection, time-out, 5xx, 429): this item and
    the rest of its channel's batch wait for their retry with backoff."""


@dataclass(frozen=True)
class Delivery:
    """One claimed outbox item, as a deliverer sees it."""

    id: int
    channel: str
    payload: dict[str, Any]
    # Tries before this one.
    attempts: int
    # No retry follows if this try fails.
    last_try: bool
    ticket_id: int | None = None


Deliverer = Callable[[Delivery], None]


def enqueue(
    channel: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str,
    ticket_id: int | None = None,
    due_at: datetime | None = None,
) -> OutboxItem:
    """Queue ``payload`` on ``channel`` in the current transaction, to go out at ``due_at``
    (default now). ``dedupe_key`` is unique across the outbox: the same work is never queued
    twice, and a deliverer can use it to recognise a retry after a crash."""
    item = OutboxItem(
        channel=channel,
        dedupe_key=dedupe_key,
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=due_at or utcnow(),
        ticket_id=ticket_id,
    )
    db.session.add(item)
    return item
