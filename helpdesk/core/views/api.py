"""The REST API under ``/api/v1``: JSON in, JSON out, agents' bearer tokens, for integrations.

Every answer is JSON, errors too: ``{"error": code, "message": text, "fields"?: {...}}``.
Times are ISO 8601 in UTC with a ``Z`` and whole seconds (``2026-11-25T17:44:26Z``).
Lists answer ``{"items", "page", "per_page", "has_next", "next_page"}`` without a total.
``helpdesk.core.openapi`` describes all of it; it is served at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, request, send_file, url_for
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from helpdesk.core import (
    accounts,
    attachments,
    customers,
    extending,
    openapi,
    orders,
    queue,
    ratelimit,
    services,
    tokens,
)
from helpdesk.core.errors import Conflict, ValidationError
from helpdesk.core.models import Agent, Attachment, Customer, Message, Order, Team, Ticket
from helpdesk.core.validation import (
    clean_choice,
    clean_email,
    clean_page,
    clean_per_page,
    clean_text,
)
from helpdesk.extensions import csrf, db, write_intent

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # bearer tokens, not cookies: no cross-site request can carry one

# Ids past a 32-bit integer cannot exist: such a URL is a 404, never a database error.
MAX_ID = queue.MAX_ID
TICKET_URL = f"/tickets/<int(max={MAX_ID}):ticket_id>"
PUBLIC_ENDPOINTS = frozenset({"api.openapi_document"})


# --- authentication -----------------------------------------------------------------------


@bp.before_request
def _authenticate() -> Response | None:
    """Find the agent of the bearer token (401 if none) and count the request (429)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    raw = raw.strip()
    # Counting the request writes (and so may the token's ``last_used_at``): on SQLite that
    # short transaction takes the write lock up front, since one that reads and then writes
    # fails at once under concurrent writers. What the request does next begins afresh, so a
    # GET reads without holding the lock.
    with write_intent():
        agent = tokens.agent_for_api_token(raw) if scheme.lower() == "bearer" and raw else None
        if agent is None:
            db.session.rollback()
            return _unauthorized(token_sent=bool(raw))
        ratelimit.hit(f"api:{agent.id}", "API_RATE_LIMIT")  # commits
    g.api_agent = agent
    return None


def api_auth_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """For plugins' API views (under ``/api/v1``): the core API's bearer-token authentication,
    rate limit and CSRF exemption. The agent is ``flask.g.api_agent`` inside the view."""

    @functools.wraps(view)
    def authenticated(*args: Any, **kwargs: Any) -> Any:
        return _authenticate() or view(*args, **kwargs)

    return csrf.exempt(authenticated)


def _unauthorized(*, token_sent: bool) -> Response:
    challenge = 'Bearer realm="helpdesk"'
    if token_sent:
        challenge += ', error="invalid_token"'
    response = jsonify(
        error="unauthorized",
        message="Send a valid API token: 'Authorization: Bearer <token>'. "
        "Revoked tokens and tokens of deactivated agents are refused.",
    )
    response.status_code = 401
    response.headers["WWW-Authenticate"] = challenge
    return response


def _require_admin() -> None:
    if not g.api_agent.is_admin:
        abort(403, description="Only administrators may do this.")


# --- reading requests ---------------------------------------------------------------------


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def json_body(*, exact_numbers: bool = False) -> dict[str, Any]:
    """The request's JSON object; anything else is a 400 that says what is wrong.

    With ``exact_numbers``, numbers with a fraction or exponent become ``Decimal`` read from
    their text (money: ``12.10`` stays 12.10, never the nearest binary float).
    """
    if not request.is_json:
        abort(400, description="Send a JSON object with 'Content-Type: application/json'.")
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: 413
    try:
        value = json.loads(
            raw, parse_constant=_no_constant, parse_float=Decimal if exact_numbers else None
        )
    except RecursionError:
        abort(400, description="The JSON is nested too deeply.")
    except ValueError as exc:
        abort(400, description=f"The body is not valid JSON: {exc}.")
    if not isinstance(value, dict):
        abort(400, description=f"The body must be a JSON object, not {_json_kind(value)}.")
    return value


def _id_or_null(data: dict[str, Any], field: str) -> dict[str, str]:
    """An error for ``field`` unless it is absent, null or a whole number."""
    value = data.get(field)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return {}
    return {field: "must be an id (a whole number) or null"}


def _query_args(**parsers: Callable[[], Any]) -> dict[str, Any]:
    """``page``, ``per_page`` and the given query arguments, every error reported at once."""
    parsers = {
        "page": lambda: clean_page(request.args.get("page")),
        "per_page": lambda: clean_per_page(request.args.get("per_page")),
        **parsers,
    }
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, parse in parsers.items():
        try:
            values[name] = parse()
        except ValidationError as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    return values


