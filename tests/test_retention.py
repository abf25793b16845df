"""The retention plugin with real parts: the summary and client lists from orders in the
database (hand-computed figures), the API (checked against the OpenAPI document), bad input,
the dashboard, CSV, customer page forms, "My clients", call tasks and ``retention review``."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, insert, select

from helpdesk import hookimpl
from helpdesk.core import orders, services
from helpdesk.core.accounts import create_agent, create_team
from helpdesk.core.customers import register_customer
from helpdesk.core.models import Customer, OutboxItem
from helpdesk.extensions import db
from plugins.retention import service
from plugins.retention.models import AccountManager, CallTask, ClientStatus, LossReason
from plugins.retention.review import review
from tests.conftest import post_form
from tests.test_api import PREFIX, Api

D = "2025-06-30"
DAY = date(2025, 6, 30)


class Listener:
    """Hears the retention events."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str, str]] = []

    @hookimpl
    def helpdesk_customer_lost(self, customer, as_of):
        self.heard.append(("lost", customer.email, as_of.isoformat()))

    @hookimpl
    def helpdesk_customer_drying_up(self, customer, as_of):
        self.heard.append(("drying_up", customer.email, as_of.isoformat()))

    @hookimpl
    def helpdesk_customer_won_back(self, customer, as_of):
        self.heard.append(("won_back", customer.email, as_of.isoformat()))


listener = Listener()


@pytest.fixture(autouse=True)
def retention_enabled(app_config: dict[str, Any]) -> None:
    """The plugin switched on (the suite pins it off so the core's tests see the core)."""
    app_config["PLUGINS_DISABLED"] = ["hello", "categories", "surveys", "loyalty", "letters"]


@pytest.fixture
def app_plugins() -> list[Any]:
    listener.heard.clear()
    return [listener]


def client_with(
    email: str, *orders_: tuple[str, str, str] | tuple[str, str, str, list]
) -> Customer:
    """A customer with orders ``(date, amount, currency[, lines])``."""
    customer = register_customer({"email": email, "name": email.split("@")[0].title()})
    for index, (day, amount, currency, *lines) in enumerate(orders_):
        order_lines = (
            [{"product_line": name, "amount": amount} for name in lines[0]] if lines else None
        )
        orders.record_order(
            customer,
            ordered_on=day,
            amount=None if order_lines else amount,
            currency=currency,
            reference=f"{email}-{index}",
            lines=order_lines,
        )
    return customer


@pytest.fixture
def shop(app) -> dict[str, Customer]:
    """The hand-computed data set (see tests/test_retention_definitions.py for each client)."""
    return {
        # lost on 2025-05-01; revenue before 600 EUR; LTV 600 × 24 = 14,400.00 EUR
        "ann": client_with(
            "ann@example.com",
            ("2025-01-01", "100", "EUR"),
            ("2025-01-11", "200", "EUR"),
            ("2025-01-31", "300", "EUR"),
        ),
        # lost on 2024-10-30; revenue before 3,000 USD; LTV 18,111.57 USD
        "bob": client_with(
            "bob@example.com",
            ("2024-01-01", "1000", "USD"),
            ("2024-03-01", "1000", "USD"),
            ("2024-05-01", "1000", "USD"),
        ),
        # drying up: AOV 100 → 60 (−40 %)
        "cat": client_with(
            "cat@example.com",
            ("2025-02-01", "100", "EUR"),
            ("2025-02-21", "100", "EUR"),
            ("2025-03-13", "100", "EUR"),
            ("2025-04-02", "60", "EUR"),
            ("2025-04-22", "60", "EUR"),
            ("2025-05-12", "60", "EUR"),
            ("2025-06-01", "60", "EUR"),
        ),
        # won back on 2024-11-01, lost again on 2025-01-30; revenue before 200; LTV 954.90 EUR
        "wes": client_with(
            "wes@example.com",
            ("2024-06-01", "50", "EUR"),
            ("2024-06-11", "50", "EUR"),
            ("2024-06-21", "50", "EUR"),
            ("2024-11-01", "50", "EUR"),
        ),
        # one order: new
        "eve": client_with("eve@example.com", ("2025-06-01", "10", "EUR")),
        # three orders on one day: one purchase, new
        "fay": client_with(
            "fay@example.com",
            ("2025-03-01", "10", "EUR"),
            ("2025-03-01", "20", "EUR"),
            ("2025-03-01", "30", "EUR"),
        ),
    }


