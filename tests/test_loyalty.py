"""The loyalty plugin: card numbers and lookup, the ledger and its running balance, accrual on
orders (and imports), redemption with its limits and Idempotency-Key, refunds and what is
owed, tiers in the price policy, expiry, verify, the pages and the bad input the issue lists
(each checking that no balance changed)."""

from __future__ import annotations

import io
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from helpdesk import price_policy, utcnow
from helpdesk.core import customers, orders
from helpdesk.core.models import Customer
from helpdesk.core.orders_import import import_orders
from helpdesk.extensions import db
from plugins.loyalty import cards, ledger, maintenance
from plugins.loyalty.models import Card, LedgerEntry
from tests.conftest import post_form

API = "/api/v1"
NUMBER = "4000123456789017"  # Luhn-valid, 16 digits


@pytest.fixture(autouse=True)
def loyalty_enabled(app_config: dict[str, Any]) -> None:
    """The plugin switched on (the suite pins it off)."""
    app_config["PLUGINS_DISABLED"] = ["hello", "categories", "surveys"]


def customer(email: str = "c@example.com"):
    return customers.register_customer({"email": email, "name": "Cleo"})


def order(who, amount: str = "100.00", reference: str = "O-1", currency: str = "EUR"):
    return orders.record_order(
        who, ordered_on=date.today(), amount=amount, currency=currency, reference=reference
    )


def card_of(who) -> Card:
    found = cards.active_card(who.id)
    assert found is not None
    return found


def balances() -> list[tuple[str, Decimal, Decimal]]:
    db.session.expire_all()
    return [
        (c.number, c.balance, c.owed) for c in db.session.scalars(select(Card).order_by(Card.id))
    ]


def ledger_count() -> int:
    return db.session.scalar(select(func.count()).select_from(LedgerEntry))


# --- cards -------------------------------------------------------------------------------------


def test_registration_issues_a_luhn_card_found_with_spaces_and_dashes(app: Flask):
    who = customer()
    card = card_of(who)
    assert len(card.number) == 16 and cards.format_error(card.number) is None
    spaced = f"{card.number[:4]} {card.number[4:8]}-{card.number[8:12]} {card.number[12:]}"
    assert cards.card_by_number(spaced).id == card.id


def test_auto_issue_can_be_switched_off(app_config: dict[str, Any]):
    from helpdesk import create_app

    app_config["LOYALTY_AUTO_ISSUE"] = False
    other = create_app(app_config)
    with other.app_context():
        who = customer("off@example.com")
        assert cards.active_card(who.id) is None
        db.session.remove()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("4000123456789018", 422),  # wrong check digit
        ("4000abc456789017", 422),  # letters
        ("9" * 200, 422),  # 200 digits
        ("12", 422),  # wrong length
        (NUMBER, 404),  # valid but unknown
    ],
)
def test_lookup_answers(client: FlaskClient, api_headers, raw: str, status: int):
    answer = client.get(f"{API}/cards/{raw}", headers=api_headers)
    assert answer.status_code == status, answer.json
    if status == 422:
        assert "number" in answer.json["fields"]


def test_import_cards_free_form_idempotent_and_reports_holders(app: Flask, runner, tmp_path: Path):
    holder = customer("holder@example.com")
    csv_file = tmp_path / "cards.csv"
    csv_file.write_text(
        "customer_email,card_number\n"
        "new@example.com,AB-1234 5678\n"
        "holder@example.com,XY99\n"
        "bad-address,ZZ1\n"
    )
    first = runner.invoke(args=["loyalty", "import-cards", str(csv_file)])
    assert first.exit_code == 1, first.output
    assert "1 cards imported" in first.output and "line 3" in first.output
    imported = cards.card_by_number("ab-1234 5678".upper())
    assert imported.number == "AB12345678"
    assert card_of(holder).number != "XY99"
    again = runner.invoke(args=["loyalty", "import-cards", str(csv_file)])
    assert "0 cards imported, 1 already there" in again.output
    # the new customer holds exactly the imported card (auto-issue did not add another)
    assert (
        db.session.scalar(
            select(func.count()).select_from(Card).where(Card.customer_id == imported.customer_id)
        )
        == 1
    )


