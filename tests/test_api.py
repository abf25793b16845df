"""The REST API under /api/v1, against the real app and database, checked against its own
OpenAPI document: every answer a test gets is validated against the documented schema."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from helpdesk.core import accounts, attachments, services, tokens
from helpdesk.core.models import ApiToken, Customer, Message, RateLimitHit, Ticket, TicketEvent
from helpdesk.extensions import db

PREFIX = "/api/v1"
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# Search syntax is plain text: each word must match, so these find the lamp ticket or nothing.
HOSTILE_QUERIES = [
    ('"', False),
    ('"lamp', True),
    ('lamp"', True),
    ("lamp*", True),
    ("*", False),
    ("NEAR(", True),
    ("NEAR(lamp, door)", True),
    ("NEAR(lamp", True),
    ("'--", False),
    ("lamp'--", True),
    ("lamp' OR 1=1 --", False),
]
SCRIPT = '<script>alert("x")</script>'
UNICODE = {
    "subject": "תלונה על המנורה · Παράπονο · Kvörtun um lampann 💡",
    "body": "שלום! Γειά σου! Góðan daginn, Þórður og Ævar. 🎉👍🏽\nLína tvö.",
    "name": "Guðrún Þórsdóttir Ævarsdóttir 🌋",
}


# --- the documented contract --------------------------------------------------------------


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def is_type(value: Any, name: str) -> bool:
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    return checks[name](value)


def check_schema(doc: dict[str, Any], value: Any, schema: dict[str, Any], where: str = "$"):
    """A small validator for what the document uses: type, enum, required, properties,
    items, additionalProperties, anyOf and the date-time format."""
    schema = resolve(doc, schema)
    if "anyOf" in schema:
        failures = []
        for option in schema["anyOf"]:
            try:
                check_schema(doc, value, option, where)
                break
            except AssertionError as exc:
                failures.append(str(exc))
        else:
            raise AssertionError(f"{where}: matches no option: {failures}")
        return
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        assert any(is_type(value, t) for t in types), f"{where}: {value!r} is not {types}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if schema.get("format") == "date-time" and isinstance(value, str):
        assert DATE_TIME.match(value), f"{where}: {value!r} is not a UTC time"
    if "minimum" in schema and is_type(value, "number"):
        assert value >= schema["minimum"], f"{where}: {value} < {schema['minimum']}"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, f"{where}: {key!r} missing from {sorted(value)}"
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                check_schema(doc, value[key], sub, f"{where}.{key}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                if key not in schema.get("properties", {}):
                    check_schema(doc, item, extra, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            check_schema(doc, item, schema["items"], f"{where}[{index}]")


def template_for(doc: dict[str, Any], path: str) -> str | None:
    """The documented path template a concrete /api/v1 path matches, if any."""
    for template in doc["paths"]:
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", template.replace(".", r"\."))
        if re.fullmatch(pattern, path):
            return template
    return None


def check_documented(doc: dict[str, Any], method: str, url: str, response) -> None:
    """Every answer is JSON (or a documented download) and, where the path and method are
    documented, its status is documented and its body matches the documented schema."""
    path = url.split("?", 1)[0].removeprefix(PREFIX)
    template = template_for(doc, path)
    operation = doc["paths"].get(template, {}).get(method.lower()) if template else None
    if operation is None:
        assert response.mimetype == "application/json", (method, url, response.status)
        return
    responses = operation["responses"]
    assert str(response.status_code) in responses, (
        f"{method} {template} answered {response.status_code}, which is not documented"
    )
    documented = resolve(doc, responses[str(response.status_code)])
    content = documented.get("content", {})
    if "application/json" not in content:
        return
    assert response.mimetype == "application/json"
    schema = content["application/json"].get("schema")
    if schema:
        check_schema(doc, response.get_json(), schema)
    for header in documented.get("headers", {}):
        assert header in response.headers, f"{method} {template}: no {header} header"


class Api:
    """A client for the API that checks every answer against the OpenAPI document."""

    def __init__(self, client: FlaskClient, headers: dict[str, str], doc: dict[str, Any]):
        self.client, self.headers, self.doc = client, headers, doc

    def call(self, method: str, url: str, *, headers: dict[str, str] | None = None, **kw):
        response = self.client.open(
            PREFIX + url, method=method, headers={**self.headers, **(headers or {})}, **kw
        )
        check_documented(self.doc, method, PREFIX + url, response)
        return response

    def get(self, url: str, **kw):
        return self.call("GET", url, **kw)

    def post(self, url: str, **kw):
        return self.call("POST", url, **kw)

    def patch(self, url: str, **kw):
        return self.call("PATCH", url, **kw)

    def as_token(self, token: str | None) -> Api:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return Api(self.client, headers, self.doc)


@pytest.fixture
def doc(client: FlaskClient) -> dict[str, Any]:
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    return response.get_json()


@pytest.fixture
def api(client: FlaskClient, api_headers: dict[str, str], doc: dict[str, Any]) -> Api:
    return Api(client, api_headers, doc)


@pytest.fixture
def admin_api(api: Api, admin) -> Api:
    return api.as_token(tokens.create_api_token(admin, "admin tests"))


def snapshot() -> dict[str, Any]:
    """What is committed: row counts, and each ticket's state."""
    db.session.rollback()
    counts = {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Ticket, Message, Customer, TicketEvent)
    }
    tickets = db.session.execute(
        select(
            Ticket.id,
            Ticket.status,
            Ticket.priority,
            Ticket.kind,
            Ticket.assignee_id,
            Ticket.team_id,
            Ticket.version,
        ).order_by(Ticket.id)
    ).all()
    return {**counts, "tickets": [tuple(row) for row in tickets]}