@pytest.fixture
def api(client: FlaskClient, api_headers: dict[str, str]) -> Api:
    doc = client.get(f"{PREFIX}/openapi.json").get_json()
    return Api(client, api_headers, doc)


def put(api: Api, path: str, body: Any):
    raw = body if isinstance(body, str) else json.dumps(body)
    return api.call("PUT", path, data=raw, content_type="application/json")


# --- the summary --------------------------------------------------------------------------

EXPECTED_SUMMARY = {
    "as_of": D,
    "lost_12m": {
        # ann (lost 2025-05-01), bob (2024-10-30), wes (2025-01-30): all in (2024-06-30, D]
        "count": 3,
        # ann 600 + wes 200 = 800 EUR; bob 3,000 USD: never added across currencies
        "revenue_before": {"EUR": "800.00", "USD": "3000.00"},
        # ann 14,400 + wes 954.9019… = 15,354.9019… → 15,354.90 EUR; bob 18,111.57 USD
        "lifetime_value_lost": {"EUR": "15354.90", "USD": "18111.57"},
    },
    "won_back_12m": {"count": 1},  # wes, lost again now
    "drying_up": {"count": 1},  # cat
}


def test_summary_answers_the_three_questions(api: Api, shop):
    service.record_loss_reason(shop["ann"], "price", "found it cheaper", None)
    service.record_loss_reason(shop["bob"], "moved", "", None)
    response = api.get(f"/retention/summary?as_of={D}")
    assert response.status_code == 200
    data = response.get_json()
    assert {k: data[k] for k in EXPECTED_SUMMARY} == EXPECTED_SUMMARY
    reasons = {r["reason"]: (r["count"], r["beyond_control"]) for r in data["reasons"]}
    assert reasons["price"] == (1, False)
    assert reasons["moved"] == (1, True)
    assert reasons["not_recorded"] == (1, None)  # wes
    assert reasons["closed"] == (0, True) and reasons["unknown"] == (0, None)


def test_an_as_of_before_any_order_is_an_empty_answer(api: Api, shop):
    data = api.get("/retention/summary?as_of=2000-01-01").get_json()
    assert data["lost_12m"] == {"count": 0, "revenue_before": {}, "lifetime_value_lost": {}}
    assert data["won_back_12m"] == {"count": 0} and data["drying_up"] == {"count": 0}
    listed = api.get("/retention/customers?status=lost&as_of=2000-01-01").get_json()
    assert listed["items"] == [] and listed["total"] == 0


@pytest.mark.parametrize(
    "as_of",
    ["2025-13-01", "2025-02-30", "yesterday", "25-06-30", "2025-6-30", "9999-01-01", "x" * 500],
)
def test_a_malformed_as_of_is_a_400(api: Api, shop, as_of):
    for url in (
        f"/retention/summary?as_of={as_of}",
        f"/retention/customers?status=lost&as_of={as_of}",
    ):
        response = api.get(url)
        assert response.status_code == 400, url
        assert "as_of" in response.get_json()["message"]


def test_the_summary_ignores_customers_without_orders(api: Api, shop, count_queries):
    with count_queries as before:
        first = api.get(f"/retention/summary?as_of={D}").get_json()
    db.session.execute(
        insert(Customer),
        [{"email": f"n{i}@example.com", "email_key": f"n{i}@example.com"} for i in range(500)],
    )
    db.session.commit()
    with count_queries as after:
        second = api.get(f"/retention/summary?as_of={D}").get_json()
    assert first == second
    assert after.count == before.count


# --- client lists -------------------------------------------------------------------------


def test_lost_clients_with_their_figures(api: Api, shop, agent):
    service.set_account_manager(shop["ann"], agent)
    data = api.get(f"/retention/customers?status=lost&as_of={D}").get_json()
    # latest last order first: ann (2025-01-31), wes (2024-11-01), bob (2024-05-01)
    assert [item["customer"]["email"] for item in data["items"]] == [
        "ann@example.com",
        "wes@example.com",
        "bob@example.com",
    ]
    ann = data["items"][0]
    assert ann["status"] == "lost" and ann["last_order_at"] == "2025-01-31"
    assert ann["orders_count"] == 3 and ann["usual_interval_days"] == 15  # (10 + 20) / 2
    assert ann["spend_total"] == {"EUR": "600.00"}
    assert ann["revenue_before"] == {"EUR": "600.00"}
    assert ann["lifetime_value_lost"] == {"EUR": "14400.00"}
    assert ann["account_manager"]["email"] == agent.email
    bob = data["items"][2]
    assert bob["usual_interval_days"] == 60.5  # (60 + 61) / 2
    assert bob["lifetime_value_lost"] == {"USD": "18111.57"}