def _search_text() -> str:
    limit = current_app.config["MAX_SEARCH_LENGTH"]
    return clean_text(request.args.get("q", ""), "q", max_length=limit, required=False)


def _expected_version(body_version: Any) -> int | None:
    """The ticket version the caller saw: the body's ``version`` or ``If-Match: "<version>"``."""
    from_header = None
    header = request.headers.get("If-Match", "").strip()
    if header and header != "*":
        tag = header.removeprefix("W/").strip('"')
        if not (tag.isascii() and tag.isdigit()):
            abort(400, description='If-Match must be a ticket version in quotes, such as "3".')
        from_header = int(tag)
    if body_version is None:
        return from_header
    if not isinstance(body_version, int) or isinstance(body_version, bool):
        raise ValidationError({"version": "must be a whole number"})
    if from_header is not None and from_header != body_version:
        raise ValidationError({"version": "differs from the If-Match header"})
    return body_version


# --- writing answers ----------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _agent_ref(agent: Agent | None) -> dict[str, Any] | None:
    return None if agent is None else {"id": agent.id, "email": agent.email, "name": agent.name}


def _team_ref(team: Team | None) -> dict[str, Any] | None:
    return None if team is None else {"id": team.id, "name": team.name}


def _ticket(ticket: Ticket) -> dict[str, Any]:
    customer = ticket.customer
    return {
        "id": ticket.id,
        "reference": ticket.reference,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "kind": ticket.kind,
        "customer": {"id": customer.id, "email": customer.email, "name": customer.name},
        "assignee": _agent_ref(ticket.assignee),
        "team": _team_ref(ticket.team),
        "merged_into": ticket.merged_into_id,
        "version": ticket.version,
        "created_at": _time(ticket.created_at),
        "updated_at": _time(ticket.updated_at),
        "last_activity_at": _time(ticket.last_activity_at),
        "due_at": _time(ticket.due_at),
    }


def _attachment(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "filename": attachment.filename,
        "size": attachment.size,
        "content_type": attachment.content_type,
        "url": url_for(
            ".get_attachment", ticket_id=attachment.ticket_id, attachment_id=attachment.id
        ),
    }


def _message(message: Message) -> dict[str, Any]:
    person = message.agent if message.author_type == "agent" else message.customer
    return {
        "id": message.id,
        "body": message.body,
        "internal": message.internal,
        "author": {
            "type": message.author_type,
            "id": person.id if person else None,
            "email": person.email if person else None,
            "name": message.author_name,
        },
        "created_at": _time(message.created_at),
        "attachments": [_attachment(a) for a in message.attachments],
    }


def _tickets(tickets: Sequence[Ticket]) -> list[dict[str, Any]]:
    """Tickets as JSON with the fields plugins add (one ``helpdesk_ticket_json`` call)."""
    return extending.add_api_fields(
        "helpdesk_ticket_json", [_ticket(t) for t in tickets], tickets=list(tickets)
    )


def _customers(rows: Sequence[Customer]) -> list[dict[str, Any]]:
    """Customers as JSON with the fields plugins add (one ``helpdesk_customer_json`` call)."""
    return extending.add_api_fields(
        "helpdesk_customer_json", [_customer(c) for c in rows], customers=list(rows)
    )


def _customer(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "email": customer.email,
        "name": customer.name,
        "phone": customer.phone,
        "language": customer.language,
        "notes": customer.notes,
        "created_at": _time(customer.created_at),
        "updated_at": _time(customer.updated_at),
    }


def _order(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "customer_id": order.customer_id,
        "date": order.ordered_on.isoformat(),
        "amount": orders.amount_text(order),
        "currency": order.currency,
        "channel": order.channel,
        "source": order.source,
        "reference": order.reference,
        "created_at": _time(order.created_at),
    }


def _orders(rows: Sequence[Order]) -> list[dict[str, Any]]:
    """Orders as JSON with their product lines (one query for all the lines)."""
    found = orders.lines_of(order.id for order in rows)
    return [
        {
            **_order(order),
            "lines": [
                {
                    "product_line": line.product_line,
                    "amount": str(orders.in_currency_units(line.amount, order.currency)),
                }
                for line in found[order.id]
            ],
        }
        for order in rows
    ]


def _agent(agent: Agent) -> dict[str, Any]:
    return {
        **_agent_ref(agent),
        "role": agent.role,
        "active": agent.active,
        "teams": [_team_ref(team) for team in agent.teams],
        "created_at": _time(agent.created_at),
        "last_login_at": _time(agent.last_login_at),
    }


