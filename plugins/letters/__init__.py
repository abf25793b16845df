"""Complaint letters: a guided complaint form for customers whose answers become a structured
claim on the ticket, what was granted when it is resolved, and reply letters that agents fill
in from a library of safe (sandboxed) templates and send as replies.

Everything joins the core through hooks: the portal's complaint form (``helpdesk_portal_forms``),
the claim of a ticket opened through the API (``helpdesk_ticket_input``), the ticket page's
panel, the queue filter, the ticket JSON and the OpenAPI part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import select

from helpdesk import Ticket, hookimpl, render_panel
from plugins.letters import service
from plugins.letters.api import bp as api_bp
from plugins.letters.models import GRANTS, OUTCOMES, Claim
from plugins.letters.openapi import document_part
from plugins.letters.views import bp

__version__ = "1.0.0"
HERE = Path(__file__).resolve().parent


@hookimpl
def helpdesk_config_defaults() -> dict[str, Any]:
    return {
        # Longest text of a template's subject or body (characters); longer is refused on save.
        "LETTERS_MAX_TEMPLATE_CHARS": 100_000,
        # A letter being filled in stops (422) after this many seconds...
        "LETTERS_RENDER_SECONDS": 2.0,
        # ...or this many characters of output per part (text, HTML)...
        "LETTERS_MAX_OUTPUT": 1_000_000,
        # ...or this many loop steps and calls.
        "LETTERS_MAX_LOOP_STEPS": 100_000,
        # The currency the guided complaint form starts with ("" for DEFAULT_CURRENCY).
        "LETTERS_DEFAULT_CURRENCY": "",
        # The font of the PDF letters (TrueType, with Latin, Greek and Hebrew): Debian's DejaVu.
        "LETTERS_PDF_FONT": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        # The letterhead's lines under the business's name (address, phone, web), one per line.
        "LETTERS_LETTERHEAD": "",
    }


@hookimpl
def helpdesk_blueprints() -> list:
    return [bp, api_bp]


@hookimpl
def helpdesk_migration_dirs() -> list[str]:
    return [str(HERE / "migrations")]


@hookimpl
def helpdesk_nav_items(agent) -> list[dict[str, Any]]:
    return [{"label": _("Letters"), "endpoint": "letters.templates", "admin_only": False}]


@hookimpl
def helpdesk_reports() -> list[dict[str, Any]]:
    return [
        {
            "title": _("Complaints and what they cost"),
            "endpoint": "letters.report_page",
            "description": _(
                "Claims by outcome wanted, asked versus granted per month, the cost of what "
                "was granted and the time to resolve a claimed ticket."
            ),
        }
    ]


@hookimpl
def helpdesk_portal_forms() -> dict[str, str]:
    return {"complaint": "letters.complaint"}


@hookimpl
def helpdesk_ticket_input(ticket, data) -> None:
    if data.get("claim") is not None:
        service.store_claim(ticket, service.clean_claim(data["claim"]), new_ticket=True)


@hookimpl
def helpdesk_ticket_panels(ticket) -> list[dict[str, Any]]:
    claim, choices = service.claim_and_choices(ticket)
    values: dict[str, Any] = {"ticket": ticket, "claim": claim}
    if claim is not None:
        values |= {
            "claim_data": service.claim_json(claim, service.agents_by_id([claim.granted_by_id])),
            "outcome_labels": service.outcome_labels(),
            "grants": GRANTS,
            "values": {},
        }
    side = render_panel(
        "letters/ticket_panel.html",
        **values,
        templates=service.suggested(choices, claim),
        compose_url=url_for("letters.compose", ticket_id=ticket.id),
    )
    panels = [{"title": _("Complaint claim and letters"), "html": side}]
    if claim is not None:
        top = render_panel("letters/claim_summary.html", **values)
        panels.insert(0, {"title": _("Claim"), "html": top, "place": "top"})
    return panels


def _filter_by_claim(query, value: str):
    """Tickets with a claim (``any``), a claim asking for ``value``, or resolved ones granted
    ``granted:<what>``."""
    claims = select(Claim.ticket_id)
    if value.startswith("granted:"):
        claims = claims.where(Claim.granted == value.removeprefix("granted:"))
    elif value != "any":
        claims = claims.where(Claim.outcome_wanted == value)
    return query.where(Ticket.id.in_(claims))


@hookimpl
def helpdesk_queue_filters() -> list[dict[str, Any]]:
    wants, granted = _("Wants: %(o)s"), _("Granted: %(g)s")  # translated once, filled below
    choices = [("any", _("Any claim"))]
    choices += [(o, wants % {"o": o.replace("_", " ")}) for o in OUTCOMES]
    choices += [(f"granted:{g}", granted % {"g": g.replace("_", " ")}) for g in GRANTS]
    return [{"name": "claim", "label": _("Claim"), "choices": choices, "apply": _filter_by_claim}]


@hookimpl
def helpdesk_queue_badges(tickets) -> dict[int, list[dict[str, str]]]:
    found = service.claims_of(ticket.id for ticket in tickets)
    if not found:
        return {}
    label, granted, still_open = _("Claim: %(o)s"), _("Granted: %(g)s"), _("Open claim")
    return {
        ticket_id: [
            {
                "label": label % {"o": claim.outcome_wanted.replace("_", " ")},
                "title": granted % {"g": claim.granted} if claim.granted else still_open,
                "tone": "green" if claim.granted else "blue",
            }
        ]
        for ticket_id, claim in found.items()
    }


@hookimpl
def helpdesk_ticket_json(tickets) -> dict[int, dict[str, Any]]:
    found = service.claims_of(ticket.id for ticket in tickets)
    agents = service.agents_by_id(claim.granted_by_id for claim in found.values())
    return {
        ticket.id: {"claim": service.claim_json(found.get(ticket.id), agents)} for ticket in tickets
    }


@hookimpl
def helpdesk_openapi() -> dict[str, Any]:
    return document_part()
