"""Phone numbers (parsed with ``phonenumbers``, stored in E.164), the customer's time zone from
the number, and quiet hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneNumberType, timezone

# Types that take an SMS; other valid numbers (fixed lines, toll-free, ...) are "landline".
TEXTABLE = (
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.PERSONAL_NUMBER,
)
MAX_RAW_LENGTH = 32


@dataclass(frozen=True)
class Phone:
    """A parsed number: ``e164`` (or the raw text when invalid), and why it cannot take an
    SMS (``reason``: ``no_phone``, ``invalid_phone`` or ``landline``; empty when it can)."""

    e164: str
    reason: str = ""
    time_zone: str | None = None


def parse(raw: str | None, region: str | None) -> Phone:
    """``raw`` read as a phone number (``region`` for numbers without a country code)."""
    text = (raw or "").strip()
    if not text:
        return Phone("", "no_phone")
    try:
        number = phonenumbers.parse(text[:MAX_RAW_LENGTH], region)
    except phonenumbers.NumberParseException:
        return Phone(text[:MAX_RAW_LENGTH], "invalid_phone")
    if not phonenumbers.is_valid_number(number):
        return Phone(text[:MAX_RAW_LENGTH], "invalid_phone")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if phonenumbers.number_type(number) not in TEXTABLE:
        return Phone(e164, "landline")
    zones = [z for z in timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
    return Phone(e164, "", zones[0] if len(zones) == 1 else None)


def e164_or_raw(raw: str | None, region: str | None) -> str:
    """The number in E.164 when it parses, else the text as given (for matching a sender)."""
    text = (raw or "").strip()[:MAX_RAW_LENGTH]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return text
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def quiet_hours(setting: str | None) -> tuple[int, int] | None:
    """``"21-9"`` as ``(21, 9)``; empty or equal hours: ``None`` (no quiet hours)."""
    text = (setting or "").strip()
    if not text:
        return None
    start, _, end = text.partition("-")
    hours = int(start), int(end)
    if not all(0 <= hour <= 23 for hour in hours):
        raise ValueError(f"SURVEYS_QUIET_HOURS {setting!r} must look like '21-9' (hours 0-23)")
    return None if hours[0] == hours[1] else hours


def zone(name: str | None, fallback: str) -> ZoneInfo:
    """The time zone ``name`` (else ``fallback``, else UTC)."""
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def outside_quiet_hours(moment: datetime, tz: ZoneInfo, hours: tuple[int, int] | None) -> datetime:
    """``moment`` if it is outside quiet ``hours`` in ``tz``, else the end of those hours."""
    if hours is None:
        return moment
    start, end = hours
    local = moment.astimezone(tz)
    hour = local.hour
    quiet = (hour >= start or hour < end) if start > end else (start <= hour < end)
    if not quiet:
        return moment
    day = local.date() + timedelta(days=1) if start > end and hour >= start else local.date()
    wake = datetime(day.year, day.month, day.day, end, tzinfo=tz)
    return wake.astimezone(moment.tzinfo)
