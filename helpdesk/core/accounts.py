"""Agents and teams: who works the tickets, with which role, in which teams."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.security import check_password_hash, generate_password_hash

from helpdesk.core.errors import Conflict, ValidationError
from helpdesk.core.models import (
    ROLES,
    STATUSES,
    Agent,
    StatusCount,
    Team,
    agent_teams,
    new_public_key,
    utcnow,
)
from helpdesk.core.validation import clean_choice, clean_email, clean_text, email_key
from helpdesk.extensions import db

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 512


@functools.cache
def _dummy_hash(method: str) -> str:
    """Checked against when the e-mail is unknown, so a failed login takes the same time
    either way (made on the first failed login, not at every start of the CLI)."""
    return generate_password_hash("not-a-real-password", method=method)


def _hash(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def agent_by_email(email: str) -> Agent | None:
    """The agent with this address, whatever its case."""
    return db.session.scalar(select(Agent).where(Agent.email == email_key(email)))


def clean_password(value: object) -> str:
    """A password long enough to be worth having."""
    if not isinstance(value, str) or len(value) < MIN_PASSWORD_LENGTH:
        raise ValidationError({"password": f"must be at least {MIN_PASSWORD_LENGTH} characters"})
    if len(value) > MAX_PASSWORD_LENGTH:
        raise ValidationError({"password": f"must be at most {MAX_PASSWORD_LENGTH} characters"})
    return value


def authenticate(email: str, password: str) -> Agent | None:
    """The active agent with this e-mail and password, or ``None``."""
    agent = agent_by_email(email or "")
    if agent is None or not agent.password_hash:
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password or "")
        return None
    if not check_password_hash(agent.password_hash, password or ""):
        return None
    if not agent.active:
        return None
    agent.last_login_at = utcnow()
    db.session.commit()
    return agent


def _teams(team_ids: Iterable[int]) -> list[Team]:
    ids = {int(team_id) for team_id in team_ids}
    teams = list(db.session.scalars(select(Team).where(Team.id.in_(ids)))) if ids else []
    if len(teams) != len(ids):
        raise ValidationError({"teams": "names a team that does not exist"})
    return teams


def create_agent(
    *,
    email: str,
    name: str,
    password: str | None = None,
    role: str = "agent",
    team_ids: Iterable[int] = (),
) -> Agent:
    """Add an agent. Without a password they must accept an invitation before logging in."""
    errors: dict[str, str] = {}
    clean: dict[str, object] = {}
    checks = {
        "email": lambda: clean_email(email),
        "name": lambda: clean_text(name, "name", max_length=current_app.config["MAX_NAME_LENGTH"]),
        "role": lambda: clean_choice(role, "role", ROLES),
        "password": lambda: None if password is None else clean_password(password),
        "teams": lambda: _teams(team_ids),
    }
    for field, check in checks.items():
        try:
            clean[field] = check()
        except ValidationError as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    if agent_by_email(str(clean["email"])) is not None:
        raise Conflict(f"an agent with the e-mail {clean['email']} already exists")
    agent = Agent(
        email=email_key(str(clean["email"])),
        name=clean["name"],
        role=clean["role"],
        password_hash=_hash(password) if password else None,
        teams=clean["teams"],
    )
    db.session.add(agent)
    db.session.commit()
    return agent


def set_password(agent: Agent, password: str) -> None:
    """Set a new password; every other session of the agent ends."""
    agent.password_hash = _hash(clean_password(password))
    agent.session_key = new_public_key()
    db.session.commit()


def update_agent(
    agent: Agent,
    *,
    actor: Agent,
    name: str | None = None,
    role: str | None = None,
    active: bool | None = None,
    team_ids: Iterable[int] | None = None,
) -> Agent:
    """Change an agent's name, role, teams or whether they may work. History stays."""
    if name is not None:
        agent.name = clean_text(name, "name", max_length=current_app.config["MAX_NAME_LENGTH"])
    if role is not None:
        role = clean_choice(role, "role", ROLES)
        if agent.id == actor.id and role != "admin":
            raise ValidationError({"role": "you cannot take away your own admin role"})
        agent.role = role
    if active is not None and active != agent.active:
        if agent.id == actor.id and not active:
            raise ValidationError({"active": "you cannot deactivate yourself"})
        agent.active = active
        agent.session_key = new_public_key()
    if team_ids is not None:
        agent.teams = _teams(team_ids)
    db.session.commit()
    return agent


def list_agents() -> list[Agent]:
    """Every agent, by name, with their teams loaded (two queries in all)."""
    return list(
        db.session.scalars(
            select(Agent).options(selectinload(Agent.teams)).order_by(Agent.name, Agent.id)
        )
    )


def list_teams() -> list[Team]:
    """Every team, by name."""
    return list(db.session.scalars(select(Team).order_by(Team.name)))


def team_member_counts() -> dict[int, int]:
    """How many agents each team has, by team id (one grouped query)."""
    rows = db.session.execute(
        select(agent_teams.c.team_id, func.count()).group_by(agent_teams.c.team_id)
    )
    return {team_id: count for team_id, count in rows}


def create_team(name: str) -> Team:
    """Add a team (and its rows in the status counter)."""
    name = clean_text(name, "name", max_length=100)
    if db.session.scalar(select(Team).where(Team.name == name)) is not None:
        raise ValidationError({"name": "a team with this name already exists"})
    team = Team(name=name)
    db.session.add(team)
    db.session.flush()
    db.session.add_all(StatusCount(team_key=team.id, status=s, count=0) for s in STATUSES)
    db.session.commit()
    return team


def update_team(team: Team, name: str, lead_id: int | None) -> Team:
    """Give a team a new name and lead (``None``: no lead; the lead must be an active agent)."""
    name = clean_text(name, "name", max_length=100)
    other = db.session.scalar(select(Team).where(Team.name == name, Team.id != team.id))
    if other is not None:
        raise ValidationError({"name": "a team with this name already exists"})
    lead = None if lead_id is None else db.session.get(Agent, lead_id)
    if lead_id is not None and (lead is None or not lead.active):
        raise ValidationError({"lead": "choose an active agent"})
    team.name, team.lead = name, lead
    db.session.commit()
    return team
