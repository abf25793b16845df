"""The letters plugin: the guided complaint and its claim (portal, API, agents), what was
granted, the template library (checked on save, versions, conflicts), letters filled in and
sent as replies, and the sandbox's limits against hostile templates."""

from __future__ import annotations

import io
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from helpdesk import create_app, customer_groupings, hookimpl, utcnow
from helpdesk.core import services, tokens
from helpdesk.core.models import Message, OutboxItem, Ticket
from helpdesk.extensions import db
from helpdesk.plugins import current_plugins
from plugins.letters import compose, render, report, service
from plugins.letters.models import Claim, LetterTemplate, LetterTemplateVersion
from tests.conftest import csrf_from, post_form

API = "/api/v1"
HOSTILE = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ config }}",
    "{{ request }}",
    "{{ self }}",
    "{% include 'base.html' %}",
    "{% extends 'base.html' %}",
    "{% import 'base.html' as b %}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{{ customer.name|safe }}",
    "{{ customer.name|attr('__class__') }}",
    "{{ customer['__class__'] }}",
    "{{ customer.name.__class__ }}",
    "{% autoescape false %}{{ customer.name }}{% endautoescape %}",
    "{{ customer.nonsense }}",
]
# Templates that pass the save check but must be stopped while they are filled in.
RUNAWAY = [
    "{{ range(10**9)|list|length }}",
    "{{ 'a' * 10**9 }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}",  # 10 MB of output
    "{% set s %}{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}{% endset %}{{ s|length }}",
    "{% set s = 'a' * 900000 %}{{ s ~ s ~ s }}",
    "{% set s = 'ab' * 400000 %}{{ s|replace('a', 'aaaaaaaaaa') }}",
    "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
    "{{ '%999999999d' % 1 }}",
    "{{ 7 ** 99999 }}",
    "{{ 1 / 0 }}",
]


@pytest.fixture(autouse=True)
def letters_enabled(app_config: dict[str, Any]) -> None:
    """The plugin switched on (the suite pins it off so the core's tests see the core)."""
    app_config["PLUGINS_DISABLED"] = ["hello", "categories", "surveys", "loyalty"]


@pytest.fixture
def seeded(app: Flask) -> dict[str, LetterTemplate]:
    """The six seeded templates (the migration's rows are wiped with every test)."""
    service.seed_templates()
    return {t.key: t for t in service.list_templates()}


@pytest.fixture
def admin_headers(admin) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.create_api_token(admin, 'test')}"}


def count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def complaint_form(**changes: Any) -> dict[str, Any]:
    form = {
        "name": "Cleo Client",
        "email": "cleo@example.com",
        "phone": "",
        "relation": "I have been your client since 2019",
        "product": "Kettle K-200",
        "incident_date": (utcnow().date() - timedelta(days=3)).isoformat(),
        "place": "the Laugavegur shop",
        "order_reference": "A-1001",
        "story": "It leaked on the first day.",
        "costs": ["money", "time"],
        "cost_details": "a morning off work",
        "outcome_wanted": "refund",
        "outcome_other": "",
        "amount_claimed": "49.90",
        "currency": "EUR",
        "letter": "",
        "action": "send",
    }
    form.update(changes)
    return form


def claimed_ticket(**claim: Any) -> Ticket:
    data = {"outcome_wanted": "refund", "amount_claimed": "49.90", "currency": "EUR", **claim}
    return services.open_ticket(
        subject="Broken kettle",
        body="It leaked.",
        kind="complaint",
        customer_email="cleo@example.com",
        customer_name="Cleo Client",
        extra={"claim": data},
    )


# --- the migration ------------------------------------------------------------------------


def test_migration_seeds_the_six_templates(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    fresh = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "x"})
    with fresh.app_context():
        assert "letters_0001" in current_plugins().upgrade()
        names = [t.name for t in service.list_templates()]
        assert len(names) == 6 and "Apology with refund" in names
        assert count(LetterTemplateVersion) == 6
        assert all(t.version == 1 and t.language == "en" for t in service.list_templates())
        db.session.remove()
        db.engine.dispose()


# --- the customer's guided complaint --------------------------------------------------------


@pytest.mark.hooks("helpdesk_portal_forms")
def test_portal_offers_the_guided_form_for_complaints(client: FlaskClient):
    page = client.get("/").get_data(as_text=True)
    assert 'href="/complaint"' in page and 'value="complaint"' not in page
    assert 'value="support"' in page
    answer = client.get("/?kind=complaint")
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/complaint")


def test_the_guided_form_has_its_sections_with_hints_and_labels(client: FlaskClient):
    page = client.get("/complaint").get_data(as_text=True)
    for legend in ("1. Who you are to us", "2. What happened", "3. What it cost you"):
        assert legend in page
    assert "4. What would put it right" in page and "5. Proof" in page
    for field in ("relation", "product", "incident_date", "order_reference", "story"):
        assert f'for="f-{field}"' in page and f'id="f-{field}"' in page
    assert "letters.js" in page and "<script>" not in page and "style=" not in page


