"""Our Message-IDs carry the ticket they belong to, signed, so a reply threads to its ticket
and a forged reference cannot attach mail to someone else's ticket.

Form: ``<hd.<ticket id>.<message key>.<signature>@<domain>>``, where the signature is an HMAC
(SHA-256, truncated) over the ticket id and message key with the app's secret key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from flask import current_app

_OURS = re.compile(r"<?hd\.(\d{1,10})\.([A-Za-z0-9_-]{1,40})\.([0-9a-f]{24})@([^>\s]+)>?")


def _signature(ticket_id: int, key: str) -> str:
    secret = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(secret, f"helpdesk.mail:{ticket_id}:{key}".encode(), hashlib.sha256)
    return digest.hexdigest()[:24]


def mail_domain() -> str:
    """The domain of our Message-IDs: ``MAIL_MESSAGE_ID_DOMAIN``, else the sender's domain."""
    configured = current_app.config.get("MAIL_MESSAGE_ID_DOMAIN")
    if configured:
        return configured
    sender = str(current_app.config.get("MAIL_DEFAULT_SENDER") or "helpdesk@localhost")
    return sender.rpartition("@")[2].strip(">").strip() or "localhost"


def make_message_id(ticket_id: int, key: str | None = None) -> str:
    """A new signed Message-ID for a mail about ``ticket_id`` (``key`` makes it unique and
    stable: pass the same key when a send is retried)."""
    key = key or secrets.token_urlsafe(9)
    return f"<hd.{ticket_id}.{key}.{_signature(ticket_id, key)}@{mail_domain()}>"


def ticket_id_from_message_id(value: str) -> int | None:
    """The ticket a Message-ID of ours names, if its signature is valid; else ``None``."""
    match = _OURS.search(value or "")
    if match is None:
        return None
    ticket_id, key, signature = int(match.group(1)), match.group(2), match.group(3)
    if not hmac.compare_digest(signature, _signature(ticket_id, key)):
        return None
    return ticket_id
