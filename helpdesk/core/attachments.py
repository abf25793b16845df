"""Files sent with messages: checked for size, named safely, stored under a random key.

The original name is kept only for display and for ``Content-Disposition``; on disk a file is
``ATTACHMENTS_DIR/ab/<random key>``, so no name a sender chooses can reach the file system.
Only a short list of image types is ever shown inline; everything else is a download.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from werkzeug.datastructures import FileStorage

from helpdesk.core.errors import TooLarge, ValidationError
from helpdesk.core.models import Attachment, Message
from helpdesk.extensions import db

INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
MAX_FILENAME_BYTES = 200


@dataclass(frozen=True)
class Upload:
    """A file received and checked, not yet stored."""

    filename: str
    content_type: str
    data: bytes


def safe_filename(name: str | None) -> str:
    """A display name with no path, no control characters and no leading dots.

    Unlike ``werkzeug.utils.secure_filename`` it keeps non-ASCII letters, so a Hebrew or
    Greek file name stays readable.
    """
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE_CHARS.sub("_", name).strip().lstrip(".").strip()
    while len(name.encode("utf-8")) > MAX_FILENAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:-1] + dot + ext) if stem and len(ext) < 16 else name[:-1]
    return name or "attachment"


def content_type_for(filename: str) -> str:
    """The type served for a file, guessed from its (safe) name, never trusted from a sender."""
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or "application/octet-stream"


def read_uploads(files: Iterable[FileStorage]) -> list[Upload]:
    """Read submitted files (empty file inputs are skipped), enforcing count and size limits."""
    limit = current_app.config["MAX_ATTACHMENT_SIZE"]
    uploads: list[Upload] = []
    for storage in files:
        if storage is None or not storage.filename:
            continue
        data = storage.stream.read(limit + 1)
        if len(data) > limit:
            raise TooLarge(
                {"attachments": f"{safe_filename(storage.filename)} is larger than {limit} bytes"}
            )
        filename = safe_filename(storage.filename)
        uploads.append(Upload(filename, content_type_for(filename), data))
    check_count(uploads)
    return uploads


def check_count(uploads: list[Upload]) -> None:
    """Refuse more files than ``MAX_ATTACHMENTS``."""
    most = current_app.config["MAX_ATTACHMENTS"]
    if len(uploads) > most:
        raise ValidationError({"attachments": f"at most {most} files may be attached"})


def storage_path(storage_key: str) -> Path:
    """Where the bytes of an attachment live."""
    return Path(current_app.config["ATTACHMENTS_DIR"]) / storage_key[:2] / storage_key


def store(message: Message, uploads: Iterable[Upload]) -> list[Attachment]:
    """Write each upload to disk (atomically) and add its row to the session."""
    rows = []
    for upload in uploads:
        key = secrets.token_hex(20)
        path = storage_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(upload.data)
        os.replace(partial, path)
        row = Attachment(
            message_id=message.id,
            ticket_id=message.ticket_id,
            filename=upload.filename,
            content_type=upload.content_type,
            size=len(upload.data),
            sha256=hashlib.sha256(upload.data).hexdigest(),
            storage_key=key,
        )
        db.session.add(row)
        rows.append(row)
    return rows


def served_inline(attachment: Attachment) -> bool:
    """Whether a browser may show the file itself rather than download it."""
    return attachment.content_type in INLINE_TYPES
