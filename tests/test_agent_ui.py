"""The agents' browser UI: queue, search, ticket page, actions, phone tickets, attachments."""

from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import quote

import pytest
from flask import g
from flask.testing import FlaskClient
from sqlalchemy import func, select

from helpdesk.core import attachments, services
from helpdesk.core.accounts import create_agent, create_team
from helpdesk.core.models import Attachment, Customer, Message, Ticket, TicketEvent
from helpdesk.extensions import db
from tests.conftest import PASSWORD, csrf_from, login, post_form

HOSTILE = '<script>alert(1)</script> <a href="javascript:alert(2)">x</a> data:text/html,<b>hi</b>'
UNICODE = "שלום עולם · Καλημέρα κόσμε · Þórður Guðrúnarson ævintýri · 🎉👍🏽"


def make_ticket(
    subject: str = "Broken lamp",
    body: str = "The lamp arrived broken.",
    email: str = "gudrun@example.is",
    name: str = "Guðrún",
    **kwargs: Any,
) -> Ticket:
    """A ticket opened through the real service, as the portal would."""
    return services.open_ticket(
        subject=subject, body=body, customer_email=email, customer_name=name, **kwargs
    )


def html(response) -> str:
    return response.get_data(as_text=True)


def queue_refs(client: FlaskClient, query: str = "") -> list[int]:
    """The ticket ids listed in the queue for ``query``, in order."""
    response = client.get(f"/tickets{query}")
    assert response.status_code == 200, html(response)
    body = html(response).split("<tbody>", 1)[-1]
    return [int(n) for n in re.findall(r'<td><a href="/tickets/(\d+)">#\d+</a></td>', body)]


def events_of(ticket_id: int) -> list[str]:
    return list(
        db.session.scalars(
            select(TicketEvent.kind)
            .where(TicketEvent.ticket_id == ticket_id)
            .order_by(TicketEvent.id)
        )
    )


def message_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Message))


def fresh(ticket_id: int) -> Ticket:
    db.session.expire_all()
    return db.session.get(Ticket, ticket_id)


@pytest.fixture
def small_limits(app_config: dict[str, Any]) -> dict[str, Any]:
    """Smaller body and attachment limits, so over-size input is cheap to send."""
    app_config.update(MAX_BODY_LENGTH=2000, MAX_ATTACHMENT_SIZE=1000)
    return app_config


# --- login -----------------------------------------------------------------------------------