def new_ticket(**overrides: Any) -> dict[str, Any]:
    payload = {
        "subject": "The lamp arrived broken",
        "body": "It was in pieces when I opened the box.",
        "kind": "complaint",
        "priority": "high",
        "customer": {"email": "Gudrun@Example.is", "name": "Guðrún", "phone": "+354 555 1234"},
    }
    payload.update(overrides)
    return payload


def open_ticket(subject: str = "Broken lamp", email: str = "c@example.com", **kw: Any) -> Ticket:
    return services.open_ticket(
        subject=subject, body=kw.pop("body", "Please help"), customer_email=email, **kw
    )


# --- the document -------------------------------------------------------------------------


def test_openapi_is_served_without_a_token(client: FlaskClient, doc: dict[str, Any]):
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.mimetype == "application/json"
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": PREFIX}]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


@pytest.fixture
def categories_on(app_config: dict[str, Any]) -> None:
    """The built-in categories plugin enabled (pinned off by default), so its routes count."""
    app_config["PLUGINS_DISABLED"] = ["hello"]


def test_every_api_route_is_documented_with_its_methods_and_the_reverse(
    categories_on: None, app: Flask, doc: dict[str, Any]
):
    routes: dict[tuple[str, str], str] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule.removeprefix(PREFIX))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes[(path, method.lower())] = rule.endpoint
    documented = {
        (path, method): operation["operationId"]
        for path, item in doc["paths"].items()
        for method, operation in item.items()
    }
    assert set(routes) == set(documented)
    for key, endpoint in routes.items():
        # The core's operationIds are view names; a plugin's are full endpoints.
        assert endpoint in (f"api.{documented[key]}", documented[key]), key
    for path, item in doc["paths"].items():
        for operation in item.values():
            names = {resolve(doc, p)["name"] for p in operation.get("parameters", [])}
            assert set(re.findall(r"\{([^}]+)\}", path)) <= names, path


def test_documented_references_all_resolve(doc: dict[str, Any]):
    text = json.dumps(doc)
    for ref in set(re.findall(r'"\$ref": "([^"]+)"', text)):
        assert resolve(doc, {"$ref": ref}), ref


def test_schema_check_catches_a_missing_field(doc: dict[str, Any]):
    schema = {"$ref": "#/components/schemas/Customer"}
    with pytest.raises(AssertionError, match="email"):
        check_schema(doc, {"id": 1, "name": "x"}, schema)
    with pytest.raises(AssertionError, match="UTC"):
        check_schema(doc, {"t": "2026-11-25 17:44"}, {"properties": {"t": {"format": "date-time"}}})


# --- authentication, roles, rate limit --------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer hd_not-a-real-token", "Bearer nonsense", "Basic YTpi", "hd_x"],
)
def test_requests_without_a_valid_token_are_401(api: Api, authorization: str | None):
    before = snapshot()
    headers = {"Authorization": authorization} if authorization else {}
    client = Api(api.client, headers, api.doc)
    for method, url in [("GET", "/tickets"), ("POST", "/tickets"), ("GET", "/customers")]:
        response = client.call(method, url, json=new_ticket())
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["error"] == "unauthorized"
    assert snapshot() == before


