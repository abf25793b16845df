"""Mail that a machine sent: auto-replies, bounces, lists, our own mail coming back.

Such mail is stored on its ticket when it belongs to one, but never opens a ticket and is
never answered automatically. A per-sender rate limit stops a loop with an auto-responder that
does not say what it is.
"""

from __future__ import annotations

import re
from email.message import EmailMessage

from flask import current_app

from helpdesk.core import ratelimit
from helpdesk.core.mail.ids import mail_domain
from helpdesk.core.mail.parse import header_text

_DAEMONS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailer_daemon)$", re.IGNORECASE)
_BULK = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})


def _header(msg: EmailMessage, name: str) -> str:
    return header_text(msg, name).strip()


def _names_us(value: str) -> bool:
    ours = str(current_app.config.get("MAIL_DEFAULT_SENDER") or "").lower()
    value = value.lower()
    return bool(value) and ((bool(ours) and ours in value) or f"@{mail_domain().lower()}" in value)


def automated_reason(msg: EmailMessage, sender: str | None) -> str | None:
    """Why ``msg`` was sent by a machine (e.g. ``"auto-submitted"``), or ``None`` for a person."""
    auto_submitted = _header(msg, "Auto-Submitted").lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return "auto-submitted"
    if _header(msg, "Precedence").lower() in _BULK:
        return "precedence"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"):
        if _header(msg, name):
            return name.lower()
    if any(_names_us(value) for value in msg.get_all("X-Loop", [])):
        return "x-loop"
    if _header(msg, "X-Failed-Recipients"):
        return "bounce"
    if msg.get_content_type() == "multipart/report":
        return "report"
    if "Return-Path" in msg and _header(msg, "Return-Path").strip("<> \t") == "":
        return "null-sender"
    local = (sender or "").rpartition("@")[0]
    if _DAEMONS.match(local):
        return "mailer-daemon"
    return None


def over_sender_limit(address_key: str) -> bool:
    """Count one mail from ``address_key``; whether it is past ``MAIL_SENDER_RATE_LIMIT``.

    The count is written in the caller's transaction, so it is committed with the mail's ticket
    change (one commit per mail); a mail that is not kept is not counted."""
    try:
        ratelimit.hit(f"mail-in:{address_key}", "MAIL_SENDER_RATE_LIMIT", commit=False)
    except ratelimit.RateLimited:
        return True
    return False


def may_answer_automatically(address_key: str) -> bool:
    """Whether an automatic answer (an acknowledgement) may go to ``address_key`` now: at most
    ``MAIL_AUTO_REPLY_RATE_LIMIT`` per address, so a loop with an auto-responder stops."""
    try:
        ratelimit.hit(f"mail-auto:{address_key}", "MAIL_AUTO_REPLY_RATE_LIMIT")
    except ratelimit.RateLimited:
        current_app.logger.info("no automatic answer to %s: rate limit", address_key)
        return False
    return True
