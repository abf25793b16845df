"""Customer pages: list, search, paging, create, edit, and the customer's page."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from helpdesk.core import services
from helpdesk.core.customers import register_customer
from helpdesk.core.models import Customer
from helpdesk.extensions import db
from tests.conftest import post_form

HOSTILE_NAME = '<script>alert("x")</script>'
HOSTILE_NOTES = 'javascript:alert(1) <a href="javascript:alert(2)">x</a> data:text/html,<b>x</b>'
UNICODE_NAMES = [
    "שלום עליכם",  # Hebrew
    "Σωκράτης Παπαδόπουλος",  # Greek
    "Guðrún Þórsdóttir",  # Icelandic
    "Zoë 🙂🎉",  # emoji
]


@pytest.fixture
def small_app(app_config: dict[str, Any], request: pytest.FixtureRequest) -> Flask:
    """An app that reads local phone numbers as Icelandic and shows two rows a page."""
    app_config["PHONE_DEFAULT_REGION"] = "IS"
    app_config["PAGE_SIZE"] = 2
    return request.getfixturevalue("app")


def customer_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Customer))


def page_text(response) -> str:
    return response.get_data(as_text=True)


def names_listed(response) -> list[str]:
    """The customer names in the list's table, in order, unescaped."""
    cells = re.findall(r'<td><a href="/customers/\d+">([^<]*)</a></td>', page_text(response))
    return [html.unescape(cell) for cell in cells]


@pytest.mark.parametrize(
    "path", ["/customers", "/customers/new", "/customers/1", "/customers/1/edit"]
)
def test_anonymous_is_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_anonymous_post_saves_nothing(client, app):
    response = client.post("/customers/new", data={"email": "x@example.com"})
    assert response.status_code in (302, 400)
    assert customer_count() == 0


def test_create_customer_and_show_page(small_app, agent_client):
    response = post_form(
        agent_client,
        "/customers/new",
        {"email": "Ola@Example.com", "name": "Ola Nordmann", "phone": "555 1234", "notes": "VIP"},
    )
    assert response.status_code == 303
    customer = db.session.scalar(select(Customer))
    assert response.headers["Location"].endswith(f"/customers/{customer.id}")
    assert (customer.email, customer.email_key) == ("Ola@example.com", "ola@example.com")
    assert customer.phone == "+3545551234"
    page = page_text(agent_client.get(f"/customers/{customer.id}"))
    assert "Ola Nordmann" in page and "+3545551234" in page and "VIP" in page
    assert f'href="/tickets/new?customer={customer.id}"' in page


def test_duplicate_email_in_another_case_keeps_one_record(agent_client):
    first = register_customer({"email": "maria@example.com", "name": "María"})
    response = post_form(
        agent_client, "/customers/new", {"email": "MARIA@Example.COM", "name": "Other"}
    )
    assert response.status_code == 409
    page = page_text(response)
    assert "already exists" in page
    assert f'href="/customers/{first.id}"' in page
    assert 'value="MARIA@Example.COM"' in page and 'value="Other"' in page
    assert customer_count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-address"),
        ("email", ""),
        ("email", "a@b@c.example"),
        ("phone", "12"),
        ("phone", "call me maybe"),
        ("name", "N" * 201),
        ("notes", "n" * 20_001),
    ],
)
def test_invalid_input_is_422_with_input_kept(agent_client, field, value):
    data = {"email": "kept@example.com", "name": "Kept Name", "phone": "", "notes": "kept notes"}
    data[field] = value
    response = post_form(agent_client, "/customers/new", data)
    assert response.status_code == 422
    page = page_text(response)
    assert 'class="field-error"' in page
    assert html.escape(value, quote=True) in page
    for other in set(data) - {field, "phone"}:
        assert html.escape(data[other], quote=True) in page
    assert customer_count() == 0


def test_edit_customer(small_app, agent_client):
    customer = register_customer({"email": "edit@example.com", "name": "Before"})
    form = page_text(agent_client.get(f"/customers/{customer.id}/edit"))
    assert 'value="Before"' in form and 'value="edit@example.com"' in form
    response = post_form(
        agent_client,
        f"/customers/{customer.id}/edit",
        {"email": "Edit@Example.com", "name": "After", "phone": "+44 20 7946 0958", "notes": "x"},
    )
    assert response.status_code == 303
    db.session.expire_all()
    customer = db.session.get(Customer, customer.id)
    assert (customer.name, customer.phone, customer.notes) == ("After", "+442079460958", "x")
    assert customer.email_key == "edit@example.com"


