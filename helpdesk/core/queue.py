"""The agents' queue: tickets filtered, searched, sorted and paged, in a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from helpdesk.core import extending, search
from helpdesk.core.errors import ValidationError
from helpdesk.core.models import KINDS, PRIORITIES, STATUSES, Agent, Ticket
from helpdesk.core.validation import clean_choice, clean_page, clean_per_page, clean_text
from helpdesk.extensions import db

SORTS = ("activity", "due", "created")
ASSIGNEE_CHOICES = ("me", "unassigned", "any")
MAX_ID = 2**31 - 1
# The query arguments the core reads; plugin filters (``helpdesk_queue_filters``) use others.
QUERY_ARGS = (
    "status",
    "priority",
    "kind",
    "assignee",
    "team",
    "customer",
    "q",
    "sort",
    "page",
    "per_page",
)


def _is_id(value: str) -> bool:
    """Whether ``value`` names a row id: ASCII digits within a 32-bit integer (``int("²")``
    fails and SQLite cannot bind numbers past 64 bits)."""
    return value.isascii() and value.isdigit() and len(value) <= 10 and int(value) <= MAX_ID


@dataclass
class QueueFilter:
    """What the agent asked to see. Build it with ``QueueFilter.from_args``."""

    statuses: list[str] = field(default_factory=list)
    priority: str | None = None
    kind: str | None = None
    assignee: str = "any"  # "me", "unassigned", "any", or an agent id as text
    team_id: int | None = None
    customer_id: int | None = None
    q: str = ""
    sort: str = "activity"
    page: int = 1
    per_page: int = 25
    extra: dict[str, str] = field(default_factory=dict)  # plugin filters: name -> value

    @classmethod
    def from_args(cls, args: Any, *, max_search_length: int) -> QueueFilter:
        """Read filters from request arguments; unknown values raise ``ValidationError``."""
        errors: dict[str, str] = {}
        result = cls()

        def take(name: str, parse):
            try:
                return parse()
            except ValidationError as exc:
                errors.update(exc.errors)
                return getattr(result, name)

        raw_status = [s for value in args.getlist("status") for s in value.split(",") if s]
        result.statuses = take(
            "statuses", lambda: [clean_choice(s, "status", STATUSES) for s in raw_status]
        )
        if args.get("priority"):
            result.priority = take(
                "priority", lambda: clean_choice(args["priority"], "priority", PRIORITIES)
            )
        if args.get("kind"):
            result.kind = take("kind", lambda: clean_choice(args["kind"], "kind", KINDS))
        assignee = args.get("assignee") or "any"
        if assignee not in ASSIGNEE_CHOICES and not _is_id(assignee):
            errors["assignee"] = "must be me, unassigned, any or an agent id"
        else:
            result.assignee = assignee
        for name in ("team", "customer"):
            value = args.get(name)
            if value:
                if not _is_id(value):
                    errors[name] = "must be an id"
                else:
                    setattr(result, f"{name}_id", int(value))
        result.q = take(
            "q",
            lambda: clean_text(
                args.get("q", ""), "q", max_length=max_search_length, required=False
            ),
        )
        if args.get("sort"):
            result.sort = take("sort", lambda: clean_choice(args["sort"], "sort", SORTS))
        result.page = take("page", lambda: clean_page(args.get("page")))
        result.per_page = take("per_page", lambda: clean_per_page(args.get("per_page")))
        for spec in extending.queue_filter_specs(QUERY_ARGS):
            value = args.get(spec.name)
            if not value:
                continue
            if value in {choice for choice, _ in spec.choice_list()}:
                result.extra[spec.name] = value
            else:
                errors[spec.name] = "is not one of the choices"
        if errors:
            raise ValidationError(errors)
        return result


@dataclass
class QueuePage:
    """One page of tickets; ``hits`` holds search highlights when a query was given."""

    tickets: list[Ticket]
    page: int
    per_page: int
    has_next: bool
    hits: dict[int, search.SearchHit] = field(default_factory=dict)

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def list_tickets(filters: QueueFilter, *, agent: Agent | None) -> QueuePage:
    """The page of tickets ``filters`` describes, newest activity (or best match) first.

    The page's ids are chosen first, by a query the indexes answer alone (no join, no row
    read beyond the page); then those tickets are loaded with what the page shows. At a
    million tickets this is the difference between sorting every open ticket and reading 26
    index entries.
    """
    query = select(Ticket.id)
    if filters.statuses:
        query = query.where(Ticket.status.in_(filters.statuses))
    if filters.priority:
        query = query.where(Ticket.priority == filters.priority)
    if filters.kind:
        query = query.where(Ticket.kind == filters.kind)
    if filters.assignee == "me" and agent is not None:
        query = query.where(Ticket.assignee_id == agent.id)
    elif filters.assignee == "unassigned":
        query = query.where(Ticket.assignee_id.is_(None))
    elif filters.assignee.isdigit():
        query = query.where(Ticket.assignee_id == int(filters.assignee))
    if filters.team_id is not None:
        query = query.where(Ticket.team_id == filters.team_id)
    if filters.customer_id is not None:
        query = query.where(Ticket.customer_id == filters.customer_id)
    query = extending.apply_queue_filters(query, filters.extra, QUERY_ARGS)

    found = search.prepare(filters.q, enough=filters.per_page) if filters.q else None
    matches = found.matching_ids() if found else None
    if filters.q and matches is None:
        return QueuePage([], filters.page, filters.per_page, False)
    if matches is not None:
        query = query.join(matches, matches.c.ticket_id == Ticket.id).order_by(
            matches.c.rank, Ticket.id.desc()
        )
    elif filters.sort == "due":
        query = query.order_by(Ticket.due_at.is_(None), Ticket.due_at, Ticket.id)
    elif filters.sort == "created":
        query = query.order_by(Ticket.id.desc())
    else:
        query = query.order_by(Ticket.last_activity_at.desc(), Ticket.id.desc())
    offset = (filters.page - 1) * filters.per_page
    ids = list(db.session.scalars(query.limit(filters.per_page + 1).offset(offset)))
    has_next = len(ids) > filters.per_page
    ids = ids[: filters.per_page]
    loaded = {
        ticket.id: ticket
        for ticket in db.session.scalars(
            select(Ticket)
            .options(joinedload(Ticket.assignee), joinedload(Ticket.team))
            .where(Ticket.id.in_(ids))
        )
    }
    tickets = [loaded[ticket_id] for ticket_id in ids]
    hits = found.highlights(ids) if found else {}
    return QueuePage(tickets, filters.page, filters.per_page, has_next, hits)
