"""Errors the services raise; every entrance (UI, API, CLI, mail) turns them into a clear answer."""

from __future__ import annotations


class HelpdeskError(Exception):
    """Base of every error a user can cause."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(HelpdeskError):
    """One or more fields are wrong. ``errors`` maps each field name to what is wrong with it."""

    status_code = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {text}" for field, text in errors.items()))
        self.errors = errors


class TooLarge(ValidationError):
    """A field or file is over its configured size limit (HTTP 413)."""

    status_code = 413


class NotFound(HelpdeskError):
    """The thing asked for does not exist (or the asker may not know that it does)."""

    status_code = 404


class Conflict(HelpdeskError):
    """Someone else changed the record since the caller read it; nothing was saved."""

    status_code = 409