def test_block_replace_reactivate(client: FlaskClient, api_headers, agent, admin):
    who = customer()
    card = card_of(who)
    ledger.adjust(card, {"amount": "20", "reason": "welcome"}, agent)
    db.session.commit()
    number = card.number
    blocked = client.post(
        f"{API}/cards/{number}/block", json={"reason": "lost"}, headers=api_headers
    )
    assert blocked.json["status"] == "blocked"
    refused = client.post(
        f"{API}/cards/{number}/adjust", json={"amount": "1", "reason": "x"}, headers=api_headers
    )
    assert refused.status_code == 409 and refused.json["balance"] == "20.00"
    new = client.post(f"{API}/cards/{number}/replace", json={}, headers=api_headers)
    assert new.status_code == 201
    assert new.json["balance"] == "20.00" and new.json["status"] == "active"
    old = client.get(f"{API}/cards/{number}", headers=api_headers).json
    assert (old["status"], old["balance"], old["replaced_by"]) == (
        "replaced",
        "0.00",
        new.json["number"],
    )
    kinds = [
        e["kind"]
        for e in client.get(f"{API}/cards/{number}/ledger", headers=api_headers).json["items"]
    ]
    assert kinds == ["transfer", "adjustment"]
    assert maintenance.verify() == []


# --- accrual ---------------------------------------------------------------------------------


def test_accrual_half_up_once_per_order_and_not_in_other_currencies(app: Flask):
    who = customer()
    recorded = order(who, "10.10")  # 5 % = 0.505 -> 0.51
    assert card_of(who).balance == Decimal("0.51")
    with pytest.raises(orders.DuplicateOrder):
        order(who, "10.10")
    order(who, "100", reference="USD-1", currency="USD")
    assert ledger.accrue_orders([recorded]) == 0  # the event again: nothing
    assert balances() == [(card_of(who).number, Decimal("0.51"), Decimal(0))]
    assert ledger_count() == 1


def test_import_accrues_once(app: Flask):
    data = (
        "customer_email,date,amount,currency,reference\n"
        f"a@example.com,{date.today()},200.00,EUR,I-1\n"
        f"a@example.com,{date.today()},100.00,EUR,I-2\n"
    ).encode()
    import_orders(io.BytesIO(data), source="csv")
    import_orders(io.BytesIO(data), source="csv")
    who = customers.customer_by_email("a@example.com")
    assert card_of(who).balance == Decimal("15.00")
    assert ledger_count() == 2


# --- redemption -------------------------------------------------------------------------------


@pytest.fixture
def funded(app: Flask, agent):
    """A customer with 50.00 bonus and an order O-1 of 100.00 (plus its 5.00 accrual)."""
    who = customer()
    card = card_of(who)
    ledger.adjust(card, {"amount": "45", "reason": "start"}, agent)
    db.session.commit()
    order(who, "100.00", "O-1")
    return card_of(who)


def redeem(client, headers, number, body, key=None):
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(f"{API}/cards/{number}/redeem", json=body, headers={**headers, **extra})


def test_redeem_within_share_and_balance(client: FlaskClient, api_headers, funded):
    ok = redeem(client, api_headers, funded.number, {"amount": "30", "order_reference": "O-1"})
    assert ok.status_code == 200, ok.json
    assert ok.json["balance"] == "20.00" and ok.json["entry"]["amount"] == "-30.00"
    share = redeem(
        client, api_headers, funded.number, {"amount": "20.01", "order_reference": "O-1"}
    )
    assert share.status_code == 422 and "amount" in share.json["fields"]
    assert balances()[0][1] == Decimal("20.00")


@pytest.mark.parametrize("amount", ["1.005", "-5", "NaN", "1e309", "", 5.1, None, "0", "1,5", True])
def test_bad_amounts_change_nothing(client: FlaskClient, api_headers, funded, amount):
    before = balances()
    answer = redeem(
        client, api_headers, funded.number, {"amount": amount, "order_reference": "O-1"}
    )
    assert answer.status_code == 422 and "amount" in answer.json["fields"]
    if amount != "-5":  # a negative adjustment takes bonus: allowed
        adjusted = client.post(
            f"{API}/cards/{funded.number}/adjust",
            json={"amount": amount, "reason": "x"},
            headers=api_headers,
        )
        assert adjusted.status_code == 422
    assert balances() == before


def test_wrong_currency_more_than_balance_unknown_order(client, api_headers, funded):
    before = balances()
    body = {"amount": "1", "order_reference": "O-1", "currency": "USD"}
    assert redeem(client, api_headers, funded.number, body).status_code == 422
    body = {"amount": "1", "order_reference": "NOPE"}
    assert redeem(client, api_headers, funded.number, body).status_code == 422
    assert balances() == before
    order(db.session.get(Customer, funded.customer_id), "1000", "BIG")  # +50.00
    body = {"amount": "100.01", "order_reference": "BIG"}
    too_much = redeem(client, api_headers, funded.number, body)
    assert too_much.status_code == 409 and too_much.json["error"] == "insufficient_balance"
    assert too_much.json["balance"] == "100.00"
    assert balances()[0][1] == Decimal("100.00")


