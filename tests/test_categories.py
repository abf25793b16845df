"""The categories plugin: categories and their rules, a customer's category and its history,
the rules applied at every entrance through hooks, the API, and the plugin switched off and on."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from helpdesk import ValidationError, create_app, utcnow
from helpdesk.core import customers, services
from helpdesk.core.accounts import create_agent
from helpdesk.core.models import Customer, Team, Ticket
from helpdesk.extensions import db
from helpdesk.plugins import current_plugins
from plugins.categories import service
from plugins.categories.models import Category, CategoryChange, CustomerCategory
from tests.conftest import post_form

API = "/api/v1"
DEFAULTS = [
    {"name": "Ordinary", "color": "grey"},
    {"name": "VIP", "color": "gold", "priority": "high", "first_response_hours": 1},
    {
        "name": "Problematic",
        "color": "red",
        "prepayment_required": True,
        "warning": "Prepayment only. Handle with extra care.",
    },
    {"name": "Employee", "color": "green", "discount_percent": "20.00"},
]


@pytest.fixture(autouse=True)
def categories_enabled(app_config: dict[str, Any]) -> None:
    """The plugin switched on (the suite pins it off so the core's tests see the core)."""
    app_config["PLUGINS_DISABLED"] = ["hello"]


@pytest.fixture
def cats(app: Flask) -> dict[str, Category]:
    """The four default categories (the migration's seed is wiped with every row)."""
    return {data["name"]: service.create_category(dict(data)) for data in DEFAULTS}


def customer_in(name: str, email: str = "c@example.com") -> Customer:
    customer = customers.register_customer({"email": email, "name": "Cleo"})
    service.set_customer_category(
        customer, service.category_by_name(name), agent=None, reason="test"
    )
    return customer


def count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- the migration ----------------------------------------------------------------------------


def test_migration_seeds_the_usual_four_with_their_rules(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    fresh = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "x"})
    with fresh.app_context():
        targets = current_plugins().upgrade()
        assert "categories_0002" in targets
        rows = {c.name: c for c in service.list_categories()}
        assert list(rows) == ["Ordinary", "VIP", "Problematic", "Employee"]
        assert (rows["VIP"].priority, rows["VIP"].first_response_hours) == ("high", 1)
        assert rows["Problematic"].prepayment_required and rows["Problematic"].warning
        assert rows["Employee"].discount_percent == Decimal("20.00")
        db.session.remove()
        db.engine.dispose()


# --- categories for admins -----------------------------------------------------------------------


@pytest.mark.hooks("helpdesk_nav_items", "helpdesk_blueprints")
def test_admin_creates_renames_recolours_reorders_and_retires(
    admin_client: FlaskClient, cats, team: Team
):
    page = admin_client.get("/categories")
    assert page.status_code == 200 and 'href="/categories"' in page.get_data(as_text=True)
    response = post_form(
        admin_client,
        "/categories",
        {
            "name": "  Wholesale  ",
            "color": "blue",
            "priority": "urgent",
            "first_response_hours": "4",
            "team_id": str(team.id),
            "discount_percent": "12.5",
        },
    )
    assert response.status_code == 302
    wholesale = service.category_by_name("wholesale")
    assert (wholesale.name, wholesale.color, wholesale.priority) == ("Wholesale", "blue", "urgent")
    assert wholesale.discount_percent == Decimal("12.50") and wholesale.team_id == team.id
    assert wholesale.position == 5
    path = f"/categories/{wholesale.id}"
    data = {"name": "Trade", "color": "purple", "discount_percent": "0", "retired": "1"}
    assert post_form(admin_client, path, data, page="/categories").status_code == 302
    db.session.refresh(wholesale)
    assert (wholesale.name, wholesale.color, wholesale.retired) == ("Trade", "purple", True)
    assert not wholesale.prepayment_required  # an unticked box is false
    vip = cats["VIP"]
    post_form(admin_client, f"/categories/{vip.id}/move", {"to": "up"}, page="/categories")
    names = [c.name for c in service.list_categories()]
    assert names == ["VIP", "Ordinary", "Problematic", "Employee", "Trade"]


