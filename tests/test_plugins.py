"""The plugin system: the example plugin's parts, enable/disable across app instances, failing
and broken plugins, per-plugin migrations, the page/API/queue hooks and the price policy."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from importlib.metadata import EntryPoint
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pluggy
import pytest
from flask import Flask
from markupsafe import Markup
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url

from helpdesk import (
    ValidationError,
    call_each,
    create_app,
    customer_groupings,
    hookimpl,
    hookspecs,
    price_policy,
    utcnow,
)
from helpdesk.core import services
from helpdesk.core.customers import register_customer
from helpdesk.core.models import Customer, PluginState, StateVersion, Team, Ticket
from helpdesk.core.worker import deliver_due
from helpdesk.extensions import db
from helpdesk.plugins import current_plugins
from tests.conftest import csrf_from, login, post_form
from tests.plugin_support import HELLO

BUILT_IN = ("categories", "letters", "loyalty", "retention", "surveys")

ALL_HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("helpdesk_"))


class Good:
    """A plugin answering the page, queue, API and decision hooks, and hearing every event."""

    def __init__(self) -> None:
        self.heard: list[str] = []
        self.json_calls = 0

    @hookimpl
    def helpdesk_customer_registered(self, customer):
        self.heard.append("customer_registered")

    @hookimpl
    def helpdesk_ticket_defaults(self, customer, ticket_data):
        return {"priority": "high"} if customer.email.startswith("vip") else None

    @hookimpl
    def helpdesk_ticket_created(self, ticket):
        self.heard.append("ticket_created")

    @hookimpl
    def helpdesk_message_added(self, ticket, message):
        self.heard.append("message_added")

    @hookimpl
    def helpdesk_ticket_status_changed(self, ticket, old, new):
        self.heard.append(f"status {old}->{new}")

    @hookimpl
    def helpdesk_order_recorded(self, order):
        self.heard.append("order_recorded")

    @hookimpl
    def helpdesk_customer_panels(self, customer):
        return [
            {"title": "Good news", "html": Markup("<p class='good'>fine</p>")},
            {"title": "Plain", "html": "<script>alert(1)</script>"},
        ]

    @hookimpl
    def helpdesk_reports(self):
        return [{"title": "Goodness", "url": "/tickets?good=1", "description": "How good."}]

    @hookimpl
    def helpdesk_queue_filters(self):
        return [
            {
                "name": "urgency",
                "label": "Urgency",
                "choices": lambda: [("hot", "Hot"), ("cold", "Cold")],
                "apply": lambda query, value: query.where(
                    Ticket.priority.in_(("high", "urgent") if value == "hot" else ("low", "normal"))
                ),
            }
        ]

    @hookimpl
    def helpdesk_queue_badges(self, tickets):
        ids = [t.id for t in tickets]
        hot = set(
            db.session.scalars(
                select(Ticket.id).where(Ticket.id.in_(ids), Ticket.priority == "high")
            )
        )
        return {i: [{"label": "HOT", "tone": "red", "title": "hot"}] for i in hot}

    @hookimpl
    def helpdesk_customer_json(self, customers):
        return {c.id: {"good_vip": c.email.startswith("vip")} for c in customers}

    @hookimpl
    def helpdesk_ticket_json(self, tickets):
        self.json_calls += 1
        return {t.id: {"good_seen": True, "id": "never replaces a core field"} for t in tickets}

    @hookimpl
    def helpdesk_price_policy(self, customer, amount):
        if customer.email.startswith("staff"):
            return {"discount_percent": Decimal("10"), "reason": "staff price"}
        return None


class Loyal:
    """A second price-policy plugin: a loyalty discount, prepayment for the unreliable."""

    @hookimpl
    def helpdesk_price_policy(self, customer, amount):
        if customer.email.startswith("bad"):
            return {"discount_percent": 0, "prepayment_required": True, "reason": "pays late"}
        return {"discount_percent": Decimal("20"), "reason": "gold card"}


class Greedy:
    """Offers nonsense: ignored and logged."""

    @hookimpl
    def helpdesk_price_policy(self, customer, amount):
        return {"discount_percent": "150", "reason": "too good"}


def _explode(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("boom")


# A plugin (any object with marked functions will do) that raises in every hook.
Exploding = SimpleNamespace(
    __name__="Exploding", **{name: hookimpl(_explode) for name in ALL_HOOKS}
)


class Misspelt:
    @hookimpl
    def helpdesk_tikcet_created(self, ticket):
        """A typo: no such hook."""


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """The example plugin unpinned (the suite's other tests keep it pinned off); the built-in
    plugins (installed, so always listed) stay pinned off."""
    return {**app_config, "PLUGINS_DISABLED": list(BUILT_IN)}


@pytest.fixture
def good() -> Good:
    return Good()


@pytest.fixture
def app_plugins(good: Good) -> list[Any]:
    return [HELLO, good]


@pytest.fixture
def ticket(app: Flask, agent) -> Ticket:
    return services.open_ticket(subject="Printer", body="It jams", customer_email="c@example.com")


def _second_app(app: Flask, plugins: list[Any], **config: Any) -> Flask:
    """Another app instance on the same database: another worker."""
    return create_app({**app.config, **config}, plugins=plugins)


def _cli(app: Flask, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def _greetings() -> int:
    from helpdesk_hello.models import Greeting

    return db.session.scalar(select(func.count(Greeting.id)))


# --- the example plugin -----------------------------------------------------------------


@pytest.mark.hooks(
    "helpdesk_config_defaults",
    "helpdesk_blueprints",
    "helpdesk_cli_commands",
    "helpdesk_migration_dirs",
    "helpdesk_nav_items",
    "helpdesk_ticket_panels",
    "helpdesk_ticket_json",
)
def test_example_plugin_adds_page_panel_link_setting_command_and_api_field(
    app: Flask, agent_client, ticket: Ticket, api_headers
):
    assert app.config["HELLO_GREETING"] == "Hello"
    queue = agent_client.get("/tickets").get_data(as_text=True)
    assert '<a href="/hello/">Hello</a>' in queue
    page = agent_client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "Greeted 0 times." in page
    response = post_form(
        agent_client, f"/hello/tickets/{ticket.id}/greet", {}, page=f"/tickets/{ticket.id}"
    )
    assert response.status_code == 302
    assert "Greeted 1 times." in agent_client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "Hello, Ana Agent!" in agent_client.get("/hello/").get_data(as_text=True)
    assert agent_client.post(f"/hello/tickets/{ticket.id}/greet").status_code == 400  # no CSRF
    assert (
        post_form(agent_client, "/hello/tickets/99999/greet", {}, page="/hello/").status_code == 404
    )
    body = agent_client.get(f"/api/v1/tickets/{ticket.id}", headers=api_headers).get_json()
    assert body["hello_greetings"] == 1
    result = _cli(app, "hello", "--name", "Ada")
    assert result.exit_code == 0 and result.output == "Hello, Ada! 1 greetings so far.\n"


class Finder:
    """A plugin whose top-bar item is a search box (as loyalty's card lookup), and one that
    names a field no form could carry."""

    @hookimpl
    def helpdesk_nav_items(self, agent):
        return [
            {"label": "Card number", "url": "/hello/", "search": "number"},
            {"label": "Broken", "url": "/hello/", "search": 'x" onfocus="alert(1)'},
        ]


@pytest.mark.parametrize("app_plugins", [[HELLO, Finder()]])
@pytest.mark.hooks("helpdesk_nav_items")
def test_a_nav_item_can_be_a_search_box_in_the_top_bar(app: Flask, agent_client, caplog):
    page = agent_client.get("/tickets").get_data(as_text=True)
    box = re.search(r'<form class="topbar-search topbar-search-plugin".*?</form>', page, re.S)
    assert box is not None and 'action="/hello/"' in box.group(0)
    assert 'name="number" placeholder="Card number"' in box.group(0)
    assert page.count("topbar-search-plugin") == 1 and "onfocus" not in page
    assert "nav search field" in caplog.text
    assert '<a href="/hello/">Hello</a>' in page  # the links are still links


def test_deployer_config_wins_over_plugin_defaults(app_config):
    app_config["HELLO_GREETING"] = "Góðan dag"
    app = create_app(app_config, plugins=[HELLO])
    assert app.config["HELLO_GREETING"] == "Góðan dag"


# --- enable / disable ---------------------------------------------------------------------


def _hello_is_there(client, ticket_id: int, api_headers) -> dict[str, bool]:
    queue = client.get("/tickets").get_data(as_text=True)
    page = client.get(f"/tickets/{ticket_id}").get_data(as_text=True)
    api = client.get(f"/api/v1/tickets/{ticket_id}", headers=api_headers).get_json()
    return {
        "page": client.get("/hello/").status_code == 200,
        "nav": 'href="/hello/"' in queue,
        "panel": "Say hello" in page,
        "api": "hello_greetings" in api,
    }


def test_disable_and_enable_take_effect_in_another_app_without_restart(
    app: Flask, agent_client, ticket: Ticket, api_headers
):
    post_form(agent_client, f"/hello/tickets/{ticket.id}/greet", {}, page=f"/tickets/{ticket.id}")
    assert _hello_is_there(agent_client, ticket.id, api_headers) == dict.fromkeys(
        ("page", "nav", "panel", "api"), True
    )
    other = _second_app(app, [HELLO])
    result = _cli(other, "plugins", "disable", "hello")
    assert result.exit_code == 0, result.output

    # The first app (another worker) follows at its next request.
    assert _hello_is_there(agent_client, ticket.id, api_headers) == dict.fromkeys(
        ("page", "nav", "panel", "api"), False
    )
    assert (
        post_form(
            agent_client, f"/hello/tickets/{ticket.id}/greet", {}, page=f"/tickets/{ticket.id}"
        ).status_code
        == 404
    )
    result = _cli(app, "hello")
    assert result.exit_code != 0 and "No such command 'hello'" in result.output
    assert "hello" not in app.test_cli_runner().invoke(args=["--help"]).output.split()
    assert _greetings() == 1  # the data stays
    assert db.session.get(PluginState, "hello").enabled is False

    assert _cli(other, "plugins", "enable", "hello").exit_code == 0
    assert _hello_is_there(agent_client, ticket.id, api_headers) == dict.fromkeys(
        ("page", "nav", "panel", "api"), True
    )
    assert "1 greetings so far" in _cli(app, "hello").output
    assert db.session.scalar(select(StateVersion.version).where(StateVersion.key == "plugins")) == 2


def test_state_is_read_once_per_request_and_only_when_plugins_exist(
    app: Flask, agent_client, ticket: Ticket, count_queries
):
    with count_queries as q:
        agent_client.get(f"/tickets/{ticket.id}")
    assert sum("state_versions" in s for s in q.statements) == 1
    assert not any("plugin_states" in s for s in q.statements)  # version unchanged: cached


@pytest.mark.parametrize("app_plugins", [[]])
def test_core_alone_asks_nothing_about_plugins(
    app: Flask, agent_client, ticket: Ticket, count_queries
):
    for path in ("/tickets", f"/tickets/{ticket.id}", f"/customers/{ticket.customer_id}"):
        with count_queries as q:
            assert agent_client.get(path).status_code == 200
        assert not any("state_versions" in s or "plugin_states" in s for s in q.statements)


def test_unknown_plugin_is_a_clear_error(app: Flask, admin_client):
    for action in ("enable", "disable"):
        result = _cli(app, "plugins", action, "nope")
        assert result.exit_code == 1
        installed = f"(installed: Good, categories, hello, {', '.join(BUILT_IN[1:])})"
        assert f"no plugin named 'nope' is installed {installed}" in result.output
    token = csrf_from(admin_client, "/admin/plugins")
    response = admin_client.post(
        "/admin/plugins/nope", data={"csrf_token": token, "action": "enable"}
    )
    assert response.status_code == 404
    response = admin_client.post(
        "/admin/plugins/hello", data={"csrf_token": token, "action": "explode"}
    )
    assert response.status_code == 404


def test_plugins_list_shows_state_pin_version_description(app: Flask):
    _cli(app, "plugins", "disable", "Good")
    lines = _cli(app, "plugins", "list").output.splitlines()
    assert lines[0].split()[:3] == ["Good", "disabled", "-"]
    assert "A plugin answering the page" in lines[0]
    assert lines[1].split()[:3] == ["categories", "disabled", "pinned"]
    assert lines[2].split()[:4] == ["hello", "enabled", "-", "1.0.0"]


@pytest.fixture
def pinned_config(app_config):
    app_config["PLUGINS_DISABLED"] = ["hello"]
    app_config["PLUGINS_ENABLED"] = ["Good"]
    return app_config


def test_pinned_plugins_cannot_be_switched(pinned_config, app: Flask, admin_client):
    db.session.add(PluginState(name="Good", enabled=False))
    db.session.commit()
    assert not current_plugins().is_enabled("hello")
    assert current_plugins().is_enabled("Good")  # the pin beats the stored state
    result = _cli(app, "plugins", "enable", "hello")
    assert result.exit_code == 1 and "pinned off by PLUGINS_ENABLED / PLUGINS_DISABLED" in (
        result.output
    )
    assert admin_client.get("/hello/").status_code == 404
    page = admin_client.get("/admin/plugins").get_data(as_text=True)
    assert "(pinned by the configuration)" in page and "Disable Good" not in page
    token = csrf_from(admin_client, "/admin/plugins")
    response = admin_client.post(
        "/admin/plugins/Good", data={"csrf_token": token, "action": "disable"}
    )
    assert response.status_code == 409
    assert "pinned on" in response.get_data(as_text=True)
    assert "pinned" in _cli(app, "plugins", "list").output


def test_a_plugin_in_both_pin_lists_is_a_config_error(app_config):
    app_config["PLUGINS_DISABLED"] = app_config["PLUGINS_ENABLED"] = ["hello"]
    with pytest.raises(Exception, match="both in PLUGINS_ENABLED and PLUGINS_DISABLED: hello"):
        create_app(app_config, plugins=[HELLO])


def test_admin_page_lists_and_switches_plugins(app: Flask, admin_client, agent_client):
    page = admin_client.get("/admin/plugins").get_data(as_text=True)
    assert "hello" in page and "1.0.0" in page and "Disable hello" in page
    assert 'href="/admin/plugins"' in admin_client.get("/admin/teams").get_data(as_text=True)
    assert agent_client.get("/admin/plugins").status_code == 403
    token = csrf_from(admin_client, "/admin/plugins")
    assert admin_client.post("/admin/plugins/hello", data={"action": "disable"}).status_code == 400
    response = admin_client.post(
        "/admin/plugins/hello", data={"csrf_token": token, "action": "disable"}
    )
    assert response.status_code == 302
    assert db.session.get(PluginState, "hello").changed_by == "admin@example.com"
    page = admin_client.get("/admin/plugins").get_data(as_text=True)
    assert "its data is kept" in page and "Enable hello" in page
    assert admin_client.get("/hello/").status_code == 404
    post_form(admin_client, "/admin/plugins/hello", {"action": "enable"})
    assert admin_client.get("/hello/").status_code == 200


# --- failures -----------------------------------------------------------------------------


BROKEN = EntryPoint(name="broken", value="helpdesk_no_such_plugin", group="helpdesk")


@pytest.mark.parametrize("app_plugins", [[BROKEN, HELLO]])
def test_broken_entry_point_is_logged_listed_and_the_app_starts(app: Flask, admin_client, caplog):
    again = _second_app(app, [BROKEN])
    assert "plugin 'broken' could not be loaded from helpdesk_no_such_plugin" in caplog.text
    assert admin_client.get("/tickets").status_code == 200
    listing = _cli(again, "plugins", "list").output
    assert re.search(r"^broken +broken", listing, re.M) and "ModuleNotFoundError" in listing
    assert "broken" in admin_client.get("/admin/plugins").get_data(as_text=True)
    result = _cli(app, "plugins", "enable", "broken")
    assert result.exit_code == 1 and "plugin 'broken' is broken" in result.output


def test_misspelt_hook_implementation_is_fatal_and_named(app_config):
    with pytest.raises(pluggy.PluginValidationError, match="helpdesk_tikcet_created"):
        create_app(app_config, plugins=[Misspelt()])


@pytest.mark.parametrize("app_plugins", [[Exploding, HELLO]])
@pytest.mark.hooks(every=True)
def test_a_plugin_raising_in_every_hook_breaks_nothing(
    app: Flask, agent_client, api_headers, caplog, good
):
    good_app = _second_app(app, [Exploding, HELLO, good])
    client = good_app.test_client()
    assert login(client, "agent@example.com").status_code == 302
    created = client.post(
        "/api/v1/tickets",
        json={"subject": "s", "body": "b", "kind": "support", "customer": {"email": "vip@x.org"}},
        headers=api_headers,
    ).get_json()
    assert created["priority"] == "high"  # Good's default, though Exploding failed
    ticket = SimpleNamespace(id=created["id"])
    customer = register_customer({"email": "staff@example.com"})
    for path in (
        "/tickets",
        "/tickets?urgency=hot",
        f"/tickets/{ticket.id}",
        f"/customers/{customer.id}",
        "/reports",
        "/hello/",
    ):
        assert client.get(path).status_code == 200, path
    for path in (
        "/api/v1/tickets",
        f"/api/v1/tickets/{ticket.id}",
        "/api/v1/customers",
        f"/api/v1/customers/{customer.id}",
        "/api/v1/openapi.json",
    ):
        assert client.get(path, headers=api_headers).status_code == 200, path
    reply = client.post(
        f"/api/v1/tickets/{ticket.id}/messages",
        json={"body": "On it", "status": "pending"},
        headers=api_headers,
    )
    assert reply.status_code == 201
    order = client.post(
        f"/api/v1/customers/{customer.id}/orders",
        json={"date": "2026-01-05", "amount": "10.00", "currency": "EUR", "source": "shop"},
        headers=api_headers,
    )
    assert order.status_code == 201, order.get_data(as_text=True)
    refund = client.post(
        f"/api/v1/orders/{order.get_json()['id']}/refunds",
        json={"amount": "2.50", "reason": "scratched"},
        headers=api_headers,
    )
    assert refund.status_code == 201, refund.get_data(as_text=True)
    assert good_app.test_client().get("/?kind=complaint").status_code == 200
    with good_app.app_context():
        staff = db.session.get(Customer, customer.id)
        assert price_policy(staff, "100")["price"] == Decimal("90.00")
        # Tickets opened together (mail runs): Exploding's bulk answer fails, Good is asked
        # one ticket at a time.
        vip = db.session.scalar(select(Customer).where(Customer.email == "vip@x.org"))
        asked = {"subject": "s", "kind": "support", "priority": None, "team_id": None}
        requests = [{**asked, "customer": who, "assignee_id": None} for who in (vip, staff)]
        values = services.opening_values_many(requests, now=utcnow())
        assert [v["priority"] for v in values] == ["high", "normal"]
        # The hooks plugins call for one another go through the same isolation.
        assert customer_groupings() == {}  # Exploding's answer is logged and left out
        call_each("helpdesk_sms_backends")
        call_each("helpdesk_letter_variables")
        call_each("helpdesk_letter_context", ticket=db.session.get(Ticket, ticket.id))
        for event in ("lost", "drying_up", "won_back"):
            call_each(f"helpdesk_customer_{event}", customer=staff, as_of=date(2026, 1, 5))
    assert {
        "customer_registered",
        "ticket_created",
        "message_added",
        "order_recorded",
    } <= set(good.heard)
    assert any(event.startswith("status ") for event in good.heard)
    with good_app.app_context():
        deliver_due()  # the worker asks the plugins for their outbox channels' deliverers
    assert "plugin 'Exploding' failed in helpdesk_ticket_panels" in caplog.text
    assert "plugin 'Exploding' failed in helpdesk_config_defaults" in caplog.text
    assert "plugin 'Exploding' failed in helpdesk_outbox_senders" in caplog.text


class Batching:
    """Proposes a team for every ticket; for many tickets in one call, rightly or wrongly."""

    def __init__(self, team_id: int, answers_short: bool) -> None:
        self.proposal = {"team_id": team_id, "priority": "urgent"}
        self.answers_short = answers_short
        self.asked: list[str] = []

    @hookimpl
    def helpdesk_ticket_defaults(self, customer, ticket_data):
        self.asked.append("one")
        return self.proposal

    @hookimpl
    def helpdesk_ticket_defaults_many(self, requests):
        self.asked.append("many")
        answers = [self.proposal for _ in requests]
        return answers[1:] if self.answers_short else answers


@pytest.mark.parametrize("answers_short", [False, True])
@pytest.mark.hooks("helpdesk_ticket_defaults", "helpdesk_ticket_defaults_many")
def test_tickets_opened_together_ask_a_batching_plugin_once(
    app: Flask, good, caplog, answers_short
):
    team = Team(name="Escalations")
    db.session.add(team)
    db.session.commit()
    batching = Batching(team.id, answers_short)
    customers = [register_customer({"email": f"{who}@x.org"}) for who in ("vip", "ann", "bob")]
    asked = {"subject": "s", "kind": "support", "priority": None, "team_id": None}
    requests = [{**asked, "customer": c, "assignee_id": None} for c in customers]
    with _second_app(app, [good, batching]).app_context():
        values = services.opening_values_many(requests, now=utcnow())
        one = services.opening_values(**requests[0], now=utcnow())
    assert [(v["priority"], v["team_id"]) for v in values] == [("urgent", team.id)] * 3
    assert (one["priority"], one["team_id"]) == ("urgent", team.id)
    if answers_short:  # a wrong answer is logged, and each ticket asked on its own instead
        assert batching.asked == ["many", "one", "one", "one", "one"]
        assert "plugin 'Batching' answered helpdesk_ticket_defaults_many" in caplog.text
    else:  # one call for the three; a single ticket is asked the single way
        assert batching.asked == ["many", "one"]


# --- per-plugin migrations ------------------------------------------------------------------


@pytest.fixture
def fresh_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables at all) beside the session's."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    name = f"fresh_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _tables(app: Flask) -> set[str]:
    with app.app_context():
        names = set(inspect(db.engine).get_table_names())
        db.engine.dispose()
    return names


def test_init_db_applies_every_enabled_plugins_migrations(app_config, fresh_database_url):
    fresh = create_app({**app_config, "DATABASE_URL": fresh_database_url}, plugins=[HELLO])
    result = _cli(fresh, "init-db")
    assert result.exit_code == 0, result.output
    assert {"tickets", "hello_greetings"} <= _tables(fresh)
    assert _cli(fresh, "init-db").exit_code == 0  # again: nothing to do


def test_enable_applies_the_plugins_migrations_and_disable_keeps_its_tables(
    app_config, fresh_database_url
):
    config = {**app_config, "DATABASE_URL": fresh_database_url}
    core_only = create_app(config)
    assert _cli(core_only, "init-db").exit_code == 0
    with_hello = create_app(config, plugins=[HELLO])
    result = _cli(with_hello, "plugins", "disable", "hello")
    assert result.exit_code == 0, result.output
    assert _cli(with_hello, "init-db").exit_code == 0
    assert "hello_greetings" not in _tables(with_hello)  # disabled: not migrated
    result = _cli(with_hello, "plugins", "enable", "hello")
    assert result.exit_code == 0, result.output
    assert "hello_greetings" in _tables(with_hello)
    assert _cli(with_hello, "plugins", "disable", "hello").exit_code == 0
    assert "hello_greetings" in _tables(with_hello)


# --- pages, queue, API --------------------------------------------------------------------


@pytest.mark.hooks("helpdesk_customer_panels")
def test_customer_panels_show_markup_and_escape_text(app: Flask, agent_client):
    customer = register_customer({"email": "c@example.com"})
    page = agent_client.get(f"/customers/{customer.id}").get_data(as_text=True)
    assert "<p class='good'>fine</p>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page


@pytest.mark.hooks("helpdesk_reports")
def test_reports_index_lists_enabled_plugins_reports(app: Flask, agent_client):
    page = agent_client.get("/reports").get_data(as_text=True)
    assert "Goodness" in page and "How good." in page
    assert 'href="/reports"' in agent_client.get("/tickets").get_data(as_text=True)
    _cli(app, "plugins", "disable", "Good")
    page = agent_client.get("/reports").get_data(as_text=True)
    assert "Goodness" not in page and "No reports yet" in page


@pytest.mark.hooks("helpdesk_queue_filters", "helpdesk_queue_badges")
def test_queue_filters_and_badges(app: Flask, agent_client, api_headers, count_queries):
    hot = services.open_ticket(
        subject="Hot", body="b", customer_email="a@example.com", priority="high"
    )
    cold = services.open_ticket(subject="Cold", body="b", customer_email="b@example.com")
    page = agent_client.get("/tickets").get_data(as_text=True)
    assert '<select name="urgency">' in page and '<option value="hot" >Hot</option>' in page
    assert page.count("HOT</span>") == 1 and 'class="badge plugin-badge tone-red"' in page
    filtered = agent_client.get("/tickets?urgency=hot").get_data(as_text=True)
    assert f"/tickets/{hot.id}" in filtered and f'/tickets/{cold.id}"' not in filtered
    assert '<option value="hot" selected>' in filtered
    response = agent_client.get("/tickets?urgency=lukewarm")
    assert response.status_code == 422 and "urgency" in response.get_data(as_text=True)
    api = agent_client.get("/api/v1/tickets?urgency=cold", headers=api_headers).get_json()
    assert [item["id"] for item in api["items"]] == [cold.id]
    with count_queries as few:
        agent_client.get("/tickets")
    for n in range(6):
        services.open_ticket(
            subject=f"t{n}", body="b", customer_email=f"x{n}@example.com", priority="high"
        )
    with count_queries as many:
        agent_client.get("/tickets")
    assert many.count == few.count


@pytest.mark.hooks("helpdesk_ticket_json", "helpdesk_customer_json")
def test_api_fields_come_from_one_call_per_response(app: Flask, api_headers, good, client):
    for n in range(3):
        services.open_ticket(subject=f"t{n}", body="b", customer_email=f"vip{n}@example.com")
    items = client.get("/api/v1/tickets", headers=api_headers).get_json()["items"]
    assert good.json_calls == 1
    assert all(item["good_seen"] is True and isinstance(item["id"], int) for item in items)
    customers = client.get("/api/v1/customers", headers=api_headers).get_json()["items"]
    assert [c["good_vip"] for c in customers] == [True, True, True]
    created = client.post(
        "/api/v1/customers", json={"email": "plain@example.com"}, headers=api_headers
    ).get_json()
    assert created["good_vip"] is False


# --- price policy -------------------------------------------------------------------------


@pytest.mark.parametrize("app_plugins", [[Good(), Loyal(), Greedy()]])
@pytest.mark.hooks("helpdesk_price_policy")
def test_price_policy_best_and_stack(app: Flask, caplog):
    staff = register_customer({"email": "staff@example.com"})
    best = price_policy(staff, "99.99")
    assert best == {
        "amount": Decimal("99.99"),
        "price": Decimal("79.99"),  # 20 % of 99.99 = 19.998: 79.992 → 79.99
        "discount_percent": Decimal("20.00"),
        "prepayment_required": False,
        "reasons": ["gold card"],
    }
    assert "discount {'discount_percent': '150'" in caplog.text  # Greedy: logged, ignored
    app.config["PRICE_POLICY_COMBINE"] = "stack"
    stacked = price_policy(staff, Decimal("100"))
    assert stacked["price"] == Decimal("72.00")  # 100 × 0.8 × 0.9
    assert stacked["discount_percent"] == Decimal("28.00")
    assert sorted(stacked["reasons"]) == ["gold card", "staff price"]
    assert price_policy(staff, "0.05")["price"] == Decimal("0.04")  # 0.036 rounds half-up
    late = register_customer({"email": "bad@example.com"})
    policy = price_policy(late, 10)
    assert policy["prepayment_required"] is True and policy["price"] == Decimal("10.00")
    assert policy["reasons"] == ["pays late"]


@pytest.mark.parametrize("amount", ["NaN", "1e309", "-1", "abc", "", 1.5, None, "1" * 20])
def test_price_policy_refuses_bad_amounts(app: Flask, amount):
    customer = register_customer({"email": "c@example.com"})
    with pytest.raises(ValidationError) as caught:
        price_policy(customer, amount)
    assert "amount" in caught.value.errors


def test_price_policy_needs_a_known_combine_mode(app: Flask):
    customer = register_customer({"email": "c@example.com"})
    app.config["PRICE_POLICY_COMBINE"] = "sum"
    with pytest.raises(Exception, match="PRICE_POLICY_COMBINE must be one of"):
        price_policy(customer, "1")
