"""Orders: recording with exact money, the event after commit, the customer page's orders and
form, and the REST API's order endpoints (checked against the OpenAPI document)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from helpdesk import hookimpl
from helpdesk.core import orders, tokens
from helpdesk.core.accounts import create_agent
from helpdesk.core.customers import register_customer
from helpdesk.core.errors import ValidationError
from helpdesk.core.models import Customer, Order, utcnow
from helpdesk.extensions import db
from tests.conftest import csrf_from, login, post_form
from tests.test_api import PREFIX, Api


class OrderRecorder:
    """Hears every recorded order, and whether its change was committed by then (a commit
    happened after the order was added to the session)."""

    def __init__(self) -> None:
        self.heard: list[tuple[str | None, bool]] = []
        self.commits = 0
        self.added_at: dict[int, int] = {}

    def committed(self, session: Session) -> None:
        self.commits += 1

    def added(self, session: Session, instance: Any) -> None:
        if isinstance(instance, Order):
            self.added_at[id(instance)] = self.commits

    @hookimpl
    def helpdesk_order_recorded(self, order):
        committed = self.commits > self.added_at[id(order)]
        self.heard.append((order.reference, committed))


recorder = OrderRecorder()


@pytest.fixture
def app_plugins() -> Iterator[list[Any]]:
    recorder.heard.clear()
    recorder.added_at.clear()
    event.listen(Session, "after_commit", recorder.committed)
    event.listen(Session, "before_attach", recorder.added)
    yield [recorder]
    event.remove(Session, "after_commit", recorder.committed)
    event.remove(Session, "before_attach", recorder.added)


@pytest.fixture
def customer(app: Flask) -> Customer:
    return register_customer({"email": "gudrun@example.is", "name": "Guðrún"})


@pytest.fixture
def other(app: Flask) -> Customer:
    return register_customer({"email": "olafur@example.is", "name": "Ólafur"})


def order_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Order))


def record(customer: Customer, **overrides: Any) -> Order:
    fields: dict[str, Any] = {
        "ordered_on": "2025-03-14",
        "amount": "12.50",
        "currency": "EUR",
    }
    fields.update(overrides)
    return orders.record_order(customer, **fields)


def stored(order_id: int) -> Order:
    """The order as the database has it (not the session's copy)."""
    db.session.expire_all()
    return db.session.get(Order, order_id)


# --- recording ----------------------------------------------------------------------------


def test_record_an_order(customer, agent):
    order = record(
        customer, channel=" shop ", reference="A-1", source="webshop", actor=agent, currency="eur"
    )
    saved = stored(order.id)
    assert saved.customer_id == customer.id
    assert saved.ordered_on == date(2025, 3, 14)
    assert saved.amount == Decimal("12.50")
    assert saved.currency == "EUR"
    assert (saved.channel, saved.source, saved.reference) == ("shop", "webshop", "A-1")
    assert saved.created_by_id == agent.id
    assert orders.amount_text(saved) == "12.50"


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("12.5", "EUR", "12.50"),
        ("12.345", "EUR", "12.35"),  # half-up, not banker's rounding
        ("12.125", "EUR", "12.13"),
        ("12.124", "EUR", "12.12"),
        ("1234.5", "JPY", "1235"),
        ("1233.49", "JPY", "1233"),
        ("1.0005", "KWD", "1.001"),
        ("1.2344", "BHD", "1.234"),
        ("7", "ISK", "7"),
        (" 0.005 ", "EUR", "0.01"),
        ("1.25e2", "EUR", "125.00"),
        (Decimal("19.999"), "USD", "20.00"),
        (42, "EUR", "42.00"),
        ("9999999999999.99", "EUR", "9999999999999.99"),  # the largest EUR amount, exact
        ("99999999999999", "JPY", "99999999999999"),
        ("999999999999.999", "KWD", "999999999999.999"),
    ],
)
def test_amounts_are_rounded_half_up_to_the_currency_and_read_back_exactly(
    customer, amount, currency, expected
):
    order = record(customer, amount=amount, currency=currency)
    saved = stored(order.id)
    assert orders.amount_text(saved) == expected
    assert orders.in_currency_units(saved.amount, currency) == Decimal(expected)


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "must be more than 0"),
        ("0.00", "must be more than 0"),
        ("0.004", "must be more than 0"),  # rounds to 0.00
        ("-5", "must be more than 0"),
        ("-0", "must be more than 0"),
        ("NaN", "'NaN' is not a number"),
        ("nan", "is not a number"),
        ("sNaN", "is not a number"),
        ("Infinity", "'Infinity' is not a number"),
        ("-inf", "is not a number"),
        ("1e309", "is too large"),
        ("1e99999", "is not a number"),
        ("12,50", "write decimals with a point: 12.50"),
        ("1,234.50", "is not a number"),
        ("1_000", "is not a number"),
        ("١٢", "is not a number"),  # Arabic-Indic digits: Decimal() would take them
        ("abc", "'abc' is not a number"),
        ("12.50 EUR", "is not a number"),
        ("€12", "is not a number"),
        ("", "is required"),
        ("   ", "is required"),
        (None, "is required"),
        ("1" * 41, "is not a number"),
        ("10000000000000", "is too large (at most 13 digits before the point in EUR)"),
        (Decimal("NaN"), "is not a number"),
        (Decimal("Infinity"), "is not a number"),
        (12.5, "written as text"),
        (True, "written as text"),
        (["12"], "written as text"),
    ],
)
def test_bad_amounts_are_refused_and_save_nothing(customer, amount, message):
    with pytest.raises(ValidationError) as caught:
        record(customer, amount=amount)
    assert set(caught.value.errors) == {"amount"}
    assert message in caught.value.errors["amount"]
    assert order_count() == 0
    assert recorder.heard == []