def _list(items: list[dict[str, Any]], page: int, per_page: int, has_next: bool) -> Response:
    return jsonify(
        items=items,
        page=page,
        per_page=per_page,
        has_next=has_next,
        next_page=page + 1 if has_next else None,
    )


def _sliced(rows: Sequence[Any], args: dict[str, Any]) -> tuple[Sequence[Any], bool]:
    """One page of an already loaded (short) list, and whether more follow."""
    start = (args["page"] - 1) * args["per_page"]
    return rows[start : start + args["per_page"]], len(rows) > start + args["per_page"]


def _created(body: dict[str, Any], location: str | None = None) -> Response:
    response = jsonify(body)
    response.status_code = 201
    if location:
        response.headers["Location"] = location
    return response


def _load_ticket(ticket_id: int) -> Ticket:
    ticket = db.session.get(
        Ticket, ticket_id, options=[joinedload(Ticket.assignee), joinedload(Ticket.team)]
    )
    if ticket is None:
        abort(404)
    return ticket


def _ticket_response(ticket: Ticket, status: int = 200) -> Response:
    response = jsonify(_tickets([ticket])[0])
    response.status_code = status
    response.headers["ETag"] = f'"{ticket.version}"'
    return response


# --- tickets ------------------------------------------------------------------------------


@bp.get("/tickets")
def list_tickets():
    """A page of tickets, filtered, searched and sorted as in the agents' queue."""
    filters = queue.QueueFilter.from_args(
        request.args, max_search_length=current_app.config["MAX_SEARCH_LENGTH"]
    )
    result = queue.list_tickets(filters, agent=g.api_agent)
    return _list(_tickets(result.tickets), result.page, result.per_page, result.has_next)


@bp.post("/tickets")
def create_ticket():
    """Open a ticket for a customer, found by e-mail (any case) or created.

    The calling agent writes the first message, as when an agent opens a ticket for a phone call.
    Plugins read their fields of the body (``helpdesk_ticket_input``; e.g. ``claim``).
    """
    data = json_body(exact_numbers=True)
    customer = data.get("customer")
    errors = _id_or_null(data, "team")
    if customer is None:
        customer = {}
    elif not isinstance(customer, dict):
        errors["customer"] = "must be an object with email, and optionally name and phone"
    if errors:
        raise ValidationError(errors)
    ticket = services.open_ticket(
        subject=data.get("subject"),
        body=data.get("body"),
        kind=data.get("kind"),
        priority=data.get("priority"),
        team=data.get("team"),
        assignee=data.get("assignee"),
        customer_email=customer.get("email"),
        customer_name=customer.get("name", ""),
        customer_phone=customer.get("phone"),
        opened_by=g.api_agent,
        source="api",
        extra=data,
    )
    response = _ticket_response(_load_ticket(ticket.id), 201)
    response.headers["Location"] = url_for(".get_ticket", ticket_id=ticket.id)
    return response


@bp.get(TICKET_URL)
def get_ticket(ticket_id: int):
    """One ticket; its ``ETag`` is its version, for ``If-Match`` on PATCH."""
    return _ticket_response(_load_ticket(ticket_id))


@bp.patch(TICKET_URL)
def update_ticket(ticket_id: int):
    """Change status, priority, kind, assignee or team; a stale ``version`` is a 409."""
    ticket = _load_ticket(ticket_id)
    changes = json_body()
    expected = _expected_version(changes.pop("version", None))
    errors = _id_or_null(changes, "team")
    if errors:
        raise ValidationError(errors)
    services.update_ticket(ticket, changes, actor=g.api_agent, expected_version=expected)
    return _ticket_response(_load_ticket(ticket_id))


@bp.get(TICKET_URL + "/messages")
def list_messages(ticket_id: int):
    """The conversation, oldest first, internal notes included, a page at a time."""
    args = _query_args()
    messages, has_next = _sliced(services.conversation(_load_ticket(ticket_id)), args)
    return _list([_message(m) for m in messages], args["page"], args["per_page"], has_next)


@bp.post(TICKET_URL + "/messages")
def create_message(ticket_id: int):
    """Reply to the customer, or with ``"internal": true`` add a note only agents see."""
    ticket = _load_ticket(ticket_id)
    data = json_body()
    internal = data.get("internal", False)
    if not isinstance(internal, bool):
        raise ValidationError({"internal": "must be true or false"})
    message = services.add_message(
        ticket,
        body=data.get("body"),
        author=g.api_agent,
        internal=internal,
        source="api",
        new_status=data.get("status"),
    )
    stored = db.session.scalars(
        select(Message)
        .where(Message.id == message.id)
        .options(selectinload(Message.attachments), joinedload(Message.agent))
        .execution_options(populate_existing=True)
    ).one()
    return _created(_message(stored))