def test_no_js_preview_composes_the_letter_and_hints_at_tone(client: FlaskClient):
    form = complaint_form(action="preview", story="IT LEAKED ALL OVER MY KITCHEN FLOOR!!!")
    page = post_form(client, "/complaint", form).get_data(as_text=True)
    assert "I have been your client since 2019." in page
    assert "To put it right, I would like a refund of 49.90 EUR." in page
    assert "read as shouting" in page and "reads as a threat" not in page
    assert count(Ticket) == 0


@pytest.mark.parametrize(
    "text",
    [
        "I will call my lawyer",
        "See you in court.",
        "I am going to sue you",
        "Ég mun tala við lögfræðinginn minn",
        "Ég fer með þetta fyrir dómstóla",
        "אני אפנה לעורך דין",
        "ניפגש בבית המשפט",
        "Θα μιλήσω με τον δικηγόρο μου",
        "Θα σας πάω στο δικαστήριο",
    ],
)
def test_threats_get_a_friendly_note_in_four_languages(text: str, app: Flask):
    with app.test_request_context():
        hints = compose.tone_hints(text)
    assert len(hints) == 1 and "threat" in hints[0]


def test_calm_letters_get_no_hints(app: Flask):
    with app.test_request_context():
        assert compose.tone_hints("The issue is that my TV (a 4K OLED) stopped. Thank you!") == []
        assert compose.tone_hints("I pursue a fair outcome; please address this issue.") == []


def test_live_preview_answers_json(client: FlaskClient):
    token = csrf_from(client, "/complaint")
    answer = client.post(
        "/complaint/preview",
        data={**complaint_form(story="Sue you!!!"), "csrf_token": token},
    )
    data = answer.get_json()
    assert answer.status_code == 200 and data["subject"] == "Complaint: Kettle K-200"
    assert "It leaked" not in data["composed"] and "Sue you!!!" in data["composed"]
    assert len(data["hints"]) == 2


@pytest.mark.hooks("helpdesk_ticket_input")
def test_guided_complaint_opens_a_ticket_with_a_claim_and_proof(client: FlaskClient):
    form = complaint_form(
        attachments=[(io.BytesIO(b"receipt"), "receipt.txt")],
    )
    answer = post_form(client, "/complaint", form, page="/complaint")
    assert answer.status_code == 303 and "/status/" in answer.headers["Location"]
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.kind == "complaint" and ticket.subject == "Complaint: Kettle K-200"
    message = db.session.scalars(select(Message)).one()
    assert message.body.startswith("I have been your client since 2019.")
    assert "It leaked on the first day." in message.body
    assert [a.filename for a in services.conversation(ticket)[0].attachments] == ["receipt.txt"]
    claim = db.session.get(Claim, ticket.id)
    assert claim.outcome_wanted == "refund" and str(claim.amount_claimed) == "49.9000"
    assert claim.cost_list == ["money", "time"] and claim.order_reference == "A-1001"
    status = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert ticket.reference in status


def test_the_customer_edited_letter_is_what_is_sent(client: FlaskClient):
    post_form(client, "/complaint", complaint_form(letter="My own words, calmly."))
    assert db.session.scalars(select(Message)).one().body == "My own words, calmly."


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"amount_claimed": "abc"}, "amount_claimed", "not a number"),
        ({"amount_claimed": "-5"}, "amount_claimed", "negative"),
        ({"amount_claimed": "1.999"}, "amount_claimed", "decimals"),
        ({"currency": "XYZ"}, "currency", "not a known currency"),
        ({"incident_date": "2999-01-01"}, "incident_date", "future"),
        ({"incident_date": "yesterday"}, "incident_date", "date like"),
        ({"outcome_wanted": ""}, "outcome_wanted", "must be one of"),
        ({"outcome_wanted": "revenge"}, "outcome_wanted", "must be one of"),
        ({"email": "not-an-address"}, "email", ""),
        ({"product": ""}, "product", "required"),
        ({"order_reference": "x" * 101}, "order_reference", "longer"),
    ],
)
def test_bad_answers_are_refused_with_everything_kept(
    client: FlaskClient, changes: dict[str, str], field: str, words: str
):
    form = complaint_form(story="Kept <story> {{ 7*7 }}", **changes)
    answer = post_form(client, "/complaint", form)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and f'href="#f-{field}"' in page and words in page
    assert "Kept &lt;story&gt; {{ 7*7 }}" in page
    assert count(Ticket) == 0 and count(Claim) == 0


