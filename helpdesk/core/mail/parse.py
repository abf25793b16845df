"""Turning the bytes of a received mail into what a ticket needs: sender, subject, text,
sanitised HTML, attachments and the Message-IDs that thread it.

Parsing uses the stdlib ``email`` package with ``policy.default``. Nothing a sender writes is
rejected for being odd: unknown charsets are decoded with replacement characters, a multipart
whose boundary is missing is kept as raw text, and every part that is not the text (images,
documents, ``winmail.dat``, forwarded mails) becomes an attachment with a safe name.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import html
import mimetypes
import re
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.parser import BytesParser

import nh3
from flask import current_app

from helpdesk.core.attachments import Upload, content_type_for, safe_filename
from helpdesk.core.mail.addresses import parse_address, parse_addresses, simple_pair

MAX_CACHED_HEADER_CHARS = 1000


class _RememberingRegistry(HeaderRegistry):
    """``policy.default``'s header classes, each parsed ``(name, value)`` remembered: the MIME
    walk asks for the same Content-Type many times and the stdlib parses it afresh each time.
    The parsed headers are read-only, so sharing them changes nothing but the time taken."""

    def __call__(self, name: str, value: str) -> BaseHeader:
        if len(value) > MAX_CACHED_HEADER_CHARS:  # rare, and not worth keeping in memory
            return super().__call__(name, value)
        return _parsed_header(name, value)


_REGISTRY = HeaderRegistry()


@functools.lru_cache(maxsize=4096)
def _parsed_header(name: str, value: str) -> BaseHeader:
    return _REGISTRY(name, value)


POLICY = policy.default.clone(header_factory=_RememberingRegistry())
_PARSER = BytesParser(policy=POLICY)
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
_MBOX_FROM = re.compile(rb"\AFrom [^\r\n]*\r?\n")
# Browsers read a mail labelled Latin-1 or ASCII as Windows-1252 (it is nearly always that).
_CHARSET_ALIASES = {
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-8-i": "iso-8859-8",
    "unknown-8bit": "cp1252",
    "x-unknown": "cp1252",
}
_HTML_BLOCK_END = re.compile(r"(?i)<\s*(br|/p|/div|/tr|/li|/h\d|/blockquote)\b[^>]*>")
MAX_DEPTH = 10


@dataclass
class ParsedMail:
    """A received mail, decoded."""

    raw: bytes
    message: EmailMessage
    message_id: str
    sender: tuple[str, str] | None
    subject: str
    body: str
    body_html: str | None
    attachments: list[Upload]
    references: list[str]  # In-Reply-To first, then References newest first
    cc: list[str] = field(default_factory=list)
    # From an embedded delivery report: the original mail's Message-IDs, failed recipients.
    reported_ids: list[str] = field(default_factory=list)
    failed_recipients: list[str] = field(default_factory=list)


def strip_mbox_line(raw: bytes) -> bytes:
    """``raw`` without the ``From `` line an mbox-style (alias) delivery starts with."""
    return _MBOX_FROM.sub(b"", raw, count=1)


def header_text(msg: Message, name: str) -> str:
    """The first ``name`` header, decoded, cut to ``MAIL_MAX_HEADER_CHARS`` first (so a huge
    or hostile header costs little)."""
    value = _first_raw(msg, name)
    if not value:
        return ""
    try:
        return str(POLICY.header_fetch_parse(name, value))
    except Exception:  # a header the parser chokes on is read as it stands
        return value


def _first_raw(msg: Message, name: str) -> str:
    """The first ``name`` header as it was received, cut to ``MAIL_MAX_HEADER_CHARS``."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return str(value)[: current_app.config["MAIL_MAX_HEADER_CHARS"]]
    return ""


def _address_text(msg: Message, name: str) -> str:
    """An address header's text: as received when it is a plain ``Name <a@b.c>`` (decoding
    would give the same text), else decoded by ``header_text``."""
    value = _first_raw(msg, name)
    if value and simple_pair(value) is not None:
        return value.strip()
    return header_text(msg, name)