@bp.get(TICKET_URL + f"/attachments/<int(max={MAX_ID}):attachment_id>")
def get_attachment(ticket_id: int, attachment_id: int):
    """The bytes of an attachment, always as a download."""
    row = services.ticket_attachment(_load_ticket(ticket_id), attachment_id)
    path = attachments.storage_path(row.storage_key) if row else None
    if path is None or not path.is_file():
        abort(404)
    response = send_file(
        path,
        mimetype=row.content_type if attachments.served_inline(row) else "application/octet-stream",
        as_attachment=True,
        download_name=row.filename,
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-cache"
    return response


# --- customers ----------------------------------------------------------------------------


@bp.get("/customers")
def list_customers():
    """A page of customers whose name, e-mail or phone contains ``q``."""
    args = _query_args(
        q=_search_text,
        sort=lambda: clean_choice(
            request.args.get("sort") or "newest", "sort", customers.CUSTOMER_SORTS
        ),
    )
    result = customers.list_customers(
        args["q"], sort=args["sort"], page=args["page"], per_page=args["per_page"]
    )
    return _list(_customers(result.customers), result.page, result.per_page, result.has_next)


@bp.post("/customers")
def create_customer():
    """Register a customer; an e-mail already known (in any case) is a 409 naming its id."""
    data = json_body()
    fields = {k: data[k] for k in ("email", "name", "phone", "notes", "language") if k in data}
    try:
        customer = customers.register_customer(fields)
    except Conflict as exc:
        existing = customers.customer_by_email(clean_email(fields["email"]))
        response = jsonify(
            error="conflict", message=exc.message, id=existing.id if existing else None
        )
        response.status_code = 409
        return response
    return _created(_customers([customer])[0], url_for(".get_customer", customer_id=customer.id))


@bp.get(f"/customers/<int(max={MAX_ID}):customer_id>")
def get_customer(customer_id: int):
    """One customer. Their tickets: ``GET /tickets?customer=<id>``."""
    return jsonify(_customers([_load_customer(customer_id)])[0])


def _load_customer(customer_id: int) -> Customer:
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        abort(404)
    return customer


@bp.get(f"/customers/<int(max={MAX_ID}):customer_id>/orders")
def list_orders(customer_id: int):
    """A page of the customer's orders, newest first."""
    args = _query_args()
    page = orders.customer_orders(_load_customer(customer_id), args["page"], args["per_page"])
    return _list(_orders(page.orders), page.page, page.per_page, page.has_next)


@bp.post(f"/customers/<int(max={MAX_ID}):customer_id>/orders")
def create_order(customer_id: int):
    """Record an order: 201, or 200 with ``"duplicate": true`` and the order already recorded
    under the same ``source`` and ``reference`` (unchanged)."""
    customer = _load_customer(customer_id)
    data = json_body(exact_numbers=True)
    try:
        order = orders.record_order(
            customer,
            ordered_on=data.get("date"),
            amount=data.get("amount"),
            currency=data.get("currency"),
            channel=data.get("channel", ""),
            source=data.get("source", "api"),
            reference=data.get("reference"),
            lines=data.get("lines"),
            actor=g.api_agent,
        )
    except orders.DuplicateOrder as exc:
        return jsonify({**_orders([exc.order])[0], "duplicate": True})
    return _created({**_orders([order])[0], "duplicate": False})


@bp.post(f"/orders/<int(max={MAX_ID}):order_id>/refunds")
def create_refund(order_id: int):
    """Give back ``amount`` (full or partial) of a recorded order, with an optional
    ``reason``: 201, or 422 when it is more than what is left of the order."""
    order = db.session.get(Order, order_id)
    if order is None:
        abort(404)
    data = json_body(exact_numbers=True)
    refund = orders.refund_order(
        order, amount=data.get("amount"), reason=data.get("reason", ""), actor=g.api_agent
    )
    refunded = orders.refunded_total(order)
    return _created(
        {
            "id": refund.id,
            "order_id": order.id,
            "amount": str(orders.in_currency_units(refund.amount, order.currency)),
            "currency": order.currency,
            "reason": refund.reason,
            "refunded": str(orders.in_currency_units(refunded, order.currency)),
            "remaining": str(orders.in_currency_units(order.amount - refunded, order.currency)),
            "created_at": _time(refund.created_at),
        }
    )


# --- agents and the document ----------------------------------------------------------------


@bp.get("/agents")
def list_agents():
    """Every agent with role, state and teams, by name (administrators only)."""
    _require_admin()
    args = _query_args()
    agents, has_next = _sliced(accounts.list_agents(), args)
    return _list([_agent(a) for a in agents], args["page"], args["per_page"], has_next)


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3.1 description of this API (no token needed)."""
    return jsonify(openapi.document())
