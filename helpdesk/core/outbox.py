"""The outbox: work for the outside world (a mail, an SMS) written in the same transaction as
the change that caused it, and delivered later by ``helpdesk worker``.

The core delivers the ``"mail"`` channel itself. A plugin adds a channel by implementing
``helpdesk_outbox_senders`` and queueing items with :func:`enqueue`; its deliverer tells the
worker how each try went by returning (sent) or raising one of the exceptions below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, overload

from helpdesk.core.models import OutboxItem, utcnow
from helpdesk.extensions import db

# An item as ``enqueue(..., track=False)`` writes it (a Core statement, compiled once).
_NEW_ITEM = OutboxItem.__table__.insert()


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


@overload
def enqueue(
    channel: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str,
    ticket_id: int | None = None,
    due_at: datetime | None = None,
    track: Literal[True] = True,
) -> OutboxItem: ...


@overload
def enqueue(
    channel: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str,
    ticket_id: int | None = None,
    due_at: datetime | None = None,
    track: Literal[False],
) -> None: ...


def enqueue(
    channel: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str,
    ticket_id: int | None = None,
    due_at: datetime | None = None,
    track: bool = True,
) -> OutboxItem | None:
    """Queue ``payload`` on ``channel`` in the current transaction, to go out at ``due_at``
    (default now). ``dedupe_key`` is unique across the outbox: the same work is never queued
    twice, and a deliverer can use it to recognise a retry after a crash.

    Returns the new ``OutboxItem``, written at the next flush. With ``track=False`` the row is
    written at once by one Core ``INSERT`` and nothing is returned: no ORM object, so no
    unit-of-work cost, for hot paths that never touch the item again (a survey queued by
    every status change); the ticket ``ticket_id`` must be in the database already."""
    if not track:
        row = {
            "channel": channel,
            "dedupe_key": dedupe_key,
            "payload": payload,
            "next_attempt_at": due_at or utcnow(),
            "ticket_id": ticket_id,
        }
        db.session.connection().execute(_NEW_ITEM, row)  # the other columns: their defaults
        return None
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


def enqueue_many(channel: str, items: Sequence[tuple[dict[str, Any], str, int | None]]) -> None:
    """Queue many ``(payload, dedupe_key, ticket_id)`` on ``channel``, due now, in the current
    transaction: one statement for all of them, as ``enqueue(..., track=False)`` writes one
    (the tickets must be in the database already)."""
    if not items:
        return
    now = utcnow()
    rows = [
        {
            "channel": channel,
            "dedupe_key": dedupe_key,
            "payload": payload,
            "next_attempt_at": now,
            "ticket_id": ticket_id,
        }
        for payload, dedupe_key, ticket_id in items
    ]
    db.session.connection().execute(_NEW_ITEM, rows)