def test_too_many_digits_depend_on_the_currency(customer):
    with pytest.raises(ValidationError, match="at most 14 digits"):
        record(customer, amount="100000000000000", currency="JPY")
    with pytest.raises(ValidationError, match="at most 12 digits"):
        record(customer, amount="1000000000000", currency="KWD")


@pytest.mark.parametrize(
    ("currency", "message"),
    [
        ("ABC", "'ABC' is not a known currency"),
        ("XXX", "is not a known currency"),
        ("EURO", "3-letter ISO 4217 code"),
        ("E1R", "3-letter ISO 4217 code"),
        ("€", "3-letter ISO 4217 code"),
        ("", "is required"),
        (None, "is required"),
        (978, "must be text"),
    ],
)
def test_bad_currencies_are_refused(customer, currency, message):
    with pytest.raises(ValidationError) as caught:
        record(customer, currency=currency)
    assert message in caught.value.errors["currency"]
    assert order_count() == 0


def test_a_bad_currency_still_reports_a_bad_amount(customer):
    with pytest.raises(ValidationError) as caught:
        record(customer, currency="ABC", amount="NaN", ordered_on="yesterday")
    assert set(caught.value.errors) == {"currency", "amount", "date"}


@pytest.mark.parametrize(
    ("ordered_on", "message"),
    [
        ("2025-02-30", "is not a date in the calendar"),
        ("2025-13-01", "is not a date in the calendar"),
        ("14.03.2025", "YYYY-MM-DD"),
        ("2025/03/14", "YYYY-MM-DD"),
        ("20250314", "YYYY-MM-DD"),
        ("2025-03-14T10:00", "YYYY-MM-DD"),
        ("1899-12-31", "must not be before 1900-01-01"),
        ("0001-01-01", "must not be before 1900-01-01"),
        ("9999-12-31", "must not be in the future"),
        ("", "is required"),
        (None, "is required"),
        (20250314, "YYYY-MM-DD"),
    ],
)
def test_bad_dates_are_refused(customer, ordered_on, message):
    with pytest.raises(ValidationError) as caught:
        record(customer, ordered_on=ordered_on)
    assert message in caught.value.errors["date"]
    assert order_count() == 0


def test_dates_up_to_tomorrow_are_accepted(customer):
    today = utcnow().date()
    assert record(customer, ordered_on=today + timedelta(days=1)).id
    assert record(customer, ordered_on="1900-01-01").id
    with pytest.raises(ValidationError, match="future"):
        record(customer, ordered_on=(today + timedelta(days=2)).isoformat())


