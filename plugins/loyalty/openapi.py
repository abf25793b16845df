"""The plugin's part of the OpenAPI document (``helpdesk_openapi``)."""

from __future__ import annotations

from typing import Any

from helpdesk import openapi_parts as oa

TEXT = {"type": "string"}
MONEY = {"type": "string", "examples": ["12.50"]}
ID = {"type": "integer", "minimum": 1}
NUMBER = {"name": "number", "in": "path", "required": True, "schema": TEXT}
KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "schema": {"type": "string", "maxLength": 200},
    "description": "The same key again (per card and endpoint) replays the first answer; "
    "with another body it is a 422.",
}


def _op(op_id: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "operationId": f"loyalty_api.{op_id}",
        "summary": summary,
        "responses": responses,
        **extra,
    }


AMOUNT = {
    "type": "string",
    "description": 'Text like "12.50" with at most the currency\'s places; not a JSON float.',
}
SCHEMAS = {
    "LoyaltyCard": {
        "type": "object",
        "required": [
            "number",
            "status",
            "replaced_by",
            "customer",
            "balance",
            "owed",
            "currency",
            "tier",
            "next_tier",
        ],
        "properties": {
            "number": TEXT,
            "status": {"enum": ["active", "blocked", "replaced"]},
            "replaced_by": {"type": ["string", "null"]},
            "customer": {
                "type": "object",
                "properties": {"id": ID, "email": TEXT},
            },
            "balance": MONEY,
            "owed": MONEY,
            "currency": TEXT,
            "tier": {
                "type": ["object", "null"],
                "properties": {"name": TEXT, "discount_percent": TEXT},
            },
            "next_tier": {
                "type": ["object", "null"],
                "properties": {"name": TEXT, "remaining": MONEY},
            },
            "entry": {"$ref": "#/components/schemas/LoyaltyLedgerEntry"},
        },
    },
    "LoyaltyLedgerEntry": {
        "type": "object",
        "properties": {
            "id": ID,
            "kind": {
                "enum": ["accrual", "redemption", "reversal", "adjustment", "expiry", "transfer"]
            },
            "amount": {**MONEY, "description": "Signed."},
            "balance_after": MONEY,
            "owed_after": MONEY,
            "order_reference": {"type": ["string", "null"]},
            "reason": TEXT,
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "LoyaltyLedger": {
        "type": "object",
        "required": ["items", "page", "per_page", "has_next", "next_page"],
        "properties": {
            "items": {"type": "array", "items": oa.ref("schemas", "LoyaltyLedgerEntry")},
            "page": ID,
            "per_page": ID,
            "has_next": {"type": "boolean"},
            "next_page": {"type": ["integer", "null"]},
        },
    },
    "LoyaltyRedeem": {
        "type": "object",
        "required": ["amount", "order_reference"],
        "properties": {"amount": AMOUNT, "order_reference": TEXT, "currency": TEXT},
    },
    "LoyaltyAdjust": {
        "type": "object",
        "required": ["amount", "reason"],
        "properties": {
            "amount": {**AMOUNT, "description": "Signed."},
            "reason": TEXT,
            "currency": TEXT,
        },
    },
    "LoyaltyReason": {"type": "object", "properties": {"reason": TEXT}},
    "LoyaltyRefused": {
        "type": "object",
        "required": ["error", "message", "balance"],
        "properties": {
            "error": {"enum": ["card_blocked", "bonus_owed", "insufficient_balance"]},
            "message": TEXT,
            "balance": MONEY,
        },
    },
}


def document_part() -> dict[str, Any]:
    """Paths and schemas of ``/customers/{id}/card`` and ``/cards/{number}...``."""
    card = oa.json_response("LoyaltyCard", "The card.")
    refused = oa.json_response(
        "LoyaltyRefused", "Blocked card, something owed, or not enough balance."
    )
    customer = {"name": "customer_id", "in": "path", "required": True, "schema": ID}
    return {
        "paths": {
            "/customers/{customer_id}/card": {
                "post": _op(
                    "issue",
                    "Issue a bonus card to the customer",
                    {
                        "201": card,
                        "409": oa.ref("responses", "Conflict"),
                        **oa.error_responses("404"),
                    },
                    parameters=[customer],
                ),
            },
            "/cards/{number}": {
                "get": _op(
                    "get_card",
                    "A card by number (spaces and dashes ignored)",
                    {"200": card, **oa.error_responses("404", "422")},
                    parameters=[NUMBER],
                ),
            },
            "/cards/{number}/ledger": {
                "get": _op(
                    "get_ledger",
                    "The card's movements, newest first",
                    {
                        "200": oa.json_response("LoyaltyLedger", "A page."),
                        **oa.error_responses("404", "422"),
                    },
                    parameters=[NUMBER, {"name": "page", "in": "query", "schema": ID}],
                ),
            },
            "/cards/{number}/redeem": {
                "post": _op(
                    "redeem",
                    "Spend bonus against a recorded order",
                    {"200": card, "409": refused, **oa.error_responses("400", "404", "422")},
                    parameters=[NUMBER, KEY],
                    requestBody=oa.json_request("LoyaltyRedeem"),
                ),
            },
            "/cards/{number}/adjust": {
                "post": _op(
                    "adjust",
                    "Add or take bonus by hand, with a reason",
                    {"200": card, "409": refused, **oa.error_responses("400", "403", "404", "422")},
                    parameters=[NUMBER, KEY],
                    requestBody=oa.json_request("LoyaltyAdjust"),
                ),
            },
            "/cards/{number}/block": {
                "post": _op(
                    "block",
                    "Block a lost or stolen card",
                    {
                        "200": card,
                        "409": oa.ref("responses", "Conflict"),
                        **oa.error_responses("404", "422"),
                    },
                    parameters=[NUMBER],
                ),
            },
            "/cards/{number}/replace": {
                "post": _op(
                    "replace",
                    "Replace a card; its balance moves to the new one",
                    {
                        "201": oa.json_response("LoyaltyCard", "The new card."),
                        "409": oa.ref("responses", "Conflict"),
                        **oa.error_responses("404", "422"),
                    },
                    parameters=[NUMBER],
                ),
            },
        },
        "schemas": SCHEMAS,
    }
