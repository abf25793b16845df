"""Categories on registration, a commit at a time: every customer a commit created gets the
default category and its "registered" history row in a few statements, exactly as one customer
does; one already in a category keeps it (even one an agent chose in a concurrent transaction
on PostgreSQL), without losing the others' rows."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, insert, select, text

from helpdesk import utcnow
from helpdesk.core import customers, events
from helpdesk.core.models import Customer
from helpdesk.extensions import db
from plugins.categories import service
from plugins.categories.models import Category, CategoryChange, CustomerCategory


@pytest.fixture(autouse=True)
def categories_enabled(app_config: dict[str, Any]) -> None:
    """The plugin switched on alone (the suite pins it off)."""
    app_config["PLUGINS_DISABLED"] = ["hello", "surveys", "loyalty", "letters", "retention"]


@pytest.fixture
def cats(app: Flask) -> dict[str, Category]:
    """Ordinary (the default) and VIP (the migration's seed is wiped with every row)."""
    return {name: service.create_category({"name": name}) for name in ("Ordinary", "VIP")}


def emails(count: int, prefix: str = "c") -> list[str]:
    return [f"{prefix}{i}@example.com" for i in range(count)]


def categories() -> dict[str, str]:
    """Each customer's own category by address."""
    rows = db.session.execute(
        select(Customer.email, Category.name)
        .join(CustomerCategory, CustomerCategory.customer_id == Customer.id)
        .join(Category, Category.id == CustomerCategory.category_id)
    )
    return dict(rows.all())


def history() -> list[tuple[str, str, str, str, int | None, int | None]]:
    """(address, old name, new name, reason, old id, agent id) of every change, oldest first."""
    rows = db.session.execute(
        select(
            Customer.email,
            CategoryChange.old_name,
            CategoryChange.new_name,
            CategoryChange.reason,
            CategoryChange.old_category_id,
            CategoryChange.agent_id,
        )
        .join(Customer, Customer.id == CategoryChange.customer_id)
        .order_by(CategoryChange.id)
    )
    return [tuple(row) for row in rows]


def test_every_customer_of_a_commit_gets_the_default_and_its_history(app: Flask, cats):
    customers.add_new_customers(emails(30))
    events.commit()
    assert categories() == {email: "Ordinary" for email in emails(30)}
    assert history() == [(email, "", "Ordinary", "registered", None, None) for email in emails(30)]
    one = customers.register_customer({"email": "one@example.com"})
    assert service.category_of(one).id == cats["Ordinary"].id
    assert history()[-1] == ("one@example.com", "", "Ordinary", "registered", None, None)


def test_a_customer_already_in_a_category_keeps_it_and_the_others_get_theirs(app: Flask, cats):
    created = customers.add_new_customers(emails(3))
    db.session.add(CustomerCategory(customer_id=created[1].id, category_id=cats["VIP"].id))
    events.commit()
    assert categories() == {"c0@example.com": "Ordinary", "c1@example.com": "VIP"} | {
        "c2@example.com": "Ordinary"
    }
    assert [row[0] for row in history()] == ["c0@example.com", "c2@example.com"]


def test_no_default_or_a_retired_one_gives_nobody_a_category(app: Flask, cats):
    app.config["CATEGORIES_DEFAULT"] = ""
    customers.add_new_customers(emails(2, "a"))
    events.commit()
    app.config["CATEGORIES_DEFAULT"] = "Ordinary"
    cats["Ordinary"].retired = True  # update_category refuses it: the default is never retired
    db.session.commit()
    customers.add_new_customers(emails(2, "b"))
    events.commit()
    assert categories() == {} and history() == []


def test_a_few_statements_whatever_the_number_of_customers(app: Flask, cats, count_queries):
    counts = []
    for size, prefix in ((3, "s"), (60, "m")):
        created = customers.add_new_customers(emails(size, prefix))
        events.take()  # the hooks are called here, not by the commit
        db.session.commit()
        with count_queries as counted:
            service.assign_defaults(created)
        counts.append(len(counted.statements))
    assert counts[0] == counts[1] <= 4
    assert len(categories()) == 63 and len(history()) == 63


def test_a_choice_committed_concurrently_is_kept_and_the_others_still_get_theirs(app: Flask, cats):
    """The other transaction holds the customer's row until our insert waits for it, then
    commits: ours skips that customer (no unique violation) and keeps the others' rows."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers queue on the database lock: no concurrent insert")
    created = customers.add_new_customers(emails(3))
    events.take()
    db.session.commit()
    vip = cats["VIP"].id
    errors: list[Exception] = []

    def assign() -> None:
        with app.app_context():
            try:
                service.assign_defaults(created)
            except Exception as exc:  # reported by the test
                errors.append(exc)
            finally:
                db.session.remove()

    with db.engine.connect() as other:
        row = {"customer_id": created[1].id, "category_id": vip, "assigned_at": utcnow()}
        other.execute(insert(CustomerCategory.__table__).values(row))
        worker = threading.Thread(target=assign)
        worker.start()
        _wait_for_a_lock_wait()
        other.commit()
    worker.join(timeout=60)
    assert not worker.is_alive() and errors == []
    db.session.expire_all()
    assert categories() == {"c0@example.com": "Ordinary", "c1@example.com": "VIP"} | {
        "c2@example.com": "Ordinary"
    }
    assert [row[0] for row in history()] == ["c0@example.com", "c2@example.com"]


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


def test_registration_counts_customers_once(app: Flask, cats):
    created = customers.add_new_customers(emails(2))
    events.commit()
    service.assign_defaults([*created, created[0]])  # a repeated event changes nothing
    assert len(history()) == 2
    assert db.session.scalar(select(func.count()).select_from(CustomerCategory)) == 2