def test_text_fields_have_limits(customer):
    with pytest.raises(ValidationError) as caught:
        record(customer, reference="r" * 101, channel="c" * 33, source="")
    assert set(caught.value.errors) == {"reference", "channel", "source"}
    assert record(customer, reference="r" * 100).reference == "r" * 100


# --- idempotency and the event --------------------------------------------------------------


def test_the_same_reference_again_returns_the_order_unchanged(customer):
    first = record(customer, reference="A-1", amount="10.00")
    with pytest.raises(orders.DuplicateOrder) as caught:
        record(customer, reference="A-1", amount="99.00")
    assert caught.value.order.id == first.id
    assert stored(first.id).amount == Decimal("10.00")
    assert order_count() == 1
    # A reference is unique per source: another source may use it, and no reference repeats.
    record(customer, reference="A-1", source="webshop")
    record(customer)
    record(customer)
    assert order_count() == 4


def test_a_reference_of_another_customers_order_is_refused(customer, other):
    record(customer, reference="A-1")
    with pytest.raises(ValidationError) as caught:
        record(other, reference="A-1")
    assert "another customer" in caught.value.errors["reference"]
    assert order_count() == 1


def test_event_fires_once_after_commit_and_not_for_duplicates_or_failures(customer):
    record(customer, reference="A-1")
    with pytest.raises(orders.DuplicateOrder):
        record(customer, reference="A-1")
    with pytest.raises(ValidationError):
        record(customer, reference="A-2", amount="NaN")
    record(customer, reference="A-3")
    assert recorder.heard == [("A-1", True), ("A-3", True)]


def test_a_lost_race_for_a_reference_is_a_duplicate(customer, other, monkeypatch):
    """Another request inserts the reference between the look-up and the insert: the unique
    constraint catches it and the answer is the same as the look-up's would have been."""
    first = record(customer, reference="A-1")
    real = orders.order_by_reference
    calls: list[str] = []

    def too_early(source: str, reference: str) -> Order | None:
        calls.append(reference)
        return None if len(calls) % 2 == 1 else real(source, reference)

    monkeypatch.setattr(orders, "order_by_reference", too_early)
    with pytest.raises(orders.DuplicateOrder) as caught:
        record(customer, reference="A-1")
    assert caught.value.order.id == first.id
    with pytest.raises(ValidationError, match="another customer"):
        record(other, reference="A-1")
    assert len(calls) == 4
    assert order_count() == 1
    assert recorder.heard == [("A-1", True)]


def test_customer_orders_pages_newest_first_and_totals_per_currency(customer, other):
    record(customer, ordered_on="2025-01-01", amount="10.10", reference="a")
    record(customer, ordered_on="2025-03-01", amount="0.20", reference="b")
    record(customer, ordered_on="2025-02-01", amount="1000", currency="JPY", reference="c")
    record(customer, ordered_on="2025-03-01", amount="5.005", currency="KWD", reference="d")
    record(other, amount="99.99", reference="e")
    page = orders.customer_orders(customer, 1, 3)
    assert [o.reference for o in page.orders] == ["d", "b", "c"]
    assert page.has_next and not page.has_prev
    page = orders.customer_orders(customer, 2, 3)
    assert [o.reference for o in page.orders] == ["a"]
    assert not page.has_next and page.has_prev
    totals = orders.customer_totals(customer)
    assert [(t.currency, t.amount, t.count) for t in totals] == [
        ("EUR", Decimal("10.30"), 2),
        ("JPY", Decimal("1000"), 1),
        ("KWD", Decimal("5.005"), 1),
    ]
    assert orders.customer_totals(other)[0].amount == Decimal("99.99")


# --- the customer page ----------------------------------------------------------------------


@pytest.fixture
def paged_app(app_config: dict[str, Any], request: pytest.FixtureRequest) -> Flask:
    app_config["PAGE_SIZE"] = 2
    app_config["DEFAULT_CURRENCY"] = "ISK"
    return request.getfixturevalue("app")


