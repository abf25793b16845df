"""The service verbs: the rules every entrance (UI, API, portal, CLI) shares."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from helpdesk.core import services
from helpdesk.core.accounts import create_agent
from helpdesk.core.errors import Conflict, TooLarge, ValidationError
from helpdesk.core.models import Customer, Message, Ticket, TicketEvent
from helpdesk.extensions import db


def _open(**overrides):
    data = {
        "subject": "Lamp arrived broken",
        "body": "The lamp was in pieces.",
        "kind": "complaint",
        "customer_email": "Gudrun@Example.IS",
        "customer_name": "Guðrún Þórsdóttir",
    }
    data.update(overrides)
    return services.open_ticket(**data)


def _real_counts() -> dict[tuple[int, str], int]:
    rows = db.session.execute(
        select(Ticket.team_id, Ticket.status, func.count()).group_by(Ticket.team_id, Ticket.status)
    )
    return {(team or 0, status): count for team, status, count in rows}


def _counter_counts() -> dict[tuple[int, str], int]:
    rows = db.session.execute(select(services.StatusCount))
    return {(r.team_key, r.status): r.count for (r,) in rows if r.count}


def test_open_ticket_records_customer_message_event_and_due_date(app):
    ticket = _open(priority="high")
    assert ticket.status == "new"
    assert ticket.customer.email == "Gudrun@example.is"  # domain normalised, local part kept
    assert ticket.customer.email_key == "gudrun@example.is"
    assert ticket.due_at - ticket.created_at == timedelta(hours=app.config["SLA_HOURS"]["high"])
    messages = db.session.scalars(select(Message).where(Message.ticket_id == ticket.id)).all()
    assert [(m.author_type, m.body) for m in messages] == [("customer", "The lamp was in pieces.")]
    kinds = db.session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id))
    assert list(kinds) == ["created"]
    assert services.status_counts()["new"] == 1


def test_customers_are_matched_by_email_whatever_the_case(app):
    first = _open(customer_email="ana@example.com", customer_name="")
    second = _open(customer_email="ANA@EXAMPLE.COM", customer_name="Ana")
    assert first.customer_id == second.customer_id
    assert db.session.scalar(select(func.count(Customer.id))) == 1
    assert second.customer.name == "Ana"  # a missing name is filled in


def test_all_field_errors_are_reported_at_once_and_nothing_is_saved(app):
    with pytest.raises(ValidationError) as caught:
        _open(subject="  ", body="", kind="rant", priority="asap", customer_email="not-an-email")
    assert set(caught.value.errors) == {"subject", "body", "kind", "priority", "customer.email"}
    assert db.session.scalar(select(func.count(Ticket.id))) == 0
    assert db.session.scalar(select(func.count(Customer.id))) == 0


def test_over_long_subject_and_body(app):
    with pytest.raises(ValidationError) as caught:
        _open(subject="x" * (app.config["MAX_SUBJECT_LENGTH"] + 1))
    assert "subject" in caught.value.errors
    with pytest.raises(TooLarge) as too_large:
        _open(body="y" * (app.config["MAX_BODY_LENGTH"] + 1))
    assert too_large.value.status_code == 413
    assert db.session.scalar(select(func.count(Ticket.id))) == 0


def test_text_round_trips_except_control_characters(app):
    body = "Góðan daginn! שלום, Καλημέρα 👋\nline two\x00\x07"
    ticket = _open(subject="Þjónusta 💡 ערב", body=body)
    db.session.expire_all()
    stored = db.session.scalar(select(Message.body).where(Message.ticket_id == ticket.id))
    assert stored == "Góðan daginn! שלום, Καλημέρα 👋\nline two"
    assert db.session.get(Ticket, ticket.id).subject == "Þjónusta 💡 ערב"


def test_customer_reply_reopens_and_agent_reply_opens(app, agent):
    ticket = _open()
    services.add_message(ticket, body="On it", author=agent)
    assert ticket.status == "open"
    services.update_ticket(ticket, {"status": "resolved"}, actor=agent)
    assert ticket.resolved_at is not None
    services.add_message(ticket, body="Still broken", author=ticket.customer)
    assert ticket.status == "open"
    assert ticket.resolved_at is None
    services.add_message(ticket, body="Internal: check stock", author=agent, internal=True)
    assert ticket.status == "open"
    assert _real_counts() == _counter_counts()


def test_only_agents_write_internal_notes(app):
    ticket = _open()
    with pytest.raises(ValidationError):
        services.add_message(ticket, body="sneaky", author=ticket.customer, internal=True)


def test_reply_with_new_status(app, agent):
    ticket = _open()
    services.add_message(ticket, body="Waiting for you", author=agent, new_status="pending")
    assert ticket.status == "pending"
    with pytest.raises(ValidationError):
        services.add_message(ticket, body="x", author=agent, new_status="lost")


def test_update_records_each_change_and_keeps_counters(app, agent, team):
    other = create_agent(email="bo@example.com", name="Bo", password="long enough")
    ticket = _open()
    changed = services.update_ticket(
        ticket,
        {
            "status": "open",
            "priority": "urgent",
            "kind": "support",
            "assignee": other.email,
            "team": team.id,
        },
        actor=agent,
    )
    assert set(changed) == {"status", "priority", "kind", "assignee", "team"}
    assert ticket.due_at - ticket.created_at == timedelta(hours=app.config["SLA_HOURS"]["urgent"])
    events = db.session.execute(
        select(TicketEvent.kind, TicketEvent.data, TicketEvent.agent_id).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.kind != "created"
        )
    ).all()
    assert {e.kind for e in events} == {"status", "priority", "kind", "assignee", "team"}
    assert all(e.agent_id == agent.id for e in events)
    assignee_event = next(e for e in events if e.kind == "assignee")
    assert assignee_event.data == {"old": None, "new": "Bo"}
    assert services.update_ticket(ticket, {"status": "open"}, actor=agent) == []
    assert _real_counts() == _counter_counts()
    assert services.status_counts([team.id])["open"] == 1
    assert services.status_counts([0])["open"] == 0


def test_update_refuses_bad_values_and_unknown_fields(app, agent):
    ticket = _open()
    with pytest.raises(ValidationError) as caught:
        services.update_ticket(ticket, {"status": "gone", "assignee": "nobody@x.y"}, actor=agent)
    assert set(caught.value.errors) == {"status", "assignee"}
    with pytest.raises(ValidationError):
        services.update_ticket(ticket, {"subject": "new"}, actor=agent)
    db.session.refresh(ticket)
    assert ticket.status == "new"


def test_stale_version_is_a_conflict_and_changes_nothing(app, agent):
    ticket = _open()
    seen = ticket.version
    services.update_ticket(ticket, {"priority": "high"}, actor=agent, expected_version=seen)
    with pytest.raises(Conflict):
        services.update_ticket(ticket, {"priority": "low"}, actor=agent, expected_version=seen)
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).priority == "high"


@pytest.mark.parametrize("change", ["agent sets the status", "customer reply reopens"])
def test_a_ticket_saved_by_someone_else_meanwhile_is_a_conflict(app, agent, change):
    ticket = _open()
    ticket.status = "resolved"
    db.session.commit()
    # Another worker saves the ticket after this one read it.
    db.session.execute(
        text("UPDATE tickets SET version = version + 1 WHERE id = :id"), {"id": ticket.id}
    )
    with pytest.raises(Conflict, match="changed by someone else"):
        if change == "agent sets the status":
            services.update_ticket(ticket, {"status": "pending"}, actor=agent)
        else:
            services.add_message(ticket, body="Still broken", author=ticket.customer)
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "resolved"
    assert db.session.scalar(select(func.count()).select_from(Message)) == 1


def test_inactive_agent_cannot_be_assigned(app, agent, admin):
    from helpdesk.core.accounts import update_agent

    ticket = _open()
    update_agent(agent, actor=admin, active=False)
    with pytest.raises(ValidationError):
        services.update_ticket(ticket, {"assignee": agent.email}, actor=admin)


def test_merge_moves_messages_and_closes_the_source(app, agent):
    source = _open(subject="First")
    target = _open(subject="Second")
    stranger = _open(subject="Third", customer_email="other@example.com")
    with pytest.raises(ValidationError):
        services.merge_tickets(source, stranger, actor=agent)
    services.update_ticket(target, {"status": "resolved"}, actor=agent)
    services.merge_tickets(source, target, actor=agent)
    db.session.expire_all()
    source, target = db.session.get(Ticket, source.id), db.session.get(Ticket, target.id)
    assert source.status == "closed" and source.merged_into_id == target.id
    assert target.status == "open"
    count = db.session.scalar(select(func.count()).where(Message.ticket_id == target.id))
    assert count == 2
    assert services.final_ticket(source).id == target.id
    with pytest.raises(Conflict):
        services.merge_tickets(source, target, actor=agent)
    with pytest.raises(ValidationError):
        services.merge_tickets(target, target, actor=agent)
    with pytest.raises(Conflict):
        services.add_message(source, body="late", author=agent)
    assert _real_counts() == _counter_counts()


def test_a_customer_inserted_concurrently_is_found_not_duplicated(app):
    from helpdesk.core.customers import _new_customer, find_or_create_customer

    first = find_or_create_customer("race@example.com", "First")
    db.session.commit()
    # What the loser of a race sees: its insert meets the winner's row.
    assert _new_customer({"email": "Race@example.com"}) is None
    assert find_or_create_customer("RACE@example.com").id == first.id
    db.session.commit()
    assert db.session.scalar(select(func.count(Customer.id))) == 1