def test_script_and_template_syntax_in_every_field_stay_text(
    client: FlaskClient, agent_client: FlaskClient, seeded
):
    hostile = "<script>alert(1)</script> {{ 7*7 }}"
    fields = ("name", "relation", "product", "place", "order_reference", "story", "cost_details")
    form = complaint_form(**{f: hostile[:90] for f in fields}, outcome_wanted="other")
    form["outcome_other"] = hostile
    assert post_form(client, "/complaint", form).status_code == 303
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.subject == "Complaint: " + hostile[:90]
    assert db.session.get(Claim, ticket.id).order_reference == hostile[:90]
    page = agent_client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "{{ 7*7 }}" in page and "49" not in page.split("{{ 7*7 }}")[0][-3:]
    letter = agent_client.get(
        f"/tickets/{ticket.id}/letter?template={seeded['acknowledgement'].id}"
    ).get_data(as_text=True)
    assert "<script>alert(1)" not in letter and "Dear &lt;script&gt;alert(1)" in letter
    assert "{{ 7*7 }}" in letter


# --- the claim through the API and on the ticket page ----------------------------------------


@pytest.mark.hooks("helpdesk_ticket_input", "helpdesk_ticket_json")
def test_api_opens_a_ticket_with_a_claim(client: FlaskClient, api_headers):
    body = {
        "subject": "Broken kettle",
        "body": "Phoned in.",
        "kind": "complaint",
        "customer": {"email": "cleo@example.com"},
        "claim": {
            "outcome_wanted": "replacement",
            "amount_claimed": 12.10,
            "currency": "eur",
            "incident_date": "2026-01-02",
            "costs": ["time", "money"],
        },
    }
    created = client.post(f"{API}/tickets", json=body, headers=api_headers)
    assert created.status_code == 201
    claim = created.get_json()["claim"]
    assert claim == {
        "outcome_wanted": "replacement",
        "amount_claimed": "12.10",
        "currency": "EUR",
        "incident_date": "2026-01-02",
        "order_reference": None,
        "costs": ["money", "time"],
        "resolution": None,
    }
    plain = client.post(
        f"{API}/tickets", json={**body, "claim": None, "subject": "No claim"}, headers=api_headers
    )
    assert plain.get_json()["claim"] is None


@pytest.mark.parametrize(
    ("claim", "field"),
    [
        (
            {"outcome_wanted": "refund", "amount_claimed": "abc", "currency": "EUR"},
            "amount_claimed",
        ),
        ({"outcome_wanted": "refund", "amount_claimed": "-1", "currency": "EUR"}, "amount_claimed"),
        ({"outcome_wanted": "refund", "amount_claimed": "5"}, "currency"),
        ({"outcome_wanted": "refund", "incident_date": "2999-12-31"}, "incident_date"),
        ({"outcome_wanted": "refund", "costs": "money"}, "costs"),
        ({"outcome_wanted": "refund", "costs": ["pride"]}, "costs"),
        ({"outcome_wanted": "everything"}, "outcome_wanted"),
        ({"outcome_wanted": "refund", "order_reference": 5}, "order_reference"),
    ],
)
def test_api_refuses_a_bad_claim_and_opens_nothing(
    client: FlaskClient, api_headers, claim: dict[str, Any], field: str
):
    body = {
        "subject": "S",
        "body": "B",
        "kind": "complaint",
        "customer": {"email": "new@example.com"},
        "claim": claim,
    }
    answer = client.post(f"{API}/tickets", json=body, headers=api_headers)
    assert answer.status_code == 422
    assert f"claim.{field}" in answer.get_json()["fields"]
    assert count(Ticket) == 0 and count(Claim) == 0
    assert (
        client.post(f"{API}/tickets", json={**body, "claim": "x"}, headers=api_headers).status_code
        == 422
    )


@pytest.mark.hooks("helpdesk_ticket_panels")
def test_claim_panel_on_the_ticket_page(agent_client: FlaskClient, seeded):
    ticket = claimed_ticket(order_reference="A-1")
    page = agent_client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "Complaint claim and letters" in page and "49.90 EUR" in page and "A-1" in page
    assert "Record and resolve" in page and "Apology with refund (en) · suggested" in page
    # The claim is summed up at the top, under the title, before the conversation.
    assert page.index("letters-summary") < page.index('id="conversation-title"')
    plain = services.open_ticket(subject="Question", body="x", customer_email="q@example.com")
    assert "letters-summary" not in agent_client.get(f"/tickets/{plain.id}").get_data(as_text=True)