def test_revoked_token_is_401(api: Api, agent, api_token: str):
    assert api.get("/tickets").status_code == 200
    tokens.revoke_api_token(agent, db.session.scalar(select(ApiToken.id)))
    response = api.get("/tickets")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_deactivated_agents_token_is_401(api: Api, agent, admin):
    assert api.get("/tickets").status_code == 200
    accounts.update_agent(agent, actor=admin, active=False)
    before = snapshot()
    assert api.get("/tickets").status_code == 401
    assert api.post("/tickets", json=new_ticket()).status_code == 401
    assert snapshot() == before


def test_token_use_is_recorded(api: Api):
    assert db.session.scalar(select(ApiToken.last_used_at)) is None
    assert api.get("/tickets").status_code == 200
    db.session.rollback()
    assert db.session.scalar(select(ApiToken.last_used_at)) is not None


def test_agents_list_is_for_admins_only(api: Api, admin_api: Api, agent, admin, team):
    response = api.get("/agents")
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"
    response = admin_api.get("/agents")
    assert response.status_code == 200
    items = {a["email"]: a for a in response.get_json()["items"]}
    assert items["agent@example.com"]["teams"] == [{"id": team.id, "name": "Support"}]
    assert items["agent@example.com"]["role"] == "agent"
    assert items["admin@example.com"]["role"] == "admin"
    page = admin_api.get("/agents?per_page=1&page=2").get_json()
    assert [a["email"] for a in page["items"]] == ["agent@example.com"]
    assert page["has_next"] is False
    assert admin_api.get("/agents?per_page=0").status_code == 422


@pytest.fixture
def limited_app(app_config: dict[str, Any], request: pytest.FixtureRequest) -> Flask:
    # A window of 10**9 seconds (about 31 years) never ends during a test.
    app_config["API_RATE_LIMIT"] = "3/1000000000"
    return request.getfixturevalue("app")


def test_rate_limit_is_429_with_retry_after_and_saves_nothing(limited_app: Flask, api: Api):
    for _ in range(3):
        assert api.get("/tickets").status_code == 200
    before = snapshot()
    response = api.post("/tickets", json=new_ticket())
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert response.get_json()["error"] == "ratelimited"
    assert snapshot() == before


def test_hits_prune_windows_older_than_a_day(app: Flask, api: Api):
    app.config["RATE_LIMIT_PRUNE_PROBABILITY"] = 1  # every hit prunes
    db.session.add_all(
        [
            RateLimitHit(key="api:old", window_start=int(time.time()) - 2 * 86_400, count=9),
            RateLimitHit(key="api:recent", window_start=int(time.time()) - 3_600, count=9),
        ]
    )
    db.session.commit()
    assert api.get("/tickets").status_code == 200
    kept = db.session.scalars(select(RateLimitHit.key).order_by(RateLimitHit.key)).all()
    assert "api:old" not in kept and "api:recent" in kept and len(kept) == 2


# --- tickets ------------------------------------------------------------------------------


def test_create_ticket(api: Api, agent):
    response = api.post("/tickets", json=new_ticket())
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"{PREFIX}/tickets/{body['id']}"
    assert body["subject"] == "The lamp arrived broken"
    assert (body["status"], body["priority"], body["kind"]) == ("new", "high", "complaint")
    assert body["customer"]["email"] == "Gudrun@example.is"
    assert body["customer"]["name"] == "Guðrún"
    assert body["assignee"] is None and body["team"] is None and body["merged_into"] is None
    assert body["reference"] == f"#{body['id']}"
    assert response.headers["ETag"] == f'"{body["version"]}"'
    assert api.get(response.headers["Location"].removeprefix(PREFIX)).get_json() == body

    db.session.rollback()
    ticket = db.session.get(Ticket, body["id"])
    assert ticket.source == "api"
    assert ticket.customer.phone == "+3545551234"
    (message,) = services.conversation(ticket)
    assert (message.author_type, message.agent_id) == ("agent", agent.id)

    again = api.post("/tickets", json=new_ticket(customer={"email": "GUDRUN@example.IS"}))
    assert again.get_json()["customer"]["id"] == body["customer"]["id"]
    assert snapshot()["Customer"] == 1