def page_of(client: FlaskClient, customer: Customer, **args: Any) -> str:
    response = client.get(f"/customers/{customer.id}", query_string=args)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def order_rows(html: str) -> list[str]:
    return re.findall(r'<td><time datetime="([\d-]+)">', html)


def test_the_page_lists_orders_with_totals_and_a_form_with_defaults(agent_client, customer):
    record(customer, amount="12.50", reference="A-1", channel="shop")
    record(customer, amount="1234", currency="JPY", reference="A-2")
    html = page_of(agent_client, customer)
    assert "€12.50" in html and "¥1,234" in html
    assert "A-1" in html and "shop" in html
    assert 'id="orders"' in html
    assert f'name="date" value="{utcnow().date().isoformat()}"' in html
    assert 'name="currency" value="EUR"' in html
    for field in ("date", "amount", "currency", "channel", "reference"):
        assert f'<label for="order-{field}">' in html


def test_no_orders_yet(agent_client, customer):
    assert "No orders yet." in page_of(agent_client, customer)


def test_enter_an_order_on_the_page(agent_client, agent, customer):
    path = f"/customers/{customer.id}/orders"
    form = {
        "date": "2025-03-14",
        "amount": "12.5",
        "currency": "eur",
        "channel": "phone",
        "reference": "",
    }
    response = post_form(agent_client, path, form, page=f"/customers/{customer.id}")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/customers/{customer.id}#orders")
    order = db.session.scalars(select(Order)).one()
    assert (order.amount, order.currency, order.channel) == (Decimal("12.50"), "EUR", "phone")
    assert order.reference is None and order.source == "manual"
    assert order.created_by_id == agent.id
    assert recorder.heard == [(None, True)]
    html = agent_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Order recorded." in html and "€12.50" in html


def test_errors_keep_the_input_and_save_nothing(agent_client, customer):
    path = f"/customers/{customer.id}/orders"
    form = {
        "date": "2025-02-30",
        "amount": "12,50",
        "currency": "ABC",
        "channel": "<b>shop</b>",
        "reference": "R-1",
    }
    response = post_form(agent_client, path, form, page=f"/customers/{customer.id}")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'value="2025-02-30"' in html and 'value="12,50"' in html
    assert 'value="ABC"' in html and 'value="R-1"' in html
    assert 'value="&lt;b&gt;shop&lt;/b&gt;"' in html
    assert "is not a date in the calendar" in html
    assert "write decimals with a point: 12.50" in html
    assert "is not a known currency" in html
    assert html.count('aria-invalid="true"') == 3
    assert order_count() == 0


def test_a_duplicate_reference_on_the_form_changes_nothing(agent_client, customer, other):
    record(customer, reference="R-1", source="manual", amount="5")
    page = f"/customers/{customer.id}"
    form = {"date": "2025-03-14", "amount": "7", "currency": "EUR", "reference": "R-1"}
    response = post_form(agent_client, f"{page}/orders", form, page=page, follow_redirects=True)
    assert "Order R-1 was already recorded; nothing changed." in response.get_data(as_text=True)
    assert order_count() == 1
    response = post_form(
        agent_client, f"/customers/{other.id}/orders", form, page=f"/customers/{other.id}"
    )
    assert response.status_code == 422
    assert "already used by another customer" in response.get_data(as_text=True)
    assert order_count() == 1


def test_the_order_form_needs_login_and_csrf(client, agent_client, customer):
    form = {"date": "2025-03-14", "amount": "7", "currency": "EUR"}
    token = csrf_from(client, "/login")
    response = client.post(f"/customers/{customer.id}/orders", data={**form, "csrf_token": token})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert agent_client.post(f"/customers/{customer.id}/orders", data=form).status_code == 400
    token = csrf_from(agent_client, f"/customers/{customer.id}")
    response = agent_client.post("/customers/99999/orders", data={**form, "csrf_token": token})
    assert response.status_code == 404
    assert order_count() == 0


