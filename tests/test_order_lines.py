"""Orders with product lines: the service (amount = the lines' sum, amounts ≤ 0 refused), the
API (``"lines"`` in and out, checked against the OpenAPI document, no N+1) and ``helpdesk orders
import`` with a ``product_line`` column (rows sharing a reference are one order)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from helpdesk import ValidationError
from helpdesk.cli import main
from helpdesk.core import orders
from helpdesk.core.customers import register_customer
from helpdesk.core.models import Order, OrderLine
from helpdesk.extensions import db
from tests.test_api import PREFIX, Api


@pytest.fixture
def customer(app):
    return register_customer({"email": "lena@example.com", "name": "Lena"})


def lines_saved() -> list[tuple[str | None, str, str]]:
    """(order reference, product line, amount) of every line, by reference then line id."""
    db.session.rollback()
    rows = db.session.execute(
        select(Order.reference, OrderLine.product_line, OrderLine.amount)
        .join(Order, Order.id == OrderLine.order_id)
        .order_by(Order.reference, OrderLine.id)
    )
    return [(ref, name, f"{Decimal(amount).normalize():f}") for ref, name, amount in rows]


def order_amounts() -> dict[str, str]:
    db.session.rollback()
    rows = db.session.execute(select(Order.reference, Order.amount))
    return {ref: f"{Decimal(amount).normalize():f}" for ref, amount in rows}


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- the service ----------------------------------------------------------------------------


def test_the_amount_is_the_sum_of_the_lines(customer):
    order = orders.record_order(
        customer,
        ordered_on="2025-03-01",
        amount=None,
        currency="EUR",
        reference="L-1",
        lines=[
            {"product_line": "Coffee", "amount": "12.505"},  # rounds half-up to 12.51
            {"product_line": " Tea ", "amount": Decimal("7.49")},
        ],
    )
    # 12.51 + 7.49 = 20.00
    assert order.amount == Decimal("20.00")
    assert lines_saved() == [("L-1", "Coffee", "12.51"), ("L-1", "Tea", "7.49")]


def test_an_amount_given_with_lines_must_match_their_sum(customer):
    with pytest.raises(ValidationError) as caught:
        orders.record_order(
            customer,
            ordered_on="2025-03-01",
            amount="10",
            currency="EUR",
            lines=[{"product_line": "A", "amount": "4"}, {"product_line": "B", "amount": "5"}],
        )
    assert "sum of the lines" in caught.value.errors["amount"]
    ok = orders.record_order(
        customer,
        ordered_on="2025-03-01",
        amount="9",
        currency="EUR",
        lines=[{"product_line": "A", "amount": "4"}, {"product_line": "B", "amount": "5"}],
    )
    assert ok.amount == Decimal("9")


@pytest.mark.parametrize(
    ("lines", "field", "message"),
    [
        ([{"product_line": "A", "amount": "0"}], "lines.0.amount", "more than 0"),
        ([{"product_line": "A", "amount": "-3"}], "lines.0.amount", "more than 0"),
        ([{"product_line": "A", "amount": "NaN"}], "lines.0.amount", "not a number"),
        ([{"product_line": "", "amount": "1"}], "lines.0.product_line", "required"),
        ([{"product_line": "x" * 101, "amount": "1"}], "lines.0.product_line", "too long"),
        (["Coffee"], "lines.0", "must be an object"),
        ([], "lines", "non-empty list"),
        ("Coffee", "lines", "non-empty list"),
        ([{"product_line": "A", "amount": "1"}] * 1001, "lines", "too many"),
    ],
)
def test_bad_lines_are_refused_and_nothing_is_saved(customer, lines, field, message):
    with pytest.raises(ValidationError) as caught:
        orders.record_order(
            customer, ordered_on="2025-03-01", amount=None, currency="EUR", lines=lines
        )
    assert message in caught.value.errors[field]
    db.session.rollback()
    assert count(Order) == 0 and count(OrderLine) == 0


def test_orders_without_lines_stay_valid(customer):
    order = orders.record_order(customer, ordered_on="2025-03-01", amount="5", currency="EUR")
    assert order.amount == Decimal("5") and orders.lines_of([order.id]) == {order.id: []}


# --- the API --------------------------------------------------------------------------------


@pytest.fixture
def api(client: FlaskClient, api_headers: dict[str, str]) -> Api:
    doc = client.get(f"{PREFIX}/openapi.json").get_json()
    return Api(client, api_headers, doc)


def post(api: Api, customer_id: int, body: Any):
    return api.post(
        f"/customers/{customer_id}/orders", data=json.dumps(body), content_type="application/json"
    )


def test_api_records_lines_and_answers_with_them(api: Api, customer):
    body = {
        "date": "2025-03-01",
        "currency": "EUR",
        "reference": "W-9",
        "lines": [
            {"product_line": "Coffee", "amount": 12.5},
            {"product_line": "Mugs", "amount": "3"},
        ],
    }
    response = post(api, customer.id, body)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    # 12.50 + 3.00 = 15.50
    assert data["amount"] == "15.50"
    assert data["lines"] == [
        {"product_line": "Coffee", "amount": "12.50"},
        {"product_line": "Mugs", "amount": "3.00"},
    ]
    again = post(api, customer.id, body)
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert again.get_json()["lines"] == data["lines"]
    assert count(OrderLine) == 2


def test_api_refuses_a_zero_line_with_its_field(api: Api, customer):
    body = {
        "date": "2025-03-01",
        "currency": "EUR",
        "lines": [{"product_line": "A", "amount": "5"}, {"product_line": "B", "amount": "0"}],
    }
    response = post(api, customer.id, body)
    assert response.status_code == 422
    assert "lines.1.amount" in response.get_json()["fields"]
    assert count(Order) == 0


def test_api_order_list_shows_lines_without_a_query_per_order(api: Api, customer, count_queries):
    def add(n: int) -> None:
        for i in range(n):
            orders.record_order(
                customer,
                ordered_on="2025-03-01",
                amount=None,
                currency="EUR",
                reference=f"R-{count(Order)}-{i}",
                lines=[{"product_line": "A", "amount": "1"}, {"product_line": "B", "amount": "2"}],
            )

    add(1)
    with count_queries as few:
        first = api.get(f"/customers/{customer.id}/orders")
    add(5)
    with count_queries as many:
        listed = api.get(f"/customers/{customer.id}/orders").get_json()["items"]
    assert first.status_code == 200 and len(listed) == 6
    assert all(len(item["lines"]) == 2 for item in listed)
    assert many.count == few.count


# --- the import -----------------------------------------------------------------------------

HEADER = "customer_email,date,amount,currency,reference,product_line\n"


def run(runner, tmp_path: Path, text: str):
    path = tmp_path / "orders.csv"
    path.write_text(text, encoding="utf-8", newline="")
    return runner.invoke(main, ["orders", "import", str(path)])


@pytest.fixture
def small_batches(app_config: dict[str, Any]) -> None:
    app_config["ORDERS_IMPORT_BATCH_SIZE"] = 2


def test_rows_sharing_a_reference_are_one_orders_lines(small_batches, runner, tmp_path):
    text = HEADER + (
        "ann@example.com,2025-01-02,10,EUR,A-1,Coffee\n"
        "ann@example.com,2025-01-02,2.5,EUR,A-1,Tea\n"
        "ann@example.com,2025-01-02,1,EUR,A-1,Mugs\n"  # three rows: a batch of 2 is extended
        "bob@example.com,2025-01-03,4,EUR,B-1,\n"  # one row, no line: an order without lines
    )
    result = run(runner, tmp_path, text)
    assert result.exit_code == 0, result.output
    assert "Imported: 4" in result.output
    # 10 + 2.5 + 1 = 13.5
    assert order_amounts() == {"A-1": "13.5", "B-1": "4"}
    assert lines_saved() == [("A-1", "Coffee", "10"), ("A-1", "Tea", "2.5"), ("A-1", "Mugs", "1")]
    again = run(runner, tmp_path, text)
    assert "Imported: 0" in again.output and "Skipped as already imported: 4" in again.output
    assert count(Order) == 2 and count(OrderLine) == 3


def test_a_row_with_another_date_currency_or_customer_keeps_the_order_out(runner, tmp_path):
    text = HEADER + (
        "ann@example.com,2025-01-02,10,EUR,A-1,Coffee\n"
        "ann@example.com,2025-01-03,2,EUR,A-1,Tea\n"  # another date
        "ann@example.com,2025-01-02,1,EUR,C-1,Coffee\n"
        "ann@example.com,2025-01-02,1,USD,C-1,Tea\n"  # another currency
        "ann@example.com,2025-01-02,1,EUR,D-1,Coffee\n"
        "bob@example.com,2025-01-02,1,EUR,D-1,Tea\n"  # another customer
        "ann@example.com,2025-01-02,0,EUR,E-1,Coffee\n"  # an amount of 0
        "ann@example.com,2025-01-02,5,EUR,E-1,Tea\n"
        "ann@example.com,2025-01-02,5,EUR,F-1,Tea\n"
    )
    result = run(runner, tmp_path, text)
    assert result.exit_code == 1
    out = result.output
    assert "line 3: reference: 'A-1' has another date, customer or currency than line 2" in out
    assert "line 2: not imported: line 3 of the same order ('A-1') is bad" in out
    assert "line 5: reference: 'C-1' has another date" in out
    assert "line 7: reference: 'D-1' has another date" in out
    assert "line 8: amount: must be more than 0" in out
    assert "line 9: not imported: line 8 of the same order ('E-1') is bad" in out
    assert order_amounts() == {"F-1": "5"}


def test_lines_of_one_order_split_across_the_file_are_refused(small_batches, runner, tmp_path):
    text = HEADER + (
        "ann@example.com,2025-01-02,10,EUR,A-1,Coffee\n"
        "ann@example.com,2025-01-02,1,EUR,B-1,Tea\n"
        "ann@example.com,2025-01-02,1,EUR,C-1,Tea\n"
        "ann@example.com,2025-01-02,2,EUR,A-1,Tea\n"  # A-1 again, in a later batch
    )
    result = run(runner, tmp_path, text)
    assert result.exit_code == 1
    assert "line 5: reference: 'A-1' was imported from earlier rows" in result.output
    assert order_amounts() == {"A-1": "10", "B-1": "1", "C-1": "1"}


def test_several_rows_of_a_reference_each_need_a_product_line(runner, tmp_path):
    text = HEADER + (
        "ann@example.com,2025-01-02,10,EUR,A-1,Coffee\nann@example.com,2025-01-02,2,EUR,A-1,\n"
    )
    result = run(runner, tmp_path, text)
    assert "line 3: product_line: is required when several rows share a reference" in result.output
    assert count(Order) == 0
