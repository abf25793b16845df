"""Test support for plugins: the example plugin as an entry point, and the ``hooks`` marker.

``@pytest.mark.hooks("helpdesk_x", ...)`` declares that a test makes the core call those hooks
(``@pytest.mark.hooks(every=True)``: every hookspec). With ``HELPDESK_TRACE_HOOKS`` on, every
implementation call is logged; the test fails unless each declared hook was called.
``tests/test_plugins_docs.py`` fails when a hookspec is declared by no test.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from helpdesk import hookspecs

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
HELLO_DIR = EXAMPLES_DIR / "helpdesk_hello"
if str(HELLO_DIR) not in sys.path:
    sys.path.insert(0, str(HELLO_DIR))

# What `pip install examples/helpdesk_hello` registers, without installing it.
HELLO = EntryPoint(name="hello", value="helpdesk_hello", group="helpdesk")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hooks(*names, every=False): the test makes the core call these hooks (checked)"
    )


class HookCalls(logging.Handler):
    """Collects the names of the hooks whose implementations were called (from the trace)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.names: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("hook %s(") and record.args:
            self.names.add(str(record.args[0]))


@pytest.fixture(autouse=True)
def _declared_hooks_are_called(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    marker = request.node.get_closest_marker("hooks")
    if marker is None:
        yield
        return
    monkeypatch.setenv("HELPDESK_TRACE_HOOKS", "1")
    logger = logging.getLogger("helpdesk.plugins")
    calls = HookCalls()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(calls)
    try:
        yield
    finally:
        logger.removeHandler(calls)
        logger.setLevel(level)
    declared = set(marker.args)
    if marker.kwargs.get("every"):
        declared |= {name for name in dir(hookspecs) if name.startswith("helpdesk_")}
    missing = sorted(declared - calls.names)
    assert not missing, f"declared by @pytest.mark.hooks but never called: {missing}"