def test_agent_adds_a_claim_to_a_mail_in_complaint(agent_client: FlaskClient, seeded):
    ticket = services.open_ticket(subject="By mail", body="x", customer_email="m@example.com")
    path = f"/tickets/{ticket.id}/claim"
    page = f"/tickets/{ticket.id}"
    # The ticket page links to the claim form, which has a page of its own.
    assert f'href="{path}"' in agent_client.get(page).get_data(as_text=True)
    form = agent_client.get(path)
    assert form.status_code == 200 and 'name="outcome_wanted"' in form.get_data(as_text=True)
    assert agent_client.get("/tickets/999999/claim").status_code == 404
    bad = post_form(
        agent_client,
        path,
        {"outcome_wanted": "refund", "amount_claimed": "-3", "currency": "EUR"},
        page=page,
    )
    assert bad.status_code == 422 and "negative" in bad.get_data(as_text=True)
    assert 'value="-3"' in bad.get_data(as_text=True) and count(Claim) == 0
    good = post_form(
        agent_client,
        path,
        {"outcome_wanted": "apology", "incident_date": "2026-01-05", "costs": ["embarrassment"]},
        page=page,
    )
    assert good.status_code == 303
    claim = db.session.get(Claim, ticket.id)
    assert claim.outcome_wanted == "apology" and claim.cost_list == ["embarrassment"]
    again = agent_client.get(path).get_data(as_text=True)
    assert "Correct the claim" in again and 'value="apology" selected' in again


@pytest.mark.hooks("helpdesk_queue_filters", "helpdesk_queue_badges")
def test_queue_filters_by_claim_in_a_fixed_number_of_queries(
    agent_client: FlaskClient, api_headers, count_queries
):
    claimed_ticket()
    services.open_ticket(subject="Plain question", body="x", customer_email="q@example.com")
    page = agent_client.get("/tickets?claim=refund").get_data(as_text=True)
    assert "Broken kettle" in page and "Plain question" not in page and "Claim: refund" in page
    api = agent_client.get(f"{API}/tickets?claim=any", headers=api_headers).get_json()
    assert [t["subject"] for t in api["items"]] == ["Broken kettle"]
    with count_queries as few:
        agent_client.get("/tickets")
    with count_queries as few_api:
        agent_client.get(f"{API}/tickets", headers=api_headers)
    for n in range(8):
        ticket = claimed_ticket(order_reference=f"R{n}")
        if n % 2:
            service.record_resolution(ticket, {"granted": "apology"}, agent=_agent())
    with count_queries as many:
        agent_client.get("/tickets")
    with count_queries as many_api:
        agent_client.get(f"{API}/tickets", headers=api_headers)
    assert many.count == few.count and many_api.count == few_api.count


def _agent():
    from helpdesk.core.models import Agent

    return db.session.scalars(select(Agent)).first()


# --- what was granted ---------------------------------------------------------------------


def test_api_records_what_was_granted_and_resolves(client: FlaskClient, api_headers, agent):
    ticket = claimed_ticket()
    url = f"{API}/tickets/{ticket.id}/claim/resolution"
    answer = client.post(url, json={"granted": "refund", "amount": "49.90"}, headers=api_headers)
    assert answer.status_code == 200
    resolution = answer.get_json()["resolution"]
    assert resolution["granted"] == "refund" and resolution["amount"] == "49.90"
    assert resolution["by"] == {"id": agent.id, "name": agent.name} and resolution["at"]
    assert db.session.get(Ticket, ticket.id).status == "resolved"
    shown = client.get(f"{API}/tickets/{ticket.id}", headers=api_headers).get_json()
    assert shown["claim"]["resolution"]["amount"] == "49.90"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"granted": "everything"}, "granted"),
        ({"granted": "refund"}, "amount"),
        ({"granted": "refund", "amount": "abc"}, "amount"),
        ({"granted": "refund", "amount": "-1"}, "amount"),
        ({"granted": "gift_certificate", "amount": "20"}, "code"),
        ({"granted": "declined"}, "reason"),
        ({"granted": "declined", "reason": "x" * 2001}, "reason"),
    ],
)
def test_bad_resolutions_are_refused(client: FlaskClient, api_headers, body, field):
    ticket = claimed_ticket()
    url = f"{API}/tickets/{ticket.id}/claim/resolution"
    answer = client.post(url, json=body, headers=api_headers)
    assert answer.status_code == 422 and field in answer.get_json()["fields"]
    assert db.session.get(Claim, ticket.id).granted is None
    assert db.session.get(Ticket, ticket.id).status == "new"


def test_resolution_needs_a_claim(client: FlaskClient, api_headers):
    ticket = services.open_ticket(subject="S", body="B", customer_email="x@example.com")
    url = f"{API}/tickets/{ticket.id}/claim/resolution"
    assert client.post(url, json={"granted": "apology"}, headers=api_headers).status_code == 422
    assert (
        client.post(
            f"{API}/tickets/999999/claim/resolution", json={}, headers=api_headers
        ).status_code
        == 404
    )