def test_create_ticket_with_team_and_assignee_and_unknown_keys(api: Api, agent, team):
    payload = new_ticket(team=team.id, assignee="Agent@Example.com", future_field={"x": 1})
    payload["customer"]["loyalty"] = "gold"
    body = api.post("/tickets", json=payload).get_json()
    assert body["team"] == {"id": team.id, "name": "Support"}
    assert body["assignee"] == {"id": agent.id, "email": "agent@example.com", "name": "Ana Agent"}


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"subject", "body", "kind", "customer.email"}),
        (new_ticket(subject=""), {"subject"}),
        (new_ticket(subject=5, body=["x"]), {"subject", "body"}),
        (new_ticket(subject="x" * 201), {"subject"}),
        (new_ticket(kind="question", priority="asap"), {"kind", "priority"}),
        (new_ticket(kind=None), {"kind"}),
        (new_ticket(priority=3), {"priority"}),
        (new_ticket(customer="gudrun@example.is"), {"customer"}),
        (new_ticket(customer={"email": "not an address"}), {"customer.email"}),
        (new_ticket(customer={"email": "a@example.com", "phone": "12"}), {"customer.phone"}),
        (new_ticket(customer={"email": "a@example.com", "name": {}}), {"customer.name"}),
        (new_ticket(team="1"), {"team"}),
        (new_ticket(team=True), {"team"}),
        (new_ticket(assignee="nobody@example.com"), {"assignee"}),
        (new_ticket(assignee=7), {"assignee"}),
    ],
)
def test_create_ticket_invalid_fields_are_422_and_save_nothing(
    api: Api, payload: dict[str, Any], fields: set[str]
):
    before = snapshot()
    response = api.post("/tickets", json=payload)
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "validationerror"
    assert set(body["fields"]) == fields
    assert snapshot() == before


BAD_BODIES = [
    ({"data": "subject=x"}, "Content-Type"),
    ({"data": "{}", "content_type": "text/plain"}, "Content-Type"),
    ({"data": '{"subject": ', "content_type": "application/json"}, "not valid JSON"),
    ({"data": "", "content_type": "application/json"}, "not valid JSON"),
    ({"data": b"\xff\xfe{", "content_type": "application/json"}, "not valid JSON"),
    ({"data": '{"subject": NaN}', "content_type": "application/json"}, "NaN"),
    ({"json": [new_ticket()]}, "not an array"),
    ({"json": "a ticket"}, "not a string"),
    ({"data": "null", "content_type": "application/json"}, "not null"),
    ({"json": 12}, "not a number"),
    ({"data": "[" * 100_000 + "]" * 100_000, "content_type": "application/json"}, "deeply"),
    ({"data": '{"a":' * 50_000 + "1" + "}" * 50_000, "content_type": "application/json"}, "deep"),
]


@pytest.mark.parametrize(("kwargs", "says"), BAD_BODIES)
def test_bodies_that_are_not_json_objects_are_400_and_save_nothing(
    api: Api, kwargs: dict[str, Any], says: str
):
    ticket = open_ticket()
    before = snapshot()
    for method, url in [
        ("POST", "/tickets"),
        ("PATCH", f"/tickets/{ticket.id}"),
        ("POST", f"/tickets/{ticket.id}/messages"),
        ("POST", "/customers"),
    ]:
        response = api.call(method, url, **kwargs)
        assert response.status_code == 400, (method, url)
        assert response.get_json()["error"] == "bad_request"
        assert says in response.get_json()["message"]
    assert snapshot() == before


def test_body_over_the_message_limit_is_413_and_saves_nothing(api: Api):
    ticket = open_ticket()
    before = snapshot()
    huge = "x" * 100_001
    response = api.post("/tickets", json=new_ticket(body=huge))
    assert response.status_code == 413
    assert set(response.get_json()["fields"]) == {"body"}
    response = api.post(f"/tickets/{ticket.id}/messages", json={"body": huge})
    assert response.status_code == 413
    assert snapshot() == before


@pytest.fixture
def small_requests_app(app_config: dict[str, Any], request: pytest.FixtureRequest) -> Flask:
    app_config["MAX_CONTENT_LENGTH"] = 4096
    return request.getfixturevalue("app")


def test_request_over_max_content_length_is_413_json(small_requests_app: Flask, api: Api):
    ticket = open_ticket()
    before = snapshot()
    payload = new_ticket(body="y" * 5000)
    for method, url in [("POST", "/tickets"), ("POST", f"/tickets/{ticket.id}/messages")]:
        response = api.call(method, url, json=payload)
        assert response.status_code == 413
        assert response.get_json()["error"] == "request_entity_too_large"
    assert snapshot() == before
    assert api.post("/tickets", json=new_ticket()).status_code == 201


