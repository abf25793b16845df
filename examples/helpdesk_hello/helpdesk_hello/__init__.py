"""Greets tickets: a page, a ticket panel, a top-bar link, a setting, a command and a table.

A complete helpdesk plugin in a few lines. It imports from ``helpdesk`` only (the public API)
and implements hooks; everything else is ordinary Flask, SQLAlchemy and click.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask import current_app, render_template
from flask.cli import with_appcontext
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import func, select

from helpdesk import db, hookimpl
from helpdesk_hello.models import Greeting
from helpdesk_hello.views import bp

__version__ = "1.0.0"
HERE = Path(__file__).resolve().parent


def greeting_counts(ticket_ids: list[int]) -> dict[int, int]:
    """How many times each ticket was greeted, in one query."""
    rows = db.session.execute(
        select(Greeting.ticket_id, func.count(Greeting.id))
        .where(Greeting.ticket_id.in_(ticket_ids))
        .group_by(Greeting.ticket_id)
    )
    return dict(rows.all())


@hookimpl
def helpdesk_config_defaults() -> dict[str, Any]:
    return {"HELLO_GREETING": "Hello"}


@hookimpl
def helpdesk_blueprints() -> list:
    return [bp]


@hookimpl
def helpdesk_migration_dirs() -> list[str]:
    return [str(HERE / "migrations")]


@hookimpl
def helpdesk_nav_items(agent) -> list[dict[str, Any]]:
    return [{"label": _("Hello"), "endpoint": "hello.index"}]


@hookimpl
def helpdesk_ticket_panels(ticket) -> dict[str, Any]:
    count = greeting_counts([ticket.id]).get(ticket.id, 0)
    html = render_template("hello/panel.html", ticket=ticket, count=count)
    return {"title": _("Hello"), "html": Markup(html)}


@hookimpl
def helpdesk_ticket_json(tickets) -> dict[int, dict[str, Any]]:
    counts = greeting_counts([ticket.id for ticket in tickets])
    return {ticket.id: {"hello_greetings": counts.get(ticket.id, 0)} for ticket in tickets}


@click.command("hello")
@click.option("--name", default="world", help="Whom to greet.")
@with_appcontext
def hello_command(name: str) -> None:
    """Greet someone and say how many tickets were greeted."""
    total = db.session.scalar(select(func.count(Greeting.id)))
    click.echo(f"{current_app.config['HELLO_GREETING']}, {name}! {total} greetings so far.")


@hookimpl
def helpdesk_cli_commands() -> list:
    return [hello_command]