def test_agents_may_not_manage_categories(agent_client: FlaskClient, cats):
    assert agent_client.get("/categories").status_code == 403
    response = post_form(agent_client, "/categories", {"name": "Sneaky"}, page="/tickets")
    assert response.status_code == 403
    assert service.category_by_name("Sneaky") is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "vip"}, "name"),
        ({"name": "  VIP "}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 61}, "name"),
        ({"name": "bad\x00name"}, "name"),
        ({"name": "Cheap", "discount_percent": "-1"}, "discount_percent"),
        ({"name": "Cheap", "discount_percent": "101"}, "discount_percent"),
        ({"name": "Cheap", "discount_percent": "NaN"}, "discount_percent"),
        ({"name": "Cheap", "discount_percent": "1e309"}, "discount_percent"),
        ({"name": "Cheap", "discount_percent": "Infinity"}, "discount_percent"),
        ({"name": "Cheap", "discount_percent": "ten"}, "discount_percent"),
        ({"name": "Cheap", "discount_percent": "10.005"}, "discount_percent"),
        ({"name": "Cheap", "priority": "low"}, "priority"),
        ({"name": "Cheap", "color": "#ff0000"}, "color"),
        ({"name": "Cheap", "first_response_hours": "0"}, "first_response_hours"),
        ({"name": "Cheap", "first_response_hours": "9" * 30}, "first_response_hours"),
        ({"name": "Cheap", "team_id": "999999"}, "team_id"),
    ],
)
def test_bad_category_forms_are_422_keep_input_and_save_nothing(
    admin_client: FlaskClient, cats, data: dict[str, str], field: str
):
    before = count(Category)
    response = post_form(admin_client, "/categories", data)
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert field in text
    if data["name"].strip() and len(data["name"]) < 61:
        assert f'value="{data["name"]}"' in text  # what the admin typed is still there
    assert count(Category) == before


def test_renaming_to_a_taken_name_is_422_and_changes_nothing(admin_client: FlaskClient, cats):
    vip = cats["VIP"]
    data = {"name": "ordinary", "color": "gold"}
    response = post_form(admin_client, f"/categories/{vip.id}", data, page="/categories")
    assert response.status_code == 422
    db.session.expire_all()
    assert db.session.get(Category, vip.id).name == "VIP"


def test_default_category_cannot_be_retired_or_deleted(admin_client: FlaskClient, cats):
    ordinary = cats["Ordinary"]
    data = {"name": "Ordinary", "retired": "1"}
    assert (
        post_form(admin_client, f"/categories/{ordinary.id}", data, page="/categories").status_code
        == 422
    )
    response = post_form(admin_client, f"/categories/{ordinary.id}/delete", {}, page="/categories")
    assert response.status_code == 409 and "default" in response.get_data(as_text=True)
    db.session.expire_all()
    assert not db.session.get(Category, ordinary.id).retired


def test_deleting_a_category_in_use_is_refused_or_reassigns(admin_client: FlaskClient, cats):
    customer = customer_in("Employee")
    employee, vip = cats["Employee"], cats["VIP"]
    response = post_form(admin_client, f"/categories/{employee.id}/delete", {}, page="/categories")
    assert response.status_code == 409
    assert "1 customer" in response.get_data(as_text=True)
    assert db.session.get(Category, employee.id) is not None
    data = {"reassign_to": str(vip.id)}
    response = post_form(
        admin_client, f"/categories/{employee.id}/delete", data, page="/categories"
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Category, employee.id) is None
    assert service.category_of(customer).id == vip.id
    last = service.customer_history(customer)[0][0]
    assert (last.old_name, last.new_name, last.old_category_id) == ("Employee", "VIP", None)
    assert "deleted" in last.reason
    unused = cats["Problematic"]
    response = post_form(admin_client, f"/categories/{unused.id}/delete", {}, page="/categories")
    assert response.status_code == 302 and db.session.get(Category, unused.id) is None


# --- a customer's category --------------------------------------------------------------------


