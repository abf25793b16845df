"""Fixed-window rate limits kept in the database, so every worker and host shares them.

A limit is a setting of the form ``"count/seconds"`` (e.g. ``PORTAL_RATE_LIMIT = "10/60"``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from flask import current_app
from sqlalchemy import select, text

from helpdesk.config import parse_rate
from helpdesk.core.errors import HelpdeskError
from helpdesk.core.models import RateLimitHit
from helpdesk.extensions import db

PRUNE_AFTER_SECONDS = 86_400


class RateLimited(HelpdeskError):
    """Too many attempts; ``retry_after`` says in how many seconds the window ends."""

    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many requests. Try again in {retry_after} seconds.")
        self.retry_after = retry_after


def _window(setting: str) -> tuple[int, int, int]:
    count, seconds = parse_rate(current_app.config[setting])
    now = int(time.time())
    return count, now - now % seconds, seconds - now % seconds


def check(key: str, setting: str) -> None:
    """Raise ``RateLimited`` if ``key`` has used up the limit named by ``setting``."""
    limit, start, retry_after = _window(setting)
    used = db.session.scalar(
        select(RateLimitHit.count).where(
            RateLimitHit.key == key, RateLimitHit.window_start == start
        )
    )
    if used is not None and used >= limit:
        raise RateLimited(retry_after)


def hit(key: str, setting: str, *, commit: bool = True) -> None:
    """Count one use of ``key`` and commit it at once (it must outlive a failed request), or,
    with ``commit=False``, in the caller's transaction (which then commits it with its work).

    Raises ``RateLimited`` when this use goes over the limit.
    """
    limit, start, retry_after = _window(setting)
    used = db.session.execute(
        text(
            "INSERT INTO rate_limit_hits (key, window_start, count) VALUES (:key, :start, 1) "
            "ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limit_hits.count + 1 "
            "RETURNING count"
        ),
        {"key": key[:200], "start": start},
    ).scalar_one()
    if random.random() < current_app.config["RATE_LIMIT_PRUNE_PROBABILITY"]:
        db.session.execute(
            text("DELETE FROM rate_limit_hits WHERE window_start < :old"),
            {"old": start - PRUNE_AFTER_SECONDS},
        )
    if commit:
        db.session.commit()
    if used > limit:
        raise RateLimited(retry_after)


def limit_and_counts(keys: Sequence[str], setting: str) -> tuple[int, dict[str, int]]:
    """The limit named by ``setting`` and how many uses each of ``keys`` has in the current
    window (keys not yet used are left out): one query for many keys."""
    limit, start, _ = _window(setting)
    wanted = [key[:200] for key in keys]
    if not wanted:
        return limit, {}
    rows = db.session.execute(
        select(RateLimitHit.key, RateLimitHit.count).where(
            RateLimitHit.key.in_(wanted), RateLimitHit.window_start == start
        )
    )
    return limit, {key: count for key, count in rows}


def hit_many(keys: Sequence[str], setting: str) -> None:
    """Count one use of each of ``keys`` (distinct) in the caller's transaction, in one
    statement run for all of them; the caller checked ``limit_and_counts`` first."""
    if not keys:
        return
    _, start, _ = _window(setting)
    db.session.execute(_UPSERT_ONE, [{"key": key[:200], "start": start} for key in keys])


_UPSERT_ONE = text(
    "INSERT INTO rate_limit_hits (key, window_start, count) VALUES (:key, :start, 1) "
    "ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limit_hits.count + 1"
)
