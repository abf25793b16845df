"""Many received mails in one database transaction, each in its own savepoint.

``helpdesk mail fetch`` commits mail a batch at a time rather than once per mail. While a
batch is open, ``db.session`` is a session joined to the batch's transaction in savepoint
mode: what the services commit for one mail releases that mail's savepoint, and what they roll
back (a mail refused or failing) undoes that mail alone, which then goes to the quarantine
while the batch goes on. Only after the batch's transaction has committed are the events of
its changes fired and its mails removed from the mailbox, so a crash or a database error in
the middle loses nothing: the next run reads the same mails, recognised by their Message-IDs.

The common mails of a batch are stored a run at a time (see ``bulk``), the others one by one
through ``ingest``; either way each mail's outcome is reported in the order received. Helper
processes may parse the mails ahead while the batch writes (see ``readahead``).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from flask import current_app
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, RootTransaction
from sqlalchemy.exc import DBAPIError, IntegrityError, InvalidRequestError
from sqlalchemy.orm import InstanceState, Session
from sqlalchemy.orm.exc import StaleDataError

from helpdesk.core import events
from helpdesk.core.mail import bulk
from helpdesk.core.mail.ingest import Outcome, ingest
from helpdesk.core.mail.readahead import Chunk, ParseAhead
from helpdesk.extensions import db

Done = Callable[[], None]
OnOutcome = Callable[[Outcome], None]
# How many mails ahead a run is planned from (the size of its look-up queries).
RUN_LOOKAHEAD = 50
# How many mails are handed to a parsing helper at a time.
PARSE_CHUNK = 10


class MailBatch:
    """Ingest mails into batches of at most ``max_mails`` mails or ``max_bytes`` bytes; use
    as a context manager (leaving it normally commits the last batch, an exception drops it).
    ``on_outcome`` hears what became of each mail, in order, as its batch is stored.
    ``parse_processes`` helper processes parse the mails as they are taken (see
    ``readahead``); none: they are parsed as the batch is stored."""

    def __init__(
        self,
        *,
        max_mails: int,
        max_bytes: int,
        on_outcome: OnOutcome = lambda outcome: None,
        parse_processes: int = 0,
        parse_timeout: float = 60,
    ) -> None:
        self.max_mails = max(1, max_mails)
        self.max_bytes = max_bytes
        self.on_outcome = on_outcome
        self._parser = ParseAhead(parse_processes, parse_timeout)
        self._chunks: list[Chunk] = []
        self._connection: Connection | None = None
        self._transaction: RootTransaction | None = None
        self._previous: Any = None
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._waiting: list[bytes] = []
        self._dones: list[Done] = []
        self._bytes = 0

    def __enter__(self) -> MailBatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self.commit()
            else:
                self._drop()
        finally:
            self._parser.close()

    def ingest(self, raw: bytes, done: Done) -> None:
        """Take one mail into the batch; it is stored when the batch is full or committed,
        and ``done`` (removing the mail from its mailbox) is called once it is committed."""
        self._waiting.append(raw)
        self._dones.append(done)
        self._bytes += len(raw)
        if len(self._waiting) >= PARSE_CHUNK:
            # A batch's first chunk is parsed here as it is stored (sooner than a helper
            # could hand it back); the helpers take the rest meanwhile.
            first = not self._chunks
            chunk = Chunk(self._waiting) if first else self._parser.submit(self._waiting)
            self._chunks.append(chunk)
            self._waiting = []
        if len(self._dones) >= self.max_mails or self._bytes >= self.max_bytes:
            self.commit()

    def _store_waiting(self) -> None:
        """Store the mails taken since the last time, runs of common ones together."""
        if self._connection is None:
            self._open()
        if self._waiting:  # the last few are parsed here (too few to wait for a helper)
            self._chunks.append(Chunk(self._waiting))
        chunks, self._chunks, self._waiting = iter(self._chunks), [], []
        raws: list[bytes] = []
        plains: list[bulk.Plain | None] = []
        position = 0
        upcoming = next(chunks, None)
        while True:
            # Take in parsed chunks: always enough to reach ``position``, and more (up to a
            # run's look-ahead) only when a helper has them ready, not to sit idle meanwhile.
            while upcoming is not None and (
                len(plains) <= position
                or (len(plains) < position + RUN_LOOKAHEAD and self._parser.ready(upcoming))
            ):
                raws += upcoming.raws
                plains += self._parser.results(upcoming)
                upcoming = next(chunks, None)
            if position >= len(raws):
                break
            head: list[bulk.Plain] = []
            for plain in plains[position : position + RUN_LOOKAHEAD]:
                if plain is None:
                    break
                head.append(plain)
            run = bulk.plan(head) if head else []
            if run:
                outcomes = self._write_run(run, raws[position : position + len(run)])
            else:
                outcomes = [self._ingest_one(raws[position])]
            position += len(outcomes)
            for outcome in outcomes:
                self.on_outcome(outcome)

    def _write_run(self, run: list[bulk.Planned], raws: list[bytes]) -> list[Outcome]:
        """Write a run together; should that fail (a customer or ticket changed by someone
        else meanwhile, or a bug), its mails go through ``ingest`` one by one instead."""
        try:
            outcomes = bulk.write(run)
        except (IntegrityError, StaleDataError):  # changed by someone else meanwhile
            outcomes = []
        except DBAPIError:
            raise
        except Exception:
            current_app.logger.exception("a run of %d mails is stored one by one", len(run))
            outcomes = []
        if not outcomes:
            db.session.rollback()
            return [self._ingest_one(raw) for raw in raws]
        self._settle()
        return outcomes

    def _ingest_one(self, raw: bytes) -> Outcome:
        outcome = ingest(raw)
        self._settle()
        return outcome

    def _settle(self) -> None:
        self._events += events.take()  # a mail rolled back had its own events dropped
        db.session.rollback()  # what a mail left uncommitted (a lookup's savepoint) goes
        # Each mail starts from an empty identity map, reading rows afresh as a mail of its
        # own would (and the commits of a batch stay cheap: nothing left to expire).
        db.session.expunge_all()

    def _open(self) -> None:
        self._previous = db.session.registry()
        self._connection = db.engine.connect()
        self._transaction = self._connection.begin()
        session = Session(
            bind=self._connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
        )
        session.info[events.HOLD_KEY] = True
        db.session.registry.set(session)

    def commit(self) -> None:
        """Store the mails waiting, commit the open batch, then fire its events and remove
        its mails from the mailbox."""
        if self._waiting or self._chunks:
            try:
                self._store_waiting()
            except BaseException:  # nothing of the batch is kept: its mails stay in the box
                self._drop()
                raise
        if self._connection is None or self._transaction is None:
            return
        self._transaction.commit()
        pending, dones = self._events, self._dones
        try:
            # Fired in the batch's session, its transaction over, with the rows they carry
            # attached to it again (each mail's were let go after it), so hooks can read on.
            db.session.info.pop(events.HOLD_KEY, None)
            events.fire(_attached(pending))
            db.session.commit()
        finally:
            self._close()
        for done in dones:
            done()

    def _drop(self) -> None:
        if self._connection is None or self._transaction is None:
            return
        try:
            db.session.close()
            self._transaction.rollback()
        finally:
            self._close()

    def _close(self) -> None:
        db.session.close()
        db.session.registry.set(self._previous)
        if self._connection is not None:
            self._connection.close()
        self._connection = self._transaction = self._previous = None
        self._events, self._waiting, self._dones, self._bytes = [], [], [], 0
        self._chunks = []


def _attached(
    pending: list[tuple[str, dict[str, Any]]],
) -> list[tuple[str, dict[str, Any]]]:
    """The events with their rows (let go after their mail) in the session again: one
    instance per row, the latest (a ticket two mails changed is shown as it is now)."""
    attached: list[tuple[str, dict[str, Any]]] = []
    for name, kwargs in reversed(pending):
        attached.append((name, {key: _attach(value) for key, value in kwargs.items()}))
    return attached[::-1]


def _attach(value: Any) -> Any:
    state = inspect(value, raiseerr=False)
    if not isinstance(state, InstanceState) or state.key is None:
        return value
    attached = db.session.identity_map.get(state.key)
    if attached is not None:
        return attached
    try:  # the row itself, when nothing it refers to is attached as another instance
        db.session.add(value)
        return value
    except InvalidRequestError:
        return db.session.merge(value, load=False)