def _raw_header(msg: Message, name: str) -> str:
    limit = current_app.config["MAIL_MAX_HEADER_CHARS"]
    values = [str(v)[:limit] for k, v in msg.raw_items() if k.lower() == name.lower()]
    return " ".join(values)


def message_ids(value: str) -> list[str]:
    """The ``<...>`` Message-IDs found in a header value, in order."""
    return _MESSAGE_ID.findall(value or "")


def generated_message_id(raw: bytes) -> str:
    """A stable Message-ID for a mail that has none: the same bytes give the same id."""
    return f"<sha256.{hashlib.sha256(raw).hexdigest()[:48]}@generated.invalid>"


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text from ``data`` in ``charset``; unknown charsets and bad bytes never fail."""
    name = (charset or "utf-8").strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        codecs.lookup(name)
    except LookupError:
        name = "utf-8"
    text = data.decode(name, errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def sanitise_html(markup: str) -> str:
    """HTML safe to show: nh3 keeps formatting, drops scripts, styles and event handlers."""
    return nh3.clean(markup, link_rel="noopener noreferrer nofollow")


def html_to_text(markup: str) -> str:
    """A readable plain-text version of an HTML body (for mail that has no text part)."""
    text = nh3.clean(_HTML_BLOCK_END.sub("\n", markup), tags=set(), clean_content_tags=set())
    lines = (" ".join(html.unescape(line).split()) for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _Collector:
    """Walks the MIME tree, collecting texts, HTML and attachments."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.attachments: list[Upload] = []
        self.reported_ids: list[str] = []
        self.failed: list[str] = []

    def attach(self, filename: str | None, data: bytes, fallback: str) -> None:
        name = safe_filename(filename) if filename else fallback
        self.attachments.append(Upload(name, content_type_for(name), data))

    def walk(self, part: Message, depth: int = 0) -> None:
        ctype = part.get_content_type()
        if depth > MAX_DEPTH:
            self.attach(None, part.as_bytes(), f"part-{len(self.attachments) + 1}.eml")
        elif ctype == "message/delivery-status":
            self.delivery_status(part)
        elif ctype == "message/rfc822" or (ctype.startswith("message/") and part.is_multipart()):
            self.forward(part, depth)
        elif part.get_content_maintype() == "multipart":
            self.multipart(part, ctype, depth)
        else:
            self.leaf(part, ctype)

    def multipart(self, part: Message, ctype: str, depth: int) -> None:
        payload = part.get_payload()
        if not isinstance(payload, list):  # no boundary found: keep what is there as text
            self.texts.append(decode_bytes(_payload_bytes(part), part.get_content_charset()))
            return
        if ctype == "multipart/alternative":
            self.alternative(payload, depth)
            return
        for child in payload:
            self.walk(child, depth + 1)

    def alternative(self, parts: list[Message], depth: int) -> None:
        by_type = {p.get_content_type(): p for p in parts}
        plain, rich = by_type.get("text/plain"), by_type.get("text/html")
        if plain is not None:
            self.texts.append(_text_of(plain))
        if rich is not None:
            self.htmls.append(_text_of(rich))
        if plain is None and rich is None and parts:
            self.walk(parts[-1], depth + 1)  # the richest alternative the sender offered
        for other in parts:
            if other is not plain and other is not rich and other.is_multipart():
                self.walk(other, depth + 1)  # e.g. multipart/related holding inline images

    def leaf(self, part: Message, ctype: str) -> None:
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        if ctype == "text/rfc822-headers":
            headers = _PARSER.parsebytes(_payload_bytes(part), headersonly=True)
            self.reported_ids.extend(message_ids(_raw_header(headers, "Message-ID")))
            self.attach(None, _payload_bytes(part), "original-headers.txt")
        elif ctype == "text/plain" and disposition != "attachment" and not filename:
            self.texts.append(_text_of(part))
        elif ctype == "text/html" and disposition != "attachment" and not filename:
            self.htmls.append(_text_of(part))
        else:
            number = len(self.attachments) + 1
            self.attach(filename, _payload_bytes(part), f"part-{number}{_extension(ctype)}")

    def forward(self, part: Message, depth: int) -> None:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(inner, Message):
            self.attach(part.get_filename(), _payload_bytes(part), "forwarded.eml")
            return
        self.reported_ids.extend(message_ids(_raw_header(inner, "Message-ID")))
        subject = header_text(inner, "Subject") or "forwarded"
        self.attach(f"{subject[:80]}.eml", inner.as_bytes(), "forwarded.eml")
        nested = _Collector()
        nested.walk(inner, depth + 1)
        self.attachments.extend(nested.attachments)
        text = "\n\n".join(nested.texts) or html_to_text("\n".join(nested.htmls))
        heading = "\n".join(
            f"{name}: {header_text(inner, name)}"
            for name in ("From", "Date", "Subject", "To")
            if header_text(inner, name)
        )
        self.texts.append(f"---------- Forwarded message ----------\n{heading}\n\n{text}")

    def delivery_status(self, part: Message) -> None:
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        for block in blocks:
            action = header_text(block, "Action").lower()
            status = header_text(block, "Status")
            recipient = header_text(block, "Final-Recipient") or header_text(
                block, "Original-Recipient"
            )
            if action == "failed" and status.startswith("5") and recipient:
                address = recipient.partition(";")[2].strip() or recipient.strip()
                self.failed.append(address)
        self.attach(None, _payload_bytes(part), "delivery-status.txt")


