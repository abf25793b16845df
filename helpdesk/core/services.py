"""The verbs of the help desk: open a ticket, reply, note, change it, merge it.

The agent UI, the customer portal, the REST API, the mail ingester and the CLI all call these,
so every entrance obeys the same rules. Each verb validates, changes the rows, records an
event for the ticket's history, keeps the status counter and the search index in step,
commits, then fires the plugin events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.exc import StaleDataError

from helpdesk.core import attachments, events, search
from helpdesk.core.customers import find_or_create_customer
from helpdesk.core.errors import Conflict, ValidationError
from helpdesk.core.mail import outbound
from helpdesk.core.models import (
    KINDS,
    PRIORITIES,
    STATUSES,
    Agent,
    Attachment,
    Customer,
    Message,
    StatusCount,
    Team,
    Ticket,
    TicketEvent,
    TicketParticipant,
    utcnow,
)
from helpdesk.core.validation import clean_body, clean_choice, clean_text
from helpdesk.extensions import db
from helpdesk.plugins import call_each, call_each_refusable, current_plugins

Actor = Agent | Customer | None
REOPENING_STATUSES = ("pending", "resolved", "closed")
TICKET_FIELDS = ("status", "priority", "kind", "assignee", "team")


def _record(ticket: Ticket, actor: Actor, kind: str, **data: Any) -> None:
    db.session.add(TicketEvent(**_event_row(ticket, actor, kind, **data)))


def _event_row(ticket: Ticket, actor: Actor, kind: str, **data: Any) -> dict[str, Any]:
    """The columns of a history row: ``kind`` of change to ``ticket`` by ``actor``."""
    row = {"ticket_id": ticket.id, "kind": kind, "data": data, "actor_type": "system"}
    row["agent_id"] = row["customer_id"] = None
    if isinstance(actor, Agent):
        row["actor_type"], row["agent_id"] = "agent", actor.id
    elif isinstance(actor, Customer):
        row["actor_type"], row["customer_id"] = "customer", actor.id
    return row


_COUNT_STATUS = text(
    "INSERT INTO status_counts (team_key, status, count) VALUES (:team, :status, :delta) "
    "ON CONFLICT (team_key, status) DO UPDATE SET count = status_counts.count + :delta"
)


def count_status(team_id: int | None, status: str, delta: int) -> None:
    """Add ``delta`` to the count of ``team_id``'s tickets in ``status`` (the queue's
    counters), in the caller's transaction."""
    count_statuses({(team_id, status): delta})


def count_statuses(deltas: dict[tuple[int | None, str], int]) -> None:
    """``count_status`` for each ``(team_id, status): delta``, in one statement."""
    rows = [
        {"team": team_id or 0, "status": status, "delta": delta}
        for (team_id, status), delta in deltas.items()
        if delta
    ]
    if rows:
        db.session.execute(_COUNT_STATUS, rows)


def due_at_for(priority: str, start: datetime) -> datetime:
    """When a ticket of ``priority`` opened at ``start`` is due, by the ``SLA_HOURS`` setting."""
    return start + timedelta(hours=current_app.config["SLA_HOURS"][priority])


def _merged_proposals(data: dict[str, Any], proposals: Iterable[Any]) -> dict[str, Any]:
    """The plugins' ``helpdesk_ticket_defaults`` proposals for ``data``, merged."""
    merged: dict[str, Any] = {}
    for proposal in proposals:
        if not isinstance(proposal, dict):
            continue
        priority = proposal.get("priority")
        if priority in PRIORITIES and PRIORITIES.index(priority) > PRIORITIES.index(
            merged.get("priority", data["priority"])
        ):
            merged["priority"] = priority
        due = proposal.get("due_at")
        if isinstance(due, datetime) and due.tzinfo and due < merged.get("due_at", data["due_at"]):
            merged["due_at"] = due
        for field in ("team_id", "assignee_id"):
            if field not in merged and isinstance(proposal.get(field), int):
                merged[field] = proposal[field]
    return merged


