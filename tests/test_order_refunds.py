"""Core order refunds: full and partial, never more than what is left of the order, the API
route and the ``helpdesk_order_refunded`` event."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from helpdesk import hookimpl
from helpdesk.core import customers, orders
from helpdesk.core.models import OrderRefund
from helpdesk.extensions import db

API = "/api/v1"


@pytest.fixture
def order(app):
    customer = customers.register_customer({"email": "r@example.com", "name": "Rea"})
    return orders.record_order(
        customer, ordered_on=date.today(), amount="100.00", currency="EUR", reference="R-1"
    )


def refunds_total() -> Decimal:
    return Decimal(db.session.scalar(select(func.sum(OrderRefund.amount))) or 0)


def test_partial_then_full_refund_through_the_api(client: FlaskClient, api_headers, order):
    url = f"{API}/orders/{order.id}/refunds"
    first = client.post(url, json={"amount": "30.005", "reason": "broken"}, headers=api_headers)
    assert first.status_code == 201, first.json
    assert first.json["amount"] == "30.01"
    assert (first.json["refunded"], first.json["remaining"]) == ("30.01", "69.99")
    second = client.post(url, json={"amount": "69.99"}, headers=api_headers)
    assert second.status_code == 201
    assert second.json["remaining"] == "0.00"
    assert refunds_total() == Decimal("100.00")


@pytest.mark.parametrize(
    "amount", ["100.01", "-5", "0", "NaN", "1e309", "", "abc", None, "1,5", True]
)
def test_bad_or_too_large_refund_is_422_and_saves_nothing(
    client: FlaskClient, api_headers, order, amount
):
    answer = client.post(
        f"{API}/orders/{order.id}/refunds", json={"amount": amount}, headers=api_headers
    )
    assert answer.status_code == 422, answer.json
    assert "amount" in answer.json["fields"]
    assert refunds_total() == 0


def test_refund_larger_than_what_is_left(client: FlaskClient, api_headers, order):
    url = f"{API}/orders/{order.id}/refunds"
    assert client.post(url, json={"amount": "60"}, headers=api_headers).status_code == 201
    answer = client.post(url, json={"amount": "40.01"}, headers=api_headers)
    assert answer.status_code == 422
    assert "40.00" in answer.json["fields"]["amount"]
    assert refunds_total() == Decimal("60")


def test_unknown_order_and_no_token(client: FlaskClient, api_headers, order):
    assert (
        client.post(
            f"{API}/orders/999999/refunds", json={"amount": "1"}, headers=api_headers
        ).status_code
        == 404
    )
    assert client.post(f"{API}/orders/{order.id}/refunds", json={"amount": "1"}).status_code == 401


class RefundListener:
    """A plugin that remembers the refunds it heard of, and whether each was committed."""

    def __init__(self) -> None:
        self.heard: list[tuple[int, Decimal, bool]] = []

    @hookimpl
    def helpdesk_order_refunded(self, order, refund) -> None:
        committed = db.session.get(OrderRefund, refund.id) is not None
        self.heard.append((order.id, refund.amount, committed))


LISTENER = RefundListener()


@pytest.fixture
def app_plugins() -> list[Any]:
    """The suite's example plugin and the listener."""
    from tests.plugin_support import HELLO

    LISTENER.heard.clear()
    return [HELLO, LISTENER]


@pytest.mark.hooks("helpdesk_order_refunded")
def test_refund_fires_the_event_after_commit(app, order):
    orders.refund_order(order, amount="25", reason="late")
    db.session.rollback()  # the refund survives: it was committed before the event
    assert LISTENER.heard == [(order.id, Decimal("25.00"), True)]
    assert refunds_total() == Decimal("25.00")
