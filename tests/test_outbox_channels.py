"""Plugins add outbox channels: the worker claims their items and calls their deliverer, with
the same retries, backoff and dead letters as mail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from helpdesk import ChannelUnavailable, Delivery, DeliveryRefused, enqueue, hookimpl
from helpdesk.core.models import OutboxItem, utcnow
from helpdesk.core.worker import deliver_due
from helpdesk.extensions import db


class Pager:
    """A channel ``pager`` whose deliverer does what each payload says."""

    def __init__(self) -> None:
        self.delivered: list[Delivery] = []

    @hookimpl
    def helpdesk_outbox_senders(self):
        return {"pager": self.deliver, "mail": self.deliver}

    def deliver(self, delivery: Delivery) -> None:
        self.delivered.append(delivery)
        outcome = delivery.payload.get("outcome")
        if outcome == "refused":
            raise DeliveryRefused("21610: unsubscribed recipient")
        if outcome == "away":
            raise ChannelUnavailable("gateway answered 503")
        if outcome == "bug":
            raise KeyError("missing")


pager = Pager()


@pytest.fixture
def app_plugins():
    pager.delivered.clear()
    return [pager]


def queue(*outcomes: str, due_in: timedelta = timedelta(0), channel: str = "pager") -> list[int]:
    items = [
        enqueue(
            channel,
            {"outcome": outcome, "n": n},
            dedupe_key=f"{channel}-{n}-{outcome}",
            due_at=utcnow() + due_in,
        )
        for n, outcome in enumerate(outcomes)
    ]
    db.session.flush()
    ids = [item.id for item in items]
    db.session.commit()
    return ids


def item(item_id: int) -> OutboxItem:
    db.session.rollback()  # end the test's own read, to see what the worker wrote
    return db.session.get(OutboxItem, item_id)


@pytest.mark.hooks("helpdesk_outbox_senders")
def test_a_plugin_channel_is_delivered_and_marked_sent(app):
    [sent] = queue("ok")
    summary = deliver_due()
    assert (summary.sent, summary.retried, summary.dead) == (1, 0, 0)
    [delivery] = pager.delivered
    assert (delivery.id, delivery.channel, delivery.payload["n"]) == (sent, "pager", 0)
    assert delivery.attempts == 0 and not delivery.last_try
    assert item(sent).status == "sent" and item(sent).sent_at is not None


def test_a_permanent_refusal_is_dead_at_once_with_the_reason(app):
    [refused] = queue("refused")
    summary = deliver_due()
    assert (summary.sent, summary.dead) == (0, 1)
    assert item(refused).status == "dead"
    assert item(refused).last_error == "21610: unsubscribed recipient"


def test_an_unavailable_service_holds_the_rest_of_the_batch_for_retry(app):
    first, second, third = queue("away", "ok", "ok")
    summary = deliver_due()
    assert summary.retried == 3 and summary.sent == 0
    assert len(pager.delivered) == 1  # the others were not tried while the service was away
    for item_id in (first, second, third):
        row = item(item_id)
        assert row.status == "pending" and row.attempts == 1 and row.claimed_until is None
        assert "503" in row.last_error and row.next_attempt_at > utcnow()
    later = utcnow() + timedelta(hours=2)
    for row in db.session.scalars(select(OutboxItem)):
        row.payload = {**row.payload, "outcome": "ok"}
    db.session.commit()
    assert deliver_due(now=later).sent == 3


def test_a_deliverer_bug_is_a_temporary_failure_of_that_item_only(app):
    buggy, fine = queue("bug", "ok")
    summary = deliver_due()
    assert (summary.sent, summary.retried) == (1, 1)
    assert "KeyError" in item(buggy).last_error and item(fine).status == "sent"


def test_the_last_try_is_announced_and_then_the_item_is_dead(app):
    [failing] = queue("bug")
    row = item(failing)
    row.attempts = app.config["OUTBOX_MAX_ATTEMPTS"] - 1
    db.session.commit()
    assert deliver_due().dead == 1
    assert pager.delivered[-1].last_try


def test_items_wait_until_due_and_unknown_channels_stay_pending(app):
    [later] = queue("ok", due_in=timedelta(hours=1))
    [orphan] = queue("ok", channel="fax")
    assert deliver_due().total == 0
    assert deliver_due(now=utcnow() + timedelta(hours=2)).sent == 1
    assert item(later).status == "sent"
    assert item(orphan).status == "pending" and item(orphan).attempts == 0


def test_a_plugin_cannot_take_over_the_mail_channel(app):
    queue("refused", channel="mail")
    deliver_due()
    assert pager.delivered == []  # mail goes through SMTP, never a plugin's deliverer


def test_an_untracked_item_is_written_at_once_and_goes_with_its_transaction(app):
    due = utcnow() + timedelta(minutes=5)
    assert enqueue("pager", {"outcome": "ok"}, dedupe_key="lost", track=False) is None
    db.session.rollback()  # a rolled-back change leaves no item behind
    assert db.session.scalars(select(OutboxItem)).all() == []
    enqueue("pager", {"outcome": "ok", "n": 7}, dedupe_key="kept", due_at=due, track=False)
    db.session.commit()
    [row] = db.session.scalars(select(OutboxItem)).all()
    assert (row.channel, row.dedupe_key, row.payload, row.status) == (
        "pager",
        "kept",
        {"outcome": "ok", "n": 7},
        "pending",
    )
    assert (row.attempts, row.last_error, row.ticket_id, row.claimed_until) == (0, "", None, None)
    assert row.next_attempt_at == due and row.created_at <= utcnow()
    with pytest.raises(IntegrityError):  # the key is unique, as for a tracked item
        enqueue("pager", {}, dedupe_key="kept", track=False)
    db.session.rollback()
    assert deliver_due().total == 0
    assert deliver_due(now=due).sent == 1 and item(row.id).status == "sent"
    assert [delivery.payload["n"] for delivery in pager.delivered] == [7]