def test_every_page_requires_login(client, agent):
    ticket = make_ticket()
    for path in (
        "/tickets",
        "/tickets?q=lamp",
        "/tickets/new",
        f"/tickets/{ticket.id}",
        f"/tickets/{ticket.id}/attachments/1",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login"), path
    token = csrf_from(client, "/login")
    for action in ("reply", "update", "merge"):
        response = client.post(
            f"/tickets/{ticket.id}/{action}",
            data={"csrf_token": token, "body": "hi", "target": "1", "version": "1"},
        )
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")
    assert message_count() == 1


# --- queue -----------------------------------------------------------------------------------


@pytest.fixture
def tickets_in_every_status(app, agent):
    """One ticket per status, all in the agent's team."""
    made = {}
    for status in ("new", "open", "pending", "resolved", "closed"):
        ticket = make_ticket(subject=f"{status} ticket", email=f"{status}@example.com")
        if status != "new":
            services.update_ticket(ticket, {"status": status}, actor=agent)
        made[status] = ticket.id
    return made


def test_queue_shows_open_statuses_by_default(agent_client, tickets_in_every_status):
    ids = set(queue_refs(agent_client))
    expected = {tickets_in_every_status[s] for s in ("new", "open", "pending")}
    assert ids == expected


def test_queue_filters_by_one_or_several_statuses(agent_client, tickets_in_every_status):
    made = tickets_in_every_status
    assert queue_refs(agent_client, "?status=resolved") == [made["resolved"]]
    several = set(queue_refs(agent_client, "?status=resolved&status=closed"))
    assert several == {made["resolved"], made["closed"]}
    assert set(queue_refs(agent_client, "?status=new,pending")) == {made["new"], made["pending"]}
    assert set(queue_refs(agent_client, "?status=")) == set(made.values())


def test_queue_filters_priority_kind_assignee_team_customer_and_combined(agent_client, agent, team):
    other_team = create_team("Complaints")
    colleague = create_agent(email="bo@example.com", name="Bo", password=PASSWORD)
    mine = make_ticket(subject="mine", priority="high", kind="complaint", assignee=agent)
    theirs = make_ticket(
        subject="theirs", email="x@example.com", assignee=colleague, team=other_team.id
    )
    nobody = make_ticket(subject="nobody", email="y@example.com", team=team.id, priority="low")
    both = make_ticket(
        subject="both", kind="complaint", priority="high", team=team.id, assignee=agent
    )

    assert set(queue_refs(agent_client, "?priority=high")) == {mine.id, both.id}
    assert set(queue_refs(agent_client, "?kind=complaint")) == {mine.id, both.id}
    assert set(queue_refs(agent_client, "?kind=support")) == {theirs.id, nobody.id}
    assert set(queue_refs(agent_client, "?assignee=me")) == {mine.id, both.id}
    assert set(queue_refs(agent_client, "?assignee=unassigned")) == {nobody.id}
    assert set(queue_refs(agent_client, f"?assignee={colleague.id}")) == {theirs.id}
    assert len(queue_refs(agent_client, "?assignee=any")) == 4
    assert set(queue_refs(agent_client, f"?team={team.id}")) == {nobody.id, both.id}
    assert set(queue_refs(agent_client, f"?team={other_team.id}")) == {theirs.id}
    customer = mine.customer_id
    assert set(queue_refs(agent_client, f"?customer={customer}")) == {mine.id, both.id}
    combined = f"?team={team.id}&assignee=me&priority=high&kind=complaint&customer={customer}"
    assert queue_refs(agent_client, combined) == [both.id]
    assert queue_refs(agent_client, f"?team={team.id}&priority=urgent") == []


def test_queue_customer_filter_names_the_customer(agent_client, agent):
    ticket = make_ticket(name="Þórunn")
    page = html(agent_client.get(f"/tickets?customer={ticket.customer_id}&status="))
    assert "Tickets of Þórunn" in page
    assert agent_client.get("/tickets?customer=999999").status_code == 404


def test_queue_sorts_by_activity_or_due_date(agent_client, agent):
    urgent_old = make_ticket(subject="urgent", priority="urgent")
    low_new = make_ticket(subject="low", priority="low", email="z@example.com")
    services.add_message(urgent_old, body="more", author=agent, internal=True)
    assert queue_refs(agent_client, "?sort=activity") == [urgent_old.id, low_new.id]
    services.add_message(low_new, body="more", author=agent, internal=True)
    assert queue_refs(agent_client) == [low_new.id, urgent_old.id]
    assert queue_refs(agent_client, "?sort=due") == [urgent_old.id, low_new.id]


def test_queue_counts_per_status_and_per_team(agent_client, agent, team):
    make_ticket(subject="a", team=team.id)
    make_ticket(subject="b", team=team.id, email="b@example.com")
    services.update_ticket(make_ticket(subject="c"), {"status": "pending"}, actor=agent)
    make_ticket(subject="d", email="d@example.com")
    page = html(agent_client.get("/tickets"))
    counts = dict(
        (label, int(n))
        for n, label in re.findall(r"<b>(\d+)</b> (New|Open|Pending|Resolved|Closed)</a>", page)
    )
    assert counts == {"New": 3, "Open": 0, "Pending": 1, "Resolved": 0, "Closed": 0}
    assert 'href="/tickets?status=pending"' in page
    team_page = html(agent_client.get(f"/tickets?team={team.id}"))
    assert "<b>2</b> New</a>" in team_page
    assert "<b>0</b> Pending</a>" in team_page
    assert f'href="/tickets?status=new&amp;team={team.id}"' in team_page


@pytest.mark.parametrize(
    "query",
    [
        "?status=bogus",
        "?status=open,<script>",
        "?priority=extreme",
        "?kind=praise",
        "?assignee=somebody",
        "?team=abc",
        "?customer=-1",
        "?sort=random",
        "?page=0",
        "?page=x",
        "?per_page=100000",
        "?q=" + "a" * 500,
    ],
)
def test_queue_bad_filter_gives_clear_422(agent_client, query):
    response = agent_client.get(f"/tickets{query}")
    assert response.status_code == 422
    page = html(response)
    assert "This filter cannot be used" in page
    assert "<script>" not in page


def test_huge_or_odd_ids_are_refused_cleanly(agent_client):
    for query in ("?team=99999999999999999999999", "?assignee=99999999999999999999", "?team=²"):
        assert agent_client.get(f"/tickets{query}").status_code == 422, query
    huge = "99999999999999999999999"
    assert agent_client.get(f"/tickets/{huge}").status_code == 404
    assert agent_client.get(f"/tickets/1/attachments/{huge}").status_code == 404
    assert agent_client.get(f"/tickets/new?customer={huge}").status_code == 200


def test_queue_pages(agent_client):
    ids = [make_ticket(subject=f"t{i}", email=f"c{i}@example.com").id for i in range(7)]
    newest_first = list(reversed(ids))
    first = agent_client.get("/tickets?per_page=3")
    assert queue_refs(agent_client, "?per_page=3") == newest_first[:3]
    assert 'rel="next" href="/tickets?per_page=3&amp;page=2"' in html(first)
    assert 'rel="prev"' not in html(first)
    assert queue_refs(agent_client, "?per_page=3&page=2") == newest_first[3:6]
    last = agent_client.get("/tickets?per_page=3&page=3")
    assert queue_refs(agent_client, "?per_page=3&page=3") == newest_first[6:]
    assert 'rel="next"' not in html(last)
    assert 'rel="prev" href="/tickets?per_page=3&amp;page=2"' in html(last)
    assert queue_refs(agent_client, "?per_page=3&page=9") == []
    several = html(agent_client.get("/tickets?status=new&status=open&per_page=3&page=2"))
    assert 'href="/tickets?status=new&amp;status=open&amp;per_page=3&amp;page=3"' in several


# --- search ----------------------------------------------------------------------------------


@pytest.fixture
def searchable(app, agent):
    return {
        "subject": make_ticket(subject="Toaster sparks", body="It smokes.", email="a@example.com"),
        "body": make_ticket(
            subject="Kitchen trouble", body="My toaster sparks again", email="b@example.com"
        ),
        "name": make_ticket(
            subject="Question", body="Hello", email="c@example.com", name="Zebulon Quist"
        ),
        "email": make_ticket(subject="Other", body="Hi", email="rarebird@example.org", name=""),
    }


def test_search_by_subject_body_customer_name_and_email(agent_client, searchable):
    toaster = queue_refs(agent_client, "?q=toaster")
    assert set(toaster) == {searchable["subject"].id, searchable["body"].id}
    assert queue_refs(agent_client, "?q=smokes") == [searchable["subject"].id]
    assert queue_refs(agent_client, "?q=Zebulon") == [searchable["name"].id]
    assert queue_refs(agent_client, "?q=rarebird") == [searchable["email"].id]


def test_search_ranks_subject_matches_first_and_highlights(agent_client, searchable):
    # The body match is newer, so only ranking puts the subject match first.
    assert queue_refs(agent_client, "?q=toaster sparks") == [
        searchable["subject"].id,
        searchable["body"].id,
    ]
    page = html(agent_client.get("/tickets?q=toaster"))
    assert "<mark>Toaster</mark> sparks" in page
    assert "<mark>toaster</mark>" in page


def test_search_covers_every_status(agent_client, agent, searchable):
    services.update_ticket(searchable["body"], {"status": "closed"}, actor=agent)
    assert searchable["body"].id in queue_refs(agent_client, "?q=toaster")


@pytest.mark.parametrize(
    "query",
    ['"', "*", "NEAR(", "'--", "toaster'--", '"toaster*', "NEAR(toaster, 2)", "", "  ", "%"],
)
def test_search_survives_syntax_characters(agent_client, searchable, query):
    response = agent_client.get("/tickets", query_string={"q": query})
    assert response.status_code == 200
    if query in ("toaster'--", '"toaster*'):
        assert searchable["subject"].id in queue_refs(agent_client, f"?q={quote(query)}")


def test_search_escapes_what_it_highlights(agent_client, agent):
    make_ticket(subject="<script>alert(1)</script> lamp", body="lamp <img src=x>")
    page = html(agent_client.get("/tickets?q=lamp"))
    assert "<script>alert(1)" not in page
    assert "<img src=x>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; <mark>lamp</mark>" in page


# --- ticket page -----------------------------------------------------------------------------


def test_ticket_page_shows_conversation_notes_history_and_customer(agent_client, agent):
    earlier = make_ticket(subject="Earlier problem")
    ticket = make_ticket(subject="Lamp again", body="Customer words here")
    services.add_message(ticket, body="Agent answer here", author=agent)
    services.add_message(ticket, body="Secret thought", author=agent, internal=True)
    services.update_ticket(ticket, {"priority": "high", "assignee": agent}, actor=agent)

    response = agent_client.get(f"/tickets/{ticket.id}")
    assert response.status_code == 200
    page = html(response)
    for text in ("Customer words here", "Agent answer here", "Secret thought", "Ana Agent"):
        assert text in page
    note = re.search(
        r'<article id="message-\d+" class="message from-agent internal">.*?</article>', page, re.S
    )
    assert note and "Internal note" in note.group(0) and "Secret thought" in note.group(0)
    assert "gudrun@example.is" in page
    assert f'href="/customers/{ticket.customer_id}"' in page
    assert f'href="/tickets/{earlier.id}">#{earlier.id} Earlier problem</a>' in page
    assert f'href="/tickets?customer={ticket.customer_id}&amp;status="' in page
    history = page.split('id="history-title"', 1)[1]
    assert "opened the ticket (web form)" in history
    assert "replied" in history
    assert "added an internal note" in history
    assert "changed status from New to Open" in history
    assert "changed priority from Normal to High" in history
    assert "set assignee to Ana Agent" in history
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">', page)


def test_unknown_ticket_is_404(agent_client):
    assert agent_client.get("/tickets/424242").status_code == 404
    token = csrf_from(agent_client, "/tickets/new")
    for action in ("reply", "update", "merge"):
        response = agent_client.post(
            f"/tickets/424242/{action}", data={"csrf_token": token, "body": "x", "version": "1"}
        )
        assert response.status_code == 404


# --- reply and note --------------------------------------------------------------------------


def test_reply_is_saved_recorded_and_opens_the_ticket(agent_client):
    ticket = make_ticket()
    path = f"/tickets/{ticket.id}"
    response = post_form(
        agent_client, f"{path}/reply", {"body": "We will send a new one."}, page=path
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith(path)
    message = db.session.scalars(select(Message).order_by(Message.id.desc())).first()
    assert message.body == "We will send a new one." and not message.internal
    assert events_of(ticket.id)[-2:] == ["reply", "status"]
    assert fresh(ticket.id).status == "open"
    assert "Reply sent." in html(agent_client.get(path))


def test_internal_note_is_saved_and_marked(agent_client):
    ticket = make_ticket()
    path = f"/tickets/{ticket.id}"
    response = post_form(
        agent_client, f"{path}/reply", {"body": "Check stock first", "internal": "1"}, page=path
    )
    assert response.status_code == 302
    message = db.session.scalars(select(Message).order_by(Message.id.desc())).first()
    assert message.internal and message.body == "Check stock first"
    assert events_of(ticket.id)[-1] == "note"
    assert fresh(ticket.id).status == "new"
    page = html(agent_client.get(path))
    assert "Internal note added." in page
    assert "Internal note</span>" in page


def test_reply_and_set_pending(agent_client):
    ticket = make_ticket()
    path = f"/tickets/{ticket.id}"
    post_form(
        agent_client,
        f"{path}/reply",
        {"body": "Please send a photo", "status": "pending"},
        page=path,
    )
    assert fresh(ticket.id).status == "pending"
    assert events_of(ticket.id)[-2:] == ["reply", "status"]


def test_reply_errors_keep_the_text(agent_client):
    ticket = make_ticket()
    path = f"/tickets/{ticket.id}"
    response = post_form(agent_client, f"{path}/reply", {"body": "   "}, page=path)
    assert response.status_code == 422
    assert "is required" in html(response)
    response = post_form(
        agent_client, f"{path}/reply", {"body": "Keep me ✓", "status": "exploded"}, page=path
    )
    assert response.status_code == 422
    assert "Keep me ✓</textarea>" in html(response)
    assert message_count() == 1


def test_reply_without_csrf_is_refused(agent_client):
    ticket = make_ticket()
    response = agent_client.post(f"/tickets/{ticket.id}/reply", data={"body": "sneaky"})
    assert response.status_code == 400
    assert message_count() == 1
    assert events_of(ticket.id) == ["created"]


def test_overlong_body_is_413_and_nothing_saved(small_limits, agent_client):
    ticket = make_ticket()
    path = f"/tickets/{ticket.id}"
    response = post_form(agent_client, f"{path}/reply", {"body": "x" * 2001}, page=path)
    assert response.status_code == 413
    assert "too long" in html(response)
    assert message_count() == 1
    assert events_of(ticket.id) == ["created"]


def test_reply_to_a_merged_ticket_is_refused(agent_client, agent):
    source, target = make_ticket(subject="one"), make_ticket(subject="two")
    services.merge_tickets(source, target, actor=agent)
    response = post_form(
        agent_client, f"/tickets/{source.id}/reply", {"body": "late"}, page=f"/tickets/{target.id}"
    )
    assert response.status_code == 409
    assert f"merged into #{target.id}" in html(response)
    assert message_count() == 2


# --- update: status, priority, kind, assignee, team ------------------------------------------


def update_form(client: FlaskClient, ticket_id: int, **changes: str):
    """Post the edit form as a browser would: every field, as shown, with ``changes``."""
    page = html(client.get(f"/tickets/{ticket_id}"))
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    ticket = fresh(ticket_id)
    data = {
        "version": version,
        "status": ticket.status,
        "priority": ticket.priority,
        "kind": ticket.kind,
        "assignee": ticket.assignee.email if ticket.assignee else "",
        "team": str(ticket.team_id or ""),
        **changes,
    }
    return post_form(client, f"/tickets/{ticket_id}/update", data, page=f"/tickets/{ticket_id}")


def test_status_change_is_saved_and_recorded(agent_client):
    ticket = make_ticket()
    response = update_form(agent_client, ticket.id, status="resolved")
    assert response.status_code == 302
    assert fresh(ticket.id).status == "resolved"
    assert events_of(ticket.id) == ["created", "status"]
    assert "Saved: status." in html(agent_client.get(f"/tickets/{ticket.id}"))


def test_assign_priority_kind_and_team(agent_client, agent, team):
    ticket = make_ticket()
    response = update_form(
        agent_client,
        ticket.id,
        assignee=agent.email,
        priority="urgent",
        kind="complaint",
        team=str(team.id),
    )
    assert response.status_code == 302
    saved = fresh(ticket.id)
    assert (saved.assignee_id, saved.priority, saved.kind, saved.team_id) == (
        agent.id,
        "urgent",
        "complaint",
        team.id,
    )
    assert sorted(events_of(ticket.id)[1:]) == ["assignee", "kind", "priority", "team"]
    assert services.status_counts([team.id])["new"] == 1
    update_form(agent_client, ticket.id, assignee="", team="")
    saved = fresh(ticket.id)
    assert saved.assignee_id is None and saved.team_id is None
    history = html(agent_client.get(f"/tickets/{ticket.id}")).split('id="history-title"')[1]
    assert "removed assignee Ana Agent" in history
    assert "set team to Support" in history


def test_unchanged_form_changes_nothing(agent_client):
    ticket = make_ticket()
    response = update_form(agent_client, ticket.id)
    assert response.status_code == 302
    assert events_of(ticket.id) == ["created"]
    assert "Nothing changed." in html(agent_client.get(f"/tickets/{ticket.id}"))


def test_deactivated_assignee_is_kept_when_other_fields_change(agent_client, agent):
    from helpdesk.core.accounts import update_agent

    leaver = create_agent(email="leaver@example.com", name="Leaver", password=PASSWORD)
    ticket = make_ticket(assignee=leaver)
    update_agent(leaver, actor=agent, active=False)
    page = html(agent_client.get(f"/tickets/{ticket.id}"))
    assert "Leaver (deactivated)" in page
    response = update_form(agent_client, ticket.id, status="pending")
    assert response.status_code == 302
    saved = fresh(ticket.id)
    assert saved.status == "pending" and saved.assignee_id == leaver.id


@pytest.mark.parametrize(
    "changes",
    [{"status": "exploded"}, {"assignee": "nobody@example.com"}, {"team": "9999"}, {"kind": ""}],
)
def test_bad_update_values_are_422(agent_client, changes):
    ticket = make_ticket()
    response = update_form(agent_client, ticket.id, **changes)
    assert response.status_code == 422
    assert "Nothing was saved" in html(response)
    assert events_of(ticket.id) == ["created"]


def test_update_without_version_is_refused(agent_client):
    ticket = make_ticket()
    path = f"/tickets/{ticket.id}"
    response = post_form(agent_client, f"{path}/update", {"status": "closed"}, page=path)
    assert response.status_code == 422
    assert fresh(ticket.id).status == "new"


def forget_user() -> None:
    """Drop Flask-Login's per-request user cache.

    The ``app`` fixture keeps one app context open for the whole test, so ``g`` (where
    Flask-Login keeps the current user) outlives a request; switching clients must clear it.
    """
    g.pop("_login_user", None)


def test_two_agents_same_version_no_lost_update(app, agent, agent_client):
    create_agent(email="second@example.com", name="Second", password=PASSWORD)
    other = app.test_client()
    forget_user()
    assert login(other, "second@example.com").status_code == 302
    ticket = make_ticket()
    path = f"/tickets/{ticket.id}"
    forget_user()
    first_page = html(agent_client.get(path))
    forget_user()
    second_page = html(other.get(path))
    version = re.search(r'name="version" value="(\d+)"', first_page).group(1)
    assert f'name="version" value="{version}"' in second_page
    base = {"version": version, "priority": "normal", "kind": "support", "assignee": "", "team": ""}

    forget_user()
    first = post_form(agent_client, f"{path}/update", {**base, "status": "resolved"}, page=path)
    assert first.status_code == 302
    forget_user()
    second = post_form(
        other, f"{path}/update", {**base, "status": "pending", "priority": "urgent"}, page=path
    )
    assert second.status_code == 409
    page = html(second)
    assert "changed by someone else" in page and "Nothing was saved" in page
    assert "selected>Resolved</option>" in page  # shows the current state
    saved = fresh(ticket.id)
    assert (saved.status, saved.priority) == ("resolved", "normal")
    assert events_of(ticket.id) == ["created", "status"]


# --- merge -----------------------------------------------------------------------------------


def test_merge_moves_messages_and_records_both_sides(agent_client, agent):
    source = make_ticket(subject="Duplicate", body="Sent twice")
    target = make_ticket(subject="Original", body="First copy")
    response = post_form(
        agent_client,
        f"/tickets/{source.id}/merge",
        {"target": f"#{target.id}"},
        page=f"/tickets/{source.id}",
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/tickets/{target.id}"
    assert fresh(source.id).merged_into_id == target.id
    assert fresh(source.id).status == "closed"
    assert "merged_into" in events_of(source.id)
    assert "merged_from" in events_of(target.id)
    target_page = html(agent_client.get(f"/tickets/{target.id}"))
    assert "Sent twice" in target_page and "First copy" in target_page
    source_page = html(agent_client.get(f"/tickets/{source.id}"))
    assert "This ticket was merged into" in source_page
    assert f'<a href="/tickets/{target.id}">#{target.id}</a>' in source_page
    assert 'name="body"' not in source_page  # no reply form on a merged ticket


@pytest.mark.parametrize("target", ["self", "", "abc", "#", "-3", "999999", "9" * 40])
def test_merge_refuses_bad_targets(agent_client, target):
    source = make_ticket()
    value = str(source.id) if target == "self" else target
    response = post_form(
        agent_client, f"/tickets/{source.id}/merge", {"target": value}, page=f"/tickets/{source.id}"
    )
    assert response.status_code == 422
    assert "Nothing was saved" in html(response)
    assert fresh(source.id).merged_into_id is None
    assert events_of(source.id) == ["created"]


def test_merging_twice_is_a_conflict(agent_client, agent):
    source, one, two = make_ticket(), make_ticket(subject="one"), make_ticket(subject="two")
    services.merge_tickets(source, one, actor=agent)
    response = post_form(
        agent_client,
        f"/tickets/{source.id}/merge",
        {"target": str(two.id)},
        page=f"/tickets/{source.id}",
    )
    assert response.status_code == 409
    assert fresh(source.id).merged_into_id == one.id


# --- new (phone) ticket ----------------------------------------------------------------------


def test_new_phone_ticket_for_a_new_customer(agent_client, agent, team):
    response = post_form(
        agent_client,
        "/tickets/new",
        {
            "customer_email": "Caller@Example.com",
            "customer_name": "Cal Caller",
            "customer_phone": "+354 555 1234",
            "subject": "Called about a refund",
            "body": "Wants a refund for order 12.",
            "kind": "complaint",
            "priority": "high",
            "team": str(team.id),
            "assignee": agent.email,
            "channel": "phone",
        },
    )
    assert response.status_code == 302
    ticket = db.session.scalars(select(Ticket).order_by(Ticket.id.desc())).first()
    assert response.headers["Location"] == f"/tickets/{ticket.id}"
    assert (ticket.source, ticket.kind, ticket.priority) == ("phone", "complaint", "high")
    assert (ticket.team_id, ticket.assignee_id) == (team.id, agent.id)
    assert ticket.customer.name == "Cal Caller" and ticket.customer.phone == "+3545551234"
    first = db.session.scalars(select(Message).where(Message.ticket_id == ticket.id)).one()
    assert first.author_type == "agent" and first.agent_id == agent.id and not first.internal
    assert html(agent_client.get(f"/tickets/{ticket.id}")).count("opened the ticket (phone call)")


def test_new_ticket_prefills_a_known_customer(agent_client):
    existing = make_ticket(email="known@example.com", name="Known Person")
    page = html(agent_client.get(f"/tickets/new?customer={existing.customer_id}"))
    assert 'value="known@example.com"' in page and 'value="Known Person"' in page
    assert agent_client.get("/tickets/new?customer=abc").status_code == 200
    response = post_form(
        agent_client,
        "/tickets/new",
        {
            "customer_email": "KNOWN@example.com",
            "subject": "Walk-in",
            "body": "Came by",
            "kind": "support",
            "channel": "walk-in",
        },
    )
    assert response.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 1
    assert db.session.scalars(select(Ticket).order_by(Ticket.id.desc())).first().source == (
        "walk-in"
    )


def test_new_ticket_errors_keep_the_input(agent_client):
    response = post_form(
        agent_client,
        "/tickets/new",
        {
            "customer_email": "not-an-address",
            "customer_name": "Þóra",
            "subject": "",
            "body": "Everything I typed ✓",
            "kind": "praise",
            "channel": "phone",
        },
    )
    assert response.status_code == 422
    page = html(response)
    assert "Everything I typed ✓</textarea>" in page
    assert 'value="not-an-address"' in page and 'value="Þóra"' in page
    for field in ("customer&#39;s e-mail", "subject", "kind"):
        assert f"<li>{field}:" in page, field
    response = post_form(
        agent_client,
        "/tickets/new",
        {
            "customer_email": "a@example.com",
            "subject": "s",
            "body": "b",
            "kind": "support",
            "channel": "carrier pigeon",
        },
    )
    assert response.status_code == 422
    assert "<li>contact:" in html(response)
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 0


# --- hostile and foreign text ----------------------------------------------------------------


def test_hostile_text_renders_inert(agent_client, agent):
    ticket = make_ticket(
        subject=f"lamp {HOSTILE}"[:190], body=HOSTILE, name="<script>alert(3)</script>"
    )
    services.add_message(
        ticket,
        body="javascript:alert(4) data:text/html;base64,PHNjcmlwdD4=",
        author=agent,
        internal=True,
    )
    pages = [
        html(agent_client.get("/tickets")),
        html(agent_client.get(f"/tickets/{ticket.id}")),
        html(agent_client.get("/tickets?q=lamp")),
        html(agent_client.get(f"/tickets?customer={ticket.customer_id}")),
    ]
    for full_page in pages:
        page = full_page.split("<main", 1)[1]
        assert "<script>alert" not in page
        assert 'href="javascript:' not in page and "href='javascript:" not in page
        assert 'href="data:' not in page and 'src="data:' not in page
        assert "<b>hi</b>" not in page
        assert "&lt;script&gt;alert(" in page


def test_foreign_text_and_emoji_round_trip(agent_client, agent):
    response = post_form(
        agent_client,
        "/tickets/new",
        {
            "customer_email": "thordur@example.is",
            "customer_name": "Þórður Ægisson",
            "subject": UNICODE[:150],
            "body": UNICODE,
            "kind": "support",
            "channel": "phone",
        },
    )
    assert response.status_code == 302
    ticket = db.session.scalars(select(Ticket).order_by(Ticket.id.desc())).first()
    path = f"/tickets/{ticket.id}"
    post_form(agent_client, f"{path}/reply", {"body": f"Svar: {UNICODE}"}, page=path)
    assert ticket.subject == UNICODE[:150].strip()
    bodies = [m.body for m in db.session.scalars(select(Message).order_by(Message.id))]
    assert bodies == [UNICODE, f"Svar: {UNICODE}"]
    page = html(agent_client.get(path))
    assert UNICODE in page and "Þórður Ægisson" in page
    assert ticket.id in queue_refs(agent_client, "?q=Καλημέρα")
    assert ticket.id in queue_refs(agent_client, "?q=שלום")


# --- attachments -----------------------------------------------------------------------------


def reply_with_files(client: FlaskClient, ticket_id: int, files: list[tuple[bytes, str]], **extra):
    path = f"/tickets/{ticket_id}"
    data = {
        "csrf_token": csrf_from(client, path),
        "body": "See attached",
        "attachments": [(io.BytesIO(content), name) for content, name in files],
        **extra,
    }
    return client.post(f"{path}/reply", data=data, content_type="multipart/form-data")


def test_attachment_names_are_made_safe_and_downloads_work(agent_client):
    ticket = make_ticket()
    response = reply_with_files(
        agent_client, ticket.id, [(b"secret", "../../etc/pass\x00wd.txt"), (b"x", "..\\..\\a.txt")]
    )
    assert response.status_code == 302
    rows = db.session.scalars(select(Attachment).order_by(Attachment.id)).all()
    for row in rows:
        assert "/" not in row.filename and "\\" not in row.filename and "\x00" not in row.filename
        assert not row.filename.startswith(".")
    page = html(agent_client.get(f"/tickets/{ticket.id}"))
    link = f"/tickets/{ticket.id}/attachments/{rows[0].id}"
    assert f'href="{link}"' in page
    download = agent_client.get(link)
    assert download.status_code == 200 and download.data == b"secret"
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert events_of(ticket.id)[-2] == "reply"


def test_active_content_is_only_a_download(agent_client):
    ticket = make_ticket()
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    page = b"<html><script>alert(1)</script></html>"
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    reply_with_files(agent_client, ticket.id, [(svg, "a.svg"), (page, "b.html"), (png, "c.png")])
    rows = {a.filename: a for a in db.session.scalars(select(Attachment))}
    for name in ("a.svg", "b.html"):
        response = agent_client.get(f"/tickets/{ticket.id}/attachments/{rows[name].id}")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert name in response.headers["Content-Disposition"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    image = agent_client.get(f"/tickets/{ticket.id}/attachments/{rows['c.png'].id}")
    assert image.headers["Content-Type"] == "image/png"
    assert image.headers["Content-Disposition"].startswith("inline")
    assert image.headers["X-Content-Type-Options"] == "nosniff"


def test_attachment_of_another_ticket_or_missing_file_is_404(agent_client):
    ticket, other = make_ticket(), make_ticket(subject="other")
    reply_with_files(agent_client, ticket.id, [(b"data", "n.txt")])
    row = db.session.scalars(select(Attachment)).one()
    assert agent_client.get(f"/tickets/{other.id}/attachments/{row.id}").status_code == 404
    assert agent_client.get(f"/tickets/{ticket.id}/attachments/999999").status_code == 404
    attachments.storage_path(row.storage_key).unlink()
    assert agent_client.get(f"/tickets/{ticket.id}/attachments/{row.id}").status_code == 404


def test_oversize_attachment_is_413_and_nothing_saved(small_limits, agent_client):
    ticket = make_ticket()
    response = reply_with_files(
        agent_client, ticket.id, [(b"small", "ok.txt"), (b"x" * 1001, "big.bin")]
    )
    assert response.status_code == 413
    assert "See attached</textarea>" in html(response)
    assert message_count() == 1
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert events_of(ticket.id) == ["created"]


# --- queries do not grow with rows -----------------------------------------------------------


def _queue_queries(client: FlaskClient, count_queries, query: str) -> int:
    client.get(f"/tickets{query}")  # warm up
    with count_queries:
        assert client.get(f"/tickets{query}").status_code == 200
    return count_queries.count


def test_queue_queries_do_not_grow_with_rows(agent_client, agent, team, count_queries):
    def add(n: int) -> None:
        for i in range(n):
            make_ticket(
                subject=f"Lamp {i}", email=f"q{i}-{n}@example.com", team=team.id, assignee=agent
            )

    add(5)
    few = _queue_queries(agent_client, count_queries, "")
    few_search = _queue_queries(agent_client, count_queries, "?q=lamp")
    add(20)
    assert len(queue_refs(agent_client)) == 25
    assert _queue_queries(agent_client, count_queries, "") == few
    assert _queue_queries(agent_client, count_queries, "?q=lamp") == few_search


def test_ticket_page_queries_do_not_grow_with_messages(agent_client, agent, count_queries):
    def ticket_with(n: int) -> int:
        ticket = make_ticket(subject=f"{n} messages", email=f"m{n}@example.com")
        for i in range(n - 1):
            upload = attachments.Upload(f"f{i}.txt", "text/plain", b"x")
            author = agent if i % 2 else ticket.customer
            services.add_message(ticket, body=f"message {i}", author=author, uploads=[upload])
        services.update_ticket(ticket, {"priority": "high"}, actor=agent)
        return ticket.id

    small, large = ticket_with(2), ticket_with(12)
    counts = []
    for ticket_id in (small, large):
        agent_client.get(f"/tickets/{ticket_id}")
        with count_queries:
            assert agent_client.get(f"/tickets/{ticket_id}").status_code == 200
        counts.append(count_queries.count)
    assert counts[0] == counts[1]
    assert html(agent_client.get(f"/tickets/{large}")).count('class="message ') == 12


def test_overdue_tickets_are_marked(agent_client, agent):
    from datetime import timedelta

    from helpdesk.core.models import utcnow

    late, on_time = make_ticket(subject="late"), make_ticket(subject="fine", email="f@example.com")
    late.due_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    rows = html(agent_client.get("/tickets")).split("<tbody>", 1)[1].split("</tr>")
    marked = [row for row in rows if "Overdue" in row]
    assert len(marked) == 1 and f"#{late.id}<" in marked[0]
    assert "Overdue" in html(agent_client.get(f"/tickets/{late.id}"))
    assert "Overdue" not in html(agent_client.get(f"/tickets/{on_time.id}"))
    services.update_ticket(late, {"status": "resolved"}, actor=agent)
    assert "Overdue" not in html(agent_client.get(f"/tickets/{late.id}"))
