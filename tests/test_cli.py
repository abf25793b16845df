"""The ``helpdesk`` command: every command helps, succeeds, or fails with a clear message."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from helpdesk.cli import main
from helpdesk.core.models import ApiToken, Customer, Ticket
from helpdesk.core.tokens import agent_for_api_token, hash_api_token
from helpdesk.extensions import db

COMMANDS = ["init-db", "demo", "create-agent", "create-token"]


def invoke(runner, *args: str, **kwargs):
    return runner.invoke(main, list(args), **kwargs)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(runner, command):
    result = invoke(runner, command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_init_db_upgrades_an_existing_database_without_losing_rows(runner, agent):
    from helpdesk.core import services

    services.open_ticket(subject="keep me", body="b", customer_email="c@example.com")
    result = invoke(runner, "init-db")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    assert db.session.scalar(select(func.count(Ticket.id))) == 1


def test_demo_loads_tickets_in_every_state_once(runner):
    result = invoke(runner, "demo", "--if-empty")
    assert result.exit_code == 0, result.output
    assert "admin@example.com" in result.output
    statuses = dict(
        db.session.execute(select(Ticket.status, func.count()).group_by(Ticket.status)).all()
    )
    assert set(statuses) == {"new", "open", "pending", "resolved", "closed"}
    assert sum(statuses.values()) == 50
    again = invoke(runner, "demo", "--if-empty")
    assert again.exit_code == 0 and "not loaded" in again.output
    assert db.session.scalar(select(func.count(Ticket.id))) == 50
    assert db.session.scalar(select(func.count(Customer.id))) >= 10


def test_create_agent_and_token(runner):
    result = invoke(
        runner,
        "create-agent",
        "--email",
        "New@Example.com",
        "--name",
        "Nia",
        "--password",
        "long enough pw",
        "--admin",
    )
    assert result.exit_code == 0, result.output
    token_run = invoke(runner, "create-token", "--agent", "new@example.com", "--name", "zapier")
    assert token_run.exit_code == 0, token_run.output
    token = token_run.output.strip()
    assert token.startswith("hd_") and len(token) > 40
    stored = db.session.scalars(select(ApiToken.token_hash)).all()
    assert stored == [hash_api_token(token)]  # only the hash is kept
    assert agent_for_api_token(token).email == "new@example.com"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["create-agent", "--email", "nope", "--name", "N", "--password", "long enough pw"],
            "not a valid e-mail",
        ),
        (
            ["create-agent", "--email", "a@example.com", "--name", "N", "--password", "short"],
            "at least 8",
        ),
        (
            [
                "create-agent",
                "--email",
                "a@example.com",
                "--name",
                "  ",
                "--password",
                "long enough",
            ],
            "name: is required",
        ),
        (["create-token", "--agent", "ghost@example.com"], "no active agent"),
        (["create-token"], "Missing option"),
        (["create-agent", "--email", "a@example.com"], "Missing option"),
    ],
)
def test_bad_arguments_fail_clearly(runner, args, message):
    result = invoke(runner, *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_duplicate_agent_is_refused(runner, agent):
    result = invoke(
        runner,
        "create-agent",
        "--email",
        agent.email.upper(),
        "--name",
        "Again",
        "--password",
        "long enough pw",
    )
    assert result.exit_code == 1
    assert "already exists" in result.output
