"""Building blocks for the parts of the OpenAPI document a plugin adds (``helpdesk_openapi``):
references to the core's shared components, JSON bodies and the usual error answers."""

from __future__ import annotations

from typing import Any

# The core's shared error answers (components/responses), by HTTP status.
ERROR_RESPONSES = {
    "400": "BadRequest",
    "401": "Unauthorized",
    "403": "Forbidden",
    "404": "NotFound",
    "409": "Conflict",
    "413": "TooLarge",
    "422": "Invalid",
    "429": "RateLimited",
}


def ref(kind: str, name: str) -> dict[str, str]:
    """A ``$ref`` to ``#/components/<kind>/<name>`` (``kind``: schemas, responses, ...)."""
    return {"$ref": f"#/components/{kind}/{name}"}


def json_response(schema: str, description: str) -> dict[str, Any]:
    """An answer whose JSON body is the schema named ``schema``."""
    return {
        "description": description,
        "content": {"application/json": {"schema": ref("schemas", schema)}},
    }


def json_request(schema: str) -> dict[str, Any]:
    """A required JSON request body of the schema named ``schema``."""
    return {"required": True, "content": {"application/json": {"schema": ref("schemas", schema)}}}


def error_responses(*codes: str) -> dict[str, Any]:
    """The core's answers for the HTTP statuses ``codes``, with 401 and 429 that every API
    call can give."""
    return {code: ref("responses", ERROR_RESPONSES[code]) for code in ("401", "429", *codes)}


def query_parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An optional query-string parameter."""
    return {"name": name, "in": "query", "schema": schema, "description": description}