def test_drying_up_clients_show_the_aov_change(api: Api, shop):
    data = api.get(f"/retention/customers?status=drying_up&as_of={D}").get_json()
    (cat,) = data["items"]
    assert cat["customer"]["email"] == "cat@example.com" and cat["signals"] == ["aov_drop"]
    # 3 × 100 in (2025-01-01, 2025-04-01]; 4 × 60 in (2025-04-01, 2025-06-30]
    assert cat["aov_prev_90d"] == {"EUR": "100.00"} and cat["aov_last_90d"] == {"EUR": "60.00"}
    assert cat["aov_change_percent"] == {"EUR": "-40.00"}  # (60 − 100) ÷ 100 × 100


def test_won_back_lists_the_client_whatever_their_status(api: Api, shop):
    (wes,) = api.get(f"/retention/customers?status=won_back&as_of={D}").get_json()["items"]
    assert (wes["status"], wes["won_back_on"]) == ("lost", "2024-11-01")


def test_clients_with_one_purchase_are_in_no_list(api: Api, shop):
    for status in ("regular", "at_risk"):
        items = api.get(f"/retention/customers?status={status}&as_of={D}").get_json()["items"]
        assert items == []


@pytest.mark.parametrize(
    "query", ["status=gone", "status=", "status=lost&page=0", "status=lost&page=x"]
)
def test_a_bad_status_or_page_is_a_400(api: Api, shop, query):
    assert api.get(f"/retention/customers?{query}").status_code == 400


def test_the_list_pages_with_a_constant_number_of_queries(
    api: Api, app, shop, agent, count_queries
):
    app.config["RETENTION_PAGE_SIZE"] = 2
    with count_queries as one:
        api.get(f"/retention/customers?status=drying_up&as_of={D}")
    for name in ("ann", "bob", "wes"):
        service.set_account_manager(shop[name], agent)
    with count_queries as page:
        data = api.get(f"/retention/customers?status=lost&as_of={D}").get_json()
    assert len(data["items"]) == 2 and data["has_next"] and data["total"] == 3
    assert page.count == one.count
    rest = api.get(f"/retention/customers?status=lost&as_of={D}&page=2").get_json()
    assert [i["customer"]["email"] for i in rest["items"]] == ["bob@example.com"]


# --- loss reasons and managers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "bored"}, "reason"),
        ({"reason": None}, "reason"),
        ({}, "reason"),
        ({"reason": "price", "note": 5}, "note"),
        ({"reason": "price", "note": "x" * 2001}, "note"),
    ],
)
def test_an_unknown_reason_is_refused(api: Api, shop, body, field):
    response = put(api, f"/customers/{shop['ann'].id}/loss-reason", body)
    assert response.status_code == 422 and field in response.get_json()["fields"]
    assert db.session.scalar(select(func.count()).select_from(LossReason)) == 0


def test_a_reason_is_recorded_and_replaced(api: Api, shop):
    path = f"/customers/{shop['ann'].id}/loss-reason"
    first = put(api, path, {"reason": "quality", "note": "broken twice"})
    assert first.status_code == 200
    assert first.get_json() == {
        "customer_id": shop["ann"].id,
        "reason": "quality",
        "beyond_control": False,
        "note": "broken twice",
    }
    assert put(api, path, {"reason": "died"}).get_json()["beyond_control"] is True
    assert service.loss_reason_of(shop["ann"]).reason == "died"
    assert put(api, "/customers/999999/loss-reason", {"reason": "died"}).status_code == 404
    assert put(api, path, "not json").status_code == 400
    assert put(api, path, "[1]").status_code == 400


def test_account_manager_by_api(api: Api, shop, agent):
    path = f"/customers/{shop['ann'].id}/account-manager"
    response = put(api, path, {"agent": agent.email.upper()})
    assert response.status_code == 200
    assert response.get_json()["account_manager"]["id"] == agent.id
    assert put(api, path, {"agent": "nobody@example.com"}).status_code == 422
    assert put(api, path, {"agent": 7}).status_code == 422
    assert put(api, path, {}).status_code == 422
    assert put(api, path, {"agent": None}).get_json()["account_manager"] is None
    assert db.session.scalar(select(func.count()).select_from(AccountManager)) == 0


# --- the review ---------------------------------------------------------------------------


