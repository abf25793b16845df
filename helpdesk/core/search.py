"""Full-text search over tickets: subject, every message body, the customer's name and e-mail.

One interface, two engines: SQLite FTS5 (``ticket_fts``, rowid = ticket id) and PostgreSQL
``tsvector`` (``ticket_search.document``, a generated column with a GIN index). Both tables are
created by the core migration.

The user's words are reduced to plain terms (letters and digits), so no search syntax can be
injected; every term must match, and the last one also matches as a prefix when the whole words
find too little (see ``prepare``). Ranking every match
of a common word costs time that grows with the match count, so only the newest
``SEARCH_RANK_WINDOW`` matches are ranked; rarer words are ranked in full.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flask import current_app
from markupsafe import Markup, escape
from sqlalchemy import Subquery, func, select, text

from helpdesk.core.models import Customer, Message, Ticket
from helpdesk.extensions import db

MAX_TERMS = 12
_TERM = re.compile(r"\w+", re.UNICODE)
_START, _STOP = "\x02", "\x03"


@dataclass(frozen=True)
class SearchHit:
    """One ranked ticket with highlighted excerpts (safe HTML, matches in ``<mark>``)."""

    ticket_id: int
    subject: Markup
    snippet: Markup


def terms(query: str) -> list[str]:
    """The words of ``query`` that search uses, in order, without duplicates."""
    seen: dict[str, None] = {}
    for term in _TERM.findall(query.lower()):
        seen.setdefault(term, None)
    return list(seen)[:MAX_TERMS]


def _is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def _document(ticket_id: int) -> tuple[str, str, str] | None:
    row = db.session.execute(
        select(Ticket.subject, Customer.name, Customer.email)
        .join(Customer, Customer.id == Ticket.customer_id)
        .where(Ticket.id == ticket_id)
    ).first()
    if row is None:
        return None
    bodies = db.session.scalars(
        select(Message.body).where(Message.ticket_id == ticket_id).order_by(Message.id)
    )
    return row.subject, document_body(bodies), f"{row.name} {row.email}"


def index_ticket(ticket_id: int) -> None:
    """(Re)build the search document of one ticket, in the caller's transaction."""
    document = _document(ticket_id)
    if document is not None:
        _write(ticket_id, *document)


def index_new_ticket(ticket: Ticket, customer: Customer, body: str) -> None:
    """Index a ticket just opened with one message, ``body``: the same document as
    ``index_ticket`` makes, without reading back what the caller has in hand."""
    limit = current_app.config["SEARCH_MAX_DOCUMENT_CHARS"]
    _write(ticket.id, ticket.subject, body[:limit], f"{customer.name} {customer.email}")


def _write(ticket_id: int, subject: str, body: str, customer: str) -> None:
    write_documents([(ticket_id, subject, body, customer)])


def write_documents(documents: Sequence[tuple[int, str, str, str]]) -> None:
    """Store the search documents ``(ticket id, subject, body, customer)`` of many tickets in
    the caller's transaction, each statement run once for all of them. The body is taken as
    given: cut it to ``SEARCH_MAX_DOCUMENT_CHARS`` first (``document_body``)."""
    if not documents:
        return
    params = [
        {"id": ticket_id, "subject": subject, "body": body, "customer": customer}
        for ticket_id, subject, body, customer in documents
    ]
    if _is_postgres():
        db.session.execute(_PG_UPSERT, params)
    else:
        db.session.execute(_FTS_DELETE, params)
        db.session.execute(_FTS_INSERT, params)


def document_body(bodies: Iterable[str]) -> str:
    """The searchable text of a ticket's message bodies, in order."""
    return "\n\n".join(bodies)[: current_app.config["SEARCH_MAX_DOCUMENT_CHARS"]]


_PG_UPSERT = text(
    "INSERT INTO ticket_search (ticket_id, subject, body, customer) "
    "VALUES (:id, :subject, :body, :customer) ON CONFLICT (ticket_id) DO UPDATE "
    "SET subject = excluded.subject, body = excluded.body, customer = excluded.customer"
)
_FTS_DELETE = text("DELETE FROM ticket_fts WHERE rowid = :id")
_FTS_INSERT = text(
    "INSERT INTO ticket_fts (rowid, subject, body, customer) "
    "VALUES (:id, :subject, :body, :customer)"
)


def index_customer_tickets(customer_id: int) -> None:
    """Re-index every ticket of a customer whose name or e-mail changed."""
    for ticket_id in db.session.scalars(select(Ticket.id).where(Ticket.customer_id == customer_id)):
        index_ticket(ticket_id)


def _fts5_query(words: Sequence[str], prefix: bool) -> str:
    quoted = [f'"{word}"' for word in words]
    if prefix:
        quoted[-1] += "*"
    return " ".join(quoted)


def _tsquery(words: Sequence[str], prefix: bool) -> str:
    quoted = [f"'{word}'" for word in words]
    if prefix:
        quoted[-1] += ":*"
    return " & ".join(quoted)


