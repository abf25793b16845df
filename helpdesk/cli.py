"""The ``helpdesk`` command: Flask's commands (``run``, ``shell``, ``db``) plus the core's own."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup, NoAppException, with_appcontext
from sqlalchemy.exc import OperationalError, ProgrammingError

from helpdesk.config import ConfigError
from helpdesk.core.errors import HelpdeskError
from helpdesk.extensions import db, write_intent


def _clear_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command that writes (see ``write_intent``), turning the errors a user can cause
    into a one-line message and a non-zero exit."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with write_intent():
                return command(*args, **kwargs)
        except HelpdeskError as exc:
            raise click.ClickException(exc.message) from None
        except (OperationalError, ProgrammingError) as exc:
            db.session.rollback()
            raise click.ClickException(
                f"the database is not usable ({exc.orig}); is it running, and did you run "
                "`helpdesk init-db`?"
            ) from None

    return wrapper


def _load_app() -> Flask:
    from helpdesk.app import create_app

    try:
        return create_app()
    except ConfigError as exc:
        raise NoAppException(str(exc)) from None


@click.group(cls=FlaskGroup, create_app=_load_app, add_version_option=False)
def main() -> None:
    """helpdesk: a help desk whose business features are plugins."""


def register_commands(app: Flask) -> None:
    """Add the core's commands to ``app.cli`` (``helpdesk`` and ``flask`` both show them)."""
    from helpdesk.core.mail.cli import mail
    from helpdesk.core.orders_cli import orders
    from helpdesk.core.worker import worker_command
    from helpdesk.plugin_commands import plugins

    commands = (init_db, demo, create_agent, create_token, mail, worker_command, orders, plugins)
    for command in commands:
        app.cli.add_command(command)


@click.command("init-db")
@with_appcontext
@_clear_errors
def init_db() -> None:
    """Create the database or upgrade it to the latest schema, with the tables of every
    enabled plugin (keeps every row)."""
    from helpdesk.plugins import current_plugins

    current_plugins().upgrade()
    click.echo(f"Database is up to date: {db.engine.url.render_as_string(hide_password=True)}")


@click.command("demo")
@click.option("--if-empty", is_flag=True, help="Only load when the database has no tickets.")
@with_appcontext
@_clear_errors
def demo(if_empty: bool) -> None:
    """Load demo agents, teams, customers and about 50 tickets in every state."""
    from helpdesk.core.demo import DEMO_ADMIN, load_demo

    created = load_demo(only_if_empty=if_empty)
    if created:
        click.echo(f"Loaded demo data: {created} tickets.")
    else:
        click.echo("Demo data not loaded: the database already has tickets.")
    click.echo(f"Demo login: {DEMO_ADMIN['email']} / {DEMO_ADMIN['password']}")


@click.command("create-agent")
@click.option("--email", required=True, help="The agent's e-mail (their login).")
@click.option("--name", required=True, help="The agent's name as customers see it.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="At least 8 characters (asked for when not given).",
)
@click.option("--admin", is_flag=True, help="Give the agent the admin role.")
@with_appcontext
@_clear_errors
def create_agent(email: str, name: str, password: str, admin: bool) -> None:
    """Add an agent who can log in at once."""
    from helpdesk.core.accounts import create_agent as create

    agent = create(email=email, name=name, password=password, role="admin" if admin else "agent")
    click.echo(f"Created {agent.role} {agent.name} <{agent.email}>.")


@click.command("create-token")
@click.option("--agent", "agent_email", required=True, help="E-mail of the agent it acts as.")
@click.option("--name", default="", help="What the token is for (shown to admins).")
@with_appcontext
@_clear_errors
def create_token(agent_email: str, name: str) -> None:
    """Print a new REST API token. Only its hash is stored: copy it now."""
    from helpdesk.core.accounts import agent_by_email
    from helpdesk.core.tokens import create_api_token

    agent = agent_by_email(agent_email)
    if agent is None or not agent.active:
        raise click.ClickException(f"no active agent with the e-mail {agent_email}")
    click.echo(create_api_token(agent, name))