def test_idempotency_key_replays_and_refuses_another_body(client, api_headers, funded):
    body = {"amount": "10", "order_reference": "O-1"}
    first = redeem(client, api_headers, funded.number, body, key="k-1")
    again = redeem(client, api_headers, funded.number, body, key="k-1")
    assert first.status_code == again.status_code == 200
    assert first.json == again.json
    other = redeem(client, api_headers, funded.number, {**body, "amount": "11"}, key="k-1")
    assert other.status_code == 422 and "Idempotency-Key" in other.json["fields"]
    assert balances()[0][1] == Decimal("40.00")
    assert ledger_count() == 3


def test_agent_adjust_limit_and_admin(client, api_headers, funded, admin):
    before = balances()
    big = client.post(
        f"{API}/cards/{funded.number}/adjust",
        json={"amount": "50.01", "reason": "goodwill"},
        headers=api_headers,
    )
    assert big.status_code == 403
    assert balances() == before
    ledger.adjust(funded, {"amount": "500", "reason": "goodwill"}, admin)
    db.session.commit()
    assert balances()[0][1] == Decimal("550.00")


# --- refunds and owed -------------------------------------------------------------------------


@pytest.mark.hooks("helpdesk_order_refunded", "helpdesk_orders_recorded")
def test_refund_reverses_accrual_and_gives_back_redemption(client, api_headers, funded):
    recorded = orders.order_by_reference("manual", "O-1")
    body = {"amount": "50", "order_reference": "O-1"}
    assert redeem(client, api_headers, funded.number, body).status_code == 200
    assert balances()[0][1] == Decimal("0.00")
    url = f"{API}/orders/{recorded.id}/refunds"
    # half refunded: 25.00 of the redemption given back, 2.50 of the accrual reversed
    assert client.post(url, json={"amount": "50"}, headers=api_headers).status_code == 201
    assert balances()[0][1:] == (Decimal("22.50"), Decimal(0))
    too_much = client.post(url, json={"amount": "50.01"}, headers=api_headers)
    assert too_much.status_code == 422
    assert balances()[0][1:] == (Decimal("22.50"), Decimal(0))
    assert client.post(url, json={"amount": "50"}, headers=api_headers).status_code == 201
    assert balances()[0][1:] == (Decimal("45.00"), Decimal(0))  # back to the 45 adjusted
    assert maintenance.verify() == []


def test_reversal_beyond_balance_becomes_owed_and_later_accrual_pays_it(client, api_headers, agent):
    who = customer()
    big = order(who, "1000.00", "B-1")  # 50.00 accrued
    card = card_of(who)
    ledger.adjust(card, {"amount": "-45", "reason": "spent elsewhere"}, agent)
    db.session.commit()
    client.post(f"{API}/orders/{big.id}/refunds", json={"amount": "1000"}, headers=api_headers)
    assert balances()[0][1:] == (Decimal("0.00"), Decimal("45.00"))
    body = {"amount": "1", "order_reference": "B-1"}
    refused = redeem(client, api_headers, card.number, body)
    assert refused.status_code == 409 and refused.json["error"] == "bonus_owed"
    order(who, "1000.00", "B-2")  # 50.00: 45 pays the debt, 5 stays
    assert balances()[0][1:] == (Decimal("5.00"), Decimal("0.00"))
    assert maintenance.verify() == []


# --- tiers, verify, expiry ----------------------------------------------------------------------


def test_tier_discount_joins_the_price_policy(client, api_headers, app: Flask):
    who = customer()
    order(who, "999.99", "T-1")
    answer = client.get(f"{API}/cards/{card_of(who).number}", headers=api_headers).json
    assert answer["tier"] is None
    assert answer["next_tier"] == {"name": "Silver", "remaining": "0.01"}
    order(who, "0.01", "T-2")
    policy = price_policy(who, "100.00")
    assert policy["discount_percent"] == Decimal("3.00")
    assert policy["reasons"] == ["Silver tier"]
    customer_json = client.get(f"{API}/customers/{who.id}", headers=api_headers).json
    assert customer_json["card"]["number"] == card_of(who).number


def test_verify_finds_a_tampered_balance(app: Flask, runner, agent):
    who = customer()
    ledger.adjust(card_of(who), {"amount": "10", "reason": "x"}, agent)
    db.session.commit()
    assert runner.invoke(args=["loyalty", "verify"]).exit_code == 0
    db.session.execute(update(Card).values(balance=Decimal("11")))
    db.session.commit()
    result = runner.invoke(args=["loyalty", "verify"])
    assert result.exit_code == 1 and "1 mismatches" in result.output


