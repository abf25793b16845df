"""Admin pages (agents, teams) and agents' own API tokens."""

from __future__ import annotations

import hashlib
import html
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from helpdesk.core import services, tokens
from helpdesk.core.accounts import create_agent, create_team
from helpdesk.core.models import Agent, ApiToken, Message, Team, Ticket, TicketEvent
from helpdesk.extensions import db
from tests.conftest import PASSWORD, login, post_form

INVITE_RE = re.compile(r'value="(http://localhost/invite/[^"]+)"')
TOKEN_RE = re.compile(r'value="(hd_[^"]+)"')
NEW_PASSWORD = "a brand new passphrase"

ADMIN_PAGES = ["/admin/agents", "/admin/agents/1", "/admin/teams"]
ADMIN_POSTS = ["/admin/agents", "/admin/agents/1", "/admin/teams", "/admin/teams/1"]


def text(response) -> str:
    return response.get_data(as_text=True)


def fresh(model, row_id: int):
    db.session.expire_all()
    return db.session.get(model, row_id)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def invite(client: FlaskClient, **fields) -> str:
    """Invite through the admin form; the invitation link shown on the page."""
    data = {"email": "new@example.com", "name": "New Agent", "role": "agent", **fields}
    response = post_form(client, "/admin/agents", data)
    assert response.status_code == 200, text(response)
    match = INVITE_RE.search(text(response))
    assert match, "no invitation link on the page"
    return html.unescape(match.group(1)).removeprefix("http://localhost")


def edit_agent(client: FlaskClient, agent: Agent, **changes):
    data = {
        "name": agent.name,
        "role": agent.role,
        "teams": [str(team.id) for team in agent.teams],
        **({"active": "1"} if agent.active else {}),
    }
    data.update(changes)
    data = {key: value for key, value in data.items() if value is not None}
    return post_form(client, f"/admin/agents/{agent.id}", data)


# --- who may see what ------------------------------------------------------------------


@pytest.mark.parametrize("path", [*ADMIN_PAGES, "/account/tokens"])
def test_anonymous_is_sent_to_login(client, app, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize("path", [*ADMIN_POSTS, "/account/tokens"])
def test_anonymous_post_changes_nothing(client, admin, path):
    response = client.post(path, data={"email": "x@example.com", "name": "X"})
    assert response.status_code in (302, 400)
    assert count(Agent) == 1 and count(Team) == 0 and count(ApiToken) == 0


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_agents_get_403_on_admin_pages(agent_client, agent, path):
    assert agent_client.get(path).status_code == 403


@pytest.mark.parametrize("path", ADMIN_POSTS)
def test_agents_cannot_post_to_admin_pages(agent_client, agent, path):
    csrf = re.search(
        r'name="csrf_token" value="([^"]+)"', text(agent_client.get("/account/tokens"))
    )
    data = {"csrf_token": csrf.group(1), "email": "x@example.com", "name": "X", "role": "admin"}
    assert agent_client.post(path, data=data).status_code == 403
    assert count(Agent) == 1 and count(Team) == 1
    assert fresh(Agent, agent.id).role == "agent"


def test_agents_have_their_token_page(agent_client):
    page = text(agent_client.get("/account/tokens"))
    assert "My API tokens" in page and "/admin/teams" not in page


# --- invitations ---------------------------------------------------------------------------


def test_invite_lets_the_new_agent_set_a_password_once(admin_client, app, team):
    link = invite(admin_client, teams=[str(team.id)], role="admin")
    new = db.session.scalar(select(Agent).where(Agent.email == "new@example.com"))
    assert (
        new.password_hash is None and new.role == "admin" and [t.id for t in new.teams] == [team.id]
    )
    listing = text(admin_client.get("/admin/agents"))
    assert "New Agent" in listing and link not in html.unescape(listing)

    browser = app.test_client()
    assert browser.get(link).status_code == 200
    response = post_form(browser, link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert browser.get("/customers").status_code == 200

    assert app.test_client().get(link).status_code == 404
    assert browser.get(link).status_code == 404

    other = app.test_client()
    assert login(other, "new@example.com", NEW_PASSWORD).status_code == 302
    assert fresh(Agent, new.id).last_login_at is not None


def test_invite_page_without_password_cannot_log_in(admin_client, app):
    invite(admin_client)
    assert login(app.test_client(), "new@example.com", "").status_code == 401


def test_duplicate_invite_in_another_case_is_refused(admin_client, agent):
    response = post_form(
        admin_client, "/admin/agents", {"email": "AGENT@Example.com", "name": "Twin"}
    )
    assert response.status_code == 409
    assert "already exists" in text(response) and 'value="Twin"' in text(response)
    assert count(Agent) == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-address"),
        ("email", ""),
        ("name", ""),
        ("name", "N" * 201),
        ("role", "superuser"),
        ("teams", "abc"),
        ("teams", "999"),
        ("teams", "9" * 40),
    ],
)
def test_invalid_invite_is_422_with_input_kept(admin_client, admin, field, value):
    data = {"email": "kept@example.com", "name": "Kept Name", "role": "agent", field: value}
    response = post_form(admin_client, "/admin/agents", data)
    assert response.status_code == 422
    page = text(response)
    assert 'class="field-error"' in page and INVITE_RE.search(page) is None
    if field in ("email", "name"):
        assert f'value="{html.escape(value)}"' in page
    assert count(Agent) == 1


