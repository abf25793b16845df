"""Secrets handed to people: customers' status links, agents' API tokens and invitations."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import bindparam, select

from helpdesk.core.errors import NotFound
from helpdesk.core.models import Agent, ApiToken, Ticket, utcnow
from helpdesk.extensions import db

API_TOKEN_PREFIX = "hd_"
_LINK_SALT = "helpdesk.ticket-link"
_INVITE_SALT = "helpdesk.agent-invite"


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def ticket_link_token(ticket: Ticket) -> str:
    """The signed token in a customer's private status link (never the bare ticket id)."""
    return _serializer(_LINK_SALT).dumps([ticket.id, ticket.public_key])


def ticket_from_link_token(token: str) -> Ticket | None:
    """The ticket a status-link token opens, or ``None`` if forged, expired or revoked."""
    max_age = timedelta(days=current_app.config["PORTAL_LINK_MAX_AGE_DAYS"])
    try:
        ticket_id, key = _serializer(_LINK_SALT).loads(token, max_age=int(max_age.total_seconds()))
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(ticket_id, int):
        return None
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or not secrets.compare_digest(ticket.public_key, str(key)):
        return None
    return ticket


def hash_api_token(raw: str) -> str:
    """What is stored of an API token: its SHA-256 (tokens are random, so no salt is needed)."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def create_api_token(agent: Agent, name: str = "") -> str:
    """Make a token for ``agent``, store only its hash, and return the token (shown once)."""
    raw = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(agent_id=agent.id, name=name[:100], token_hash=hash_api_token(raw)))
    db.session.commit()
    return raw


def api_tokens_of(agent: Agent) -> list[ApiToken]:
    """The agent's API tokens, newest first (revoked ones too, marked as such)."""
    return list(
        db.session.scalars(
            select(ApiToken).where(ApiToken.agent_id == agent.id).order_by(ApiToken.id.desc())
        )
    )


def revoke_api_token(agent: Agent, token_id: int) -> ApiToken:
    """Revoke one of ``agent``'s own tokens; another agent's token is ``NotFound``."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.agent_id != agent.id:
        raise NotFound("no such token")
    token.revoked = True
    db.session.commit()
    return token


# Built once: a live token and its agent (one query on every API request).
_TOKEN_AND_AGENT = (
    select(ApiToken, Agent)
    .join(Agent, Agent.id == ApiToken.agent_id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked.is_(False))
)


def agent_for_api_token(raw: str) -> Agent | None:
    """The active agent a bearer token belongs to, or ``None``."""
    if not raw.startswith(API_TOKEN_PREFIX) or len(raw) > 200:
        return None
    found = db.session.execute(_TOKEN_AND_AGENT, {"token_hash": hash_api_token(raw)}).first()
    if found is None:
        return None
    token, agent = found
    if not agent.active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        token.last_used_at = now
    return agent


def invite_token(agent: Agent) -> str:
    """A signed, expiring token that lets a new agent set their password once."""
    return _serializer(_INVITE_SALT).dumps([agent.id, agent.session_key])


def agent_from_invite_token(token: str) -> Agent | None:
    """The agent an invitation is for, or ``None`` if forged, expired or already used."""
    max_age = current_app.config["INVITE_MAX_AGE_HOURS"] * 3600
    try:
        agent_id, key = _serializer(_INVITE_SALT).loads(token, max_age=max_age)
    except (BadSignature, ValueError, TypeError):
        return None
    agent = db.session.get(Agent, agent_id) if isinstance(agent_id, int) else None
    if agent is None or not agent.active or not secrets.compare_digest(agent.session_key, str(key)):
        return None
    return agent
