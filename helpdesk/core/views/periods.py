"""The period a report page covers, read from its ``from``/``to`` query arguments."""

from __future__ import annotations

from datetime import date, timedelta

from flask import request
from flask_babel import gettext as _


def report_period(default_days: int = 365) -> tuple[date, date, dict[str, str]]:
    """``(start, end, errors)`` from ``from``/``to`` (``YYYY-MM-DD``), by default the
    ``default_days`` up to today. A malformed date falls back to its default and is named in
    ``errors``, as is an end before the start, so the page can show what was wrong."""
    today = date.today()
    errors: dict[str, str] = {}
    found: dict[str, date] = {}
    for name, fallback in (("from", today - timedelta(days=default_days)), ("to", today)):
        raw = request.args.get(name, "")
        try:
            found[name] = date.fromisoformat(raw) if raw else fallback
        except ValueError:
            errors[name] = _("must be a date (YYYY-MM-DD)")
            found[name] = fallback
    if found["from"] > found["to"]:
        errors["to"] = _("must not be before the start")
    return found["from"], found["to"], errors