def _proposed_assignee(agent_id: int | None) -> Agent | None:
    """The agent a plugin proposed, if they can still take tickets (else nobody)."""
    agent = db.session.get(Agent, agent_id) if agent_id else None
    return agent if agent is not None and agent.active else None


def _agent(agent_or_email: Agent | str | None, field: str = "assignee") -> Agent | None:
    if agent_or_email is None or agent_or_email == "":
        return None
    if isinstance(agent_or_email, Agent):
        agent = agent_or_email
    else:
        if not isinstance(agent_or_email, str):
            raise ValidationError({field: "must be an agent's e-mail or null"})
        agent = db.session.scalar(select(Agent).where(Agent.email == agent_or_email.lower()))
    if agent is None or not agent.active:
        raise ValidationError({field: "is not an active agent"})
    return agent


def _team(team_or_id: Team | int | str | None) -> Team | None:
    if team_or_id in (None, ""):
        return None
    if isinstance(team_or_id, Team):
        return team_or_id
    try:
        team = db.session.get(Team, int(team_or_id))
    except (TypeError, ValueError):
        team = None
    if team is None:
        raise ValidationError({"team": "is not a team"})
    return team


def _add_message(
    ticket: Ticket,
    *,
    body: str,
    author: Agent | Customer,
    internal: bool,
    source: str,
    uploads: Sequence[attachments.Upload],
    mail: MailFields | None = None,
    at: datetime | None = None,
) -> Message:
    message = Message(ticket_id=ticket.id, body=body, internal=internal, source=source)
    if mail is not None:
        message.message_id, message.body_html = mail.message_id, mail.body_html
        message.automated = mail.automated
    if isinstance(author, Agent):
        message.author_type, message.agent_id = "agent", author.id
    else:
        message.author_type, message.customer_id = "customer", author.id
    db.session.add(message)
    db.session.flush()
    attachments.store(message, uploads)
    now = at or utcnow()
    ticket.last_activity_at = now  # unchanged (so no UPDATE) for the first message of a ticket
    ticket.updated_at = now
    return message


@dataclass(frozen=True)
class MailFields:
    """What a message received by mail adds to it: its Message-ID (unique, so the same mail
    is never stored twice), its sanitised HTML, whether a machine sent it, and new CC
    addresses (``email_key`` form) that become participants of the ticket."""

    message_id: str
    body_html: str | None = None
    automated: bool = False
    participants: tuple[str, ...] = ()


def _add_participants(ticket: Ticket, mail: MailFields | None) -> None:
    if mail is None or not mail.participants:
        return
    known = set(
        db.session.scalars(
            select(TicketParticipant.email_key).where(TicketParticipant.ticket_id == ticket.id)
        )
    )
    for key in dict.fromkeys(mail.participants):
        if key not in known:
            db.session.add(TicketParticipant(ticket_id=ticket.id, email_key=key, role="cc"))


