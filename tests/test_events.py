"""Events reach plugins after commit; a failing plugin is isolated; decisions are merged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, inspect, select

from helpdesk import hookimpl
from helpdesk.core import customers, events, services
from helpdesk.core.errors import ValidationError
from helpdesk.core.models import Customer, Ticket, utcnow
from helpdesk.extensions import db


class Recorder:
    """Records every event. The first hook of each change also notes whether the session had
    committed (no transaction open) when the event arrived."""

    def __init__(self) -> None:
        self.heard: list[tuple] = []

    @hookimpl
    def helpdesk_customer_registered(self, customer):
        committed = not db.session().in_transaction()
        self.heard.append(("customer_registered", customer.email, committed))

    @hookimpl
    def helpdesk_ticket_created(self, ticket):
        self.heard.append(("ticket_created", ticket.id))

    @hookimpl
    def helpdesk_message_added(self, ticket, message):
        self.heard.append(("message_added", ticket.id, message.internal))

    @hookimpl
    def helpdesk_ticket_status_changed(self, ticket, old, new):
        committed = not db.session().in_transaction()
        self.heard.append(("status_changed", old, new, committed))


class BatchRecorder:
    """Records each ``helpdesk_customers_registered``: its customers' addresses, whether they
    were committed (another connection sees them all), and the addresses ``recorder`` had heard
    one by one by then."""

    def __init__(self) -> None:
        self.heard: list[tuple[list[str], bool, list[str]]] = []

    @hookimpl
    def helpdesk_customers_registered(self, customers):
        ids = [inspect(customer).identity[0] for customer in customers]
        with db.engine.connect() as other:
            seen = other.scalar(select(func.count(Customer.id)).where(Customer.id.in_(ids)))
        singles = [event[1] for event in recorder.heard if event[0] == "customer_registered"]
        self.heard.append(([customer.email for customer in customers], seen == len(ids), singles))


class Broken:
    """A plugin that fails in every hook it implements."""

    @hookimpl
    def helpdesk_ticket_created(self, ticket):
        raise RuntimeError("plugin bug")

    @hookimpl
    def helpdesk_ticket_defaults(self, customer, ticket_data):
        raise RuntimeError("plugin bug")


class VipDefaults:
    @hookimpl
    def helpdesk_ticket_defaults(self, customer, ticket_data):
        if customer.email_key.startswith("vip"):
            return {"priority": "high", "due_at": utcnow() + timedelta(hours=1)}
        return {"priority": "low"}


recorder = Recorder()
batches = BatchRecorder()


@pytest.fixture
def app_plugins():
    recorder.heard.clear()
    batches.heard.clear()
    return [Broken(), recorder, batches, VipDefaults()]


def test_events_fire_after_commit_in_order(app, agent):
    ticket = services.open_ticket(subject="s", body="b", customer_email="c@example.com")
    services.add_message(ticket, body="reply", author=agent)
    services.add_message(ticket, body="note", author=agent, internal=True)
    assert recorder.heard == [
        ("customer_registered", "c@example.com", True),
        ("ticket_created", ticket.id),
        ("status_changed", "new", "open", True),
        ("message_added", ticket.id, False),
        ("message_added", ticket.id, True),
    ]


def test_a_failing_plugin_is_logged_and_isolated(app, caplog):
    ticket = services.open_ticket(subject="s", body="b", customer_email="c@example.com")
    assert ticket.id is not None
    assert ("ticket_created", ticket.id) in recorder.heard
    assert "plugin 'Broken' failed in helpdesk_ticket_created" in caplog.text
    assert "plugin 'Broken' failed in helpdesk_ticket_defaults" in caplog.text


def test_a_failed_change_fires_nothing(app):
    with pytest.raises(ValidationError):
        services.open_ticket(subject="", body="b", customer_email="new@example.com")
    services.open_ticket(subject="s", body="b", customer_email="other@example.com")
    assert [event[1] for event in recorder.heard if event[0] == "customer_registered"] == [
        "other@example.com"
    ]
    assert db.session.scalar(select(func.count(Ticket.id))) == 1


@pytest.mark.hooks("helpdesk_customer_registered", "helpdesk_customers_registered")
def test_customers_registered_fires_once_per_commit_with_its_customers_after_each_one(app):
    customers.add_new_customers(["a@example.com", "b@example.com"])
    events.commit()
    customers.add_new_customers(["lost@example.com"])
    db.session.rollback()  # never fired, not even with the next commit
    customers.register_customer({"email": "c@example.com"})
    services.open_ticket(subject="s", body="b", customer_email="a@example.com")  # no new one
    services.open_ticket(subject="s", body="b", customer_email="d@example.com")
    assert batches.heard == [
        (["a@example.com", "b@example.com"], True, ["a@example.com", "b@example.com"]),
        (["c@example.com"], True, ["a@example.com", "b@example.com", "c@example.com"]),
        (
            ["d@example.com"],
            True,
            ["a@example.com", "b@example.com", "c@example.com", "d@example.com"],
        ),
    ]


def test_ticket_defaults_raise_priority_and_due_date_but_never_lower(app):
    vip = services.open_ticket(subject="s", body="b", customer_email="vip@example.com")
    assert vip.priority == "high"
    assert vip.due_at <= utcnow() + timedelta(hours=1)
    ordinary = services.open_ticket(
        subject="s", body="b", customer_email="joe@example.com", priority="urgent"
    )
    assert ordinary.priority == "urgent"  # the plugin's "low" never lowers an explicit choice
    plain = services.open_ticket(subject="s", body="b", customer_email="amy@example.com")
    assert plain.priority == "normal"