@pytest.mark.hooks(
    "helpdesk_customer_lost",
    "helpdesk_customer_drying_up",
    "helpdesk_customer_won_back",
    "helpdesk_cli_commands",
)
def test_review_fires_events_creates_tasks_and_mails_managers_once(app, runner, shop, agent):
    service.set_account_manager(shop["ann"], agent)
    result = runner.invoke(args=["retention", "review", "--as-of", D])
    assert result.exit_code == 0, result.output
    assert "Reviewed 6 clients" in result.output
    assert sorted(listener.heard) == [
        ("drying_up", "cat@example.com", D),
        ("lost", "ann@example.com", D),
        ("lost", "bob@example.com", D),
        ("lost", "wes@example.com", D),
        ("won_back", "wes@example.com", D),
    ]
    tasks = db.session.scalars(select(CallTask).order_by(CallTask.customer_id)).all()
    assert [(t.customer_id, t.kind, t.agent_id) for t in tasks] == [
        (shop["ann"].id, "lost", agent.id),
        (shop["bob"].id, "lost", None),
        (shop["cat"].id, "drying_up", None),
        (shop["wes"].id, "lost", None),
    ]
    mails = db.session.scalars(select(OutboxItem)).all()
    assert len(mails) == 1 and agent.email in json.dumps(mails[0].payload)
    # again: nothing changed, nothing fired, no task, no mail
    listener.heard.clear()
    again = runner.invoke(args=["retention", "review", "--as-of", D])
    assert again.exit_code == 0 and "0 changed" in again.output
    assert listener.heard == []
    assert db.session.scalar(select(func.count()).select_from(CallTask)) == 4
    assert db.session.scalar(select(func.count()).select_from(OutboxItem)) == 1
    assert db.session.get(ClientStatus, shop["cat"].id).status == "drying_up"
    # ann buys again on 2025-06-20: 140 days after 2025-01-31 > 90, so a win-back; AOV of
    # (2025-01-01, 2025-04-01]: (200 + 300) / 2 = 250, last 90 days 300 (+20 %): won back.
    orders.record_order(shop["ann"], ordered_on="2025-06-20", amount="300", currency="EUR")
    third = runner.invoke(args=["retention", "review", "--as-of", D])
    assert "1 changed" in third.output
    assert listener.heard == [("won_back", "ann@example.com", D)]
    db.session.expire_all()
    assert db.session.get(ClientStatus, shop["ann"].id).status == "won_back"
    assert db.session.scalar(select(func.count()).select_from(CallTask)) == 4


def test_review_sends_unassigned_calls_to_the_retention_team(app, runner, shop):
    team = create_team("Retention")
    member = create_agent(email="r@example.com", name="Rita", password="x" * 12, team_ids=[team.id])
    review(DAY)
    mails = db.session.scalars(select(OutboxItem)).all()
    assert len(mails) == 1 and member.email in json.dumps(mails[0].payload)
    assert len(service.open_tasks_for(member)) == 4


def test_review_refuses_a_bad_date(runner, shop):
    result = runner.invoke(args=["retention", "review", "--as-of", "2025-02-30"])
    assert result.exit_code == 2 and "--as-of" in result.output


# --- pages ------------------------------------------------------------------------------


