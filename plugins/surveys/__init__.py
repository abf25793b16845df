"""SMS surveys after each resolved ticket, and the staff appraisal they feed.

A resolve schedules a survey (one row and its outbox item, after a delay); ``helpdesk worker``
decides when it is due (the number, opt-out, at most once per customer per N days, reopened:
else skipped with a visible reason; quiet hours in the customer's time zone: held) and sends
it through the configured gateway; the gateway's signed webhooks bring the answers, opt-outs
and delivery reports; a low score adds a note, mails the team lead and marks the ticket for a
follow-up. The appraisal report and the API read the scores per agent and team (the report
from a daily roll-up, ``helpdesk surveys rebuild-rollup`` rebuilds it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import render_template, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select

from helpdesk import Agent, Ticket, hookimpl, render_panel
from plugins.surveys import gateways, service
from plugins.surveys.api import bp as api_bp
from plugins.surveys.cli import surveys as surveys_commands
from plugins.surveys.models import Survey
from plugins.surveys.openapi import document_part
from plugins.surveys.views import bp

__version__ = "1.0.0"
HERE = Path(__file__).resolve().parent
OPEN = ("new", "open", "pending")


@hookimpl
def helpdesk_config_defaults() -> dict[str, Any]:
    return {
        # The gateway: "twilio" (or a Twilio-compatible provider), "console" (the log), or
        # one a plugin adds with helpdesk_sms_backends.
        "SURVEYS_SMS_BACKEND": "console",
        "SURVEYS_TWILIO_BASE_URL": "https://api.twilio.com",
        "SURVEYS_TWILIO_ACCOUNT_SID": "",
        # Also the key that signs the gateway's webhooks.
        "SURVEYS_TWILIO_AUTH_TOKEN": "",
        # The sender: a number in E.164, or a Messaging Service SID ("MG...").
        "SURVEYS_SMS_FROM": "",
        # Seconds from the resolve to the SMS.
        "SURVEYS_DELAY_SECONDS": 3600,
        # No SMS between these hours in the customer's time zone ("21-9"; "" disables).
        "SURVEYS_QUIET_HOURS": "21-9",
        # At most one survey per customer in this many days.
        "SURVEYS_MIN_DAYS_BETWEEN": 14,
        # Region for numbers without a country code (default: PHONE_DEFAULT_REGION).
        "SURVEYS_DEFAULT_REGION": None,
        # Seconds before a call to the gateway is given up (retried later).
        "SURVEYS_TWILIO_TIMEOUT": 10,
        # Days after sending within which a reply counts for the survey.
        "SURVEYS_REPLY_DAYS": 7,
        # Largest webhook body accepted (413 beyond).
        "SURVEYS_WEBHOOK_MAX_BYTES": 16 * 1024,
    }


@hookimpl
def helpdesk_blueprints() -> list:
    return [bp, api_bp]


@hookimpl
def helpdesk_cli_commands() -> list:
    return [surveys_commands]


@hookimpl
def helpdesk_migration_dirs() -> list[str]:
    return [str(HERE / "migrations")]


@hookimpl
def helpdesk_sms_backends() -> dict[str, Any]:
    return {"twilio": gateways.make_twilio, "console": gateways.make_console}


@hookimpl
def helpdesk_outbox_senders() -> dict[str, Any]:
    return {service.CHANNEL: service.deliver}


@hookimpl
def helpdesk_ticket_status_changing(ticket, old, new, actor) -> None:
    # In the status change's own transaction: nothing is lost, and no second commit.
    if new == "resolved" and old in OPEN:
        service.schedule(ticket, actor.id if isinstance(actor, Agent) else ticket.assignee_id)
    elif new in OPEN and old in ("resolved", "closed"):
        service.drop_reopened(ticket)


@hookimpl
def helpdesk_nav_items(agent) -> list[dict[str, Any]]:
    return [{"label": _("SMS survey"), "endpoint": "surveys.templates", "admin_only": True}]


@hookimpl
def helpdesk_reports() -> list[dict[str, Any]]:
    return [
        {
            "title": _("Staff appraisal (SMS surveys)"),
            "endpoint": "surveys.report_page",
            "description": _(
                "Per agent and team: surveys sent and answered, average score, CSAT, "
                "distribution, weekly trend and low-score tickets."
            ),
        }
    ]


@hookimpl
def helpdesk_ticket_panels(ticket) -> dict[str, Any] | None:
    surveys = service.ticket_surveys(ticket)
    if not surveys:
        return None
    html = render_panel(
        "surveys/ticket_panel.html",
        surveys=surveys,
        ticket=ticket,
        status_of=service.public_status,
        follow_up=any(s.follow_up for s in surveys),
        action=url_for("surveys.follow_up_done", ticket_id=ticket.id),
    )
    return {"title": _("SMS survey"), "html": html}


@hookimpl
def helpdesk_customer_panels(customer) -> dict[str, Any]:
    html = render_template(
        "surveys/customer_panel.html",
        surveys=service.customer_surveys(customer),
        opt_out=service.opt_out_states([customer])[customer.id],
        status_of=service.public_status,
    )
    return {"title": _("SMS surveys"), "html": Markup(html)}


def _low_score_tickets(query, value: str):
    """Tickets waiting for a follow-up after a low survey score."""
    waiting = select(Survey.ticket_id).where(Survey.follow_up.is_(True))
    return query.where(Ticket.id.in_(waiting))


@hookimpl
def helpdesk_queue_filters() -> list[dict[str, Any]]:
    return [
        {
            "name": "low_score",
            "label": _("Survey"),
            "choices": [("1", _("Low score: follow up"))],
            "apply": _low_score_tickets,
        }
    ]


@hookimpl
def helpdesk_queue_badges(tickets) -> dict[int, list[dict[str, str]]]:
    waiting = service.follow_up_ticket_ids([ticket.id for ticket in tickets])
    if not waiting:
        return {}
    badge = {"label": _("Low score"), "title": _("Follow up the survey"), "tone": "red"}
    return {ticket_id: [badge] for ticket_id in waiting}


@hookimpl
def helpdesk_customer_json(customers) -> dict[int, dict[str, Any]]:
    states = service.opt_out_states(list(customers))
    scores = service.last_scores([customer.id for customer in customers])
    return {
        customer.id: {
            "sms_opt_out": bool(states[customer.id] and states[customer.id].opted_out),
            "surveys_last_score": scores.get(customer.id),
        }
        for customer in customers
    }


@hookimpl
def helpdesk_openapi() -> dict[str, Any]:
    return document_part()
