"""Every hook a plugin may implement. Each docstring says when it runs, what it gets, and what
it returns. Events run after the change is committed; a plugin that raises is logged and skipped.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("helpdesk")


@hookspec
def helpdesk_customer_registered(customer: Any) -> None:
    """Event, after commit: a customer record was created (by the form, the API, mail or an agent).

    ``customer`` is the ``Customer``. The return value is ignored.
    """


@hookspec
def helpdesk_ticket_defaults(customer: Any, ticket_data: dict[str, Any]) -> dict[str, Any] | None:
    """Decision, before a ticket is created: values to use where the caller gave none.

    ``ticket_data`` holds what is known so far (``subject``, ``kind``, ``priority``,
    ``due_at``, ``team_id``). Return a dict with any of ``priority`` (one of low, normal,
    high, urgent), ``due_at`` (an aware ``datetime``) and ``team_id``, or ``None``. Results are
    merged: the highest priority and the earliest due date win; the first ``team_id`` wins.
    A priority given explicitly by the caller is never lowered.
    """


@hookspec
def helpdesk_ticket_created(ticket: Any) -> None:
    """Event, after commit: a ticket was opened, with its first message. Return value ignored."""


@hookspec
def helpdesk_message_added(ticket: Any, message: Any) -> None:
    """Event, after commit: a reply or internal note (``message.internal``) joined ``ticket``.

    Not fired for a ticket's first message (that is ``helpdesk_ticket_created``).
    """


@hookspec
def helpdesk_ticket_status_changed(ticket: Any, old: str, new: str) -> None:
    """Event, after commit: ``ticket.status`` went from ``old`` to ``new``. Return value ignored."""
