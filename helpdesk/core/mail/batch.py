"""Many received mails in one database transaction, each in its own savepoint.

``helpdesk mail fetch`` commits mail a batch at a time rather than once per mail. While a
batch is open, ``db.session`` is a session joined to the batch's transaction in savepoint
mode: what the services commit for one mail releases that mail's savepoint, and what they roll
back (a mail refused or failing) undoes that mail alone, which then goes to the quarantine
while the batch goes on. Only after the batch's transaction has committed are the events of
its changes fired and its mails removed from the mailbox, so a crash or a database error in
the middle loses nothing: the next run reads the same mails, recognised by their Message-IDs.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import Connection, RootTransaction
from sqlalchemy.orm import InstanceState, Session

from helpdesk.core import events
from helpdesk.core.mail.ingest import Outcome, ingest
from helpdesk.extensions import db

Done = Callable[[], None]


class MailBatch:
    """Ingest mails into batches of at most ``max_mails`` mails or ``max_bytes`` bytes; use
    as a context manager (leaving it normally commits the last batch, an exception drops it)."""

    def __init__(self, *, max_mails: int, max_bytes: int) -> None:
        self.max_mails = max(1, max_mails)
        self.max_bytes = max_bytes
        self._connection: Connection | None = None
        self._transaction: RootTransaction | None = None
        self._previous: Any = None
        self._events: list[tuple[str, dict[str, Any]]] = []
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
        if exc_type is None:
            self.commit()
        else:
            self._drop()

    def ingest(self, raw: bytes, done: Done) -> Outcome:
        """Ingest one mail in the open batch (opening one if needed); ``done`` (removing
        the mail from its mailbox) is called once the batch is committed."""
        if self._connection is None:
            self._open()
        outcome = ingest(raw)
        self._events += events.take()  # a mail rolled back had its own events dropped
        db.session.rollback()  # what a mail left uncommitted (a lookup's savepoint) goes
        # Each mail starts from an empty identity map, reading rows afresh as a mail of its
        # own would (and the commits of a batch stay cheap: nothing left to expire).
        db.session.expunge_all()
        self._dones.append(done)
        self._bytes += len(raw)
        if len(self._dones) >= self.max_mails or self._bytes >= self.max_bytes:
            self.commit()
        return outcome

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
        """Commit the open batch, then fire its events and remove its mails from the mailbox."""
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
        self._events, self._dones, self._bytes = [], [], 0


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
    return db.session.identity_map.get(state.key) or db.session.merge(value, load=False)