def test_the_page_pages_orders_newest_first_and_uses_the_default_currency(paged_app):
    client = paged_app.test_client()
    create_agent(email="a@example.com", name="A", password="correct horse battery")
    assert login(client, "a@example.com").status_code == 302
    customer = register_customer({"email": "c@example.com"})
    for day in (1, 3, 2, 4, 5):
        record(customer, ordered_on=f"2025-01-0{day}", reference=f"r{day}")
    html = page_of(client, customer)
    assert order_rows(html) == ["2025-01-05", "2025-01-04"]
    assert 'name="currency" value="ISK"' in html
    assert "orders_page=2" in html
    assert order_rows(page_of(client, customer, orders_page=3)) == ["2025-01-01"]
    assert client.get(f"/customers/{customer.id}?orders_page=x").status_code == 422


def test_page_queries_do_not_grow_with_orders(paged_app, count_queries):
    client = paged_app.test_client()
    create_agent(email="a@example.com", name="A", password="correct horse battery")
    assert login(client, "a@example.com").status_code == 302
    customer = register_customer({"email": "c@example.com"})
    record(customer, reference="first")
    with count_queries as few:
        page_of(client, customer)
    for n in range(6):
        record(customer, reference=f"r{n}", currency=("EUR", "JPY", "KWD")[n % 3])
    with count_queries as many:
        page_of(client, customer)
    assert many.count == few.count


# --- the API ------------------------------------------------------------------------------


@pytest.fixture
def doc(client: FlaskClient) -> dict[str, Any]:
    return client.get(f"{PREFIX}/openapi.json").get_json()


@pytest.fixture
def api(client: FlaskClient, api_headers: dict[str, str], doc: dict[str, Any]) -> Api:
    return Api(client, api_headers, doc)


def post_order(api: Api, customer_id: int, body: Any, **kw: Any):
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return api.post(
        f"/customers/{customer_id}/orders", data=raw, content_type="application/json", **kw
    )


def test_api_records_an_order(api: Api, agent, customer):
    body = {"date": "2025-03-14", "amount": "12.5", "currency": "eur", "reference": "W-1"}
    response = post_order(api, customer.id, {**body, "channel": "web", "source": "shop"})
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    assert data["amount"] == "12.50" and data["currency"] == "EUR"
    assert data["date"] == "2025-03-14" and data["customer_id"] == customer.id
    assert (data["channel"], data["source"], data["reference"]) == ("web", "shop", "W-1")
    assert data["duplicate"] is False
    assert stored(data["id"]).created_by_id == agent.id
    assert recorder.heard == [("W-1", True)]


def test_api_source_defaults_to_api(api: Api, customer):
    response = post_order(api, customer.id, {"date": "2025-03-14", "amount": 1, "currency": "EUR"})
    assert response.get_json()["source"] == "api"
    assert response.get_json()["reference"] is None


def test_api_a_duplicate_is_200_with_the_existing_order(api: Api, customer):
    body = {"date": "2025-03-14", "amount": "12.50", "currency": "EUR", "reference": "W-1"}
    first = post_order(api, customer.id, body).get_json()
    again = post_order(api, customer.id, {**body, "amount": "99"})
    assert again.status_code == 200
    assert again.get_json() == {**first, "duplicate": True}
    assert order_count() == 1
    assert len(recorder.heard) == 1


@pytest.mark.parametrize(
    ("raw_amount", "expected"),
    [
        ("12.10", "12.10"),
        ("0.1", "0.10"),
        ("12", "12.00"),
        ("1.005", "1.01"),  # as a float, 1.005 is 1.00499999...: the text is what counts
        ("2.675", "2.68"),
        ("1.25e1", "12.50"),
        ("9999999999999.99", "9999999999999.99"),
    ],
)
def test_api_json_numbers_are_read_exactly(api: Api, customer, raw_amount, expected):
    raw = f'{{"date": "2025-03-14", "amount": {raw_amount}, "currency": "EUR"}}'
    response = post_order(api, customer.id, raw)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["amount"] == expected


@pytest.mark.parametrize(
    ("raw_amount", "fields"),
    [
        ("1e309", {"amount"}),
        ('"NaN"', {"amount"}),
        ('"Infinity"', {"amount"}),
        ('"12,50"', {"amount"}),
        ("0", {"amount"}),
        ("-1", {"amount"}),
        ("true", {"amount"}),
        ("null", {"amount"}),
        ('"abc"', {"amount"}),
        ("123456789012345678901234567890", {"amount"}),
    ],
)
def test_api_bad_amounts_are_422_naming_the_field(api: Api, customer, raw_amount, fields):
    raw = f'{{"date": "2025-03-14", "amount": {raw_amount}, "currency": "EUR"}}'
    response = post_order(api, customer.id, raw)
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == fields
    assert order_count() == 0