def opening_values(
    customer: Customer,
    *,
    subject: str,
    kind: str,
    priority: str | None,
    team_id: int | None,
    assignee_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    """The columns a ticket opened ``now`` for ``customer`` gets from its cleaned input and
    the plugins' proposals (``helpdesk_ticket_defaults``): ``subject``, ``kind``,
    ``priority``, ``due_at``, ``team_id`` and ``assignee_id``."""
    request = {
        "customer": customer,
        "subject": subject,
        "kind": kind,
        "priority": priority,
        "team_id": team_id,
        "assignee_id": assignee_id,
    }
    return opening_values_many([request], now=now)[0]


def opening_values_many(requests: Sequence[dict[str, Any]], *, now: datetime) -> list[dict]:
    """``opening_values(**request, now=now)`` for each request, each plugin asked once for
    all of them where it can (``helpdesk_ticket_defaults_many``)."""
    asked = []
    for request in requests:
        priority = request["priority"] or "normal"
        asked.append(
            {
                "subject": request["subject"],
                "kind": request["kind"],
                "priority": priority,
                "due_at": due_at_for(priority, now),
                "team_id": request["team_id"],
                "assignee_id": request["assignee_id"],
            }
        )
    calls = [
        {"customer": request["customer"], "ticket_data": data}
        for request, data in zip(requests, asked, strict=True)
    ]
    proposed = current_plugins().call_enabled_many("helpdesk_ticket_defaults", calls)
    return [
        _decided(data, _merged_proposals(data, proposals), now)
        for data, proposals in zip(asked, proposed, strict=True)
    ]


def _decided(data: dict[str, Any], proposals: dict[str, Any], now: datetime) -> dict[str, Any]:
    if "priority" in proposals:
        data["priority"] = proposals["priority"]
        data["due_at"] = due_at_for(data["priority"], now)
    data["due_at"] = min(data["due_at"], proposals.get("due_at", data["due_at"]))
    if data["team_id"] is None and proposals.get("team_id"):
        data["team_id"] = _team(proposals["team_id"]).id
    if data["assignee_id"] is None and (
        proposed := _proposed_assignee(proposals.get("assignee_id"))
    ):
        data["assignee_id"] = proposed.id
    return data


def open_ticket(
    *,
    subject: Any,
    body: Any,
    kind: Any = "support",
    customer: Customer | None = None,
    customer_email: Any = None,
    customer_name: Any = "",
    customer_phone: Any = None,
    priority: Any = None,
    team: Team | int | None = None,
    assignee: Agent | str | None = None,
    opened_by: Agent | None = None,
    source: str = "web",
    uploads: Sequence[attachments.Upload] = (),
    require_customer_name: bool = False,
    mail: MailFields | None = None,
    acknowledge: bool = True,
    extra: dict[str, Any] | None = None,
) -> Ticket:
    """Open a ticket with its first message.

    The customer is given, or found (or created) by ``customer_email``. When an agent opens
    the ticket for a customer (a phone call, a walk-in), ``opened_by`` is that agent and the
    first message is the agent's note of the contact. ``require_customer_name`` makes the
    name a required field (the public form asks for it; the API and mail do not).
    ``mail`` carries what a received mail adds (its Message-ID, HTML, CC participants).
    A customer's ticket from the web or by mail is acknowledged by mail, unless
    ``acknowledge=False`` or the mail was ``automated`` (auto-responders are never answered).
    ``extra`` is input for plugins (``helpdesk_ticket_input``), stored in the same transaction;
    a plugin that refuses it raises ``ValidationError`` and nothing is saved.
    """
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    checks = {
        "subject": lambda: clean_text(
            subject, "subject", max_length=current_app.config["MAX_SUBJECT_LENGTH"]
        ),
        "body": lambda: clean_body(body),
        "kind": lambda: clean_choice(kind, "kind", KINDS),
        "priority": lambda: (
            None if priority in (None, "") else clean_choice(priority, "priority", PRIORITIES)
        ),
        "team": lambda: _team(team),
        "assignee": lambda: _agent(assignee),
    }
    for field, check in checks.items():
        try:
            clean[field] = check()
        except ValidationError as exc:
            if exc.status_code == 413:
                raise
            errors.update(exc.errors)
    if customer is None:
        if require_customer_name and not (isinstance(customer_name, str) and customer_name.strip()):
            errors["customer.name"] = "is required"
        try:
            customer = find_or_create_customer(customer_email, customer_name, customer_phone)
        except ValidationError as exc:
            errors.update({f"customer.{field}": text for field, text in exc.errors.items()})
    attachments.check_count(list(uploads))
    if errors:
        db.session.rollback()
        raise ValidationError(errors)
    assert customer is not None

    now = utcnow()
    data = opening_values(
        customer,
        subject=clean["subject"],
        kind=clean["kind"],
        priority=clean["priority"],
        team_id=clean["team"].id if clean["team"] else None,
        assignee_id=clean["assignee"].id if clean["assignee"] else None,
        now=now,
    )
    ticket = Ticket(
        **data,
        customer=customer,
        status="new",
        source=source,
        created_at=now,
        updated_at=now,
        last_activity_at=now,
    )
    db.session.add(ticket)
    db.session.flush()
    author: Agent | Customer = opened_by or customer
    _add_message(
        ticket,
        body=clean["body"],
        author=author,
        internal=False,
        source=source,
        uploads=uploads,
        mail=mail,
        at=now,
    )
    _add_participants(ticket, mail)
    if extra is not None:
        try:
            call_each_refusable("helpdesk_ticket_input", ticket=ticket, data=extra)
        except ValidationError:
            db.session.rollback()
            raise
    _record(ticket, opened_by or customer, "created", source=source, priority=ticket.priority)
    count_status(ticket.team_id, ticket.status, +1)
    search.index_new_ticket(ticket, customer, clean["body"])
    events.queue("helpdesk_ticket_created", ticket=ticket)
    outbound.ticket_opened(
        ticket, opened_by=opened_by, acknowledge=acknowledge and not (mail and mail.automated)
    )
    events.commit()
    return ticket


def add_message(
    ticket: Ticket,
    *,
    body: Any,
    author: Agent | Customer,
    internal: bool = False,
    source: str = "web",
    uploads: Sequence[attachments.Upload] = (),
    new_status: str | None = None,
    mail: MailFields | None = None,
) -> Message:
    """Add a reply (or, from an agent, an internal note) to ``ticket``.

    A customer's reply reopens a pending, resolved or closed ticket. An agent's first public
    reply moves a new ticket to open, unless ``new_status`` says where it goes.
    """
    if internal and not isinstance(author, Agent):
        raise ValidationError({"internal": "only agents can write internal notes"})
    if new_status not in (None, ""):
        new_status = clean_choice(new_status, "status", STATUSES)
    clean = clean_body(body)
    attachments.check_count(list(uploads))
    if ticket.merged_into_id is not None:
        raise Conflict(f"ticket #{ticket.id} was merged into #{ticket.merged_into_id}; reply there")

    _add_participants(ticket, mail)  # first: its read flushes nothing of the ticket's
    message = _add_message(
        ticket,
        body=clean,
        author=author,
        internal=internal,
        source=source,
        uploads=uploads,
        mail=mail,
    )
    _record(
        ticket,
        author,
        "note" if internal else "reply",
        message_id=message.id,
        attachments=len(uploads),
    )
    target = new_status or None
    if not target and not internal and _reply_opens(ticket, author):
        target = "open"
    if target and target != ticket.status:
        change_status(ticket, author, target)
    search.index_ticket(ticket.id)
    events.queue("helpdesk_message_added", ticket=ticket, message=message)
    outbound.message_added(ticket, message)
    _commit_ticket()
    return message


def _reply_opens(ticket: Ticket, author: Agent | Customer) -> bool:
    """A customer's reply reopens a waiting or finished ticket; an agent's answers a new one."""
    if isinstance(author, Customer):
        return ticket.status in REOPENING_STATUSES
    return ticket.status == "new"


def change_status(ticket: Ticket, actor: Actor, new: str) -> None:
    """Move ``ticket`` to status ``new`` in the caller's transaction: counters, history,
    the resolved notice, the ``helpdesk_ticket_status_changing`` hook, the event queued."""
    change_statuses([(ticket, actor, new)])


def change_statuses(changes: Sequence[tuple[Ticket, Actor, str]]) -> None:
    """``change_status`` for each ``(ticket, actor, new status)``: the tickets' rows are
    flushed together, then ``record_status_changes``."""
    if not changes:
        return
    moves = []
    with db.session.no_autoflush:
        for ticket, actor, new in changes:
            moves.append((ticket, actor, ticket.status, new))
            ticket.resolved_at = resolved_at_after(new, ticket.resolved_at)
            ticket.status = new
    _unless_changed_meanwhile(db.session.flush)  # the rows first: what follows reads them
    record_status_changes(moves)


def resolved_at_after(status: str, resolved_at: datetime | None) -> datetime | None:
    """A ticket's ``resolved_at`` once it moves to ``status`` (from ``resolved_at``)."""
    if status == "resolved":
        return utcnow()
    if status in ("new", "open", "pending"):
        return None
    return resolved_at


def record_status_changes(moves: Sequence[tuple[Ticket, Actor, str, str]]) -> None:
    """What follows each ``(ticket, actor, old, new)`` status change once the tickets' rows
    are written: their history rows and the counters (one statement each), the events
    queued, then each ticket's resolved notice and ``helpdesk_ticket_status_changing``
    hook."""
    deltas: dict[tuple[int | None, str], int] = {}
    history = []
    for ticket, actor, old, new in moves:
        deltas[(ticket.team_id, old)] = deltas.get((ticket.team_id, old), 0) - 1
        deltas[(ticket.team_id, new)] = deltas.get((ticket.team_id, new), 0) + 1
        history.append(_event_row(ticket, actor, "status", old=old, new=new))
        events.queue("helpdesk_ticket_status_changed", ticket=ticket, old=old, new=new)
    if history:
        db.session.execute(insert(TicketEvent), history)
    count_statuses(deltas)
    for ticket, actor, old, new in moves:
        outbound.status_changed(ticket, old, new)
        call_each("helpdesk_ticket_status_changing", ticket=ticket, old=old, new=new, actor=actor)


def _commit_ticket() -> None:
    _unless_changed_meanwhile(events.commit)


def _unless_changed_meanwhile(write: Callable[[], None]) -> None:
    """``write`` (a flush or commit of ticket rows); a row someone else changed at the same
    moment rolls everything back and raises ``Conflict``."""
    try:
        write()
    except StaleDataError:
        db.session.rollback()
        raise Conflict(
            "This ticket was changed by someone else at the same moment. Nothing was saved; "
            "reload it and try again."
        ) from None


def update_ticket(
    ticket: Ticket,
    changes: dict[str, Any],
    *,
    actor: Agent,
    expected_version: int | None = None,
) -> list[str]:
    """Change any of ``status``, ``priority``, ``kind``, ``assignee`` (agent or e-mail, or
    ``None``) and ``team`` (team or id, or ``None``). Returns the names of the fields changed.

    ``expected_version`` is the ``ticket.version`` the caller saw; if the ticket changed since,
    ``Conflict`` is raised and nothing is saved, so two people never overwrite each other.
    """
    unknown = set(changes) - set(TICKET_FIELDS)
    if unknown:
        raise ValidationError({field: "cannot be changed" for field in sorted(unknown)})
    if expected_version is not None and expected_version != ticket.version:
        raise Conflict(
            f"Ticket #{ticket.id} was changed by someone else since you opened it. "
            "Nothing was saved; the page now shows the latest version."
        )
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    checks = {
        "status": lambda v: clean_choice(v, "status", STATUSES),
        "priority": lambda v: clean_choice(v, "priority", PRIORITIES),
        "kind": lambda v: clean_choice(v, "kind", KINDS),
        "assignee": _agent,
        "team": _team,
    }
    for field, value in changes.items():
        try:
            clean[field] = checks[field](value)
        except ValidationError as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    if ticket.merged_into_id is not None and clean:
        raise Conflict(f"ticket #{ticket.id} was merged into #{ticket.merged_into_id}")

    changed: list[str] = []
    if "team" in clean and (clean["team"].id if clean["team"] else None) != ticket.team_id:
        new_team = clean["team"]
        count_status(ticket.team_id, ticket.status, -1)
        count_status(new_team.id if new_team else None, ticket.status, +1)
        _record(
            ticket,
            actor,
            "team",
            old=ticket.team.name if ticket.team else None,
            new=new_team.name if new_team else None,
        )
        ticket.team_id = new_team.id if new_team else None
        ticket.team = new_team
        changed.append("team")
    if "status" in clean and clean["status"] != ticket.status:
        change_status(ticket, actor, clean["status"])
        changed.append("status")
    if "priority" in clean and clean["priority"] != ticket.priority:
        _record(ticket, actor, "priority", old=ticket.priority, new=clean["priority"])
        ticket.priority = clean["priority"]
        ticket.due_at = due_at_for(ticket.priority, ticket.created_at)
        changed.append("priority")
    if "kind" in clean and clean["kind"] != ticket.kind:
        _record(ticket, actor, "kind", old=ticket.kind, new=clean["kind"])
        ticket.kind = clean["kind"]
        changed.append("kind")
    if "assignee" in clean and (clean["assignee"].id if clean["assignee"] else None) != (
        ticket.assignee_id
    ):
        new_assignee = clean["assignee"]
        _record(
            ticket,
            actor,
            "assignee",
            old=ticket.assignee.name if ticket.assignee else None,
            new=new_assignee.name if new_assignee else None,
        )
        ticket.assignee = new_assignee
        changed.append("assignee")
    if changed:
        ticket.updated_at = utcnow()
        _commit_ticket()
    return changed


def final_ticket(ticket: Ticket) -> Ticket:
    """The ticket that ``ticket`` was (perhaps in several steps) merged into, or itself."""
    seen = {ticket.id}
    while ticket.merged_into_id is not None:
        ticket = db.session.get(Ticket, ticket.merged_into_id)
        if ticket.id in seen:  # pragma: no cover - merge refuses cycles
            break
        seen.add(ticket.id)
    return ticket


def conversation(ticket: Ticket, *, include_internal: bool = True) -> list[Message]:
    """The messages of ``ticket`` in order, with authors and attachments loaded.

    Customers see it with ``include_internal=False``: internal notes are never theirs to read.
    Always two queries, however many messages there are.
    """
    query = (
        select(Message)
        .where(Message.ticket_id == ticket.id)
        .options(
            joinedload(Message.agent),
            joinedload(Message.customer),
            selectinload(Message.attachments),
        )
        .order_by(Message.id)
    )
    if not include_internal:
        query = query.where(Message.internal.is_(False))
    return list(db.session.scalars(query))


def ticket_attachment(
    ticket: Ticket, attachment_id: int, *, include_internal: bool = True
) -> Attachment | None:
    """An attachment of one of ``ticket``'s messages (of a public one unless
    ``include_internal``), or ``None``."""
    query = (
        select(Attachment)
        .join(Attachment.message)
        .where(Attachment.id == attachment_id, Attachment.ticket_id == ticket.id)
    )
    if not include_internal:
        query = query.where(Message.internal.is_(False))
    return db.session.scalar(query)


def merge_tickets(source: Ticket, target: Ticket, *, actor: Agent) -> Ticket:
    """Move every message of ``source`` into ``target`` and close ``source`` as merged.

    Both must belong to the same customer: the source's status link leads to the target.

    The source keeps its history and a link to the target; its customer's status link now
    leads to the target.
    """
    target = final_ticket(target)
    if source.id == target.id:
        raise ValidationError({"target": "a ticket cannot be merged into itself"})
    if source.merged_into_id is not None:
        raise Conflict(f"ticket #{source.id} was already merged into #{source.merged_into_id}")
    if source.customer_id != target.customer_id:
        # The source's status link would show the target's conversation to another person.
        raise ValidationError({"target": "only tickets of the same customer can be merged"})
    moved = db.session.execute(
        update(Message).where(Message.ticket_id == source.id).values(ticket_id=target.id)
    ).rowcount
    db.session.execute(
        update(Attachment).where(Attachment.ticket_id == source.id).values(ticket_id=target.id)
    )
    if source.status != "closed":
        change_status(source, actor, "closed")
    source.merged_into_id = target.id
    now = utcnow()
    source.updated_at = now
    target.updated_at = target.last_activity_at = now
    _record(source, actor, "merged_into", target=target.id, messages=moved)
    _record(target, actor, "merged_from", source=source.id, messages=moved)
    if target.status in REOPENING_STATUSES:
        change_status(target, actor, "open")
    search.index_ticket(source.id)
    search.index_ticket(target.id)
    _commit_ticket()
    return target


def status_counts(team_ids: Iterable[int] | None = None) -> dict[str, int]:
    """Tickets per status, from the counter table (all teams, or the given ones)."""
    query = select(StatusCount.status, db.func.sum(StatusCount.count)).group_by(StatusCount.status)
    if team_ids is not None:
        query = query.where(StatusCount.team_key.in_(list(team_ids)))
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({status: int(total or 0) for status, total in db.session.execute(query)})
    return counts
