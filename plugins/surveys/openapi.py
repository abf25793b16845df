"""The plugin's part of the OpenAPI document (``helpdesk_openapi``)."""

from __future__ import annotations

from typing import Any

from helpdesk import openapi_parts as oa

TEXT = {"type": "string"}
ID = {"type": "integer", "minimum": 1}
TIME = {"type": ["string", "null"], "format": "date-time"}
NUMBER = {"type": ["number", "null"]}
AGENT = {
    "type": ["object", "null"],
    "required": ["id", "email", "name"],
    "properties": {"id": ID, "email": TEXT, "name": TEXT},
}
STATUSES = ["scheduled", "sent", "delivered", "answered", "failed", "skipped", "expired"]
REASONS = ["no_phone", "invalid_phone", "landline", "opted_out", "too_recent", "reopened", None]


SURVEY = {
    "type": "object",
    "required": ["id", "ticket_id", "agent", "phone", "status", "score", "reason", "error"],
    "properties": {
        "id": ID,
        "ticket_id": ID,
        "customer_id": ID,
        "agent": AGENT,
        "phone": TEXT,
        "status": {"enum": STATUSES},
        "score": {"type": ["integer", "null"], "minimum": 1, "maximum": 5},
        "comment": TEXT,
        "reason": {"enum": REASONS},
        "error": {
            "type": ["object", "null"],
            "properties": {"code": {"type": ["string", "null"]}, "message": TEXT},
        },
        "due_at": TIME,
        "sent_at": TIME,
        "delivered_at": TIME,
        "answered_at": TIME,
    },
}
APPRAISAL_ROW = {
    "type": "object",
    "required": ["resolved", "sent", "answered", "response_rate", "average_score"],
    "properties": {
        "agent": AGENT,
        "team": {"type": ["object", "null"], "properties": {"id": ID, "name": TEXT}},
        "resolved": {"type": "integer"},
        "sent": {"type": "integer"},
        "delivered": {"type": "integer"},
        "answered": {"type": "integer"},
        "response_rate": {**NUMBER, "description": "percent of sent"},
        "average_score": NUMBER,
        "csat_percent": {**NUMBER, "description": "share of answers scoring 4-5"},
        "distribution": {
            "type": "object",
            "properties": {str(score): {"type": "integer"} for score in range(1, 6)},
        },
    },
}
DATE = {"type": "string", "format": "date"}


def document_part() -> dict[str, Any]:
    """Paths and schemas of ``/surveys`` and ``/reports/appraisal``."""
    return {
        "paths": {
            "/surveys": {
                "get": {
                    "operationId": "surveys_api.list_surveys",
                    "summary": "SMS surveys, newest first (an agent sees only their own)",
                    "parameters": [
                        oa.query_parameter("agent", ID, "the resolving agent's id"),
                        oa.query_parameter("ticket", ID, "a ticket's id"),
                        oa.query_parameter("customer", ID, "a customer's id"),
                        oa.query_parameter("status", {"enum": STATUSES}, "the survey's status"),
                        oa.query_parameter("from", DATE, "resolved on or after this day"),
                        oa.query_parameter("to", DATE, "resolved on or before this day"),
                        oa.query_parameter("page", ID, "1-based page"),
                        oa.query_parameter("per_page", ID, "rows per page"),
                    ],
                    "responses": {
                        "200": {
                            "description": "A page of surveys.",
                            "content": {
                                "application/json": {"schema": oa.ref("schemas", "SurveyList")}
                            },
                        },
                        **oa.error_responses("422"),
                    },
                },
            },
            "/reports/appraisal": {
                "get": {
                    "operationId": "surveys_api.appraisal",
                    "summary": "The staff appraisal per agent (or team) over a period",
                    "parameters": [
                        oa.query_parameter("from", DATE, "first day (included)"),
                        oa.query_parameter("to", DATE, "last day (included)"),
                        oa.query_parameter(
                            "by", {"enum": ["agent", "team"]}, "per agent or per team"
                        ),
                    ],
                    "responses": {
                        "200": {
                            "description": "One row per agent (only yours unless admin).",
                            "content": {
                                "application/json": {"schema": oa.ref("schemas", "Appraisal")}
                            },
                        },
                        **oa.error_responses("422"),
                    },
                },
            },
        },
        "schemas": {
            "Survey": SURVEY,
            "SurveyList": {
                "type": "object",
                "required": ["items", "page", "per_page", "has_next"],
                "properties": {
                    "items": {"type": "array", "items": oa.ref("schemas", "Survey")},
                    "page": ID,
                    "per_page": ID,
                    "has_next": {"type": "boolean"},
                    "next_page": {"type": ["integer", "null"]},
                },
            },
            "AppraisalRow": APPRAISAL_ROW,
            "Appraisal": {
                "type": "object",
                "required": ["items"],
                "properties": {
                    "from": DATE,
                    "to": DATE,
                    "items": {"type": "array", "items": oa.ref("schemas", "AppraisalRow")},
                },
            },
        },
    }
