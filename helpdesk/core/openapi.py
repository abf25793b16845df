"""The OpenAPI 3.1 description of the REST API, served at ``/api/v1/openapi.json``.

Kept beside the views it describes: a test walks every ``/api/v1`` route of the app and checks
it is here with the same methods and ``operationId`` (the view's name), and the reverse, and
checks real answers against the schemas below.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import Any

from helpdesk.core.models import KINDS, PRIORITIES, STATUSES
from helpdesk.core.queue import ASSIGNEE_CHOICES, SORTS
from helpdesk.plugins import call_each

Schema = dict[str, Any]

DESCRIPTION = """\
JSON over HTTP for integrations. Authenticate as an agent with an API token:
`Authorization: Bearer <token>` (create one under *Account → API tokens* or with
`helpdesk create-token --agent E`). Each agent may make `API_RATE_LIMIT` requests per window
(600 a minute by default); beyond it the answer is 429 with `Retry-After`.

* Times are ISO 8601 in UTC with a `Z` suffix and whole seconds: `2026-11-25T17:44:26Z`.
* Lists answer `{"items", "page", "per_page", "has_next", "next_page"}`. There is no total
  count, on purpose: counting a million rows on every page would make every page slow.
  Follow `next_page` until it is `null`.
* Request bodies are JSON objects sent with `Content-Type: application/json`. Keys this version
  does not know are ignored (so clients may send newer fields), except in `PATCH /tickets/{id}`,
  where an unknown field is a 422.
* Errors are JSON too: `{"error", "message"}`, plus `fields` (field name → what is wrong) when
  fields were invalid (422, and 413 when one field is over its limit). A body that is not a JSON
  object is a 400.
