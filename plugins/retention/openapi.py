"""The plugin's part of the OpenAPI document (``helpdesk_openapi``)."""

from __future__ import annotations

from typing import Any

from helpdesk import openapi_parts as oa

TEXT = {"type": "string"}
ID = {"type": "integer", "minimum": 1}
DATE = {"type": "string", "format": "date"}
MONEY = {
    "type": "object",
    "additionalProperties": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
    "description": "Amounts keyed by ISO 4217 currency code, as strings; never summed across "
    'currencies, e.g. `{"EUR": "400.00", "USD": "1000.00"}`.',
}
AS_OF = {
    "name": "as_of",
    "in": "query",
    "required": False,
    "schema": DATE,
    "description": "The reference date D, YYYY-MM-DD (default today); only orders dated on or "
    "before it count. Malformed or in the future: 400.",
}
CUSTOMER_ID = {"name": "customer_id", "in": "path", "required": True, "schema": ID}
AGENT = {
    "type": ["object", "null"],
    "required": ["id", "email", "name"],
    "properties": {"id": ID, "email": TEXT, "name": TEXT},
}


SUMMARY = {
    "type": "object",
    "required": ["as_of", "lost_12m", "won_back_12m", "drying_up", "reasons"],
    "properties": {
        "as_of": DATE,
        "lost_12m": {
            "type": "object",
            "required": ["count", "revenue_before", "lifetime_value_lost"],
            "description": "Clients lost at D who became lost in the 365 days up to D.",
            "properties": {
                "count": {"type": "integer", "minimum": 0},
                "revenue_before": {
                    **MONEY,
                    "description": "Their orders in the 365 days up to each one's last order.",
                },
                "lifetime_value_lost": {
                    **MONEY,
                    "description": "Each: total spend ÷ months between first and last order "
                    "(days ÷ 30.4375, at least 1) × RETENTION_LIFETIME_MONTHS (24).",
                },
            },
        },
        "won_back_12m": {
            "type": "object",
            "required": ["count"],
            "properties": {"count": {"type": "integer", "minimum": 0}},
        },
        "drying_up": {
            "type": "object",
            "required": ["count"],
            "properties": {"count": {"type": "integer", "minimum": 0}},
        },
        "reasons": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["reason", "count", "beyond_control"],
                "properties": {
                    "reason": TEXT,
                    "count": {"type": "integer", "minimum": 0},
                    "beyond_control": {"type": ["boolean", "null"]},
                },
            },
        },
    },
}
CLIENT = {
    "type": "object",
    "required": [
        "customer",
        "status",
        "signals",
        "last_order_at",
        "orders_count",
        "spend_total",
        "usual_interval_days",
        "aov_last_90d",
        "aov_prev_90d",
        "aov_change_percent",
        "revenue_before",
        "lifetime_value_lost",
        "account_manager",
    ],
    "properties": {
        "customer": {
            "type": "object",
            "required": ["id", "email", "name"],
            "properties": {"id": ID, "email": TEXT, "name": TEXT},
        },
        "status": {"enum": ["lost", "at_risk", "drying_up", "won_back", "regular", "new"]},
        "signals": {"type": "array", "items": {"enum": ["aov_drop", "line_stopped"]}},
        "stopped_lines": {"type": "array", "items": TEXT},
        "last_order_at": {**DATE, "type": ["string", "null"]},
        "orders_count": {
            "type": "integer",
            "description": "Purchases (days with an order) on or before D.",
        },
        "spend_total": MONEY,
        "usual_interval_days": {"type": ["number", "null"]},
        "aov_last_90d": MONEY,
        "aov_prev_90d": MONEY,
        "aov_change_percent": {
            "type": "object",
            "additionalProperties": TEXT,
            "description": "Per currency: (last − previous) ÷ previous × 100, two places.",
        },
        "lost_on": {"type": ["string", "null"], "format": "date"},
        "won_back_on": {"type": ["string", "null"], "format": "date"},
        "revenue_before": MONEY,
        "lifetime_value_lost": MONEY,
        "account_manager": AGENT,
        "complaints_90d": {"type": "integer"},
    },
}