@pytest.mark.hooks("helpdesk_reports", "helpdesk_nav_items")
def test_the_dashboard_shows_and_defines_each_figure(agent_client: FlaskClient, shop):
    response = agent_client.get(f"/retention?as_of={D}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-figure="lost-count">3<' in html
    assert "800.00 EUR, 3000.00 USD" in html
    assert "15354.90 EUR, 18111.57 USD" in html
    assert 'data-figure="won-back-count">1<' in html
    assert 'data-figure="drying-up-count">1<' in html
    assert "<svg" in html and "2025-05" in html  # ann became lost in May 2025
    assert "Cat" in html and "EUR -40.00 %" in html
    for term in ("Regular client", "Usual interval", "Lifetime value lost", "30.4375", "At risk"):
        assert term in html
    assert "Keeping clients" in agent_client.get("/reports").get_data(as_text=True)


def test_the_dashboard_shows_at_most_the_configured_rows(app, agent_client: FlaskClient, shop):
    app.config["RETENTION_DASHBOARD_ROWS"] = 0
    html = agent_client.get(f"/retention?as_of={D}").get_data(as_text=True)
    assert "0 of 1 clients shown" in html and "EUR -40.00 %" not in html


def test_a_request_never_rebuilds_more_than_its_limit(
    app, agent_client: FlaskClient, api_headers, runner, shop
):
    app.config["RETENTION_REQUEST_BUILD_LIMIT"] = 2  # the shop has 6 clients, none built yet
    page = agent_client.get(f"/retention?as_of={D}")
    assert page.status_code == 503 and "helpdesk retention rebuild" in page.get_data(as_text=True)
    answer = agent_client.get(f"{PREFIX}/retention/summary?as_of={D}", headers=api_headers)
    assert answer.status_code == 503 and "rebuild" in answer.get_json()["message"]
    assert runner.invoke(args=["retention", "rebuild"]).exit_code == 0
    html = agent_client.get(f"/retention?as_of={D}").get_data(as_text=True)
    assert 'data-figure="lost-count">3<' in html
    client_with("new@example.com", ("2025-06-01", "5", "EUR"))  # one client: within the limit
    assert agent_client.get(f"/retention?as_of={D}").status_code == 200


def test_the_dashboard_refuses_a_bad_date_without_a_500(agent_client: FlaskClient, shop):
    response = agent_client.get("/retention?as_of=2025-99-99")
    assert response.status_code == 400
    assert "is not a date in the calendar" in response.get_data(as_text=True)


def test_the_drying_up_list_as_csv(agent_client: FlaskClient, shop):
    response = agent_client.get(f"/retention?as_of={D}&format=csv&sort=name")
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:5] == ["as_of", "customer_id", "email", "name", "signals"]
    assert rows[1][2:5] == ["cat@example.com", "Cat", "aov_drop"] and rows[1][6] == "EUR -40.00 %"


def _segment_rows(html: str, segment: str) -> dict[str, list[str]]:
    """``{month: [cells]}`` of one segment's table on the segments page."""
    section = html.split(f">{segment}</h2>", 1)[1].split("</table>", 1)[0]
    rows = {}
    for row in re.findall(r'<tr data-month="([0-9-]+)">(.*?)</tr>', section, re.S):
        rows[row[0]] = [c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row[1], re.S)]
    return rows


def test_segments_by_month_without_a_grouping(agent_client: FlaskClient, shop):
    html = agent_client.get(f"/retention/segments?as_of={D}").get_data(as_text=True)
    rows = _segment_rows(html, "All clients")
    assert list(rows) == [f"2024-{m:02d}" for m in range(7, 13)] + [
        f"2025-{m:02d}" for m in range(1, 7)
    ]
    # clients, purchases, revenue, AOV, complaints, lost
    assert rows["2025-01"] == ["1", "3", "600.00 EUR", "200.00 EUR", "0", "1"]  # ann; wes lost
    assert rows["2025-03"] == ["2", "2", "160.00 EUR", "80.00 EUR", "0", "0"]  # cat, fay (1 day)
    assert rows["2025-05"] == ["1", "1", "60.00 EUR", "60.00 EUR", "0", "1"]  # ann lost
    assert rows["2024-10"] == ["0", "0", "—", "—", "0", "1"]  # bob lost
    assert agent_client.get("/retention/segments?as_of=2025-13-01").status_code == 400


@pytest.fixture
def with_categories(app_config: dict[str, Any]) -> None:
    app_config["PLUGINS_DISABLED"].remove("categories")


@pytest.mark.hooks("helpdesk_customer_groupings")
def test_segments_per_client_category(with_categories, agent_client: FlaskClient, shop, agent):
    from plugins.categories import service as categories

    categories.create_category({"name": "Ordinary"})
    vip = categories.create_category({"name": "VIP"})
    categories.set_customer_category(shop["cat"], vip, agent=agent)
    complaint = services.open_ticket(
        subject="Smaller", body="Why?", kind="complaint", customer_email="cat@example.com"
    )
    complaint.created_at = datetime(2025, 4, 10, 12, tzinfo=UTC)
    db.session.commit()
    html = agent_client.get(f"/retention/segments?as_of={D}").get_data(as_text=True)
    assert "Segments: client category" in html
    vip_rows, ordinary = _segment_rows(html, "VIP"), _segment_rows(html, "Ordinary")
    assert vip_rows["2025-04"] == ["1", "2", "120.00 EUR", "60.00 EUR", "1", "0"]
    assert ordinary["2025-03"] == ["1", "1", "60.00 EUR", "60.00 EUR", "0", "0"]  # fay
    assert ordinary["2025-05"][-1] == "1" and vip_rows["2025-05"][-1] == "0"  # ann lost


@pytest.fixture
def with_surveys(app_config: dict[str, Any]) -> None:
    app_config["PLUGINS_DISABLED"].remove("surveys")