def test_agent_resolves_from_the_panel_with_a_gift_certificate(agent_client: FlaskClient):
    ticket = claimed_ticket(outcome_wanted="gift_certificate")
    path, page = f"/tickets/{ticket.id}/claim/resolve", f"/tickets/{ticket.id}"
    bad = post_form(agent_client, path, {"granted": "gift_certificate", "amount": "25"}, page=page)
    assert bad.status_code == 422 and 'value="25"' in bad.get_data(as_text=True)
    good = post_form(
        agent_client,
        path,
        {"granted": "gift_certificate", "amount": "25", "code": "G-77"},
        page=page,
    )
    assert good.status_code == 303
    db.session.expire_all()
    claim = db.session.get(Claim, ticket.id)
    assert (claim.granted, claim.granted_code, str(claim.granted_amount)) == (
        "gift_certificate",
        "G-77",
        "25.0000",
    )
    assert db.session.get(Ticket, ticket.id).status == "resolved"
    assert "code G-77" in agent_client.get(page).get_data(as_text=True)


# --- letters filled in and sent ------------------------------------------------------------


def test_api_lists_and_previews_templates(client: FlaskClient, api_headers, seeded, agent):
    items = client.get(f"{API}/letter-templates", headers=api_headers).get_json()["items"]
    assert len(items) == 6 and {"id", "name", "language", "outcome", "subject", "body"} <= set(
        items[0]
    )
    ticket = claimed_ticket(order_reference="A-1001", incident_date="2026-01-02")
    ticket.customer.name = "<b>Cleo</b> {{ 7*7 }}"
    db.session.commit()
    url = f"{API}/tickets/{ticket.id}/letters/preview"
    refund = seeded["apology_refund"].id
    letter = client.post(url, json={"template_id": refund}, headers=api_headers).get_json()
    assert letter["subject"] == f"Your refund for {ticket.reference}"
    assert "Dear <b>Cleo</b> {{ 7*7 }}," in letter["text"] and "49.90 EUR" in letter["text"]
    assert "Your order A-1001" in letter["text"] and "Ana Agent" in letter["text"]
    assert "&lt;b&gt;Cleo&lt;/b&gt; {{ 7*7 }}" in letter["html"] and "<b>Cleo" not in letter["html"]
    assert letter["html"].startswith("<p>Dear ")
    for bad in ({"template_id": 0}, {"template_id": "x"}, {}, {"template_id": 10**20}):
        assert client.post(url, json=bad, headers=api_headers).status_code == 422


def test_agent_fills_in_edits_and_sends_a_letter_as_a_threaded_reply(
    agent_client: FlaskClient, seeded
):
    ticket = claimed_ticket()
    page = agent_client.get(f"/tickets/{ticket.id}/letter")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Apology with refund" in text
    assert "We are refunding 49.90 EUR" in text  # the suggested template, filled in
    found = agent_client.get(f"/tickets/{ticket.id}/letter?q=gift").get_data(as_text=True)
    assert "Gift certificate" in found and "Replacement</a>" not in found
    answer = post_form(
        agent_client,
        f"/tickets/{ticket.id}/letter",
        {"body": "Dear Cleo,\n\nEdited by hand.", "status": "pending"},
        page=f"/tickets/{ticket.id}/letter",
    )
    assert answer.status_code == 303
    reply = db.session.scalars(select(Message).order_by(Message.id.desc())).first()
    assert reply.body == "Dear Cleo,\n\nEdited by hand." and reply.author_type == "agent"
    assert db.session.get(Ticket, ticket.id).status == "pending"
    mail = db.session.scalars(
        select(OutboxItem).where(OutboxItem.ticket_id == ticket.id).order_by(OutboxItem.id.desc())
    ).first()
    assert mail is not None and "Edited by hand." in str(mail.payload)
    empty = post_form(
        agent_client,
        f"/tickets/{ticket.id}/letter",
        {"body": "  "},
        page=f"/tickets/{ticket.id}/letter",
    )
    assert empty.status_code == 422


def test_letter_uses_the_customers_language_variant(agent_client: FlaskClient, seeded, admin):
    service.create_template(
        {
            "key": "acknowledgement",
            "name": "Acknowledgement",
            "language": "he",
            "outcome": "",
            "subject": "קיבלנו את תלונתך {{ ticket.reference }}",
            "body": "שלום {{ customer.name }}, תודה שכתבת לנו.",
        },
        agent=admin,
    )
    ticket = services.open_ticket(subject="S", body="B", customer_email="h@example.com")
    ticket.customer.language = "he"
    db.session.commit()
    page = agent_client.get(f"/tickets/{ticket.id}/letter").get_data(as_text=True)
    assert "שלום" in page and "תודה שכתבת לנו" in page


# --- the template library: checked on save, versions, conflicts ----------------------------


@pytest.mark.parametrize("body", HOSTILE)
def test_hostile_templates_are_refused_on_save(client: FlaskClient, admin_headers, seeded, body):
    answer = client.post(
        f"{API}/letter-templates",
        json={"name": "Evil", "subject": "Hi", "body": "line one\n" + body},
        headers=admin_headers,
    )
    assert answer.status_code == 422
    errors = answer.get_json()["errors"]
    assert errors and errors[0]["field"] == "body" and errors[0]["line"] == 2
    assert count(LetterTemplate) == 6


