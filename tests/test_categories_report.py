"""The report "Which category pays?" against hand-computed figures, on both databases."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from flask.testing import FlaskClient

from helpdesk.core import customers, services
from helpdesk.core.models import Customer, Order
from helpdesk.extensions import db
from plugins.categories import report, service
from tests.test_categories import DEFAULTS

START, END = date(2026, 1, 1), date(2026, 3, 31)
PERIOD = "from=2026-01-01&to=2026-03-31"


@pytest.fixture(autouse=True)
def categories_enabled(app_config: dict) -> None:
    """The plugin switched on (the suite pins it off so the core's tests see the core)."""
    app_config["PLUGINS_DISABLED"] = ["hello"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def data(app):
    """Two ordinary customers (one never put in a category), two VIPs, one employee, nobody
    problematic; orders and tickets inside and just outside the period, and one in USD."""
    cats = {d["name"]: service.create_category(dict(d)) for d in DEFAULTS}
    o1 = customers.register_customer({"email": "o1@example.com"})  # the default, on registration
    o2 = Customer(email="o2@example.com", email_key="o2@example.com")  # no row: the default
    db.session.add(o2)
    db.session.commit()
    people = {"o1": o1, "o2": o2}
    for key, name in (("v1", "VIP"), ("v2", "VIP"), ("e1", "Employee")):
        people[key] = customers.register_customer({"email": f"{key}@example.com"})
        service.set_customer_category(people[key], cats[name], agent=None)
    for key, day, amount, currency in [
        ("o1", "2026-01-05", "10.00", "EUR"),
        ("o1", "2026-02-01", "20.00", "EUR"),
        ("o1", "2025-12-31", "99.00", "EUR"),  # before
        ("o2", "2026-03-31", "30.00", "EUR"),  # the last day counts
        ("v1", "2026-01-01", "100.00", "EUR"),
        ("v1", "2026-02-02", "50.50", "EUR"),
        ("v1", "2026-01-10", "1000.00", "USD"),
        ("v2", "2026-03-01", "49.50", "EUR"),
        ("e1", "2026-04-01", "5.00", "EUR"),  # after
    ]:
        db.session.add(
            Order(
                customer_id=people[key].id,
                ordered_on=date.fromisoformat(day),
                amount=Decimal(amount),
                currency=currency,
            )
        )
    for key, kind, created, resolved in [
        ("o1", "complaint", "2026-01-10 10:00", "2026-01-10 14:00"),
        ("o1", "support", "2026-02-10 09:00", None),
        ("v1", "complaint", "2026-01-02 00:00", "2026-01-03 00:00"),
        ("v2", "support", "2026-03-31 23:00", "2026-04-01 01:00"),
        ("e1", "support", "2026-04-01 00:00", "2026-04-01 01:00"),  # after
    ]:
        ticket = services.open_ticket(
            subject="Help", body="x", kind=kind, customer_email=people[key].email
        )
        ticket.created_at = at(created)
        ticket.resolved_at = at(resolved) if resolved else None
    db.session.commit()
    return cats


def by_name(rows):
    return {row.name: row for row in rows}


def test_figures_match_the_hand_computed_ones(data):
    rows, total = report.category_report(START, END, "EUR", data["Ordinary"].id)
    got = by_name(rows)
    assert total == Decimal("260.00")
    ordinary, vip, employee, problematic = (
        got["Ordinary"],
        got["VIP"],
        got["Employee"],
        got["Problematic"],
    )
    assert (ordinary.customers, ordinary.revenue, ordinary.orders) == (2, Decimal("60.00"), 3)
    assert ordinary.average_order == Decimal("20.00")
    assert (ordinary.tickets, ordinary.complaints) == (2, 1)
    assert ordinary.tickets_per_customer == Decimal("1.00")
    assert ordinary.complaints_per_customer == Decimal("0.50")
    assert ordinary.handling_hours == Decimal("4.00")
    assert ordinary.revenue_per_ticket == Decimal("30.00")
    assert ordinary.share == Decimal("23.08")
    assert (vip.customers, vip.revenue, vip.orders, vip.average_order) == (
        2,
        Decimal("200.00"),
        3,
        Decimal("66.67"),
    )
    assert (vip.handling_hours, vip.revenue_per_ticket, vip.share) == (
        Decimal("13.00"),
        Decimal("100.00"),
        Decimal("76.92"),
    )
    assert (employee.customers, employee.revenue, employee.orders, employee.tickets) == (
        1,
        Decimal("0.00"),
        0,
        0,
    )
    assert employee.average_order is None and employee.revenue_per_ticket is None
    assert employee.tickets_per_customer == Decimal("0.00") and employee.handling_hours is None
    assert problematic.customers == 0 and problematic.tickets_per_customer is None
    assert problematic.share == Decimal("0.00")


def test_other_currencies_are_never_added_in(data):
    rows, total = report.category_report(START, END, "USD", data["Ordinary"].id)
    got = by_name(rows)
    assert total == Decimal("1000.00")
    assert (got["VIP"].revenue, got["VIP"].orders, got["VIP"].share) == (
        Decimal("1000.00"),
        1,
        Decimal("100.00"),
    )
    assert got["Ordinary"].revenue == 0 and got["Ordinary"].share == Decimal("0.00")


@pytest.mark.hooks("helpdesk_reports")
def test_report_page_table_sort_chart_and_csv(agent_client: FlaskClient, data):
    assert "/reports/categories" in agent_client.get("/reports").get_data(as_text=True)
    page = agent_client.get(f"/reports/categories?{PERIOD}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "<svg" in text and "<script>" not in text and "style=" not in text
    assert "260.00" in text and "76.92" in text and "66.67" in text
    assert text.index(">VIP<") < text.index(">Ordinary<")  # by revenue, largest first
    assert "sort=name" in text and "Download CSV" in text
    by_name_asc = agent_client.get(f"/reports/categories?{PERIOD}&sort=name&dir=asc")
    names = by_name_asc.get_data(as_text=True)
    assert names.index(">Employee<") < names.index(">Ordinary<") < names.index(">VIP<")
    exported = agent_client.get(f"/reports/categories?{PERIOD}&format=csv")
    assert exported.mimetype == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    vip = next(row for row in table if row["category"] == "VIP")
    assert (vip["revenue"], vip["orders"], vip["share"], vip["currency"]) == (
        "200.00",
        "3",
        "76.92",
        "EUR",
    )
    employee = next(row for row in table if row["category"] == "Employee")
    assert employee["average_order"] == "" and employee["revenue_per_ticket"] == ""


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-13-01",
        "from=yesterday",
        "from=2026-03-01&to=2026-01-01",
        "currency=EURO",
        "currency=%00%00%00",
        "to=" + "9" * 50,
    ],
)
def test_bad_report_arguments_are_422_not_500(agent_client: FlaskClient, data, query: str):
    response = agent_client.get(f"/reports/categories?{query}")
    assert response.status_code == 422
    assert 'role="alert"' in response.get_data(as_text=True)


def test_report_needs_login_and_has_a_fixed_number_of_queries(
    client: FlaskClient, agent_client: FlaskClient, data, count_queries
):
    assert client.get("/reports/categories").status_code in (302, 401)
    with count_queries as few:
        agent_client.get(f"/reports/categories?{PERIOD}")
    for n in range(15):
        extra = customers.register_customer({"email": f"x{n}@example.com"})
        db.session.add(Order(customer_id=extra.id, ordered_on=START, amount=1, currency="EUR"))
    db.session.commit()
    with count_queries as many:
        agent_client.get(f"/reports/categories?{PERIOD}")
    assert many.count == few.count