@pytest.mark.hooks("helpdesk_customers_registered", "helpdesk_customer_json")
def test_registered_customer_gets_the_default_and_the_api_shows_it(
    client: FlaskClient, api_headers, cats
):
    response = client.post(
        f"{API}/customers", json={"email": "new@example.com"}, headers=api_headers
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["category"] == {"id": cats["Ordinary"].id, "name": "Ordinary"}
    row = db.session.get(CustomerCategory, body["id"])
    assert row is not None and row.category_id == cats["Ordinary"].id
    change = db.session.scalar(select(CategoryChange))
    assert (change.new_name, change.reason, change.agent_id) == ("Ordinary", "registered", None)


@pytest.fixture
def vip_by_default(app_config: dict[str, Any]) -> None:
    app_config["CATEGORIES_DEFAULT"] = "VIP"


@pytest.mark.hooks("helpdesk_config_defaults")
def test_the_default_category_is_a_setting(vip_by_default, app: Flask, cats):
    assert app.config["CATEGORIES_DEFAULT"] == "VIP"
    customer = customers.register_customer({"email": "v@example.com"})
    assert service.category_of(customer).name == "VIP"


@pytest.mark.hooks("helpdesk_customer_panels")
def test_agent_changes_a_category_on_the_customer_page_with_a_reason(
    agent_client: FlaskClient, agent, cats
):
    customer = customers.register_customer({"email": "p@example.com", "name": "Pat"})
    page = f"/customers/{customer.id}"
    text = agent_client.get(page).get_data(as_text=True)
    assert "Client category" in text and 'name="reason"' in text
    data = {"category": str(cats["Problematic"].id), "reason": "Two unpaid invoices"}
    response = post_form(agent_client, f"/categories/customers/{customer.id}", data, page=page)
    assert response.status_code == 302
    assert service.category_of(customer).name == "Problematic"
    change = service.customer_history(customer)[0][0]
    assert (change.old_name, change.new_name) == ("Ordinary", "Problematic")
    assert (change.agent_id, change.reason) == (agent.id, "Two unpaid invoices")
    text = agent_client.get(page).get_data(as_text=True)
    assert "Two unpaid invoices" in text and "Ana Agent" in text


def test_a_retired_or_unknown_category_cannot_be_chosen(agent_client: FlaskClient, cats):
    customer = customers.register_customer({"email": "r@example.com"})
    service.update_category(cats["Employee"], {"retired": True})
    page = f"/customers/{customer.id}"
    assert "Employee" not in agent_client.get(page).get_data(as_text=True).split("History")[0]
    for value in (str(cats["Employee"].id), "Employee", "Nope", "9" * 40, ""):
        post_form(
            agent_client, f"/categories/customers/{customer.id}", {"category": value}, page=page
        )
        assert service.category_of(customer).name == "Ordinary"
    assert agent_client.post("/categories/customers/999999", data={}).status_code in (400, 404)


def test_retired_category_stays_on_the_history(cats):
    customer = customer_in("Employee")
    service.set_customer_category(customer, cats["VIP"], agent=None, reason="promoted")
    service.update_category(cats["Employee"], {"retired": True})
    names = [(c.old_name, c.new_name) for c, _ in service.customer_history(customer)]
    assert names[0] == ("Employee", "VIP")


# --- rules at every entrance ----------------------------------------------------------------------


@pytest.mark.hooks("helpdesk_ticket_defaults", "helpdesk_ticket_json")
def test_vip_ticket_through_the_api_has_raised_priority_and_a_one_hour_deadline(
    client: FlaskClient, api_headers, cats
):
    customer_in("VIP", "vip@example.com")
    before = utcnow()
    body = {
        "subject": "Where is my order?",
        "body": "Please",
        "kind": "support",
        "customer": {"email": "vip@example.com"},
    }
    response = client.post(f"{API}/tickets", json=body, headers=api_headers)
    assert response.status_code == 201, response.get_json()
    ticket = response.get_json()
    assert ticket["priority"] == "high"
    assert ticket["categories_category"]["name"] == "VIP"
    row = db.session.get(Ticket, ticket["id"])
    assert before + timedelta(minutes=59) < row.due_at <= utcnow() + timedelta(hours=1)
    asked_low = client.post(
        f"{API}/tickets", json={**body, "priority": "urgent"}, headers=api_headers
    ).get_json()
    assert asked_low["priority"] == "urgent"  # an explicit higher priority is never lowered


def test_vip_ticket_through_the_portal_has_raised_priority(client: FlaskClient, api_headers, cats):
    customer_in("VIP", "vip@example.com")
    form = {
        "name": "Vera",
        "email": "VIP@example.com",
        "phone": "",
        "kind": "complaint",
        "subject": "Broken lamp",
        "body": "It arrived broken.",
        "website": "",
    }
    assert post_form(client, "/", form).status_code in (200, 302, 303)
    ticket = db.session.scalar(select(Ticket))
    assert ticket.priority == "high"
    shown = client.get(f"{API}/tickets/{ticket.id}", headers=api_headers).get_json()
    assert shown["priority"] == "high"


def test_ordinary_ticket_keeps_normal_priority_and_category_team_is_applied(
    app: Flask, cats, team: Team
):
    customer_in("Ordinary", "o@example.com")
    plain = services.open_ticket(subject="Hi", body="Hello", customer_email="o@example.com")
    assert plain.priority == "normal" and plain.team_id is None
    service.update_category(cats["Problematic"], {"team_id": team.id})
    customer_in("Problematic", "p@example.com")
    routed = services.open_ticket(subject="Hi", body="Hello", customer_email="p@example.com")
    assert routed.team_id == team.id


@pytest.mark.hooks("helpdesk_ticket_defaults", "helpdesk_ticket_defaults_many")
def test_tickets_opened_together_get_what_each_would_get_alone(app: Flask, cats, team: Team, agent):
    service.update_category(cats["Problematic"], {"team_id": team.id})
    service.update_category(cats["VIP"], {"assignee_id": agent.id})
    people = [
        customer_in("VIP", "v@example.com"),
        customer_in("Problematic", "p@example.com"),
        customer_in("Ordinary", "o@example.com"),
        customers.register_customer({"email": "new@example.com"}),  # the default category
        customer_in("VIP", "v2@example.com"),
    ]
    asked = {"subject": "Hi", "kind": "support", "priority": None, "team_id": None}
    requests = [{**asked, "customer": who, "assignee_id": None} for who in people]
    now = utcnow()
    together = services.opening_values_many(requests, now=now)
    alone = [services.opening_values(**request, now=now) for request in requests]

    def decided(values: dict[str, Any]) -> tuple:
        due_in = round((values["due_at"] - now).total_seconds() / 60)  # the VIP's: 1 hour
        return values["priority"], values["team_id"], values["assignee_id"], due_in

    assert [decided(v) for v in together] == [decided(v) for v in alone]
    assert [decided(v)[:3] for v in together] == [
        ("high", None, agent.id),
        ("normal", team.id, None),
        ("normal", None, None),
        ("normal", None, None),
        ("high", None, agent.id),
    ]


def test_category_assigns_new_tickets_to_its_agent_while_active(app: Flask, cats, agent):
    service.update_category(cats["VIP"], {"assignee_id": agent.id})
    customer_in("VIP", "v@example.com")
    ticket = services.open_ticket(subject="Hi", body="Hello", customer_email="v@example.com")
    assert ticket.assignee_id == agent.id
    other = create_agent(email="other@example.com", name="Other")
    chosen = services.open_ticket(
        subject="Hi", body="Again", customer_email="v@example.com", assignee=other
    )
    assert chosen.assignee_id == other.id  # the caller's choice is kept
    agent.active = False
    db.session.commit()
    later = services.open_ticket(subject="Hi", body="Later", customer_email="v@example.com")
    assert later.assignee_id is None  # an agent who left takes nothing


@pytest.mark.parametrize("value", ["999999", "abc", "-1", "1.5"])
def test_category_assignee_must_be_an_active_agent(app: Flask, cats, value):
    with pytest.raises(ValidationError) as caught:
        service.update_category(cats["VIP"], {"assignee_id": value})
    assert "assignee_id" in caught.value.errors
    db.session.rollback()
    assert db.session.get(Category, cats["VIP"].id).assignee_id is None


@pytest.mark.hooks("helpdesk_price_policy")
@pytest.mark.parametrize(
    ("category", "amount", "expected"),
    [
        ("Employee", "100.00", ("100.00", "80.00", "20.00", False)),
        ("Employee", "0.05", ("0.05", "0.04", "20.00", False)),
        ("Problematic", "100", ("100.00", "100.00", "0.00", True)),
        ("Ordinary", "19.99", ("19.99", "19.99", "0.00", False)),
    ],
)
def test_price_policy_through_the_api(
    client: FlaskClient, api_headers, cats, category: str, amount: str, expected: tuple
):
    customer = customer_in(category)
    response = client.get(
        f"{API}/customers/{customer.id}/price-policy?amount={amount}", headers=api_headers
    )
    assert response.status_code == 200
    body = response.get_json()
    got = (body["amount"], body["price"], body["discount_percent"], body["prepayment_required"])
    assert got == expected


@pytest.mark.parametrize("amount", ["", "NaN", "1e309", "-1", "abc", "Infinity", "1" * 40])
def test_price_policy_bad_amount_is_422(client: FlaskClient, api_headers, cats, amount: str):
    customer = customer_in("Employee")
    response = client.get(
        f"{API}/customers/{customer.id}/price-policy",
        query_string={"amount": amount},
        headers=api_headers,
    )
    assert response.status_code == 422
    assert response.get_json()["error"]


@pytest.mark.hooks("helpdesk_ticket_panels")
def test_problematic_client_ticket_shows_the_badge_and_warning(agent_client: FlaskClient, cats):
    customer_in("Problematic", "p@example.com")
    ticket = services.open_ticket(subject="Refund", body="Now!", customer_email="p@example.com")
    text = agent_client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "tone-red" in text and "Problematic" in text
    assert "Prepayment only. Handle with extra care." in text and 'role="alert"' in text


@pytest.mark.hooks("helpdesk_ticket_panels")
def test_ticket_page_shows_the_default_category_only_with_a_rule(agent_client: FlaskClient, cats):
    customer_in("Ordinary", "o@example.com")
    ticket = services.open_ticket(subject="Hello", body="x", customer_email="o@example.com")
    assert "Client category" not in agent_client.get(f"/tickets/{ticket.id}").get_data(True)
    service.update_category(cats["Ordinary"], {"discount_percent": "5"})
    text = agent_client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "Client category" in text and "Discount: 5.00 %" in text


@pytest.mark.hooks("helpdesk_queue_badges", "helpdesk_queue_filters")
def test_queue_badges_and_filter_by_category(
    agent_client: FlaskClient, api_headers, cats, count_queries
):
    customer_in("VIP", "v@example.com")
    customers.register_customer({"email": "o@example.com"})  # the default, by registration
    services.open_ticket(subject="From VIP", body="x", customer_email="v@example.com")
    services.open_ticket(subject="From Ordinary", body="x", customer_email="o@example.com")
    services.open_ticket(subject="Brand new", body="x", customer_email="n@example.com")
    text = agent_client.get("/tickets").get_data(as_text=True)
    assert "tone-gold" in text and 'name="category"' in text
    # Only the exceptions are marked: no badge says a customer is in the default category.
    assert 'title="Client category">VIP</span>' in text
    assert 'title="Client category">Ordinary</span>' not in text
    vip = agent_client.get(f"/tickets?category={cats['VIP'].id}").get_data(as_text=True)
    assert "From VIP" in vip and "From Ordinary" not in vip
    ordinary = agent_client.get(f"/tickets?category={cats['Ordinary'].id}").get_data(as_text=True)
    assert "From Ordinary" in ordinary and "Brand new" in ordinary and "From VIP" not in ordinary
    api = agent_client.get(f"{API}/tickets?category={cats['VIP'].id}", headers=api_headers)
    assert [t["subject"] for t in api.get_json()["items"]] == ["From VIP"]
    with count_queries as few:
        agent_client.get("/tickets")
    for n in range(10):
        customer_in("Employee", f"e{n}@example.com")
        services.open_ticket(subject=f"Staff {n}", body="x", customer_email=f"e{n}@example.com")
    with count_queries as many:
        agent_client.get("/tickets")
    assert many.count == few.count


# --- the API ---------------------------------------------------------------------------------


def test_api_lists_and_creates_categories(client: FlaskClient, api_headers, cats, app: Flask):
    items = client.get(f"{API}/categories", headers=api_headers).get_json()["items"]
    assert [c["name"] for c in items] == ["Ordinary", "VIP", "Problematic", "Employee"]
    assert items[3]["discount_percent"] == "20.00" and items[1]["priority"] == "high"
    denied = client.post(f"{API}/categories", json={"name": "X"}, headers=api_headers)
    assert denied.status_code == 403
    assert client.get(f"{API}/categories").status_code == 401


def test_api_creates_categories_for_admins_and_refuses_bad_ones(client: FlaskClient, admin, cats):
    from helpdesk.core import tokens

    headers = {"Authorization": f"Bearer {tokens.create_api_token(admin, 't')}"}
    created = client.post(
        f"{API}/categories", json={"name": "Partner", "discount_percent": 7.5}, headers=headers
    )
    assert created.status_code == 201 and created.get_json()["discount_percent"] == "7.50"
    for body, status in [
        ({"name": "partner"}, 422),
        ({"name": ""}, 422),
        ({}, 422),
        ({"name": "Y", "discount_percent": -1}, 422),
        ({"name": "Y", "discount_percent": 101}, 422),
        ({"name": "Y", "discount_percent": 1e308 * 10}, 400),  # serialises as Infinity
        ({"name": "Y", "discount_percent": "NaN"}, 422),
        ({"name": "Y", "prepayment_required": "maybe"}, 422),
    ]:
        response = client.post(f"{API}/categories", json=body, headers=headers)
        assert response.status_code == status, body
        assert response.get_json()["error"]
    raw = client.post(
        f"{API}/categories",
        data='{"name": "Z", "discount_percent": 1e309}',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert raw.status_code == 422
    raw = client.post(
        f"{API}/categories",
        data='{"name": "Z", "discount_percent": NaN}',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert raw.status_code == 400
    assert service.category_by_name("Z") is None and service.category_by_name("Y") is None


def test_api_puts_a_customer_in_a_category(client: FlaskClient, api_headers, agent, cats):
    customer = customers.register_customer({"email": "c@example.com"})
    path = f"{API}/customers/{customer.id}/category"
    response = client.put(
        path, json={"category": "vip", "reason": "big spender"}, headers=api_headers
    )
    assert response.status_code == 200
    assert response.get_json() == {"id": cats["VIP"].id, "name": "VIP"}
    change = service.customer_history(customer)[0][0]
    assert (change.agent_id, change.reason) == (agent.id, "big spender")
    got = client.get(f"{API}/customers/{customer.id}", headers=api_headers).get_json()
    assert got["category"]["name"] == "VIP"
    for body in (
        {"category": "Nope"},
        {"category": None},
        {},
        {"category": "VIP", "reason": "x" * 1001},
    ):
        assert client.put(path, json=body, headers=api_headers).status_code == 422
    assert (
        client.put(
            path, data="[]", headers={**api_headers, "Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert (
        client.put(
            f"{API}/customers/999999/category", json={"category": "VIP"}, headers=api_headers
        ).status_code
        == 404
    )


@pytest.mark.hooks("helpdesk_openapi")
def test_openapi_document_describes_the_plugin_routes(client: FlaskClient):
    doc = client.get(f"{API}/openapi.json").get_json()
    assert doc["paths"]["/categories"]["post"]["operationId"] == "categories_api.create_category"
    assert "PricePolicy" in doc["components"]["schemas"]
    assert "/tickets" in doc["paths"]  # the core's paths are all still there


# --- failures and switching off --------------------------------------------------------------


def test_a_failing_hook_makes_no_500(
    agent_client: FlaskClient, api_headers, cats, monkeypatch, caplog
):
    customer = customer_in("VIP", "v@example.com")

    def broken(*args: Any, **kwargs: Any):
        raise RuntimeError("categories broke")

    monkeypatch.setattr(service, "categories_of", broken)
    monkeypatch.setattr(service, "category_of", broken)
    caplog.set_level(logging.ERROR, "helpdesk.plugins")
    body = {"subject": "Hi", "body": "x", "kind": "support", "customer": {"email": "v@example.com"}}
    created = agent_client.post(f"{API}/tickets", json=body, headers=api_headers)
    assert created.status_code == 201 and created.get_json()["priority"] == "normal"
    ticket_id = created.get_json()["id"]
    assert agent_client.get(f"/tickets/{ticket_id}").status_code == 200
    assert agent_client.get("/tickets").status_code == 200
    assert agent_client.get(f"/customers/{customer.id}").status_code == 200
    got = agent_client.get(f"{API}/customers/{customer.id}", headers=api_headers)
    assert got.status_code == 200 and "category" not in got.get_json()
    assert "categories broke" in caplog.text and "'categories'" in caplog.text


def test_disabling_hides_everything_and_enabling_brings_it_back(
    agent_client: FlaskClient, admin_client: FlaskClient, api_headers, cats
):
    customer = customer_in("Problematic", "p@example.com")
    ticket = services.open_ticket(subject="Refund", body="x", customer_email="p@example.com")
    plugins = current_plugins()
    plugins.set_enabled("categories", False, actor="test")
    assert admin_client.get("/categories").status_code == 404
    assert agent_client.get(f"{API}/categories", headers=api_headers).status_code == 404
    assert "Prepayment only" not in agent_client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "Client category" not in agent_client.get(f"/customers/{customer.id}").get_data(
        as_text=True
    )
    assert (
        "category"
        not in agent_client.get(f"{API}/customers/{customer.id}", headers=api_headers).get_json()
    )
    assert 'name="category"' not in agent_client.get("/tickets").get_data(as_text=True)
    assert "/categories" not in agent_client.get(f"{API}/openapi.json").get_json()["paths"]
    plugins.set_enabled("categories", True, actor="test")
    assert admin_client.get("/categories").status_code == 200
    got = agent_client.get(f"{API}/customers/{customer.id}", headers=api_headers).get_json()
    assert got["category"]["name"] == "Problematic"
    assert "Prepayment only" in agent_client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