def test_script_and_unicode_round_trip_as_text(api: Api):
    for n, (subject, body, name) in enumerate([(SCRIPT,) * 3, tuple(UNICODE.values())]):
        payload = new_ticket(
            subject=subject, body=body, customer={"email": f"x{n}@example.com", "name": name}
        )
        response = api.post("/tickets", json=payload)
        assert response.status_code == 201
        assert response.mimetype == "application/json"
        created = response.get_json()
        ticket_id = created["id"]
        assert created["subject"] == subject
        assert api.get(f"/tickets/{ticket_id}").get_json()["subject"] == subject
        (message,) = api.get(f"/tickets/{ticket_id}/messages").get_json()["items"]
        assert message["body"] == body
        reply = api.post(f"/tickets/{ticket_id}/messages", json={"body": body}).get_json()
        assert reply["body"] == body
    customer = api.post("/customers", json={"email": "y@example.com", "name": SCRIPT}).get_json()
    assert customer["name"] == SCRIPT
    found = api.get("/customers?q=Þórsdóttir").get_json()["items"]
    assert [c["name"] for c in found] == [UNICODE["name"]]


def test_get_ticket_unknown_ids_are_404(api: Api):
    for url in ["/tickets/1", "/tickets/99999999999999999999999", "/tickets/1/messages"]:
        response = api.get(url)
        assert response.status_code == 404, url
        assert response.get_json()["error"] == "not_found"
    before = snapshot()
    assert api.patch("/tickets/1", json={"status": "open"}).status_code == 404
    assert api.post("/tickets/1/messages", json={"body": "hi"}).status_code == 404
    assert snapshot() == before


def test_unknown_routes_and_methods_answer_json(api: Api):
    for url in ["/nope", "/tickets/abc", "/tickets/1/nope", "/"]:
        response = api.get(url)
        assert response.status_code == 404, url
        assert response.get_json()["error"] == "not_found"
    assert api.client.get("/api/v2/tickets").get_json()["error"] == "not_found"
    for method, url in [("DELETE", "/tickets"), ("PUT", "/tickets/1"), ("POST", "/agents")]:
        response = api.call(method, url, json={})
        assert response.status_code == 405, (method, url)
        assert response.get_json()["error"] == "method_not_allowed"
        assert "GET" in response.headers["Allow"]


def test_list_tickets_filters(api: Api, agent, admin, team):
    other = accounts.create_team("Complaints")
    mine = open_ticket("Mine", kind="complaint", priority="urgent", assignee=agent, team=team)
    theirs = open_ticket("Theirs", email="d@example.com", assignee=admin, team=other)
    loose = open_ticket("Loose", email="d@example.com", priority="low")
    services.update_ticket(theirs, {"status": "pending"}, actor=admin)

    def ids(query: str) -> list[int]:
        response = api.get(f"/tickets?{query}")
        assert response.status_code == 200, response.get_json()
        return [t["id"] for t in response.get_json()["items"]]

    assert ids("") == [loose.id, theirs.id, mine.id]
    assert ids("sort=created") == [loose.id, theirs.id, mine.id]
    assert ids("sort=due") == [mine.id, theirs.id, loose.id]
    assert ids("status=pending") == [theirs.id]
    assert ids("status=new,pending") == [loose.id, theirs.id, mine.id]
    assert ids("status=new&status=pending") == [loose.id, theirs.id, mine.id]
    assert ids("priority=urgent") == [mine.id]
    assert ids("kind=complaint") == [mine.id]
    assert ids("assignee=me") == [mine.id]
    assert ids("assignee=unassigned") == [loose.id]
    assert ids(f"assignee={admin.id}") == [theirs.id]
    assert ids(f"team={other.id}") == [theirs.id]
    assert ids(f"customer={loose.customer_id}") == [loose.id, theirs.id]
    assert ids("q=Loose") == [loose.id]
    assert ids("q=loo") == [loose.id]


def test_list_tickets_pages(api: Api):
    created = [open_ticket(f"Ticket {n}").id for n in range(5)]
    first = api.get("/tickets?per_page=2&sort=created").get_json()
    assert [t["id"] for t in first["items"]] == created[::-1][:2]
    assert (first["page"], first["per_page"], first["has_next"], first["next_page"]) == (
        1,
        2,
        True,
        2,
    )
    last = api.get("/tickets?per_page=2&sort=created&page=3").get_json()
    assert [t["id"] for t in last["items"]] == [created[0]]
    assert (last["has_next"], last["next_page"]) == (False, None)
    assert api.get("/tickets?page=9").get_json()["items"] == []
    default = api.get("/tickets").get_json()
    assert default["per_page"] == 25 and "total" not in default


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("status=bogus", {"status"}),
        ("priority=asap&kind=question", {"priority", "kind"}),
        ("assignee=someone", {"assignee"}),
        ("assignee=99999999999999999999", {"assignee"}),
        ("team=%C2%B2", {"team"}),
        ("customer=99999999999999999999999", {"customer"}),
        ("team=-1", {"team"}),
        ("sort=random", {"sort"}),
        ("page=0&per_page=1000", {"page", "per_page"}),
        ("page=abc", {"page"}),
        ("q=" + "x" * 201, {"q"}),
    ],
)
def test_list_tickets_bad_arguments_are_422(api: Api, query: str, fields: set[str]):
    response = api.get(f"/tickets?{query}")
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == fields


