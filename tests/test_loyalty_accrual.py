"""Accrual a batch at a time: the core fires ``helpdesk_orders_recorded`` once per committed
batch of an import (after each order's ``helpdesk_order_recorded``), and loyalty accrues the
whole batch in a few statements with exactly the amounts one order at a time gave: half-up
rounding, what is owed paid off first, once per order, per-category rates."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from helpdesk import hookimpl
from helpdesk.core import customers, orders
from helpdesk.core.orders_import import import_orders
from helpdesk.extensions import db
from plugins.loyalty import cards, ledger, maintenance, rates
from plugins.loyalty.models import Card, LedgerEntry

TODAY = date.today().isoformat()
HEADER = "customer_email,date,amount,currency,reference\n"


class Heard:
    """What a plugin implementing both order hooks hears."""

    def __init__(self) -> None:
        self.each: list[str] = []
        self.batches: list[list[str]] = []

    @hookimpl
    def helpdesk_order_recorded(self, order):
        self.each.append(order.reference)

    @hookimpl
    def helpdesk_orders_recorded(self, orders):
        self.batches.append([order.reference for order in orders])


heard = Heard()


@pytest.fixture
def app_plugins() -> list[Any]:
    heard.each.clear()
    heard.batches.clear()
    return [heard]


@pytest.fixture(autouse=True)
def loyalty_enabled(app_config: dict[str, Any]) -> None:
    app_config["PLUGINS_DISABLED"] = ["hello", "categories", "surveys"]
    app_config["ORDERS_IMPORT_BATCH_SIZE"] = 2


def run(text: str):
    return import_orders(io.BytesIO((HEADER + text).encode()), source="csv")


def card_of(email: str) -> Card:
    db.session.expire_all()
    found = cards.active_card(customers.customer_by_email(email).id)
    assert found is not None
    return found


def rows_of(card: Card) -> list[tuple[str, str, str, str, str, str | None]]:
    """(kind, amount, owed change, balance after, owed after, reference), oldest first."""
    return [
        (
            e.kind,
            str(e.amount),
            str(e.owed_change),
            str(e.balance_after),
            str(e.owed_after),
            e.order_reference,
        )
        for e in db.session.scalars(
            select(LedgerEntry).where(LedgerEntry.card_id == card.id).order_by(LedgerEntry.id)
        )
    ]


@pytest.mark.hooks("helpdesk_order_recorded", "helpdesk_orders_recorded")
def test_one_batch_event_per_committed_batch_after_each_order(app: Flask):
    summary = run(
        f"a@example.com,{TODAY},10.10,EUR,A-1\n"
        f"b@example.com,{TODAY},20.00,EUR,B-1\n"
        f"a@example.com,{TODAY},not money,EUR,A-2\n"
        f"a@example.com,{TODAY},30.00,EUR,A-3\n"
        f"b@example.com,{TODAY},0.10,EUR,B-2\n"
    )
    assert summary.imported == 4 and [f.line for f in summary.failures] == [4]
    assert heard.each == ["A-1", "B-1", "A-3", "B-2"]
    assert heard.batches == [["A-1", "B-1"], ["A-3"], ["B-2"]]
    # 5 % of 10.10 = 0.505 -> 0.51; of 30.00 = 1.50; of 20.00 = 1.00; of 0.10 = 0.005 -> 0.01
    assert card_of("a@example.com").balance == Decimal("2.01")
    assert card_of("b@example.com").balance == Decimal("1.01")
    heard.batches.clear()
    run(f"a@example.com,{TODAY},10.10,EUR,A-1\n")  # a duplicate: no event, no accrual
    assert heard.batches == [] and card_of("a@example.com").balance == Decimal("2.01")
    assert maintenance.verify() == []


def test_a_batch_pays_off_what_is_owed_first_row_by_row(app: Flask):
    who = customers.register_customer({"email": "o@example.com"})
    card = cards.active_card(who.id)
    ledger.post(card, "reversal", Decimal(0), owed_change=Decimal("7.00"), reason="owed")
    db.session.commit()
    run(
        f"o@example.com,{TODAY},100.00,EUR,O-1\n"  # 5.00: all pays off, 2.00 still owed
        f"o@example.com,{TODAY},100.00,EUR,O-2\n"  # 5.00: 2.00 pays off, 3.00 added
        f"o@example.com,{TODAY},100.00,USD,O-3\n"  # another currency: nothing
        f"o@example.com,{TODAY},10.00,EUR,O-4\n"  # 0.50
    )
    card = card_of("o@example.com")
    assert (card.balance, card.owed) == (Decimal("3.50"), Decimal("0.00"))
    assert rows_of(card) == [
        ("reversal", "0.0000", "7.0000", "0.0000", "7.0000", None),
        ("accrual", "0.0000", "-5.0000", "0.0000", "2.0000", "O-1"),
        ("accrual", "3.0000", "-2.0000", "3.0000", "0.0000", "O-2"),
        ("accrual", "0.5000", "0.0000", "3.5000", "0.0000", "O-4"),
    ]
    assert maintenance.verify() == []


def test_once_per_order_and_not_without_an_active_card(app: Flask, agent):
    run(f"k@example.com,{TODAY},100.00,EUR,K-1\n")
    blocked = card_of("k@example.com")
    cards.block_card(blocked, agent, "lost")
    run(f"k@example.com,{TODAY},100.00,EUR,K-2\n")  # no active card: nothing
    assert card_of_number(blocked.number).balance == Decimal("5.00")
    recorded = [orders.order_by_reference("csv", ref) for ref in ("K-1", "K-2")]
    assert ledger.accrue_orders(recorded) == 0  # the events again: nothing
    assert len(rows_of(blocked)) == 1
    assert maintenance.verify() == []


def card_of_number(number: str) -> Card:
    db.session.expire_all()
    return cards.card_by_number(number)


def test_a_category_rate_applies_in_a_batch(app_config: dict[str, Any]):
    from helpdesk import create_app
    from plugins.categories import service as categories

    app_config["PLUGINS_DISABLED"] = ["hello", "surveys"]
    with create_app(app_config).app_context():
        vip = categories.create_category({"name": "VIP"})  # the seed is wiped with every row
        rates.set_rate(vip.id, "10")
        who = customers.register_customer({"email": "v@example.com"})
        categories.set_customer_category(who, vip, agent=None, reason="test")
        assert rates.percents_for([who.id]) == {who.id: Decimal("10.00")}
        run(f"v@example.com,{TODAY},10.05,EUR,V-1\nw@example.com,{TODAY},10.05,EUR,W-1\n")
        # VIP 10 % of 10.05 = 1.005 -> 1.01; the default 5 % = 0.5025 -> 0.50
        assert card_of("v@example.com").balance == Decimal("1.01")
        assert card_of("w@example.com").balance == Decimal("0.50")
        db.session.remove()
