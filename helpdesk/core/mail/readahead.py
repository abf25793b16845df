"""Received mail parsed ahead, in a helper process, while this one writes.

Parsing and cleaning a mail (the stdlib's MIME parser, nh3, address validation) needs no
database and is about a third of what storing it costs. ``helpdesk mail fetch`` hands the mails
of a batch to a helper process in chunks as it takes them, so that when the batch stores them
(and while it writes the first runs) the rest are being parsed on another CPU.

The helpers are forked from this process: they have the app and its settings and touch no
database connection (a forked process must not use its parent's). A helper that fails, dies
or takes longer than ``MAIL_FETCH_PARSE_TIMEOUT`` seconds for a chunk is given up and that
chunk, and every later one, is parsed here instead: the outcome is the same, only slower.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult, Pool
from typing import Any

from flask import Flask, current_app

from helpdesk.config import ConfigError
from helpdesk.core.mail.bulk import Plain, receive


def processes_wanted(config: Any) -> int:
    """The ``MAIL_FETCH_PARSE_PROCESSES`` setting; ``None`` means one helper when this
    machine has more than one CPU, else none."""
    wanted = config["MAIL_FETCH_PARSE_PROCESSES"]
    if wanted is None:
        return 1 if (os.cpu_count() or 1) > 1 else 0
    if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < 0:
        raise ConfigError(
            f"MAIL_FETCH_PARSE_PROCESSES must be a whole number ≥ 0 or null, not {wanted!r}"
        )
    return wanted


@dataclass
class Chunk:
    """Mails handed over together, and their parsing when a helper took it."""

    raws: Sequence[bytes]
    parsing: AsyncResult | None = None


class ParseAhead:
    """``bulk.receive`` for chunks of mails, in ``processes`` helpers (none: here)."""

    def __init__(self, processes: int, timeout: float) -> None:
        self.processes = processes
        self.timeout = timeout
        self._pool: Pool | None = None

    def submit(self, raws: Sequence[bytes]) -> Chunk:
        """Start parsing ``raws`` in a helper (the first call starts the helpers)."""
        if self.processes < 1:
            return Chunk(raws)
        if self._pool is None:
            # What exists now is left out of the helpers' garbage collections: scanning it
            # would copy every page they share with this process (a slow first chunk).
            gc.freeze()
            try:
                self._pool = multiprocessing.get_context("fork").Pool(
                    self.processes,
                    initializer=_enter_app,
                    initargs=(current_app._get_current_object(),),  # type: ignore[attr-defined]
                )
            finally:
                gc.unfreeze()
        return Chunk(raws, self._pool.apply_async(_receive_all, (list(raws),)))

    def ready(self, chunk: Chunk) -> bool:
        """Whether ``results`` would answer at once (or parse here)."""
        return chunk.parsing is None or self._pool is None or chunk.parsing.ready()

    def results(self, chunk: Chunk) -> list[Plain | None]:
        """What ``bulk.receive`` gives for each mail of ``chunk``, in order (parsed here if
        the helpers were given up since it was handed over)."""
        if chunk.parsing is not None and self._pool is not None:
            try:
                return chunk.parsing.get(self.timeout)
            except multiprocessing.TimeoutError:
                current_app.logger.warning(
                    "a mail parsing helper gave no answer in %ss (MAIL_FETCH_PARSE_TIMEOUT): "
                    "parsing here from now on",
                    self.timeout,
                )
                self.close()
                self.processes = 0
        return _receive_all(chunk.raws)

    def close(self) -> None:
        """Stop the helpers (any parsing left undone is not needed any more)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


def _enter_app(app: Flask) -> None:
    """A helper's start: in the app's context, and Ctrl-C is for the parent to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    app.app_context().push()


def _receive_all(raws: Sequence[bytes]) -> list[Plain | None]:
    return [receive(raw) for raw in raws]