def test_edit_to_anothers_email_is_refused_with_a_link(agent_client):
    taken = register_customer({"email": "taken@example.com", "name": "Taken"})
    customer = register_customer({"email": "mine@example.com", "name": "Mine"})
    response = post_form(
        agent_client,
        f"/customers/{customer.id}/edit",
        {"email": "TAKEN@example.com", "name": "Changed", "phone": "", "notes": ""},
    )
    assert response.status_code == 422
    page = page_text(response)
    assert f'href="/customers/{taken.id}"' in page and 'value="Changed"' in page
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).name == "Mine"


def test_edit_with_over_long_notes_saves_nothing(agent_client):
    customer = register_customer({"email": "long@example.com", "name": "Long", "notes": "old"})
    response = post_form(
        agent_client,
        f"/customers/{customer.id}/edit",
        {"email": "long@example.com", "name": "New name", "phone": "", "notes": "n" * 20_001},
    )
    assert response.status_code == 422
    assert 'value="New name"' in page_text(response)
    db.session.expire_all()
    assert (db.session.get(Customer, customer.id).name, customer.notes) == ("Long", "old")


@pytest.mark.parametrize(
    "path", ["/customers/999", "/customers/999/edit", "/customers/99999999999999999999"]
)
def test_unknown_customer_is_404(agent_client, path):
    assert agent_client.get(path).status_code == 404


def test_post_without_csrf_is_400_and_saves_nothing(agent_client):
    customer = register_customer({"email": "csrf@example.com", "name": "Safe"})
    response = agent_client.post("/customers/new", data={"email": "new@example.com"})
    assert response.status_code == 400
    response = agent_client.post(
        f"/customers/{customer.id}/edit", data={"email": "csrf@example.com", "name": "Hacked"}
    )
    assert response.status_code == 400
    assert customer_count() == 1
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).name == "Safe"


def test_hostile_name_and_notes_render_inert(agent_client):
    response = post_form(
        agent_client,
        "/customers/new",
        {"email": "evil@example.com", "name": HOSTILE_NAME, "notes": HOSTILE_NOTES},
    )
    assert response.status_code == 303
    customer = db.session.scalar(select(Customer))
    assert (customer.name, customer.notes) == (HOSTILE_NAME, HOSTILE_NOTES)
    for path in ("/customers", f"/customers/{customer.id}", f"/customers/{customer.id}/edit"):
        page = page_text(agent_client.get(path))
        assert "&lt;script&gt;" in page
        assert "<script>alert" not in page
        assert 'href="javascript:' not in page
        assert "<b>x</b>" not in page


@pytest.mark.parametrize("name", UNICODE_NAMES)
def test_unicode_round_trips(agent_client, name):
    notes = f"{name}\nשורה שנייה · Þetta er í lagi · 🎉"
    response = post_form(
        agent_client, "/customers/new", {"email": "uni@example.com", "name": name, "notes": notes}
    )
    assert response.status_code == 303
    customer = db.session.scalar(select(Customer))
    assert (customer.name, customer.notes) == (name, notes)
    page = page_text(agent_client.get(f"/customers/{customer.id}"))
    assert name in page and notes in page
    listed = agent_client.get("/customers", query_string={"q": name.split()[0]})
    assert names_listed(listed) == [name]


def test_search_by_name_email_and_phone(small_app, agent_client):
    ana = register_customer({"email": "ana@example.com", "name": "Ana Silva", "phone": "555 1234"})
    register_customer({"email": "bob@other.org", "name": "Bob Jones", "phone": "+1 202 555 0143"})
    small_app.config["PAGE_SIZE"] = 10

    def search(q: str) -> list[str]:
        response = agent_client.get("/customers", query_string={"q": q})
        assert response.status_code == 200
        return names_listed(response)

    assert search("silva") == ["Ana Silva"]
    assert search("ANA@EXAMPLE") == ["Ana Silva"]
    assert search("other.org") == ["Bob Jones"]
    assert search("555-1234") == ["Ana Silva"]
    assert search("+354 555") == ["Ana Silva"]
    assert search("2025550143") == ["Bob Jones"]
    assert search("nobody") == []
    assert ana.id