def document_part() -> dict[str, Any]:
    """Paths and schemas of ``/retention/...`` and ``/customers/{id}/loss-reason`` and
    ``/account-manager``."""
    return {
        "paths": {
            "/retention/summary": {
                "get": {
                    "operationId": "retention_api.summary",
                    "summary": "Lost in the last 12 months, what it cost, why, won back, drying up",
                    "parameters": [AS_OF],
                    "responses": {
                        "200": oa.json_response("RetentionSummary", "The summary."),
                        **oa.error_responses("400"),
                    },
                },
            },
            "/retention/customers": {
                "get": {
                    "operationId": "retention_api.customers",
                    "summary": "The clients of a status at a date, latest last order first",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "required": True,
                            "schema": {
                                "enum": ["lost", "drying_up", "at_risk", "regular", "won_back"]
                            },
                        },
                        AS_OF,
                        {"name": "page", "in": "query", "schema": {**ID, "default": 1}},
                    ],
                    "responses": {
                        "200": oa.json_response("RetentionClientList", "A page of clients."),
                        **oa.error_responses("400"),
                    },
                },
            },
            "/customers/{customer_id}/loss-reason": {
                "put": {
                    "operationId": "retention_api.put_loss_reason",
                    "summary": "Record why a client left",
                    "parameters": [CUSTOMER_ID],
                    "requestBody": oa.json_request("LossReasonInput"),
                    "responses": {
                        "200": oa.json_response("LossReason", "The reason recorded."),
                        **oa.error_responses("400", "404", "422"),
                    },
                },
            },
            "/customers/{customer_id}/account-manager": {
                "put": {
                    "operationId": "retention_api.put_account_manager",
                    "summary": "Set (or, with null, remove) a client's account manager",
                    "parameters": [CUSTOMER_ID],
                    "requestBody": oa.json_request("AccountManagerInput"),
                    "responses": {
                        "200": oa.json_response("AccountManager", "The manager now."),
                        **oa.error_responses("400", "404", "422"),
                    },
                },
            },
        },
        "schemas": {
            "RetentionSummary": SUMMARY,
            "RetentionClient": CLIENT,
            "RetentionClientList": {
                "type": "object",
                "required": ["as_of", "status", "total", "items", "page", "per_page", "has_next"],
                "properties": {
                    "as_of": DATE,
                    "status": TEXT,
                    "total": {"type": "integer"},
                    "items": {"type": "array", "items": oa.ref("schemas", "RetentionClient")},
                    "page": ID,
                    "per_page": ID,
                    "has_next": {"type": "boolean"},
                    "next_page": {"type": ["integer", "null"]},
                },
            },
            "LossReasonInput": {
                "type": "object",
                "required": ["reason"],
                "properties": {
                    "reason": {
                        **TEXT,
                        "description": "One of RETENTION_REASONS: closed, moved, died (beyond "
                        "our control); price, quality, value_for_money, service, competitor "
                        "(ours); unknown.",
                    },
                    "note": {**TEXT, "maxLength": 2000},
                },
            },
            "LossReason": {
                "type": "object",
                "required": ["customer_id", "reason", "beyond_control", "note"],
                "properties": {
                    "customer_id": ID,
                    "reason": TEXT,
                    "beyond_control": {"type": ["boolean", "null"]},
                    "note": TEXT,
                },
            },
            "AccountManagerInput": {
                "type": "object",
                "required": ["agent"],
                "properties": {"agent": {"type": ["string", "null"], "format": "email"}},
            },
            "AccountManager": {
                "type": "object",
                "required": ["customer_id", "account_manager"],
                "properties": {"customer_id": ID, "account_manager": AGENT},
            },
        },
    }