def _payload_bytes(part: Message) -> bytes:
    """The decoded bytes of a part (undecodable transfer encodings give the raw bytes)."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if data is None:
        payload = part.get_payload()
        if isinstance(payload, list):
            return b"".join(p.as_bytes() for p in payload if isinstance(p, Message))
        data = str(payload or "").encode("utf-8", errors="surrogateescape")
    return data


def _text_of(part: Message) -> str:
    return decode_bytes(_payload_bytes(part), part.get_content_charset())


def _extension(ctype: str) -> str:
    known = {"text/plain": ".txt", "text/html": ".html", "application/ms-tnef": ".dat"}
    if ctype in known:
        return known[ctype]
    return mimetypes.guess_extension(ctype, strict=False) or ".bin"


def parse_mail(raw: bytes) -> ParsedMail:
    """Decode ``raw`` (an RFC 5322 message). Never fails on odd MIME; may raise only on
    input that is not a mail at all."""
    raw = strip_mbox_line(raw)
    message = _PARSER.parsebytes(raw)
    collector = _Collector()
    collector.walk(message)
    htmls = [h for h in collector.htmls if h.strip()]
    body = "\n\n".join(t.strip("\n") for t in collector.texts if t.strip())
    if not body and htmls:
        body = html_to_text("\n".join(htmls))
    ids = message_ids(_raw_header(message, "Message-ID"))
    references = message_ids(_raw_header(message, "In-Reply-To"))
    references += list(reversed(message_ids(_raw_header(message, "References"))))
    cc_values = [_address_text(message, name) for name in ("To", "Cc")]
    return ParsedMail(
        raw=raw,
        message=message,
        message_id=ids[0] if ids else generated_message_id(raw),
        sender=parse_address(_address_text(message, "From")),
        subject=" ".join(header_text(message, "Subject").split()),
        body=body,
        body_html=sanitise_html("\n".join(htmls)) if htmls else None,
        attachments=collector.attachments,
        references=list(dict.fromkeys(references)),
        cc=[address for _, address in parse_addresses([v for v in cc_values if v])],
        reported_ids=collector.reported_ids,
        failed_recipients=collector.failed,
    )