@pytest.mark.parametrize(("query", "finds_lamp"), HOSTILE_QUERIES)
def test_search_syntax_characters_are_plain_text(api: Api, query: str, finds_lamp: bool):
    lamp = open_ticket("Broken lamp near the door")
    open_ticket("Late delivery", email="d@example.com")
    before = snapshot()
    response = api.get("/tickets", query_string={"q": query})
    assert response.status_code == 200
    found = [t["id"] for t in response.get_json()["items"]]
    assert found == ([lamp.id] if finds_lamp else [])
    response = api.get("/customers", query_string={"q": query})
    assert response.status_code == 200
    assert response.get_json()["items"] == []
    assert snapshot() == before


def test_get_ticket_of_a_merged_ticket(api: Api, agent):
    source, target = open_ticket("One"), open_ticket("Two")
    services.merge_tickets(source, target, actor=agent)
    body = api.get(f"/tickets/{source.id}").get_json()
    assert (body["merged_into"], body["status"]) == (target.id, "closed")
    before = snapshot()
    assert api.post(f"/tickets/{source.id}/messages", json={"body": "x"}).status_code == 409
    assert api.patch(f"/tickets/{source.id}", json={"status": "open"}).status_code == 409
    assert snapshot() == before


# --- changing tickets ------------------------------------------------------------------------


def test_patch_ticket(api: Api, agent, admin, team):
    ticket = open_ticket()
    response = api.patch(
        f"/tickets/{ticket.id}",
        json={
            "status": "pending",
            "priority": "urgent",
            "kind": "complaint",
            "assignee": "ADMIN@example.com",
            "team": team.id,
        },
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["priority"], body["kind"]) == ("pending", "urgent", "complaint")
    assert body["assignee"]["email"] == "admin@example.com"
    assert body["team"] == {"id": team.id, "name": "Support"}
    assert response.headers["ETag"] == f'"{body["version"]}"'
    kinds = db.session.scalars(
        select(TicketEvent.kind).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.agent_id == agent.id
        )
    )
    assert set(kinds) == {"status", "priority", "kind", "assignee", "team"}

    body = api.patch(f"/tickets/{ticket.id}", json={"assignee": None, "team": None}).get_json()
    assert body["assignee"] is None and body["team"] is None
    assert api.patch(f"/tickets/{ticket.id}", json={}).get_json()["version"] == body["version"]


def test_patch_with_the_current_version_succeeds(api: Api):
    ticket = open_ticket()
    version = api.get(f"/tickets/{ticket.id}").get_json()["version"]
    response = api.patch(f"/tickets/{ticket.id}", json={"status": "open", "version": version})
    assert response.status_code == 200
    etag = response.headers["ETag"]
    response = api.patch(
        f"/tickets/{ticket.id}", json={"priority": "low"}, headers={"If-Match": etag}
    )
    assert response.status_code == 200
    assert response.get_json()["priority"] == "low"


def test_stale_version_is_409_and_saves_nothing(api: Api, admin):
    ticket = open_ticket()
    seen = api.get(f"/tickets/{ticket.id}").get_json()["version"]
    services.update_ticket(ticket, {"priority": "high"}, actor=admin)  # someone else
    before = snapshot()
    response = api.patch(f"/tickets/{ticket.id}", json={"status": "closed", "version": seen})
    assert response.status_code == 409
    assert response.get_json()["error"] == "conflict"
    response = api.patch(
        f"/tickets/{ticket.id}", json={"status": "closed"}, headers={"If-Match": f'"{seen}"'}
    )
    assert response.status_code == 409
    assert snapshot() == before


