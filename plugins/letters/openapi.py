"""The plugin's part of the OpenAPI document (``helpdesk_openapi``)."""

from __future__ import annotations

from typing import Any

from helpdesk import openapi_parts as oa
from plugins.letters.models import COSTS, GRANTS, OUTCOMES

TEXT = {"type": "string"}
MONEY = {"type": ["string", "null"], "pattern": r"^\d+(\.\d+)?$", "description": "e.g. 12.50"}
ID = {"type": "integer", "minimum": 1}
NULLABLE_TEXT = {"type": ["string", "null"]}


TICKET_ID = {"name": "ticket_id", "in": "path", "required": True, "schema": ID}
TEMPLATE_ID = {"name": "template_id", "in": "path", "required": True, "schema": ID}
TEMPLATE_REFUSED = oa.json_response(
    "LetterTemplateProblems", "The template does not compile or uses an unknown variable."
)

LETTER_TEMPLATE = {
    "type": "object",
    "required": ["id", "key", "name", "language", "outcome", "subject", "body", "version"],
    "properties": {
        "id": ID,
        "key": {**TEXT, "description": "Language variants of one letter share the key."},
        "name": TEXT,
        "language": {**TEXT, "examples": ["en", "he", "el", "is"]},
        "outcome": {"enum": [*GRANTS, None], "description": "What the letter answers."},
        "subject": {**TEXT, "description": "A Jinja template (sandboxed)."},
        "body": {**TEXT, "description": "A Jinja template (sandboxed); plain text."},
        "version": {"type": "integer", "description": "Grows with every save."},
    },
}
CLAIM = {
    "type": "object",
    "description": "A complaint's structured claim. Also accepted as `claim` in the body of "
    "`POST /tickets` (without `resolution`); a bad claim is a 422 and no ticket is opened.",
    "required": ["outcome_wanted"],
    "properties": {
        "outcome_wanted": {"enum": list(OUTCOMES)},
        "amount_claimed": MONEY,
        "currency": {**NULLABLE_TEXT, "description": "ISO 4217; required with an amount."},
        "incident_date": {"type": ["string", "null"], "format": "date"},
        "order_reference": NULLABLE_TEXT,
        "costs": {"type": "array", "items": {"enum": list(COSTS)}},
        "resolution": {"oneOf": [oa.ref("schemas", "ClaimResolution"), {"type": "null"}]},
    },
}
RESOLUTION = {
    "type": "object",
    "required": ["granted", "amount", "code", "reason", "by", "at"],
    "properties": {
        "granted": {"enum": list(GRANTS)},
        "amount": MONEY,
        "code": NULLABLE_TEXT,
        "reason": NULLABLE_TEXT,
        "by": {
            "type": ["object", "null"],
            "properties": {"id": ID, "name": TEXT},
        },
        "at": {"type": ["string", "null"], "format": "date-time"},
    },
}


def document_part() -> dict[str, Any]:
    """Paths and schemas of ``/letter-templates``, ``/tickets/{id}/letters/preview`` and
    ``/tickets/{id}/claim/resolution``."""
    return {
        "paths": {
            "/letter-templates": {
                "get": {
                    "operationId": "letters_api.list_templates",
                    "summary": "List the reply-letter templates",
                    "responses": {
                        "200": oa.json_response("LetterTemplateList", "Every template."),
                        **oa.error_responses(),
                    },
                },
                "post": {
                    "operationId": "letters_api.create_template",
                    "summary": "Add a letter template (administrators only)",
                    "requestBody": oa.json_request("NewLetterTemplate"),
                    "responses": {
                        "201": oa.json_response("LetterTemplate", "The new template (version 1)."),
                        "422": TEMPLATE_REFUSED,
                        **oa.error_responses("400", "403", "409", "413"),
                    },
                },
            },
            "/letter-templates/{template_id}": {
                "put": {
                    "operationId": "letters_api.update_template",
                    "summary": "Save a new version of a template (administrators only)",
                    "parameters": [TEMPLATE_ID],
                    "requestBody": oa.json_request("NewLetterTemplate"),
                    "responses": {
                        "200": oa.json_response(
                            "LetterTemplate", "The template, with its new version."
                        ),
                        "422": TEMPLATE_REFUSED,
                        **oa.error_responses("400", "403", "404", "409", "413"),
                    },
                },
            },
            "/tickets/{ticket_id}/letters/preview": {
                "post": {
                    "operationId": "letters_api.preview_letter",
                    "summary": "A letter template filled in for a ticket",
                    "parameters": [TICKET_ID],
                    "requestBody": oa.json_request("LetterPreviewRequest"),
                    "responses": {
                        "200": oa.json_response("LetterPreview", "The letter."),
                        **oa.error_responses("400", "404", "413", "422"),
                    },
                },
            },
            "/tickets/{ticket_id}/claim/resolution": {
                "post": {
                    "operationId": "letters_api.resolve_claim",
                    "summary": "Record what was granted on a claim, and resolve the ticket",
                    "parameters": [TICKET_ID],
                    "requestBody": oa.json_request("NewClaimResolution"),
                    "responses": {
                        "200": oa.json_response("Claim", "The claim with its resolution."),
                        **oa.error_responses("400", "404", "409", "413", "422"),
                    },
                },
            },
        },
        "schemas": {
            "LetterTemplate": LETTER_TEMPLATE,
            "LetterTemplateList": {
                "type": "object",
                "required": ["items"],
                "properties": {
                    "items": {"type": "array", "items": oa.ref("schemas", "LetterTemplate")}
                },
            },
            "NewLetterTemplate": {
                "type": "object",
                "required": ["name", "subject", "body"],
                "properties": {
                    **{k: v for k, v in LETTER_TEMPLATE["properties"].items() if k != "id"},
                    "version": {
                        "type": "integer",
                        "description": "On PUT: the version you edited (409 if it is stale).",
                    },
                },
            },
            "LetterTemplateProblems": {
                "type": "object",
                "required": ["errors"],
                "properties": {
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["field", "line", "message"],
                            "properties": {
                                "field": TEXT,
                                "line": {"type": ["integer", "null"]},
                                "message": TEXT,
                            },
                        },
                    }
                },
            },
            "LetterPreviewRequest": {
                "type": "object",
                "required": ["template_id"],
                "properties": {"template_id": ID},
            },
            "LetterPreview": {
                "type": "object",
                "required": ["subject", "text", "html"],
                "properties": {"subject": TEXT, "text": TEXT, "html": TEXT},
            },
            "Claim": CLAIM,
            "ClaimResolution": RESOLUTION,
            "NewClaimResolution": {
                "type": "object",
                "required": ["granted"],
                "properties": {
                    "granted": {"enum": list(GRANTS)},
                    "amount": {
                        "type": ["string", "number"],
                        "description": "Required for a refund or a gift certificate.",
                    },
                    "code": {**TEXT, "description": "A gift certificate's code (required)."},
                    "reason": {**TEXT, "description": "Required when declined."},
                },
            },
        },
    }
