"""The pages in a real browser: Debian's Chromium driven by Playwright against a live server."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from helpdesk.core import services
from helpdesk.core.models import Message, Ticket
from helpdesk.extensions import db
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _fresh(model, ident):
    """Read a row as the server left it (end the test's own read snapshot first)."""
    db.session.rollback()
    return db.session.get(model, ident)


def test_agent_logs_in_finds_a_ticket_replies_and_resolves_it(page, agent):
    ticket = services.open_ticket(
        subject="Kettle leaks",
        body="The zebrawood kettle leaks at the base.",
        customer_email="gudrun@example.is",
        customer_name="Guðrún",
    )
    services.open_ticket(subject="Other thing", body="unrelated", customer_email="b@example.com")
    ticket_id = ticket.id
    db.session.commit()

    page.goto("/tickets")
    assert "/login" in page.url
    page.fill("input[name=email]", agent.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/tickets"))

    page.fill("#topbar-q", "zebrawood")
    page.press("#topbar-q", "Enter")
    page.wait_for_url(re.compile(r"q=zebrawood"))
    assert page.locator("mark", has_text="zebrawood").count() >= 1
    page.click(f"a[href$='/tickets/{ticket_id}']")
    page.wait_for_url(re.compile(rf"/tickets/{ticket_id}$"))
    assert page.get_by_text("The zebrawood kettle leaks at the base.").is_visible()

    page.fill("textarea[name=body]", "Sorry! A new kettle is on its way.")
    page.locator("form[action$='/reply'] button[type=submit]").first.click()
    page.wait_for_load_state()
    assert page.get_by_text("A new kettle is on its way.").first.is_visible()

    page.select_option("form[action$='/update'] select[name=status]", "resolved")
    page.locator("form[action$='/update'] button[type=submit]").click()
    page.wait_for_load_state()

    stored = _fresh(Ticket, ticket_id)
    assert stored.status == "resolved"
    bodies = db.session.scalars(select(Message.body).where(Message.ticket_id == ticket_id)).all()
    assert "Sorry! A new kettle is on its way." in bodies


def test_customer_submits_the_form_and_follows_the_status_link(page):
    page.goto("/")
    page.fill("input[name=name]", "Νίκος Παπαδάκης")
    page.fill("input[name=email]", "nikos@example.gr")
    page.check("input[name=kind][value=complaint]")
    page.fill("input[name=subject]", "Η παραγγελία άργησε")
    page.fill("textarea[name=body]", "Ordered on Monday, nothing yet. 📦")
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/status/"))
    status_url = page.url
    assert re.search(r"#\d+", page.content())
    assert "Ordered on Monday, nothing yet. 📦" in page.content()

    page.fill("textarea[name=body]", "Any news?")
    page.locator("form[action$='/reply'] button[type=submit]").click()
    page.wait_for_url(status_url)
    assert page.get_by_text("Any news?").is_visible()

    db.session.rollback()
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.subject == "Η παραγγελία άργησε"
    token = status_url.rsplit("/", 1)[-1]
    assert token != str(ticket.id) and len(token) > 40  # a signed token, not the bare id