def test_new_invitation_link_resets_a_password(admin_client, agent, agent_client, app):
    page = text(post_form(admin_client, f"/admin/agents/{agent.id}", {"action": "invite"}))
    link = html.unescape(INVITE_RE.search(page).group(1)).removeprefix("http://localhost")
    browser = app.test_client()
    response = post_form(browser, link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert agent_client.get("/customers").status_code == 302  # the old session ended
    assert login(app.test_client(), agent.email, PASSWORD).status_code == 401
    assert login(app.test_client(), agent.email, NEW_PASSWORD).status_code == 302
    assert app.test_client().get(link).status_code == 404


# --- editing agents ------------------------------------------------------------------------


def test_edit_agent_role_name_and_teams(admin_client, agent, team):
    other = create_team("Complaints")
    response = edit_agent(
        admin_client, agent, name="Ana B. Agent", role="admin", teams=[str(other.id)]
    )
    assert response.status_code == 303
    changed = fresh(Agent, agent.id)
    assert (changed.name, changed.role, [t.name for t in changed.teams]) == (
        "Ana B. Agent",
        "admin",
        ["Complaints"],
    )


def test_invalid_edit_saves_nothing(admin_client, agent):
    response = edit_agent(admin_client, agent, name="N" * 201, role="admin")
    assert response.status_code == 422
    assert 'value="' + "N" * 201 + '"' in text(response)
    unchanged = fresh(Agent, agent.id)
    assert (unchanged.name, unchanged.role) == ("Ana Agent", "agent")
    assert edit_agent(admin_client, agent, role="root").status_code == 422
    assert edit_agent(admin_client, agent, teams=["x"]).status_code == 422
    assert fresh(Agent, agent.id).role == "agent"


def test_unknown_agent_and_team_are_404(admin_client):
    assert admin_client.get("/admin/agents/999").status_code == 404
    assert admin_client.get("/admin/agents/99999999999999999999").status_code == 404
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', text(admin_client.get("/admin/teams")))
    response = admin_client.post(
        "/admin/teams/999", data={"csrf_token": csrf.group(1), "name": "X"}
    )
    assert response.status_code == 404


def test_admin_cannot_deactivate_or_demote_themselves(admin_client, admin):
    response = edit_agent(admin_client, admin, active=None)
    assert response.status_code == 422
    assert "cannot deactivate yourself" in text(response)
    response = edit_agent(admin_client, admin, role="agent")
    assert response.status_code == 422
    assert "admin role" in text(response)
    me = fresh(Agent, admin.id)
    assert me.active and me.role == "admin"
    assert admin_client.get("/admin/agents").status_code == 200


def test_deactivated_agent_is_locked_out_and_history_stays(
    admin_client, agent, agent_client, api_headers, app
):
    ticket = services.open_ticket(
        subject="Printer", body="It jams", customer_email="c@example.com", assignee=agent
    )
    services.add_message(ticket, body="On it", author=agent)
    messages, events = count(Message), count(TicketEvent)
    assert agent_client.get("/customers").status_code == 200
    assert app.test_client().get("/api/v1/tickets", headers=api_headers).status_code == 200

    assert edit_agent(admin_client, agent, active=None).status_code == 303
    assert fresh(Agent, agent.id).active is False

    assert agent_client.get("/customers").status_code == 302  # the session stopped working
    assert login(app.test_client(), agent.email).status_code == 401
    assert app.test_client().get("/api/v1/tickets", headers=api_headers).status_code == 401
    assert (count(Message), count(TicketEvent)) == (messages, events)
    kept = fresh(Ticket, ticket.id)
    assert kept.assignee_id == agent.id
    assert "Deactivated" in text(admin_client.get("/admin/agents"))

    page = text(post_form(admin_client, f"/admin/agents/{agent.id}", {"action": "invite"}))
    assert page.count("Reactivate the agent first") == 1 and not INVITE_RE.search(page)

    assert edit_agent(admin_client, fresh(Agent, agent.id), active="1").status_code == 303
    assert login(app.test_client(), agent.email).status_code == 302


def test_hostile_agent_and_team_names_render_inert(admin_client):
    create_team("<script>alert('team')</script>")
    invite(admin_client, name='<img src=x onerror="alert(1)"> javascript:alert(2)')
    for path in ("/admin/agents", "/admin/teams"):
        page = text(admin_client.get(path))
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;" in page or "&lt;img" in page


def test_unicode_agent_and_team_names_round_trip(admin_client):
    names = ["שלום", "Ομάδα Σ", "Þjónusta", "Team 🚀"]
    for name in names:
        assert post_form(admin_client, "/admin/teams", {"name": name}).status_code == 303
    assert sorted(db.session.scalars(select(Team.name))) == sorted(names)
    page = text(admin_client.get("/admin/teams"))
    assert all(f'value="{name}"' in page for name in names)
    invite(admin_client, name="Guðrún Ólafsdóttir 😀")
    assert "Guðrún Ólafsdóttir 😀" in text(admin_client.get("/admin/agents"))


def test_agent_list_queries_do_not_grow_with_rows(admin_client, team, count_queries):
    create_agent(email="one@example.com", name="One", team_ids=[team.id])
    with count_queries as few:
        assert admin_client.get("/admin/agents").status_code == 200
    extra = create_team("Extra")
    for n in range(10):
        create_agent(email=f"a{n}@example.com", name=f"Agent {n}", team_ids=[team.id, extra.id])
    with count_queries as many:
        response = admin_client.get("/admin/agents")
    assert text(response).count("/admin/agents/") >= 12
    assert many.count == few.count, many.statements
    with count_queries as teams_page:
        assert admin_client.get("/admin/teams").status_code == 200
    assert teams_page.count <= few.count


# --- teams ---------------------------------------------------------------------------------


def test_team_create_rename_and_member_counts(admin_client, agent, team):
    assert post_form(admin_client, "/admin/teams", {"name": "Complaints"}).status_code == 303
    page = text(admin_client.get("/admin/teams"))
    assert re.search(r'value="Support">.*?</td>\s*<td>1</td>', page, re.S)
    assert re.search(r'value="Complaints">.*?</td>\s*<td>0</td>', page, re.S)
    response = post_form(
        admin_client, f"/admin/teams/{team.id}", {"name": "Help"}, page="/admin/teams"
    )
    assert response.status_code == 303
    assert fresh(Team, team.id).name == "Help"


def test_team_lead_is_chosen_changed_and_cleared(admin_client, agent, team):
    page = text(admin_client.get("/admin/teams"))
    assert f'<option value="{agent.id}">{agent.name}</option>' in page
    saved = post_form(
        admin_client,
        f"/admin/teams/{team.id}",
        {"name": "Support", "lead": str(agent.id)},
        page="/admin/teams",
    )
    assert saved.status_code == 303 and fresh(Team, team.id).lead_id == agent.id
    assert f'<option value="{agent.id}" selected>' in text(admin_client.get("/admin/teams"))
    post_form(admin_client, f"/admin/teams/{team.id}", {"name": "Support", "lead": ""})
    assert fresh(Team, team.id).lead_id is None


@pytest.mark.parametrize("lead", ["999", "abc", "9" * 40, "-1"])
def test_a_team_lead_must_be_an_active_agent(admin_client, agent, team, lead):
    post_form(admin_client, f"/admin/teams/{team.id}", {"name": "Support", "lead": str(agent.id)})
    response = post_form(admin_client, f"/admin/teams/{team.id}", {"name": "Renamed", "lead": lead})
    assert response.status_code == 422 and "choose an active agent" in text(response)
    assert (fresh(Team, team.id).name, fresh(Team, team.id).lead_id) == ("Support", agent.id)


def test_a_deactivated_agent_cannot_become_lead(admin_client, agent, team):
    agent.active = False
    db.session.commit()
    response = post_form(
        admin_client, f"/admin/teams/{team.id}", {"name": "Support", "lead": str(agent.id)}
    )
    assert response.status_code == 422 and fresh(Team, team.id).lead_id is None


@pytest.mark.parametrize("name", ["Complaints", "", "   ", "T" * 101])
def test_bad_team_names_are_422(admin_client, team, name):
    create_team("Complaints")
    response = post_form(admin_client, "/admin/teams", {"name": name})
    assert response.status_code == 422
    assert "Nothing was saved" in text(response)
    response = post_form(
        admin_client, f"/admin/teams/{team.id}", {"name": name}, page="/admin/teams"
    )
    assert response.status_code == 422
    assert f'value="{name}"' in text(response)
    assert count(Team) == 2 and fresh(Team, team.id).name == "Support"


def test_renaming_a_team_to_its_own_name_is_fine(admin_client, team):
    response = post_form(
        admin_client, f"/admin/teams/{team.id}", {"name": "Support"}, page="/admin/teams"
    )
    assert response.status_code == 303


# --- CSRF ----------------------------------------------------------------------------------


def test_posts_without_csrf_are_400_and_save_nothing(admin_client, admin, agent, team):
    posts = [
        ("/admin/agents", {"email": "x@example.com", "name": "X"}),
        (f"/admin/agents/{agent.id}", {"name": "X", "role": "admin"}),
        ("/admin/teams", {"name": "New"}),
        (f"/admin/teams/{team.id}", {"name": "Renamed"}),
        ("/account/tokens", {"name": "t"}),
    ]
    for path, data in posts:
        assert admin_client.post(path, data=data).status_code == 400, path
    assert count(Agent) == 2 and count(ApiToken) == 0
    assert fresh(Team, team.id).name == "Support" and count(Team) == 1
    assert fresh(Agent, agent.id).role == "agent"


# --- API tokens ----------------------------------------------------------------------------


def test_token_is_shown_once_and_only_its_hash_is_stored(agent_client, agent):
    response = post_form(agent_client, "/account/tokens", {"name": "Zapier ✨"})
    assert response.status_code == 200
    raw = TOKEN_RE.search(text(response)).group(1)
    stored = db.session.scalar(select(ApiToken))
    assert stored.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert stored.name == "Zapier ✨" and stored.agent_id == agent.id
    assert raw not in (stored.token_hash, stored.name)
    assert tokens.agent_for_api_token(raw).id == agent.id
    listing = text(agent_client.get("/account/tokens"))
    assert "Zapier ✨" in listing and raw not in listing and TOKEN_RE.search(listing) is None


def test_over_long_token_name_is_422(agent_client):
    response = post_form(agent_client, "/account/tokens", {"name": "n" * 101})
    assert response.status_code == 422 and 'value="' + "n" * 101 + '"' in text(response)
    assert count(ApiToken) == 0


def test_revoke_my_token(agent_client, agent, api_token, api_headers, app):
    token_id = db.session.scalar(select(ApiToken.id))
    assert app.test_client().get("/api/v1/tickets", headers=api_headers).status_code == 200
    response = post_form(agent_client, "/account/tokens", {"revoke": str(token_id)})
    assert response.status_code == 303
    assert fresh(ApiToken, token_id).revoked is True
    assert tokens.agent_for_api_token(api_token) is None
    assert "Revoked" in text(agent_client.get("/account/tokens"))
    assert app.test_client().get("/api/v1/tickets", headers=api_headers).status_code == 401


@pytest.mark.parametrize("value", ["other", "abc", "", "9" * 40, "2147483648", "999"])
def test_cannot_revoke_others_or_unknown_tokens(agent_client, admin, value):
    theirs = tokens.create_api_token(admin, "admin's")
    their_id = db.session.scalar(select(ApiToken.id))
    target = str(their_id) if value == "other" else value
    response = post_form(agent_client, "/account/tokens", {"revoke": target})
    assert response.status_code == 404
    assert fresh(ApiToken, their_id).revoked is False
    assert tokens.agent_for_api_token(theirs).id == admin.id
    assert "admin&#39;s" not in text(agent_client.get("/account/tokens"))