def test_syntax_errors_and_unknown_variables_are_named(client: FlaskClient, admin_headers):
    answer = client.post(
        f"{API}/letter-templates",
        json={"name": "X", "subject": "{{ ticket.nope }}", "body": "a\nb\n{% if %}"},
        headers=admin_headers,
    )
    errors = answer.get_json()["errors"]
    assert answer.status_code == 422
    assert {
        "field": "subject",
        "line": 1,
        "message": "uses an unknown variable: ticket.nope",
    } in errors
    assert any(
        e["field"] == "body" and e["line"] == 3 and "does not compile" in e["message"]
        for e in errors
    )


def test_a_one_megabyte_template_is_refused(client: FlaskClient, admin_headers):
    answer = client.post(
        f"{API}/letter-templates",
        json={"name": "Big", "subject": "S", "body": "a" * 1_000_000},
        headers=admin_headers,
    )
    assert answer.status_code == 422 and "longer than" in answer.get_json()["errors"][0]["message"]


def test_only_admins_write_templates(client: FlaskClient, api_headers, agent_client, seeded):
    body = {"name": "Mine", "subject": "S", "body": "Hello {{ customer.name }}"}
    assert client.post(f"{API}/letter-templates", json=body, headers=api_headers).status_code == 403
    put = client.put(
        f"{API}/letter-templates/{seeded['replacement'].id}", json=body, headers=api_headers
    )
    assert put.status_code == 403
    assert agent_client.get(f"/letters/templates/{seeded['replacement'].id}").status_code == 403
    assert agent_client.get("/letters/templates").status_code == 200


def test_every_save_is_a_version_and_a_stale_one_is_refused(
    client: FlaskClient, admin_headers, seeded
):
    template = seeded["replacement"]
    url = f"{API}/letter-templates/{template.id}"
    first = client.put(
        url, json={"body": "Version two {{ customer.name }}", "version": 1}, headers=admin_headers
    )
    assert first.status_code == 200 and first.get_json()["version"] == 2
    stale = client.put(url, json={"body": "Lost?", "version": 1}, headers=admin_headers)
    assert stale.status_code == 409
    db.session.expire_all()
    assert db.session.get(LetterTemplate, template.id).body == "Version two {{ customer.name }}"
    assert [v.version for v in service.versions(template)] == [2, 1]


def test_admin_edits_previews_diffs_and_restores_in_the_browser(admin_client: FlaskClient, seeded):
    template = seeded["acknowledgement"]
    path = f"/letters/templates/{template.id}"
    values = {
        "name": template.name,
        "language": "en",
        "outcome": "",
        "subject": template.subject,
        "version": "1",
    }
    bad = post_form(
        admin_client, path, {**values, "body": "Hi\n{{ customer.secret }}", "action": "save"}
    )
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "customer.secret (line 2)" in text
    assert "{{ customer.secret }}" in text  # what the admin typed is kept
    preview = post_form(
        admin_client, path, {**values, "body": "Hi {{ customer.name }}", "action": "preview"}
    )
    assert preview.status_code == 200 and "Hi Ada Lovelace" in preview.get_data(as_text=True)
    runaway = post_form(
        admin_client, path, {**values, "body": "{{ 'a' * 10**9 }}", "action": "preview"}
    )
    assert runaway.status_code == 422 and "longer than" in runaway.get_data(as_text=True)
    saved = post_form(
        admin_client, path, {**values, "body": "Hello {{ customer.name }}", "action": "save"}
    )
    assert saved.status_code == 303
    # A second browser still holds version 1: its save is refused, its text kept.
    other = post_form(admin_client, path, {**values, "body": "Other tab text", "action": "save"})
    assert other.status_code == 409 and "Other tab text" in other.get_data(as_text=True)
    diff = admin_client.get(f"{path}/versions?a=1&b=2").get_data(as_text=True)
    assert "+Hello {{ customer.name }}" in diff and "Ada Admin" in diff
    restored = post_form(admin_client, f"{path}/restore", {"version": "1"}, page=f"{path}/versions")
    assert restored.status_code == 303
    db.session.expire_all()
    current = db.session.get(LetterTemplate, template.id)
    assert current.version == 3 and current.body == seeded["acknowledgement"].body
    assert [v.version for v in service.versions(current)] == [3, 2, 1]


def test_new_template_in_the_browser(admin_client: FlaskClient):
    values = {
        "name": "Late delivery",
        "language": "is",
        "outcome": "apology",
        "subject": "Afsakið",
        "body": "Kæri {{ customer.name }}",
        "key": "",
        "version": "",
        "action": "save",
    }
    answer = post_form(admin_client, "/letters/templates/new", values)
    assert answer.status_code == 303
    created = db.session.scalars(select(LetterTemplate)).one()
    assert (created.key, created.language, created.version) == ("late_delivery", "is", 1)


