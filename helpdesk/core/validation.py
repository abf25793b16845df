"""Turning untrusted input into clean values, or a ``ValidationError`` naming the field."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask import current_app

from helpdesk.core.errors import TooLarge, ValidationError

# Control characters other than tab and newline never belong in text (PostgreSQL refuses NUL).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(
    value: Any, field: str, *, max_length: int, required: bool = True, multiline: bool = False
) -> str:
    """Strip, normalise newlines and control characters, check presence and length."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError({field: "must be text"})
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    if not multiline:
        text = " ".join(text.split())
    text = unicodedata.normalize("NFC", text).strip()
    if required and not text:
        raise ValidationError({field: "is required"})
    if len(text) > max_length:
        raise ValidationError({field: f"is too long (at most {max_length} characters)"})
    return text


def clean_body(value: Any, field: str = "body") -> str:
    """A message body: required, multi-line, at most ``MAX_BODY_LENGTH`` (413 beyond)."""
    limit = current_app.config["MAX_BODY_LENGTH"]
    if isinstance(value, str) and len(value) > limit:
        raise TooLarge({field: f"is too long (at most {limit} characters)"})
    return clean_text(value, field, max_length=limit, multiline=True)


def clean_email(value: Any, field: str = "email") -> str:
    """A syntactically valid address, as written (no DNS look-up)."""
    text = clean_text(value, field, max_length=254)
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError({field: f"is not a valid e-mail address ({exc})"}) from None
    return result.normalized


def email_key(email: str) -> str:
    """What makes two addresses the same person: the address lower-cased."""
    return email.strip().lower()


def clean_phone(value: Any, field: str = "phone") -> str | None:
    """An optional phone number, stored in E.164 (``+3545551234``)."""
    text = clean_text(value, field, max_length=40, required=False)
    if not text:
        return None
    region = current_app.config.get("PHONE_DEFAULT_REGION")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValidationError({field: "is not a phone number"}) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError({field: "is not a valid phone number"})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def clean_choice(value: Any, field: str, choices: Iterable[str]) -> str:
    """One of the allowed values."""
    allowed = tuple(choices)
    if value not in allowed:
        raise ValidationError({field: f"must be one of: {', '.join(allowed)}"})
    return value


def clean_page(value: Any, field: str = "page") -> int:
    """A 1-based page number."""
    if value in (None, ""):
        return 1
    try:
        page = int(value)
    except (TypeError, ValueError):
        raise ValidationError({field: "must be a whole number"}) from None
    if page < 1 or page > 100_000:
        raise ValidationError({field: "must be between 1 and 100000"})
    return page


def clean_per_page(value: Any, field: str = "per_page") -> int:
    """A page size up to ``MAX_PAGE_SIZE``."""
    if value in (None, ""):
        return current_app.config["PAGE_SIZE"]
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise ValidationError({field: "must be a whole number"}) from None
    limit = current_app.config["MAX_PAGE_SIZE"]
    if size < 1 or size > limit:
        raise ValidationError({field: f"must be between 1 and {limit}"})
    return size
