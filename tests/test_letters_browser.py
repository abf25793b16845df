"""The guided complaint form in a real browser (Debian's Chromium via Playwright): the live
preview follows the answers, tone hints appear and go, the customer edits the letter and sends.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from helpdesk.core.models import Message, Ticket
from helpdesk.extensions import db
from plugins.letters.models import Claim

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def letters_enabled(app_config: dict[str, Any]) -> None:
    app_config["PLUGINS_DISABLED"] = ["hello", "categories", "surveys", "loyalty"]


def test_guided_complaint_with_live_preview_and_tone_hints(page):
    page.goto("/")
    page.click("a[href='/complaint']")
    page.wait_for_url(re.compile(r"/complaint$"))
    page.fill("#f-name", "Νίκος Παπαδάκης")
    page.fill("#f-email", "nikos@example.gr")
    page.fill("#f-relation", "I have been your client for five years")
    page.fill("#f-product", "Kettle K-200")
    page.fill("#f-story", "IT LEAKED ALL OVER THE KITCHEN!!! I will call my lawyer.")
    page.check("#f-outcome-refund")
    page.fill("#f-amount_claimed", "49.90")
    letter = page.locator("#f-letter")
    expect(letter).to_have_value(re.compile(r"I would like a refund of 49\.90"))
    assert "I have been your client for five years." in letter.input_value()
    hints = page.locator("#tone-hints .letters-hint")
    expect(hints).to_have_count(2)
    page.fill("#f-story", "It leaked on the first day.")
    expect(hints).to_have_count(0)
    # The customer edits the letter by hand: later answers no longer overwrite it.
    letter.fill("Dear team, my kettle leaked. A refund of 49.90 EUR would put it right. Nikos")
    page.fill("#f-place", "the Laugavegur shop")
    page.wait_for_timeout(600)
    assert letter.input_value().startswith("Dear team, my kettle leaked.")
    page.locator("button[value=send]").click()
    page.wait_for_url(re.compile(r"/status/"))
    db.session.rollback()
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.kind == "complaint"
    body = db.session.scalars(select(Message.body).where(Message.ticket_id == ticket.id)).one()
    assert body.startswith("Dear team, my kettle leaked.")
    assert db.session.get(Claim, ticket.id).outcome_wanted == "refund"


def test_agent_inserts_a_filled_letter_into_the_reply(page, agent):
    from helpdesk.core import services
    from plugins.letters import service
    from tests.conftest import PASSWORD

    service.seed_templates()
    ticket = services.open_ticket(
        subject="Broken kettle",
        body="It leaked.",
        kind="complaint",
        customer_email="cleo@example.com",
        customer_name="Cleo Client",
        extra={"claim": {"outcome_wanted": "refund", "amount_claimed": "49.90", "currency": "EUR"}},
    )
    ticket_id = ticket.id
    db.session.commit()
    page.goto("/login")
    page.fill("input[name=email]", agent.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"/tickets/{ticket_id}")
    page.locator(".letters-insert").click()
    expect(page.locator("#reply-body")).to_have_value(re.compile(r"We are refunding 49\.90 EUR"))
    page.locator("form[action$='/reply'] button[value='0']").click()
    page.wait_for_load_state()
    db.session.rollback()
    bodies = db.session.scalars(select(Message.body).where(Message.ticket_id == ticket_id)).all()
    assert any("We are refunding 49.90 EUR" in body for body in bodies)
