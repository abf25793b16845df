"""Helpers for the CSV exports reports offer."""

from __future__ import annotations

# A cell starting with one of these is run as a formula by spreadsheet programs.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """``text`` as a CSV cell a spreadsheet will not run as a formula (a leading quote)."""
    return "'" + text if text[:1] in FORMULA_STARTS else text