@pytest.mark.parametrize(
    ("payload", "headers", "status", "fields"),
    [
        ({"subject": "new subject"}, {}, 422, {"subject"}),
        ({"status": "done", "priority": "asap"}, {}, 422, {"status", "priority"}),
        ({"kind": ["support"]}, {}, 422, {"kind"}),
        ({"assignee": "ghost@example.com"}, {}, 422, {"assignee"}),
        ({"assignee": 5}, {}, 422, {"assignee"}),
        ({"team": 999}, {}, 422, {"team"}),
        ({"team": 1.5}, {}, 422, {"team"}),
        ({"version": "2"}, {}, 422, {"version"}),
        ({"version": True}, {}, 422, {"version"}),
        ({"status": "open", "version": 2}, {"If-Match": '"3"'}, 422, {"version"}),
        ({"status": "open"}, {"If-Match": "yesterday"}, 400, None),
        ({"status": "open"}, {"If-Match": '"1", "2"'}, 400, None),
    ],
)
def test_patch_invalid_changes_save_nothing(
    api: Api,
    payload: dict[str, Any],
    headers: dict[str, str],
    status: int,
    fields: set[str] | None,
):
    ticket = open_ticket()
    before = snapshot()
    response = api.patch(f"/tickets/{ticket.id}", json=payload, headers=headers)
    assert response.status_code == status
    if fields is not None:
        assert set(response.get_json()["fields"]) == fields
    assert snapshot() == before


# --- messages ------------------------------------------------------------------------------


def test_reply_and_note(api: Api, agent):
    ticket = open_ticket()
    response = api.post(f"/tickets/{ticket.id}/messages", json={"body": "We are on it."})
    assert response.status_code == 201
    reply = response.get_json()
    assert reply["internal"] is False
    assert reply["author"] == {
        "type": "agent",
        "id": agent.id,
        "email": "agent@example.com",
        "name": "Ana Agent",
    }
    assert api.get(f"/tickets/{ticket.id}").get_json()["status"] == "open"

    note = api.post(
        f"/tickets/{ticket.id}/messages",
        json={"body": "Customer is upset", "internal": True, "status": "pending", "x": 1},
    ).get_json()
    assert note["internal"] is True
    assert api.get(f"/tickets/{ticket.id}").get_json()["status"] == "pending"

    items = api.get(f"/tickets/{ticket.id}/messages").get_json()["items"]
    assert [(m["author"]["type"], m["internal"]) for m in items] == [
        ("customer", False),
        ("agent", False),
        ("agent", True),
    ]
    assert items[0]["author"]["email"] == "c@example.com"
    page = api.get(f"/tickets/{ticket.id}/messages?per_page=2&page=2").get_json()
    assert [m["id"] for m in page["items"]] == [note["id"]]
    assert page["has_next"] is False


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"body"}),
        ({"body": "   "}, {"body"}),
        ({"body": 42}, {"body"}),
        ({"body": "hi", "internal": "yes"}, {"internal"}),
        ({"body": "hi", "internal": 1}, {"internal"}),
        ({"body": "hi", "status": "done"}, {"status"}),
    ],
)
def test_invalid_messages_are_422_and_save_nothing(
    api: Api, payload: dict[str, Any], fields: set[str]
):
    ticket = open_ticket()
    before = snapshot()
    response = api.post(f"/tickets/{ticket.id}/messages", json=payload)
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == fields
    assert snapshot() == before


def test_messages_list_attachments_and_they_download(api: Api):
    upload = attachments.Upload("<b>page</b>.html", "text/html", b"<script>alert(1)</script>")
    ticket = open_ticket(uploads=[upload])
    (message,) = api.get(f"/tickets/{ticket.id}/messages").get_json()["items"]
    (listed,) = message["attachments"]
    assert listed["filename"] == "<b>page</b>.html"
    assert listed["size"] == len(upload.data)
    response = api.client.get(listed["url"], headers=api.headers)
    assert response.status_code == 200
    assert response.data == upload.data
    assert response.mimetype == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    other = open_ticket("Other")
    response = api.get(f"/tickets/{other.id}/attachments/{listed['id']}")
    assert response.status_code == 404
    assert api.client.get(listed["url"]).status_code == 401


# --- customers ----------------------------------------------------------------------------


def test_create_and_read_customers(api: Api):
    response = api.post(
        "/customers",
        json={"email": "Thora@Example.is", "name": "Þóra", "phone": "+354 555 1234", "vip": 1},
    )
    assert response.status_code == 201
    created = response.get_json()
    assert response.headers["Location"] == f"{PREFIX}/customers/{created['id']}"
    assert (created["email"], created["name"], created["phone"]) == (
        "Thora@example.is",
        "Þóra",
        "+3545551234",
    )
    assert api.get(f"/customers/{created['id']}").get_json() == created
    assert api.get("/customers/999").status_code == 404
    assert api.get("/customers/99999999999999").status_code == 404