def test_expiry_oldest_first_and_idempotent(app_config, runner, app: Flask, agent):
    app.config["LOYALTY_EXPIRY_MONTHS"] = 12
    who = customer()
    card = card_of(who)
    ledger.adjust(card, {"amount": "30", "reason": "old"}, agent)
    ledger.adjust(card, {"amount": "-10", "reason": "spent"}, agent)
    db.session.commit()
    old = maintenance.months_before(utcnow(), 13)
    db.session.execute(update(LedgerEntry).values(created_at=old))
    ledger.adjust(card, {"amount": "5", "reason": "new"}, agent)
    db.session.commit()
    assert runner.invoke(args=["loyalty", "expire"]).exit_code == 0
    assert balances()[0][1] == Decimal("5.00")  # 30 - 10 spent = 20 expired; 5 is new
    runner.invoke(args=["loyalty", "expire"])
    assert balances()[0][1] == Decimal("5.00")
    assert maintenance.verify() == []


def test_months_before_clamps_the_day():
    from datetime import datetime

    assert maintenance.months_before(datetime(2026, 5, 31), 3) == datetime(2026, 2, 28)
    assert maintenance.months_before(datetime(2026, 1, 15), 13) == datetime(2024, 12, 15)


# --- pages ----------------------------------------------------------------------------------


@pytest.mark.hooks("helpdesk_nav_items")
def test_top_bar_box_finds_a_card_as_a_scanner_types_it(agent_client: FlaskClient):
    card = card_of(customer())
    queue = agent_client.get("/tickets").get_data(as_text=True)
    assert 'action="/cards" method="get" role="search"' in queue
    assert 'name="number" placeholder="Card number"' in queue
    spaced = " ".join(card.number[i : i + 4] for i in range(0, len(card.number), 4))
    found = agent_client.get("/cards", query_string={"number": spaced})
    assert found.status_code == 302 and found.location.endswith(f"/cards/{card.number}")


def test_pages_panel_card_statement_report(agent_client: FlaskClient, agent):
    who = customer()
    card = card_of(who)
    order(who, "100", "P-1")
    page = agent_client.get(f"/customers/{who.id}").get_data(as_text=True)
    assert card.number in page and "5.00" in page
    found = agent_client.get("/cards?number=" + card.number)
    assert found.status_code == 302
    printable = agent_client.get(f"/cards/{card.number}").get_data(as_text=True)
    assert "<svg" in printable and "style=" not in printable.split("<svg", 1)[1].split("</svg>")[0]
    csv_text = agent_client.get(f"/cards/{card.number}/statement?format=csv").get_data(as_text=True)
    assert "accrual" in csv_text and "P-1" in csv_text
    bad = agent_client.get("/cards?number=" + "9" * 200)
    assert bad.status_code == 422
    answer = post_form(
        agent_client,
        f"/cards/{card.number}/adjust",
        {"amount": "1.005", "reason": "x"},
        page=f"/cards/{card.number}",
    )
    assert answer.status_code == 303 and balances()[0][1] == Decimal("5.00")
    report = agent_client.get("/reports/loyalty")
    assert report.status_code == 200 and "<svg" in report.get_data(as_text=True)
    assert "accrual" in agent_client.get("/reports/loyalty?format=csv").get_data(as_text=True)


def test_ledger_list_queries_do_not_grow(client, api_headers, funded, count_queries, agent):
    number = funded.number

    def queries() -> int:
        with count_queries as counter:
            assert (
                client.get(f"{API}/cards/{number}/ledger", headers=api_headers).status_code == 200
            )
        return counter.count

    queries()  # the token's first use writes its last_used_at
    few = queries()
    for _ in range(20):
        ledger.adjust(funded, {"amount": "1", "reason": "x"}, agent)
    db.session.commit()
    assert queries() == few


def test_statement_page_queries_do_not_grow(agent_client, funded, count_queries, agent):
    number = funded.number

    def queries() -> int:
        with count_queries as counter:
            assert agent_client.get(f"/cards/{number}/statement").status_code == 200
        return counter.count

    few = queries()
    for _ in range(20):
        ledger.adjust(funded, {"amount": "1", "reason": "x"}, agent)
    db.session.commit()
    assert queries() == few


def test_order_dates_far_back_still_count_for_lifetime(app: Flask):
    who = customer()
    orders.record_order(
        who,
        ordered_on=date.today() - timedelta(days=800),
        amount="1000",
        currency="EUR",
        reference="OLD",
    )
    from plugins.loyalty import tiers

    assert tiers.standing(who.id).tier.name == "Silver"
    app.config["LOYALTY_TIER_WINDOW"] = "12m"
    assert tiers.standing(who.id).tier is None