@pytest.mark.hooks("helpdesk_customer_json")
def test_the_last_survey_score_shows_when_surveys_is_enabled(
    with_surveys, agent_client: FlaskClient, shop, agent
):
    from plugins.surveys.models import Survey

    cat = shop["cat"]
    ticket = services.open_ticket(subject="Late", body="Again.", customer_email=cat.email)
    db.session.add(Survey(ticket_id=ticket.id, customer_id=cat.id, status="answered", score=2))
    service.set_account_manager(cat, agent)
    db.session.commit()
    html = agent_client.get(f"/retention?as_of={D}").get_data(as_text=True)
    assert "Last survey score" in html and 'data-figure="last-score">2<' in html
    rows = list(
        csv.reader(
            io.StringIO(agent_client.get(f"/retention?as_of={D}&format=csv").get_data(as_text=True))
        )
    )
    assert rows[0][-1] == "last_survey_score" and rows[1][-1] == "2"
    mine = agent_client.get("/retention/mine").get_data(as_text=True)
    assert 'data-figure="last-score">2<' in mine


def test_without_surveys_there_is_no_score_column(agent_client: FlaskClient, shop):
    html = agent_client.get(f"/retention?as_of={D}").get_data(as_text=True)
    assert "Last survey score" not in html


@pytest.mark.hooks("helpdesk_customer_panels")
def test_the_customer_page_records_a_reason_and_a_manager(agent_client: FlaskClient, shop, agent):
    page = f"/customers/{shop['ann'].id}"
    html = agent_client.get(page).get_data(as_text=True)
    assert 'data-retention-status="lost"' in html
    response = post_form(
        agent_client,
        f"/retention/customers/{shop['ann'].id}/loss-reason",
        {"reason": "competitor", "note": "went to Acme"},
        page=page,
    )
    assert response.status_code == 302
    assert service.loss_reason_of(shop["ann"]).note == "went to Acme"
    bad = post_form(
        agent_client,
        f"/retention/customers/{shop['ann'].id}/loss-reason",
        {"reason": "x"},
        page=page,
    )
    assert bad.status_code == 303 and service.loss_reason_of(shop["ann"]).reason == "competitor"
    post_form(
        agent_client,
        f"/retention/customers/{shop['ann'].id}/manager",
        {"agent": agent.email},
        page=page,
    )
    assert service.manager_of(shop["ann"]).id == agent.id
    assert (
        agent_client.post(f"/retention/customers/{shop['ann'].id}/manager", data={}).status_code
        == 400
    )


def test_my_clients_and_recording_a_call(agent_client: FlaskClient, shop, agent):
    for name in ("ann", "cat"):
        service.set_account_manager(shop[name], agent)
    review(DAY)
    html = agent_client.get("/retention/mine").get_data(as_text=True)
    assert "Ann" in html and "Cat" in html and "Pick up the phone" in html
    task = db.session.scalar(select(CallTask).where(CallTask.customer_id == shop["ann"].id))
    response = post_form(
        agent_client,
        f"/retention/tasks/{task.id}",
        {"reached": "yes", "reason": "price", "offer": "10 % off", "next_date": "2025-07-15"},
        page="/retention/mine",
    )
    assert response.status_code == 302
    db.session.refresh(task)
    assert task.done_at is not None and task.reached and task.offer_made == "10 % off"
    assert service.loss_reason_of(shop["ann"]).reason == "price"
    again = post_form(
        agent_client, f"/retention/tasks/{task.id}", {"reached": "no"}, page="/retention/mine"
    )
    assert again.status_code == 303
    bad = db.session.scalar(select(CallTask).where(CallTask.customer_id == shop["cat"].id))
    wrong = post_form(
        agent_client,
        f"/retention/tasks/{bad.id}",
        {"reached": "maybe", "next_date": "soon"},
        page="/retention/mine",
    )
    assert wrong.status_code == 303 and db.session.get(CallTask, bad.id).done_at is None
    assert agent_client.post("/retention/tasks/99999", data={}).status_code in (400, 404)


def test_my_clients_queries_do_not_grow_with_clients(
    agent_client: FlaskClient, shop, agent, count_queries
):
    service.set_account_manager(shop["ann"], agent)
    with count_queries as one:
        agent_client.get("/retention/mine")
    for name in ("bob", "cat", "wes", "eve"):
        service.set_account_manager(shop[name], agent)
    with count_queries as five:
        agent_client.get("/retention/mine")
    assert five.count == one.count
