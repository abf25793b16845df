"""The plugin's part of the OpenAPI document (``helpdesk_openapi``)."""

from __future__ import annotations

from typing import Any

from helpdesk import openapi_parts as oa

TEXT = {"type": "string"}
DECIMAL = {"type": "string", "pattern": r"^\d+\.\d{2}$"}
ID = {"type": "integer", "minimum": 1}


CATEGORY = {
    "type": "object",
    "required": ["id", "name", "color", "position", "retired", "discount_percent"],
    "properties": {
        "id": ID,
        "name": TEXT,
        "color": {"enum": ["grey", "blue", "green", "gold", "red", "purple"]},
        "position": {"type": "integer"},
        "retired": {"type": "boolean"},
        "priority": {"enum": ["high", "urgent", None]},
        "first_response_hours": {"type": ["integer", "null"]},
        "team_id": {"type": ["integer", "null"]},
        "assignee_id": {"type": ["integer", "null"]},
        "discount_percent": DECIMAL,
        "prepayment_required": {"type": "boolean"},
        "warning": TEXT,
    },
}
NEW_CATEGORY = {
    "type": "object",
    "required": ["name"],
    "properties": {
        **{k: v for k, v in CATEGORY["properties"].items() if k != "id"},
        "discount_percent": {"type": ["string", "number"], "description": "0 to 100"},
    },
}
CUSTOMER_ID = {"name": "customer_id", "in": "path", "required": True, "schema": ID}


def document_part() -> dict[str, Any]:
    """Paths and schemas of ``/categories``, ``/customers/{id}/category`` and
    ``/customers/{id}/price-policy``."""
    return {
        "paths": {
            "/categories": {
                "get": {
                    "operationId": "categories_api.list_categories",
                    "summary": "List client categories with their rules (retired ones last)",
                    "responses": {
                        "200": oa.json_response("CategoryList", "Every category."),
                        **oa.error_responses(),
                    },
                },
                "post": {
                    "operationId": "categories_api.create_category",
                    "summary": "Add a client category (administrators only)",
                    "requestBody": oa.json_request("NewCategory"),
                    "responses": {
                        "201": oa.json_response("Category", "The new category."),
                        **oa.error_responses("400", "403", "413", "422"),
                    },
                },
            },
            "/customers/{customer_id}/category": {
                "put": {
                    "operationId": "categories_api.set_customer_category",
                    "summary": "Put a customer in a category (recorded with who and why)",
                    "parameters": [CUSTOMER_ID],
                    "requestBody": oa.json_request("CustomerCategoryChange"),
                    "responses": {
                        "200": oa.json_response("CategoryRef", "The customer's category now."),
                        **oa.error_responses("400", "404", "413", "422"),
                    },
                },
            },
            "/customers/{customer_id}/price-policy": {
                "get": {
                    "operationId": "categories_api.customer_price_policy",
                    "summary": "What the customer pays for an amount, and whether in advance",
                    "parameters": [
                        CUSTOMER_ID,
                        {"name": "amount", "in": "query", "required": True, "schema": TEXT},
                    ],
                    "responses": {
                        "200": oa.json_response("PricePolicy", "The price policy."),
                        **oa.error_responses("404", "422"),
                    },
                },
            },
        },
        "schemas": {
            "Category": CATEGORY,
            "NewCategory": NEW_CATEGORY,
            "CategoryList": {
                "type": "object",
                "required": ["items"],
                "properties": {"items": {"type": "array", "items": oa.ref("schemas", "Category")}},
            },
            "CategoryRef": {
                "type": "object",
                "required": ["id", "name"],
                "properties": {"id": ID, "name": TEXT},
            },
            "CustomerCategoryChange": {
                "type": "object",
                "required": ["category"],
                "properties": {"category": TEXT, "reason": TEXT},
            },
            "PricePolicy": {
                "type": "object",
                "required": ["amount", "price", "discount_percent", "prepayment_required"],
                "properties": {
                    "amount": DECIMAL,
                    "price": DECIMAL,
                    "discount_percent": DECIMAL,
                    "prepayment_required": {"type": "boolean"},
                    "reasons": {"type": "array", "items": TEXT},
                },
            },
        },
    }