* Answers may gain fields (plugins add some); fields are never removed or renamed in `v1`.
"""

TIME: Schema = {"type": "string", "format": "date-time", "examples": ["2026-11-25T17:44:26Z"]}
ID: Schema = {"type": "integer", "minimum": 1}
TEXT: Schema = {"type": "string"}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _or_null(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(required: list[str], properties: dict[str, Schema], **extra: Any) -> Schema:
    return {"type": "object", "required": required, "properties": properties, **extra}


def _json(schema: Schema, description: str, **extra: Any) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def _list_of(name: str) -> Schema:
    return _object(
        ["items", "page", "per_page", "has_next", "next_page"],
        {
            "items": {"type": "array", "items": _ref(name)},
            "page": ID,
            "per_page": ID,
            "has_next": {"type": "boolean"},
            "next_page": _or_null(ID),
        },
    )


_DATE: Schema = {"type": "string", "format": "date", "examples": ["2026-11-25"]}
_ORDER_FIELDS: dict[str, Schema] = {
    "id": ID,
    "customer_id": ID,
    "date": _DATE,
    "amount": {
        **TEXT,
        "examples": ["12.50"],
        "description": "A decimal in text with the currency's places; never a float.",
    },
    "currency": {**TEXT, "examples": ["EUR"], "description": "ISO 4217."},
    "channel": TEXT,
    "source": TEXT,
    "reference": _or_null(TEXT),
    "created_at": TIME,
    "lines": {
        "type": "array",
        "items": _object(["product_line", "amount"], {"product_line": TEXT, "amount": TEXT}),
        "description": "The order's product lines (empty for none); their amounts add up to "
        "the order's amount.",
    },
}

SCHEMAS: dict[str, Schema] = {
    "Error": _object(
        ["error", "message"],
        {
            "error": {"type": "string", "description": "A short code, e.g. `validationerror`."},
            "message": {"type": "string", "description": "What went wrong, for people."},
            "fields": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": 'Field → what is wrong; nested fields as "customer.email".',
            },
        },
    ),
    "CustomerConflict": _object(
        ["error", "message", "id"],
        {"error": TEXT, "message": TEXT, "id": {**ID, "description": "The existing customer."}},
    ),
    "AgentRef": _object(["id", "email", "name"], {"id": ID, "email": TEXT, "name": TEXT}),
    "TeamRef": _object(["id", "name"], {"id": ID, "name": TEXT}),
    "CustomerRef": _object(["id", "email", "name"], {"id": ID, "email": TEXT, "name": TEXT}),
    "Ticket": _object(
        [
            "id",
            "reference",
            "subject",
            "status",
            "priority",
            "kind",
            "customer",
            "assignee",
            "team",
            "merged_into",
            "version",
            "created_at",
            "updated_at",
            "last_activity_at",
            "due_at",
        ],
        {
            "id": ID,
            "reference": {**TEXT, "examples": ["#1234"]},
            "subject": TEXT,
            "status": {"enum": list(STATUSES)},
            "priority": {"enum": list(PRIORITIES)},
            "kind": {"enum": list(KINDS)},
            "customer": _ref("CustomerRef"),
            "assignee": _or_null(_ref("AgentRef")),
            "team": _or_null(_ref("TeamRef")),
            "merged_into": {
                **_or_null(ID),
                "description": "The ticket this one was merged into (it is then closed).",
            },
            "version": {
                "type": "integer",
                "description": "Grows with every change; send it back to PATCH (or as If-Match).",
            },
            "created_at": TIME,
            "updated_at": TIME,
            "last_activity_at": TIME,
            "due_at": _or_null(TIME),
        },
    ),
    "NewTicket": _object(
        ["subject", "body", "kind", "customer"],
        {
            "subject": {**TEXT, "description": "At most MAX_SUBJECT_LENGTH (200) characters."},
            "body": {
                **TEXT,
                "description": "The first message, written by the calling agent on the "
                "customer's behalf. Over MAX_BODY_LENGTH (100,000) characters: 413.",
            },
            "kind": {"enum": list(KINDS)},
            "priority": {"enum": list(PRIORITIES), "description": "Default `normal`."},
            "team": _or_null(ID),
            "assignee": _or_null({**TEXT, "description": "An active agent's e-mail."}),
            "customer": _object(
                ["email"],
                {
                    "email": {
                        **TEXT,
                        "description": "Matched without regard to case; a new address makes "
                        "a new customer.",
                    },
                    "name": TEXT,
                    "phone": {**TEXT, "description": "Stored in E.164 form."},
                },
            ),
        },
    ),
    "TicketChanges": _object(
        [],
        {
            "status": {"enum": list(STATUSES)},
            "priority": {"enum": list(PRIORITIES)},
            "kind": {"enum": list(KINDS)},
            "assignee": _or_null({**TEXT, "description": "An active agent's e-mail."}),
            "team": _or_null(ID),
            "version": {
                "type": "integer",
                "description": "The version you last read; if the ticket changed since, 409.",
            },
        },
        additionalProperties=False,
    ),
    "Attachment": _object(
        ["id", "filename", "size", "content_type", "url"],
        {
            "id": ID,
            "filename": TEXT,
            "size": {"type": "integer", "minimum": 0},
            "content_type": TEXT,
            "url": {**TEXT, "description": "Where to download it (with your token)."},
        },
    ),
    "Message": _object(
        ["id", "body", "internal", "author", "created_at", "attachments"],
        {
            "id": ID,
            "body": TEXT,
            "internal": {"type": "boolean", "description": "An agents-only note."},
            "author": _object(
                ["type", "id", "email", "name"],
                {
                    "type": {"enum": ["customer", "agent"]},
                    "id": ID,
                    "email": TEXT,
                    "name": TEXT,
                },
            ),
            "created_at": TIME,
            "attachments": {"type": "array", "items": _ref("Attachment")},
        },
    ),
    "NewMessage": _object(
        ["body"],
        {
            "body": TEXT,
            "internal": {"type": "boolean", "default": False},
            "status": {
                "enum": list(STATUSES),
                "description": "Move the ticket to this status with the message. Without it, "
                "a public reply to a `new` ticket makes it `open`.",
            },
        },
    ),
    "Customer": _object(
        ["id", "email", "name", "phone", "language", "notes", "created_at", "updated_at"],
        {
            "id": ID,
            "email": TEXT,
            "name": TEXT,
            "phone": _or_null(TEXT),
            "language": _or_null(TEXT),
            "notes": TEXT,
            "created_at": TIME,
            "updated_at": TIME,
        },
    ),
    "NewCustomer": _object(
        ["email"],
        {
            "email": TEXT,
            "name": TEXT,
            "phone": TEXT,
            "notes": TEXT,
            "language": {**TEXT, "examples": ["is"]},
        },
    ),
    "Agent": _object(
        ["id", "email", "name", "role", "active", "teams", "created_at", "last_login_at"],
        {
            "id": ID,
            "email": TEXT,
            "name": TEXT,
            "role": {"enum": ["agent", "admin"]},
            "active": {"type": "boolean"},
            "teams": {"type": "array", "items": _ref("TeamRef")},
            "created_at": TIME,
            "last_login_at": _or_null(TIME),
        },
    ),
    "Order": _object(list(_ORDER_FIELDS), _ORDER_FIELDS),
    "RecordedOrder": _object(
        [*_ORDER_FIELDS, "duplicate"],
        {
            **_ORDER_FIELDS,
            "duplicate": {
                "type": "boolean",
                "description": "True when this source and reference were already recorded: "
                "the answer is that order, unchanged (status 200).",
            },
        },
    ),
    "NewOrder": _object(
        ["date", "currency"],
        {
            "date": {**_DATE, "description": "From 1900-01-01 up to tomorrow."},
            "amount": {
                "anyOf": [{"type": "string"}, {"type": "number"}],
                "description": 'More than 0, e.g. `"12.50"`; a JSON number is read exactly '
                "from its text. Rounded half-up to the currency's places (EUR 2, JPY 0, KWD 3). "
                "Not `NaN`, `Infinity`, `1e309` or `12,50`. Required without `lines`; with "
                "them it may be left out and must otherwise equal their sum.",
            },
            "lines": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1000,
                "items": _object(
                    ["product_line", "amount"],
                    {
                        "product_line": {**TEXT, "maxLength": 100},
                        "amount": {
                            "anyOf": [{"type": "string"}, {"type": "number"}],
                            "description": "More than 0, in the order's currency.",
                        },
                    },
                ),
                "description": "Product lines; the order's amount is their sum.",
            },
            "currency": {**TEXT, "examples": ["EUR"], "description": "ISO 4217, any case."},
            "channel": {**TEXT, "maxLength": 32, "description": "Where it was sold."},
            "reference": {
                **TEXT,
                "maxLength": 100,
                "description": "The order's id in its source. The same source and reference "
                "again records nothing (200, `duplicate`); used by another customer: 422.",
            },
            "source": {
                **TEXT,
                "maxLength": 32,
                "default": "api",
                "description": "The system the reference comes from.",
            },
        },
    ),
    "TicketList": _list_of("Ticket"),
    "MessageList": _list_of("Message"),
    "CustomerList": _list_of("Customer"),
    "AgentList": _list_of("Agent"),
    "OrderList": _list_of("Order"),
    "Refund": _object(
        ["id", "order_id", "amount", "currency", "reason", "refunded", "remaining", "created_at"],
        {
            "id": ID,
            "order_id": ID,
            "amount": {**TEXT, "examples": ["12.50"]},
            "currency": TEXT,
            "reason": TEXT,
            "refunded": {**TEXT, "description": "All refunds of the order so far, this one too."},
            "remaining": {**TEXT, "description": "What is left of the order to refund."},
            "created_at": TIME,
        },
    ),
    "NewRefund": _object(
        ["amount"],
        {
            "amount": {
                "anyOf": [{"type": "string"}, {"type": "number"}],
                "description": "More than 0 and at most what is left of the order, in its "
                "currency (rounded half-up to its places).",
            },
            "reason": {**TEXT, "maxLength": 1000},
        },
    ),
}

_ERROR = {"$ref": "#/components/schemas/Error"}
RESPONSES: dict[str, Schema] = {
    "BadRequest": _json(
        _ERROR, "The body is not a JSON object (wrong content type, malformed, an array, ...)."
    ),
    "Unauthorized": _json(
        _ERROR,
        "No token, an unknown or revoked one, or one of a deactivated agent.",
        headers={"WWW-Authenticate": {"schema": {"type": "string"}}},
    ),
    "Forbidden": _json(_ERROR, "Your role may not do this."),
    "NotFound": _json(_ERROR, "No such record."),
    "Conflict": _json(
        _ERROR, "The ticket changed since the version you sent, or was merged. Nothing was saved."
    ),
    "TooLarge": _json(_ERROR, "The request, or a field, is over its configured size limit."),
    "Invalid": _json(_ERROR, "Fields are missing or wrong; `fields` names each one."),
    "RateLimited": _json(
        _ERROR,
        "Too many requests from this agent; wait `Retry-After` seconds.",
        headers={"Retry-After": {"schema": {"type": "integer"}}},
    ),
}

PARAMETERS: dict[str, Schema] = {
    "TicketId": {"name": "ticket_id", "in": "path", "required": True, "schema": ID},
    "AttachmentId": {"name": "attachment_id", "in": "path", "required": True, "schema": ID},
    "CustomerId": {"name": "customer_id", "in": "path", "required": True, "schema": ID},
    "Page": {"name": "page", "in": "query", "schema": {**ID, "maximum": 100_000, "default": 1}},
    "PerPage": {
        "name": "per_page",
        "in": "query",
        "description": "Default PAGE_SIZE (25), at most MAX_PAGE_SIZE (100).",
        "schema": ID,
    },
}


def _param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def _answer(name: str) -> Schema:
    return {"$ref": f"#/components/responses/{name}"}


def _operation(
    operation_id: str,
    summary: str,
    responses: dict[str, Schema],
    *,
    parameters: Sequence[Schema] = (),
    body: str | None = None,
) -> Schema:
    """An authenticated operation: 401 and 429 are possible on every one, 400 and 413 with
    every body."""
    answers = {**responses, "401": _answer("Unauthorized"), "429": _answer("RateLimited")}
    operation: Schema = {"operationId": operation_id, "summary": summary}
    if parameters:
        operation["parameters"] = list(parameters)
    if body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
        answers.update({"400": _answer("BadRequest"), "413": _answer("TooLarge")})
    operation["responses"] = dict(sorted(answers.items()))
    return operation


_TICKET_FILTERS = [
    _query(
        "status",
        {"type": "string"},
        f"One or more of {', '.join(STATUSES)}, comma-separated or repeated.",
    ),
    _query("priority", {"enum": list(PRIORITIES)}, "Only this priority."),
    _query("kind", {"enum": list(KINDS)}, "Only this kind."),
    _query(
        "assignee",
        {"type": "string", "default": "any"},
        f"{', '.join(ASSIGNEE_CHOICES)} (`me` is the token's agent), or an agent id.",
    ),
    _query("team", ID, "Only tickets of this team."),
    _query("customer", ID, "Only tickets of this customer."),
    _query(
        "q",
        {"type": "string", "maxLength": 200},
        "Full-text search over subjects, messages and the customer's name and e-mail; "
        "every word must match, the last also as a prefix; results best match first. "
        "Search syntax is not interpreted: quotes, `*`, `NEAR(` are ordinary characters.",
    ),
    _query(
        "sort",
        {"enum": list(SORTS), "default": "activity"},
        "Latest activity first, earliest due first, or newest first (ignored with `q`).",
    ),
    _param("Page"),
    _param("PerPage"),
]

_TICKET_OK = _json(_ref("Ticket"), "The ticket.", headers={"ETag": {"schema": TEXT}})

PATHS: dict[str, Schema] = {
    "/tickets": {
        "get": _operation(
            "list_tickets",
            "List tickets: filter, search, sort, page",
            {"200": _json(_ref("TicketList"), "A page of tickets."), "422": _answer("Invalid")},
            parameters=_TICKET_FILTERS,
        ),
        "post": _operation(
            "create_ticket",
            "Open a ticket for a customer (found by e-mail, or created)",
            {
                "201": _json(
                    _ref("Ticket"),
                    "The new ticket.",
                    headers={
                        "Location": {"schema": TEXT, "description": "The ticket's URL."},
                        "ETag": {"schema": TEXT},
                    },
                ),
                "422": _answer("Invalid"),
            },
            body="NewTicket",
        ),
    },
    "/tickets/{ticket_id}": {
        "get": _operation(
            "get_ticket",
            "Read a ticket",
            {"200": _TICKET_OK, "404": _answer("NotFound")},
            parameters=[_param("TicketId")],
        ),
        "patch": _operation(
            "update_ticket",
            "Change status, priority, kind, assignee or team (optimistic locking)",
            {
                "200": _TICKET_OK,
                "404": _answer("NotFound"),
                "409": _answer("Conflict"),
                "422": _answer("Invalid"),
            },
            parameters=[
                _param("TicketId"),
                {
                    "name": "If-Match",
                    "in": "header",
                    "description": 'The version you last read, quoted ("3"), as the `ETag` '
                    "gave it; the same as `version` in the body.",
                    "schema": TEXT,
                },
            ],
            body="TicketChanges",
        ),
    },
    "/tickets/{ticket_id}/messages": {
        "get": _operation(
            "list_messages",
            "Read the conversation, oldest first, internal notes included",
            {
                "200": _json(_ref("MessageList"), "A page of messages."),
                "404": _answer("NotFound"),
                "422": _answer("Invalid"),
            },
            parameters=[_param("TicketId"), _param("Page"), _param("PerPage")],
        ),
        "post": _operation(
            "create_message",
            "Reply to the customer, or add an internal note",
            {
                "201": _json(_ref("Message"), "The message."),
                "404": _answer("NotFound"),
                "409": _answer("Conflict"),
                "422": _answer("Invalid"),
            },
            parameters=[_param("TicketId")],
            body="NewMessage",
        ),
    },
    "/tickets/{ticket_id}/attachments/{attachment_id}": {
        "get": _operation(
            "get_attachment",
            "Download an attachment",
            {
                "200": {
                    "description": "The file, as a download (`Content-Disposition: attachment`).",
                    "content": {"application/octet-stream": {}},
                },
                "404": _answer("NotFound"),
            },
            parameters=[_param("TicketId"), _param("AttachmentId")],
        ),
    },
    "/customers": {
        "get": _operation(
            "list_customers",
            "List customers, newest first or by name; search name, e-mail and phone",
            {
                "200": _json(_ref("CustomerList"), "A page of customers."),
                "422": _answer("Invalid"),
            },
            parameters=[
                _query(
                    "q",
                    {"type": "string", "maxLength": 200},
                    "Text the name, e-mail or phone contains (taken literally).",
                ),
                _query("sort", {"enum": ["newest", "name"], "default": "newest"}, "Order."),
                _param("Page"),
                _param("PerPage"),
            ],
        ),
        "post": _operation(
            "create_customer",
            "Register a customer",
            {
                "201": _json(
                    _ref("Customer"),
                    "The new customer.",
                    headers={"Location": {"schema": TEXT, "description": "The customer's URL."}},
                ),
                "409": _json(
                    _ref("CustomerConflict"),
                    "A customer with this e-mail (in any case) exists; `id` is theirs.",
                ),
                "422": _answer("Invalid"),
            },
            body="NewCustomer",
        ),
    },
    "/customers/{customer_id}": {
        "get": _operation(
            "get_customer",
            "Read a customer (their tickets: `GET /tickets?customer={id}`)",
            {"200": _json(_ref("Customer"), "The customer."), "404": _answer("NotFound")},
            parameters=[_param("CustomerId")],
        ),
    },
    "/customers/{customer_id}/orders": {
        "get": _operation(
            "list_orders",
            "List a customer's orders, newest first",
            {
                "200": _json(_ref("OrderList"), "A page of orders."),
                "404": _answer("NotFound"),
                "422": _answer("Invalid"),
            },
            parameters=[_param("CustomerId"), _param("Page"), _param("PerPage")],
        ),
        "post": _operation(
            "create_order",
            "Record a customer's order (idempotent by source and reference)",
            {
                "201": _json(_ref("RecordedOrder"), "The new order (`duplicate` is false)."),
                "200": _json(
                    _ref("RecordedOrder"),
                    "Already recorded: the existing order, unchanged (`duplicate` is true).",
                ),
                "404": _answer("NotFound"),
                "422": _answer("Invalid"),
            },
            parameters=[_param("CustomerId")],
            body="NewOrder",
        ),
    },
    "/orders/{order_id}/refunds": {
        "post": _operation(
            "create_refund",
            "Refund a recorded order, in full or in part (fires `order_refunded`)",
            {
                "201": _json(_ref("Refund"), "The refund."),
                "404": _answer("NotFound"),
                "422": _answer("Invalid"),
            },
            parameters=[{"name": "order_id", "in": "path", "required": True, "schema": ID}],
            body="NewRefund",
        ),
    },
    "/agents": {
        "get": _operation(
            "list_agents",
            "List agents with role, state and teams (administrators only)",
            {
                "200": _json(_ref("AgentList"), "A page of agents, by name."),
                "403": _answer("Forbidden"),
                "422": _answer("Invalid"),
            },
            parameters=[_param("Page"), _param("PerPage")],
        ),
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi_document",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}
            },
        },
    },
}


def _version() -> str:
    try:
        return metadata.version("helpdesk")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


def _with_plugins() -> tuple[dict[str, Any], dict[str, Any]]:
    """The core's paths and schemas, with those the enabled plugins add (never replacing)."""
    paths, schemas = dict(PATHS), dict(SCHEMAS)
    for part in call_each("helpdesk_openapi"):
        if isinstance(part, dict):
            for key, value in (part.get("paths") or {}).items():
                paths.setdefault(key, value)
            for key, value in (part.get("schemas") or {}).items():
                schemas.setdefault(key, value)
    return paths, schemas


def document() -> dict[str, Any]:
    """The whole OpenAPI document (with the enabled plugins' parts), as JSON-ready data."""
    paths, schemas = _with_plugins()
    return {
        "openapi": "3.1.0",
        "info": {"title": "helpdesk REST API", "version": _version(), "description": DESCRIPTION},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API token."}
            },
            "schemas": schemas,
            "responses": RESPONSES,
            "parameters": PARAMETERS,
        },
    }