def test_api_every_bad_field_is_named(api: Api, customer, other):
    post_order(
        api,
        other.id,
        {"date": "2025-03-14", "amount": "1", "currency": "EUR", "reference": "X", "source": "s"},
    )
    response = post_order(
        api,
        customer.id,
        {
            "date": "2025-02-30",
            "amount": "NaN",
            "currency": "ABC",
            "channel": ["x"],
            "reference": "X",
            "source": "s",
        },
    )
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {"date", "amount", "currency", "channel"}
    response = post_order(
        api,
        customer.id,
        {"date": "2025-03-14", "amount": "1", "currency": "EUR", "reference": "X", "source": "s"},
    )
    assert response.status_code == 422
    assert "another customer" in response.get_json()["fields"]["reference"]
    response = post_order(api, customer.id, {})
    assert set(response.get_json()["fields"]) == {"date", "amount", "currency"}
    assert order_count() == 1


@pytest.mark.parametrize(
    "raw",
    [
        '{"date": "2025-03-14", "amount": NaN, "currency": "EUR"}',
        '{"date": "2025-03-14", "amount": Infinity, "currency": "EUR"}',
        '{"date": "2025-03-14", "amount": 12.5,',
        "[]",
        "not json",
        '{"amount": 1' + "0" * 5000 + "}",  # more digits than Python reads as an int
    ],
)
def test_api_malformed_json_is_400(api: Api, customer, raw):
    response = post_order(api, customer.id, raw)
    assert response.status_code == 400
    assert order_count() == 0


def test_api_unknown_customer_is_404_and_no_token_is_401(api: Api, customer):
    body = {"date": "2025-03-14", "amount": "1", "currency": "EUR"}
    assert post_order(api, 999999, body).status_code == 404
    assert api.get("/customers/999999/orders").status_code == 404
    assert api.get(f"/customers/{2**40}/orders").status_code == 404
    anonymous = api.as_token(None)
    assert post_order(anonymous, customer.id, body).status_code == 401
    assert anonymous.get(f"/customers/{customer.id}/orders").status_code == 401
    assert api.as_token("hd_wrong").get(f"/customers/{customer.id}/orders").status_code == 401
    assert order_count() == 0


def test_api_lists_orders_newest_first_a_page_at_a_time(api: Api, customer, other):
    for day in range(1, 6):
        record(customer, ordered_on=f"2025-01-0{day}", amount=f"{day}.5", reference=f"r{day}")
    record(other, reference="theirs")
    first = api.get(f"/customers/{customer.id}/orders?per_page=2").get_json()
    assert [o["date"] for o in first["items"]] == ["2025-01-05", "2025-01-04"]
    assert first["items"][0]["amount"] == "5.50"
    assert first["has_next"] and first["next_page"] == 2
    last = api.get(f"/customers/{customer.id}/orders?per_page=2&page=3").get_json()
    assert [o["reference"] for o in last["items"]] == ["r1"]
    assert last["next_page"] is None
    assert api.get(f"/customers/{customer.id}/orders?page=0").status_code == 422
    assert api.get(f"/customers/{other.id}/orders").get_json()["items"][0]["reference"] == "theirs"


def test_api_order_list_queries_do_not_grow(api: Api, customer, count_queries):
    record(customer, reference="r0")
    with count_queries as few:
        api.get(f"/customers/{customer.id}/orders")
    for n in range(1, 8):
        record(customer, reference=f"r{n}")
    with count_queries as many:
        api.get(f"/customers/{customer.id}/orders")
    assert many.count == few.count


def test_admin_token_can_record_too(api: Api, admin, customer):
    admin_api = api.as_token(tokens.create_api_token(admin, "t"))
    body = {"date": "2025-03-14", "amount": "3", "currency": "JPY"}
    assert post_order(admin_api, customer.id, body).get_json()["amount"] == "3"