def test_existing_email_is_409_with_the_existing_id(api: Api):
    first = api.post("/customers", json={"email": "thora@example.is"}).get_json()
    before = snapshot()
    response = api.post("/customers", json={"email": "THORA@EXAMPLE.IS", "name": "Other"})
    assert response.status_code == 409
    assert response.get_json()["id"] == first["id"]
    assert snapshot() == before


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"email"}),
        ({"email": "nope"}, {"email"}),
        ({"email": ["a@example.com"]}, {"email"}),
        ({"email": "a@example.com", "phone": "12", "name": "x" * 201}, {"phone", "name"}),
    ],
)
def test_invalid_customers_are_422_and_save_nothing(
    api: Api, payload: dict[str, Any], fields: set[str]
):
    before = snapshot()
    response = api.post("/customers", json=payload)
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == fields
    assert snapshot() == before


def test_list_customers_search_and_pages(api: Api):
    for n, name in enumerate(["Anna", "Bjarni", "Anna María"]):
        api.post("/customers", json={"email": f"c{n}@example.com", "name": name})
    body = api.get("/customers?q=anna").get_json()
    assert [c["name"] for c in body["items"]] == ["Anna María", "Anna"]
    body = api.get("/customers?sort=name&per_page=2").get_json()
    assert [c["name"] for c in body["items"]] == ["Anna", "Anna María"]
    assert (body["has_next"], body["next_page"]) == (True, 2)
    body = api.get("/customers?sort=name&per_page=2&page=2").get_json()
    assert [c["name"] for c in body["items"]] == ["Bjarni"]
    assert api.get("/customers?q=c1@EXAMPLE").get_json()["items"][0]["name"] == "Bjarni"
    assert api.get("/customers?q=%25").get_json()["items"] == []
    response = api.get("/customers?sort=best&page=-1")
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {"sort", "page"}


# --- queries ------------------------------------------------------------------------------


def test_ticket_list_queries_do_not_grow_with_rows(api: Api, agent, admin, team, count_queries):
    other = accounts.create_team("Complaints")

    def seed(n: int) -> None:
        for i in range(n):
            open_ticket(
                f"Ticket {i}",
                email=f"c{i}@example.com",
                assignee=(agent, admin, None)[i % 3],
                team=(team, other, None)[i % 3],
            )

    api.get("/tickets")  # the first use of a token records it; later ones do not
    seed(5)
    with count_queries as few:
        assert len(api.get("/tickets").get_json()["items"]) == 5
    seed(20)
    with count_queries as many:
        assert len(api.get("/tickets").get_json()["items"]) == 25
    assert many.count == few.count


def test_message_list_queries_do_not_grow_with_rows(api: Api, agent, count_queries):

    def upload(n: int) -> list[attachments.Upload]:
        return [attachments.Upload(f"f{n}.txt", "text/plain", b"data")]

    ticket = open_ticket(uploads=upload(0))
    api.get("/tickets")
    with count_queries as few:
        assert len(api.get(f"/tickets/{ticket.id}/messages").get_json()["items"]) == 1
    for n in range(8):
        author = agent if n % 2 else ticket.customer
        services.add_message(ticket, body=f"m{n}", author=author, uploads=upload(n))
    with count_queries as many:
        items = api.get(f"/tickets/{ticket.id}/messages").get_json()["items"]
    assert len(items) == 9 and all(len(m["attachments"]) == 1 for m in items)
    assert many.count == few.count


def test_api_requests_take_the_sqlite_write_lock_only_to_count(api: Api):
    """Every API request writes the rate-limit counter: on SQLite that transaction begins
    with BEGIN IMMEDIATE (a read that turns into a write fails under concurrent writers);
    the GET's own reads then begin a deferred transaction that locks nobody out."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL has no deferred write lock")
    begins: list[str] = []

    def record(conn, cursor, statement, *args: Any) -> None:
        if statement.startswith("BEGIN"):
            begins.append(statement)

    db.session.commit()
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert api.get("/tickets").status_code == 200
        api_begins = list(begins)
        begins.clear()
        db.session.commit()
        with api.client.application.test_request_context("/tickets"):
            db.session.scalar(select(func.count()).select_from(Ticket))
            db.session.rollback()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert api_begins == ["BEGIN IMMEDIATE", "BEGIN"]
    assert begins == ["BEGIN"]  # the intent ended with the counting
