"""Cards on registration, a commit at a time: every customer a commit created gets one new
active card with a fresh unique number and its "issued on registration" event, in a few
statements; one who already holds an active card (an imported card came first, or one issued
in a concurrent transaction on PostgreSQL) keeps it, without losing the others' cards."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, insert, select, text

from helpdesk import utcnow
from helpdesk.core import customers, events
from helpdesk.core.models import Customer
from helpdesk.extensions import db
from plugins.loyalty import cards
from plugins.loyalty.models import Card, CardEvent

NUMBER = "4000123456789017"  # Luhn-valid, 16 digits


@pytest.fixture(autouse=True)
def loyalty_enabled(app_config: dict[str, Any]) -> None:
    """The plugin switched on alone (the suite pins it off)."""
    app_config["PLUGINS_DISABLED"] = ["hello", "categories", "surveys", "letters", "retention"]


def emails(count: int, prefix: str = "c") -> list[str]:
    return [f"{prefix}{i}@example.com" for i in range(count)]


def held() -> dict[str, list[tuple[str, str, list[tuple[str, str]]]]]:
    """Each customer's cards by address: (number, status, [(action, reason) of its events])."""
    db.session.expire_all()
    found: dict[str, list[tuple[str, str, list[tuple[str, str]]]]] = {}
    rows = db.session.execute(
        select(Customer.email, Card).join(Card, Card.customer_id == Customer.id).order_by(Card.id)
    )
    for email, card in rows:
        changes = db.session.execute(
            select(CardEvent.action, CardEvent.reason)
            .where(CardEvent.card_id == card.id)
            .order_by(CardEvent.id)
        )
        found.setdefault(email, []).append((card.number, card.status, [tuple(c) for c in changes]))
    return found


ISSUED = [("issued", "issued on registration")]


def test_every_customer_of_a_commit_gets_one_card_with_a_unique_number(app: Flask):
    customers.add_new_customers(emails(40))
    events.commit()
    found = held()
    assert sorted(found) == sorted(emails(40))
    assert all(len(own) == 1 and own[0][1:] == ("active", ISSUED) for own in found.values())
    numbers = [own[0][0] for own in found.values()]
    assert len(set(numbers)) == 40
    assert all(cards.format_error(number) is None for number in numbers)
    for email in emails(40):
        card = cards.active_card(customers.customer_by_email(email).id)
        assert card is not None and card.balance == 0 and card.owed == 0
        assert card.currency == app.config["LOYALTY_CURRENCY"]


def test_an_imported_card_that_came_first_is_kept_and_the_others_get_theirs(app: Flask):
    created = customers.add_new_customers(emails(3))
    cards.add_card(created[1], number=NUMBER, reason="imported")  # as `loyalty import` does
    events.commit()
    found = held()
    assert found["c1@example.com"] == [(NUMBER, "active", [("issued", "imported")])]
    assert [own[0][1:] for own in (found["c0@example.com"], found["c2@example.com"])] == [
        ("active", ISSUED),
        ("active", ISSUED),
    ]


def test_auto_issue_off_issues_nothing_to_a_batch(app: Flask):
    app.config["LOYALTY_AUTO_ISSUE"] = False
    customers.add_new_customers(emails(3))
    events.commit()
    assert held() == {}


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The numbers ``_random_number`` draws, in order (the test fills the list)."""
    numbers: list[str] = []
    monkeypatch.setattr(cards, "_random_number", lambda: numbers.pop(0))
    yield numbers


def test_a_taken_or_twice_drawn_number_is_drawn_again(app: Flask, drawn: list[str]):
    drawn.append(NUMBER)
    customers.register_customer({"email": "first@example.com"})
    # c0 draws NUMBER (taken), c1 B, c2 B again (drawn twice); then c0 draws C and c2 D.
    drawn.extend([NUMBER, "B", "B", "C", "D"])
    customers.add_new_customers(emails(3))
    events.commit()
    assert drawn == []
    assert {email: own[0][0] for email, own in held().items()} == {
        "first@example.com": NUMBER,
        "c0@example.com": "C",
        "c1@example.com": "B",
        "c2@example.com": "D",
    }


def test_a_customer_without_a_free_number_after_every_attempt_gets_none(
    app: Flask, drawn: list[str]
):
    first = customers.add_new_customers(["first@example.com"])
    drawn.append(NUMBER)
    events.commit()
    drawn[:] = ["B"] + [NUMBER] * cards.NEW_NUMBER_ATTEMPTS
    customers.add_new_customers(emails(2))
    events.commit()
    assert drawn == []  # c1 drew NUMBER_ATTEMPTS times, as `new_number` tries
    found = held()
    assert sorted(found) == ["c0@example.com", "first@example.com"]
    assert cards.active_card(first[0].id).number == NUMBER and found["c0@example.com"][0][0] == "B"


def test_a_few_statements_whatever_the_number_of_customers(app: Flask, count_queries):
    counts = []
    for size, prefix in ((3, "s"), (60, "m")):
        created = customers.add_new_customers(emails(size, prefix))
        events.take()  # the hooks are called here, not by the commit
        db.session.commit()
        with count_queries as counted:
            assert cards.issue_on_registration(created) == size
        counts.append(len(counted.statements))
    assert counts[0] == counts[1] <= 5
    assert cards.issue_on_registration(created) == 0  # a repeated event issues nothing
    assert db.session.scalar(select(func.count()).select_from(Card)) == 63


def test_a_card_issued_concurrently_is_kept_and_the_others_still_get_theirs(app: Flask):
    """The other transaction holds the customer's active card until our insert waits for it,
    then commits: ours skips that customer (no unique violation) and keeps the others'."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers queue on the database lock: no concurrent insert")
    created = customers.add_new_customers(emails(3))
    events.take()
    db.session.commit()
    errors: list[Exception] = []

    def issue() -> None:
        with app.app_context():
            try:
                cards.issue_on_registration(created)
            except Exception as exc:  # reported by the test
                errors.append(exc)
            finally:
                db.session.remove()

    with db.engine.connect() as other:
        row = {
            "number": NUMBER,
            "customer_id": created[1].id,
            "active_customer_id": created[1].id,
            "status": "active",
            "currency": "EUR",
            "balance": 0,
            "owed": 0,
            "created_at": utcnow(),
        }
        other.execute(insert(Card.__table__).values(row))
        worker = threading.Thread(target=issue)
        worker.start()
        _wait_for_a_lock_wait()
        other.commit()
    worker.join(timeout=60)
    assert not worker.is_alive() and errors == []
    found = held()
    assert found["c1@example.com"] == [(NUMBER, "active", [])]
    assert [own[0][1:] for own in (found["c0@example.com"], found["c2@example.com"])] == [
        ("active", ISSUED),
        ("active", ISSUED),
    ]


def _wait_for_a_lock_wait() -> None:
    """Until another session of the database waits for a lock (at most 30 s)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    for _ in range(300):
        with db.engine.connect() as watcher:
            if watcher.scalar(query):
                return
        time.sleep(0.1)
    raise AssertionError("the insert never waited for the other transaction")