# --- the sandbox's limits at render time -------------------------------------------------


@pytest.mark.parametrize("body", RUNAWAY)
def test_runaway_templates_stop_within_the_limits(
    client: FlaskClient, api_headers, seeded, body: str
):
    ticket = claimed_ticket()
    stored = LetterTemplate(key="runaway", name="Runaway", subject="S", body=body)
    db.session.add(stored)
    db.session.commit()
    url = f"{API}/tickets/{ticket.id}/letters/preview"
    started = time.monotonic()
    answer = client.post(url, json={"template_id": stored.id}, headers=api_headers)
    assert answer.status_code == 422 and answer.get_json()["fields"]["body"]
    assert time.monotonic() - started < 5
    fine = client.post(url, json={"template_id": seeded["replacement"].id}, headers=api_headers)
    assert fine.status_code == 200  # the worker still answers


@pytest.mark.parametrize("body", HOSTILE)
def test_hostile_templates_stored_anyway_render_inert(client: FlaskClient, api_headers, body):
    ticket = claimed_ticket()
    stored = LetterTemplate(key="evil", name="Evil", subject="S", body=body)
    db.session.add(stored)
    db.session.commit()
    answer = client.post(
        f"{API}/tickets/{ticket.id}/letters/preview",
        json={"template_id": stored.id},
        headers=api_headers,
    )
    text = str(answer.get_json())
    assert answer.status_code in (200, 422)
    for leak in (
        "<class",
        "SECRET",
        "test-secret",
        "function",
        "module",
        "TemplateReference",
        "<b>",
    ):
        assert leak not in text


def test_render_limits_are_settings(app: Flask):
    app.config["LETTERS_MAX_OUTPUT"] = 100
    with app.test_request_context():
        assert render.render("{{ 'a' * 100 }}", {}, html=False) == "a" * 100
        with pytest.raises(render.RenderRefused):
            render.render("{{ 'a' * 101 }}", {}, html=False)


# --- other plugins' variables ---------------------------------------------------------------


class BonusPlugin:
    """A plugin that adds ``loyalty.balance`` to letters."""

    @hookimpl
    def helpdesk_letter_variables(self):
        return {"loyalty": {"balance": "bonus points"}, "customer": {"evil": "ignored"}}

    @hookimpl
    def helpdesk_letter_context(self, ticket):
        return {"loyalty": {"balance": 1200}, "customer": {"name": "Not overridden"}}


@pytest.fixture
def app_plugins() -> list[Any]:
    from tests.plugin_support import HELLO

    return [HELLO, BonusPlugin()]


@pytest.mark.hooks("helpdesk_letter_variables", "helpdesk_letter_context")
def test_other_plugins_add_declared_variables(client: FlaskClient, admin_headers):
    body = {"name": "Points", "subject": "S", "body": "{{ customer.name }}: {{ loyalty.balance }}"}
    created = client.post(f"{API}/letter-templates", json=body, headers=admin_headers)
    assert created.status_code == 201
    refused = client.post(
        f"{API}/letter-templates",
        json={**body, "name": "P2", "body": "{{ customer.evil }}"},
        headers=admin_headers,
    )
    assert refused.status_code == 422
    ticket = claimed_ticket()
    letter = client.post(
        f"{API}/tickets/{ticket.id}/letters/preview",
        json={"template_id": created.get_json()["id"]},
        headers=admin_headers,
    ).get_json()
    assert letter["text"] == "Cleo Client: 1200"


# --- switched off ------------------------------------------------------------------------------


def test_disabled_plugin_leaves_the_plain_form(app_config: dict[str, Any]):
    app_config["PLUGINS_DISABLED"] = ["hello", "letters"]
    app = create_app(app_config)
    with app.app_context():
        client = app.test_client()
        page = client.get("/").get_data(as_text=True)
        assert 'value="complaint"' in page and "/complaint" not in page
        assert client.get("/complaint").status_code == 404
        db.session.remove()


# --- the report ------------------------------------------------------------------------------


@pytest.mark.hooks("helpdesk_reports")
def test_report_asked_versus_granted_with_chart_and_csv(agent_client: FlaskClient, agent):
    refund = claimed_ticket()
    service.record_resolution(refund, {"granted": "refund", "amount": "40.00"}, agent=agent)
    declined = claimed_ticket(outcome_wanted="repair", amount_claimed="10", currency="USD")
    service.record_resolution(declined, {"granted": "declined", "reason": "no"}, agent=agent)
    claimed_ticket(outcome_wanted="apology", amount_claimed=None, currency=None)
    assert "/reports/complaints" in agent_client.get("/reports").get_data(as_text=True)
    page = agent_client.get("/reports/complaints").get_data(as_text=True)
    assert "<svg" in page and "40 EUR" in page and "hours" in page
    month = utcnow().strftime("%Y-%m")
    csv_text = agent_client.get("/reports/complaints?format=csv").get_data(as_text=True)
    assert f"{month},3,1,1,EUR,49.9000,40.0000" in csv_text
    assert f"{month},3,1,1,USD,10.0000," in csv_text
    assert agent_client.get("/reports/complaints?from=nonsense").status_code == 422