def test_like_wildcards_in_search_are_literal(agent_client):
    for name, email in [
        ("100% Pure", "pure@example.com"),
        ("100 Pure", "plain@example.com"),
        ("Back\\slash", "b@example.com"),
        ("Under", "a_b@example.com"),
        ("Other", "axb@example.com"),
    ]:
        register_customer({"email": email, "name": name})

    def search(q: str) -> list[str]:
        return sorted(names_listed(agent_client.get("/customers", query_string={"q": q})))

    assert search("100%") == ["100% Pure"]
    assert search("%") == ["100% Pure"]
    assert search("a_b") == ["Under"]
    assert search("_") == ["Under"]
    assert search("k\\s") == ["Back\\slash"]
    assert search("\"'--") == []
    assert search("NEAR(*") == []


def test_sort_and_paginate(small_app, agent_client):
    for name in ["Carla", "Alma", "Bruno", "Dora", "Emil"]:
        register_customer({"email": f"{name.lower()}@example.com", "name": name})
    first = agent_client.get("/customers")
    assert names_listed(first) == ["Emil", "Dora"]
    assert 'rel="next"' in page_text(first) and 'rel="prev"' not in page_text(first)
    last = agent_client.get("/customers?page=3")
    assert names_listed(last) == ["Carla"]
    assert 'rel="next"' not in page_text(last) and 'rel="prev"' in page_text(last)
    by_name = [
        name
        for page in (1, 2, 3)
        for name in names_listed(agent_client.get(f"/customers?sort=name&page={page}"))
    ]
    assert by_name == ["Alma", "Bruno", "Carla", "Dora", "Emil"]
    second = page_text(agent_client.get("/customers", query_string={"q": "a", "page": 1}))
    assert "q=a" in second and "page=2" in second


@pytest.mark.parametrize(
    "query",
    [{"page": "0"}, {"page": "abc"}, {"page": "9" * 30}, {"sort": "id;drop"}, {"q": "x" * 201}],
)
def test_bad_list_arguments_are_422(agent_client, query):
    assert agent_client.get("/customers", query_string=query).status_code == 422


def test_open_ticket_counts_and_customer_tickets(agent_client, agent):
    customer = register_customer({"email": "busy@example.com", "name": "Busy"})
    tickets = [
        services.open_ticket(subject=f"Issue {n}", body="help", customer=customer) for n in range(3)
    ]
    services.update_ticket(tickets[0], {"status": "resolved"}, actor=agent)
    listed = page_text(agent_client.get("/customers"))
    assert re.search(r"busy@example.com</td>\s*<td></td>\s*<td>2</td>", listed)
    page = page_text(agent_client.get(f"/customers/{customer.id}"))
    assert f'href="/tickets?customer={customer.id}"' in page
    for ticket in tickets:
        assert f'href="/tickets/{ticket.id}"' in page
        assert f"Issue {tickets.index(ticket)}" in page


def _seed_customers(start: int, count: int) -> None:
    for n in range(start, start + count):
        customer = register_customer({"email": f"c{n}@example.com", "name": f"Customer {n}"})
        services.open_ticket(subject="Hello", body="Hi", customer=customer)


def test_customer_list_queries_do_not_grow_with_rows(agent_client, count_queries):
    _seed_customers(0, 2)
    with count_queries as few:
        assert agent_client.get("/customers").status_code == 200
    _seed_customers(2, 12)
    with count_queries as many:
        response = agent_client.get("/customers")
    assert len(names_listed(response)) == 14
    assert many.count == few.count, many.statements


def test_customer_page_queries_do_not_grow_with_tickets(agent_client, agent, count_queries):
    customer = register_customer({"email": "q@example.com", "name": "Q"})
    services.open_ticket(
        subject="One", body="x", customer=customer, assignee=agent, opened_by=agent
    )
    with count_queries as few:
        assert agent_client.get(f"/customers/{customer.id}").status_code == 200
    for n in range(8):
        services.open_ticket(subject=f"T{n}", body="x", customer=customer, assignee=agent)
    with count_queries as many:
        assert agent_client.get(f"/customers/{customer.id}").status_code == 200
    assert many.count == few.count, many.statements


@pytest.mark.parametrize(
    ("name", "query"),
    [("Νίκος Παπαδάκης", "νίκος"), ("ÓLAFUR Þórsson", "ólafur þór"), ("Ðóra", "ðÓRA")],
)
def test_search_ignores_case_beyond_ascii(agent_client, name, query):
    register_customer({"email": "u@example.com", "name": name})
    assert names_listed(agent_client.get("/customers", query_string={"q": query})) == [name]
