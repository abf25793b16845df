"""Agents' log in and out: hashed passwords, safe cookies, rate-limited attempts."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from helpdesk.core.accounts import update_agent
from helpdesk.core.models import Agent
from helpdesk.extensions import db
from tests.conftest import PASSWORD, login, post_form


@pytest.fixture
def strict_limits(app_config):
    app_config["LOGIN_RATE_LIMIT_ACCOUNT"] = "3/900"
    app_config["LOGIN_RATE_LIMIT_IP"] = "5/900"


def test_password_is_hashed(app, agent):
    stored = db.session.scalar(select(Agent.password_hash).where(Agent.id == agent.id))
    assert PASSWORD not in stored and stored.startswith("pbkdf2:sha256:1000$")


def test_production_hashes_with_scrypt():
    from helpdesk.config import DEFAULTS

    assert DEFAULTS["PASSWORD_HASH_METHOD"] == "scrypt"


def test_login_sets_a_safe_session_cookie_and_logout_ends_it(client, agent):
    response = login(client, "AGENT@example.com")
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/tickets").status_code == 200
    assert client.post("/logout").status_code == 400  # no CSRF token
    assert post_form(client, "/logout", {}, page="/tickets").status_code == 302
    assert client.get("/tickets").status_code == 302


def test_wrong_password_and_unknown_agent_look_the_same(client, agent):
    wrong = login(client, agent.email, "wrong password")
    unknown = login(client, "nobody@example.com", "wrong password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong e-mail or password" in wrong.get_data(as_text=True)
    assert wrong.get_data(as_text=True).count("Wrong") == unknown.get_data(as_text=True).count(
        "Wrong"
    )


def test_next_only_follows_local_paths(app, client, agent):
    token_page = "/login?next=https://evil.example/steal"
    response = post_form(client, token_page, {"email": agent.email, "password": PASSWORD})
    assert response.headers["Location"] == "/tickets"
    response = post_form(
        app.test_client(),
        "/login?next=/customers",
        {"email": agent.email, "password": PASSWORD},
        page="/login",
    )
    assert response.headers["Location"] == "/customers"


def test_failed_logins_are_limited_per_account(strict_limits, client, agent):
    for _ in range(3):
        assert login(client, agent.email, "bad guess").status_code == 401
    blocked = login(client, agent.email, PASSWORD)  # even the right password waits
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0


def test_failed_logins_are_limited_per_address(strict_limits, client, agent):
    for number in range(5):
        assert login(client, f"guess{number}@example.com", "bad guess").status_code == 401
    assert login(client, agent.email, PASSWORD).status_code == 429


def test_deactivated_agent_is_logged_out_and_cannot_log_in(app, agent, admin, agent_client):
    assert agent_client.get("/tickets").status_code == 200
    update_agent(agent, actor=admin, active=False)
    assert agent_client.get("/tickets").status_code == 302
    assert login(app.test_client(), agent.email).status_code == 401


def test_security_headers(client):
    response = client.get("/login")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