@pytest.fixture
def with_categories(app_config: dict[str, Any]) -> None:
    app_config["PLUGINS_DISABLED"].remove("categories")


@pytest.mark.hooks("helpdesk_customer_groupings")
def test_report_breaks_claims_down_by_client_category(
    with_categories, agent_client: FlaskClient, agent
):
    from plugins.categories import service as categories

    categories.create_category({"name": "Ordinary"})  # CATEGORIES_DEFAULT: everyone else
    vip = categories.create_category({"name": "VIP"})
    db.session.commit()
    ordinary_claim = claimed_ticket()
    service.record_resolution(ordinary_claim, {"granted": "refund", "amount": "40"}, agent=agent)
    vip_claim = services.open_ticket(
        subject="Late",
        body="Very late.",
        kind="complaint",
        customer_email="vip@example.com",
        extra={"claim": {"outcome_wanted": "apology"}},
    )
    categories.set_customer_category(vip_claim.customer, vip, agent=agent, reason="")
    db.session.commit()
    found = report.claims_report(utcnow().date(), utcnow().date(), customer_groupings()["category"])
    rows = {g.month: (g.asked, g.granted, dict(g.granted_amount)) for g in found.groups}
    assert rows == {"Ordinary": (1, 1, {"EUR": Decimal("40")}), "VIP": (1, 0, {})}
    page = agent_client.get("/reports/complaints").get_data(as_text=True)
    assert "By client category" in page and '<th scope="row">VIP</th>' in page
    vip.name = "=cmd"  # an admin's text never runs in a spreadsheet
    db.session.commit()
    csv_text = agent_client.get("/reports/complaints?format=csv&by=category").get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("group,asked,granted")
    assert "Ordinary,1,1,0,EUR,49.9000,40.0000" in csv_text and "'=cmd,1,0,0,,," in csv_text


def test_filled_letter_as_json_for_the_insert_button(agent_client: FlaskClient, seeded):
    ticket = claimed_ticket()
    url = f"/tickets/{ticket.id}/letter/filled?template={seeded['apology_refund'].id}"
    answer = agent_client.get(url)
    assert answer.status_code == 200 and "We are refunding 49.90 EUR" in answer.get_json()["text"]
    assert agent_client.get(f"/tickets/{ticket.id}/letter/filled?template=abc").status_code == 404
    assert agent_client.get(f"/tickets/{ticket.id}/letter/filled?template=0").status_code == 404


# --- the PDF letter ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "name", "rtl"),
    [("en", "Cleo", False), ("el", "Νίκος Παπαδάκης", False), ("he", "דנה כהן", True)],
)
def test_letter_as_pdf_with_letterhead(
    agent_client: FlaskClient, seeded, app: Flask, language, name, rtl
):
    from plugins.letters import pdf

    app.config["LETTERS_LETTERHEAD"] = "Laugavegur 1, Reykjavík\n+354 555 1234"
    ticket = claimed_ticket()
    ticket.customer.name = name
    db.session.commit()
    answer = agent_client.get(
        f"/tickets/{ticket.id}/letter.pdf?template={seeded['apology_refund'].id}"
    )
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    assert answer.data.startswith(b"%PDF-") and b"/FontFile2" in answer.data
    assert pdf.right_to_left(f"Dear {name}", language) is rtl


def test_send_the_letter_with_its_pdf(agent_client: FlaskClient, seeded):
    ticket = claimed_ticket()
    page = f"/tickets/{ticket.id}/letter"
    answer = post_form(
        agent_client,
        page,
        {"body": "שלום דנה,\n\nתודה. Ευχαριστούμε.", "subject": "Re", "pdf": "1"},
        page=page,
    )
    assert answer.status_code == 303
    reply = services.conversation(ticket)[-1]
    assert [a.filename for a in reply.attachments] == [f"letter-{ticket.id}.pdf"]


def test_a_missing_font_is_a_clear_error(agent_client: FlaskClient, seeded, app: Flask):
    app.config["LETTERS_PDF_FONT"] = "/nonexistent/font.ttf"
    ticket = claimed_ticket()
    answer = agent_client.get(
        f"/tickets/{ticket.id}/letter.pdf?template={seeded['apology_refund'].id}"
    )
    assert answer.status_code == 422 and "not installed" in answer.get_data(as_text=True)
