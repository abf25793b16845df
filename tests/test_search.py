"""Full-text search: the same behaviour on SQLite FTS5 and PostgreSQL tsvector."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from helpdesk.core import search, services
from helpdesk.core.customers import update_customer
from helpdesk.core.queue import QueueFilter, list_tickets


def _find(query: str) -> list[int]:
    filters = QueueFilter(q=query, per_page=50)
    return [t.id for t in list_tickets(filters, agent=None).tickets]


@pytest.fixture
def tickets(app, agent):
    lamp = services.open_ticket(
        subject="Broken lamp",
        body="Arrived in pieces",
        customer_email="gudrun@example.is",
        customer_name="Guðrún Þórsdóttir",
    )
    kettle = services.open_ticket(
        subject="Kettle question",
        body="Does the kettle fit a lamp socket?",
        customer_email="noa@example.co.il",
        customer_name="נועה לוי",
    )
    services.add_message(
        kettle, body="Internal: ask the supplier about zebrawood", author=agent, internal=True
    )
    greek = services.open_ticket(
        subject="Καθυστέρηση παράδοσης",
        body="Η παραγγελία μου δεν ήρθε",
        customer_email="nikos@example.gr",
        customer_name="Νίκος",
    )
    return {"lamp": lamp.id, "kettle": kettle.id, "greek": greek.id}


def test_terms_strip_search_syntax():
    assert search.terms('"lamp" OR * NEAR(a b) \'-- DROP') == [
        "lamp",
        "or",
        "near",
        "a",
        "b",
        "drop",
    ]
    assert search.terms("*** \"' ()") == []


def test_finds_by_subject_body_note_and_customer(tickets):
    assert _find("lamp") == [tickets["lamp"], tickets["kettle"]]  # subject ranks above body
    assert _find("pieces") == [tickets["lamp"]]
    assert _find("zebrawood") == [tickets["kettle"]]
    assert _find("gudrun@example.is") == [tickets["lamp"]]
    assert _find("נועה") == [tickets["kettle"]]
    assert _find("παραγγελία") == [tickets["greek"]]


def test_last_word_matches_as_a_prefix(tickets):
    assert _find("ket") == [tickets["kettle"]]
    assert _find("broken la") == [tickets["lamp"]]


@pytest.mark.parametrize("hostile", ['"', "*", "NEAR(", "'--", 'lamp" OR "', "a' OR 1=1 --", ""])
def test_hostile_queries_are_just_words(tickets, hostile):
    found = _find(hostile)
    assert isinstance(found, list)


def test_highlights_are_escaped_and_marked(app):
    ticket = services.open_ticket(
        subject="<script>alert(1)</script> lamp",
        body="<img src=x onerror=alert(1)> lamp",
        customer_email="x@example.com",
    )
    hit = search.prepare("lamp", enough=1).highlights([ticket.id])[ticket.id]
    assert "<script>" not in hit.subject and "&lt;script&gt;" in hit.subject
    assert "<mark>lamp</mark>" in hit.subject
    assert "<img" not in hit.snippet and "<mark>lamp</mark>" in hit.snippet


def test_reindexes_when_the_customer_is_renamed(tickets):
    from helpdesk.core.models import Ticket
    from helpdesk.extensions import db

    customer = db.session.get(Ticket, tickets["greek"]).customer
    update_customer(customer, {"name": "Zorbas Quintessential"})
    assert _find("quintessential") == [tickets["greek"]]


def test_search_combines_with_filters(tickets, agent):
    from helpdesk.core.models import Ticket
    from helpdesk.extensions import db

    services.update_ticket(
        db.session.get(Ticket, tickets["kettle"]), {"status": "closed"}, actor=agent
    )
    filters = QueueFilter(q="lamp", statuses=["new"])
    assert [t.id for t in list_tickets(filters, agent=None).tickets] == [tickets["lamp"]]


def test_the_last_word_is_a_prefix_only_when_whole_words_find_too_little(app):
    whole = [
        services.open_ticket(subject=f"Lamp {n}", body="b", customer_email=f"c{n}@example.com").id
        for n in range(3)
    ]
    longer = services.open_ticket(subject="Lampshade", body="b", customer_email="d@example.com").id
    exact = search.prepare("lamp", enough=3)
    assert exact.prefix is False
    assert _ids(exact) == set(whole)  # a common word: whole-word matches only
    widened = search.prepare("lamp", enough=4)
    assert widened.prefix is True
    assert _ids(widened) == {*whole, longer}  # too few whole-word matches: a prefix too
    assert search.prepare("lampsh", enough=1).prefix is True
    assert search.prepare("*** '--", enough=1) is None


def _ids(prepared) -> set[int]:
    from helpdesk.extensions import db

    return set(db.session.scalars(select(prepared.matching_ids().c.ticket_id)))