def prepare(query: str, *, enough: int) -> PreparedSearch | None:
    """The search for ``query``, or ``None`` when it has no searchable words.

    Whole words first. The last word is read as a prefix (a word still being typed) only when
    the whole words find fewer than ``enough`` tickets: a prefix is matched by merging the
    lists of every word it begins, which for a common word costs far more than the word.
    The choice depends on the query alone, so every page of the results makes the same one.
    """
    words = tuple(terms(query))
    if not words:
        return None
    exact = PreparedSearch(words, prefix=False)
    return exact if exact.has_at_least(enough) else PreparedSearch(words, prefix=True)


@dataclass(frozen=True)
class PreparedSearch:
    """A search ready to run: its words, and whether the last one matches as a prefix."""

    words: tuple[str, ...]
    prefix: bool

    def has_at_least(self, count: int) -> bool:
        """Whether at least ``count`` tickets match (stops counting there)."""
        if _is_postgres():
            sql = (
                "SELECT count(*) FROM (SELECT 1 FROM ticket_search "
                "WHERE document @@ to_tsquery('simple', :q) LIMIT :n) AS found"
            )
            q = _tsquery(self.words, self.prefix)
        else:
            sql = (
                "SELECT count(*) FROM (SELECT rowid FROM ticket_fts "
                "WHERE ticket_fts MATCH :q LIMIT :n)"
            )
            q = _fts5_query(self.words, self.prefix)
        return db.session.execute(text(sql), {"q": q, "n": count}).scalar_one() >= count

    def matching_ids(self) -> Subquery:
        """A ``SELECT ticket_id, rank`` of the best of the newest ``SEARCH_RANK_WINDOW``
        matches (lower rank is better). Join it with filters, order by ``rank``."""
        window = current_app.config["SEARCH_RANK_WINDOW"]
        if _is_postgres():
            tsquery = _tsquery(self.words, self.prefix)
            newest = (
                text(
                    "SELECT ticket_id, document FROM ticket_search "
                    "WHERE document @@ to_tsquery('simple', :q) "
                    "ORDER BY ticket_id DESC LIMIT :window"
                )
                .bindparams(q=tsquery, window=window)
                .columns(ticket_id=db.Integer, document=db.Text)
                .subquery("newest")
            )
            rank = -func.ts_rank(newest.c.document, func.to_tsquery("simple", tsquery))
            return select(newest.c.ticket_id.label("ticket_id"), rank.label("rank")).subquery()
        return (
            text(
                "SELECT rowid AS ticket_id, bm25(ticket_fts, 10.0, 1.0, 5.0) AS rank "
                "FROM ticket_fts WHERE ticket_fts MATCH :q ORDER BY rowid DESC LIMIT :window"
            )
            .bindparams(q=_fts5_query(self.words, self.prefix), window=window)
            .columns(ticket_id=db.Integer, rank=db.Float)
            .subquery("matches")
        )

    def highlights(self, ticket_ids: Sequence[int]) -> dict[int, SearchHit]:
        """Highlighted subject and body excerpt for each of ``ticket_ids`` (the page shown)."""
        if not ticket_ids:
            return {}
        if _is_postgres():
            options = (
                f"StartSel={_START}, StopSel={_STOP}, MaxWords=25, MinWords=10, MaxFragments=2"
            )
            rows = db.session.execute(
                text(
                    "SELECT ticket_id, ts_headline('simple', subject, q, :full) AS subject, "
                    "ts_headline('simple', body || ' ' || customer, q, :opts) AS snippet "
                    "FROM ticket_search, to_tsquery('simple', :q) AS q "
                    "WHERE ticket_id = ANY(:ids)"
                ),
                {
                    "q": _tsquery(self.words, self.prefix),
                    "ids": list(ticket_ids),
                    "opts": options,
                    "full": f"StartSel={_START}, StopSel={_STOP}, HighlightAll=true",
                },
            )
        else:
            # One MATCH over the page's rowid range; "+rowid IN" filters without making
            # SQLite run the MATCH once per id.
            id_list = ",".join(str(int(i)) for i in ticket_ids)
            rows = db.session.execute(
                text(
                    f"SELECT rowid AS ticket_id, "
                    f"highlight(ticket_fts, 0, '{_START}', '{_STOP}') AS subject, "
                    f"snippet(ticket_fts, -1, '{_START}', '{_STOP}', '…', 24) AS snippet "
                    f"FROM ticket_fts WHERE ticket_fts MATCH :q "
                    f"AND rowid BETWEEN :low AND :high AND +rowid IN ({id_list})"
                ),
                {
                    "q": _fts5_query(self.words, self.prefix),
                    "low": min(ticket_ids),
                    "high": max(ticket_ids),
                },
            )
        return {
            row.ticket_id: SearchHit(row.ticket_id, _marked(row.subject), _marked(row.snippet))
            for row in rows
        }


def _marked(value: str | None) -> Markup:
    """Escape the engine's output, then turn its match markers into ``<mark>`` elements."""
    html = str(escape(value or ""))
    return Markup(html.replace(_START, "<mark>").replace(_STOP, "</mark>"))
