"""Mail that could not become a ticket change, kept whole to be looked at and processed again.

The bytes go to ``MAIL_QUARANTINE_DIR`` (written atomically) and a row to ``mail_quarantine``;
nothing a sender sent is ever thrown away because it was odd, too big or arrived too fast.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from helpdesk.core.models import MailQuarantine, utcnow
from helpdesk.extensions import db

REASONS = {
    "too_large": "larger than MAIL_MAX_MESSAGE_BYTES",
    "unparsable": "the mail could not be read",
    "no_sender": "no valid From address",
    "rate_limited": "the sender sent more than MAIL_SENDER_RATE_LIMIT allows",
    "rejected": "the ticket change was refused",
    "error": "an unexpected error while processing it",
}


def directory() -> Path:
    """Where quarantined mail is kept (``MAIL_QUARANTINE_DIR``, default instance/quarantine)."""
    configured = current_app.config.get("MAIL_QUARANTINE_DIR")
    return Path(configured or Path(current_app.instance_path) / "quarantine")


def path_of(item: MailQuarantine) -> Path:
    """The file holding the quarantined mail's bytes."""
    return directory() / item.storage_key


def _write(raw: bytes, digest: str) -> str:
    key = f"{utcnow():%Y%m%d%H%M%S}-{digest[:16]}-{secrets.token_hex(4)}.eml"
    target = directory() / key
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    with open(partial, "wb") as handle:
        handle.write(raw)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, target)
    return key


def hold(
    raw: bytes,
    reason: str,
    *,
    detail: str = "",
    message_id: str | None = None,
    sender: str = "",
    subject: str = "",
) -> MailQuarantine:
    """Keep ``raw`` in quarantine (once: the same bytes already held are not kept twice)."""
    db.session.rollback()
    digest = hashlib.sha256(raw).hexdigest()
    existing = db.session.scalar(
        select(MailQuarantine).where(
            MailQuarantine.sha256 == digest, MailQuarantine.status == "held"
        )
    )
    if existing is not None:
        existing.reason, existing.detail = reason, detail[:2000]
        db.session.commit()
        return existing
    item = MailQuarantine(
        reason=reason,
        detail=detail[:2000],
        message_id=(message_id or "")[:255] or None,
        sender=sender[:254],
        subject=subject[:200],
        size=len(raw),
        sha256=digest,
        storage_key=_write(raw, digest),
    )
    db.session.add(item)
    db.session.commit()
    current_app.logger.warning("mail quarantined (%s) as #%s", reason, item.id)
    return item


def held(limit: int = 200) -> list[MailQuarantine]:
    """The mail still waiting in quarantine, newest first."""
    query = (
        select(MailQuarantine)
        .where(MailQuarantine.status == "held")
        .order_by(MailQuarantine.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))


def read(item: MailQuarantine) -> bytes:
    """The quarantined mail's bytes."""
    return path_of(item).read_bytes()


def mark_done(item: MailQuarantine) -> None:
    """Record that ``item`` was processed (its file is kept until an admin deletes it)."""
    item.status = "done"
    item.processed_at = utcnow()
    db.session.commit()
