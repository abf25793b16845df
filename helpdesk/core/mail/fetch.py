"""Pulling mail from a mailbox: IMAP (IMAPS or STARTTLS) or a local Maildir.

Messages are ingested in batches, one transaction per batch (see ``batch``), and each is
removed from the mailbox only after the batch holding its ticket change committed, so a
crash or a database outage in the middle loses nothing: the next run takes the rest, and a
message handled twice is recognised by its Message-ID.
"""

from __future__ import annotations

import imaplib
import mailbox
import re
import ssl
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app

from helpdesk.core.mail.batch import MailBatch
from helpdesk.core.mail.ingest import Outcome
from helpdesk.core.mail.readahead import processes_wanted

Done = Callable[[], None]


@dataclass
class Summary:
    """What a fetch run did: counts per outcome, and each quarantined mail with its reason."""

    counts: Counter[str] = field(default_factory=Counter)
    quarantined: list[tuple[int, str]] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        """Count one outcome."""
        self.counts[outcome.status] += 1
        if outcome.status == "quarantined" and outcome.quarantine_id is not None:
            self.quarantined.append((outcome.quarantine_id, outcome.reason))


class MaildirSource:
    """The messages of a Maildir (``new/`` and ``cur/``), oldest name first."""

    def __init__(self, path: str | Path) -> None:
        if not (Path(path) / "new").is_dir() or not (Path(path) / "cur").is_dir():
            raise FileNotFoundError(f"{path} is not a Maildir (no new/ and cur/ folders)")
        self.box = mailbox.Maildir(str(path), factory=None, create=False)
        self.keys = sorted(self.box.keys())

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[tuple[bytes, Done]]:
        for key in self.keys:
            try:
                raw = self.box.get_bytes(key)
            except KeyError:  # another fetch took it meanwhile
                continue
            yield raw, lambda key=key: self.box.discard(key)

    def close(self) -> None:
        """Nothing to release for a Maildir."""


def imap_connect(config: dict[str, Any]) -> imaplib.IMAP4:
    """A logged-in IMAP connection from the ``MAIL_IMAP_*`` settings (TLS always: ``ssl``
    for IMAPS, ``starttls`` for port 143; certificates checked against
    ``MAIL_IMAP_CA_FILE`` or the system's)."""
    context = ssl.create_default_context(cafile=config.get("MAIL_IMAP_CA_FILE") or None)
    host, port = config["MAIL_IMAP_HOST"], int(config["MAIL_IMAP_PORT"])
    timeout = config["MAIL_IMAP_TIMEOUT"]
    if config["MAIL_IMAP_SECURITY"] == "starttls":
        connection = imaplib.IMAP4(host, port, timeout=timeout)
        connection.starttls(ssl_context=context)
    elif config["MAIL_IMAP_SECURITY"] == "ssl":
        connection = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=timeout)
    else:
        raise ValueError("MAIL_IMAP_SECURITY must be 'ssl' or 'starttls'")
    connection.login(config["MAIL_IMAP_USER"], config["MAIL_IMAP_PASSWORD"])
    return connection


class ImapSource:
    """The undeleted messages of an IMAP mailbox; each is flagged ``\\Deleted`` once
    ingested, and the mailbox is expunged on ``close``."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.connection = imap_connect(config)
        status, _ = self.connection.select(_quote(config["MAIL_IMAP_MAILBOX"]))
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot open mailbox {config['MAIL_IMAP_MAILBOX']}")
        _, data = self.connection.uid("SEARCH", "UNDELETED")
        self.uids = (data[0] or b"").split()

    def __len__(self) -> int:
        return len(self.uids)

    def __iter__(self) -> Iterator[tuple[bytes, Done]]:
        for uid in self.uids:
            status, data = self.connection.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((item[1] for item in data if isinstance(item, tuple)), None)
            if status != "OK" or raw is None:  # expunged by someone else meanwhile
                continue
            yield raw, lambda uid=uid: self._delete(uid)

    def _delete(self, uid: bytes) -> None:
        status, _ = self.connection.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot flag message {uid!r} as deleted")

    def close(self) -> None:
        """Expunge what was ingested and log out."""
        try:
            self.connection.expunge()
            self.connection.close()
        finally:
            self.connection.logout()


def _quote(name: str) -> str:
    return '"' + re.sub(r'(["\\])', r"\\\1", name) + '"'


def run(source: MaildirSource | ImapSource, on_each: Callable[[], None] = lambda: None) -> Summary:
    """Ingest every message of ``source`` a batch at a time (``MAIL_FETCH_BATCH_SIZE`` mails
    or ``MAIL_FETCH_BATCH_BYTES``), removing each after its batch is committed.

    A database error stops the run (the messages of the open batch stay in the mailbox for
    the next one); mail that cannot be processed is quarantined and the run goes on.
    """
    summary = Summary()
    config = current_app.config
    with MailBatch(
        max_mails=config["MAIL_FETCH_BATCH_SIZE"],
        max_bytes=config["MAIL_FETCH_BATCH_BYTES"],
        on_outcome=summary.add,
        parse_processes=processes_wanted(config),
        parse_timeout=float(config["MAIL_FETCH_PARSE_TIMEOUT"]),
    ) as batch:
        for raw, done in source:
            batch.ingest(raw, done)
            on_each()
    return summary
