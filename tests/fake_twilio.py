"""A local HTTP server speaking the Twilio Messages API, for tests and benchmarks.

``POST /2010-04-01/Accounts/{sid}/Messages.json`` with HTTP Basic auth answers 201 and a JSON
message with a fresh ``sid``, and records the request (form fields, auth). On demand (``fail``)
the next answers are a 400 with a Twilio error code, a 429, a 500, or a time-out (the answer
comes after the client gave up). A real server on 127.0.0.1, in a thread.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

PATH_PREFIX = "/2010-04-01/Accounts/"


@dataclass
class Recorded:
    """One request the fake received."""

    path: str
    form: dict[str, str]
    auth: tuple[str, str] | None


@dataclass
class Failure:
    """How to answer instead of 201: ``kind`` is ``"400"`` (with ``code``, ``message``),
    ``"429"``, ``"500"`` or ``"timeout"`` (stall ``delay`` seconds before answering, so the
    client gives up; the message is not taken)."""

    kind: str
    code: int = 21211
    message: str = "The 'To' number is not a valid phone number."
    delay: float = 1.0


@dataclass
class FakeTwilio:
    """The server's state: requests recorded, failures to serve next, the gate of time-outs."""

    account_sid: str = "AC" + "0" * 32
    auth_token: str = "test-auth-token"
    requests: list[Recorded] = field(default_factory=list)
    failures: deque = field(default_factory=deque)
    # A sticky failure: served to every request until cleared (the gateway "down").
    down: Failure | None = None
    url: str = ""
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _release: threading.Event = field(default_factory=threading.Event)

    def fail(self, kind: str, times: int = 1, **details: Any) -> None:
        """Answer the next ``times`` requests with failure ``kind``."""
        for _ in range(times):
            self.failures.append(Failure(kind, **details))

    def next_answer(
        self, form: dict[str, str], path: str, auth
    ) -> tuple[int, dict[str, Any], float]:
        """The status, JSON body and delay for one request (recorded when it is accepted)."""
        with self._lock:
            failure = self.down or (self.failures.popleft() if self.failures else None)
            if failure is None:
                sid = f"SM{next(self._ids):032d}"
                self.requests.append(Recorded(path, form, auth))
                body = {
                    "sid": sid,
                    "status": "queued",
                    "to": form.get("To"),
                    "body": form.get("Body"),
                }
                return 201, body, 0.0
        if failure.kind == "timeout":  # stalled before taking the message
            return 504, {"code": 20504, "message": "Gateway Timeout", "status": 504}, failure.delay
        if failure.kind == "400":
            error = {"code": failure.code, "message": failure.message, "status": 400}
            return 400, error, 0.0
        if failure.kind == "429":
            return 429, {"code": 20429, "message": "Too Many Requests", "status": 429}, 0.0
        return 500, {"code": 20500, "message": "Internal Server Error", "status": 500}, 0.0

    @property
    def sent(self) -> list[dict[str, str]]:
        """The forms of the messages accepted, in order."""
        return [r.form for r in self.requests]


def _handler(state: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go in two writes

        def log_message(self, *args: Any) -> None:  # quiet
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            if not (self.path.startswith(PATH_PREFIX) and self.path.endswith("/Messages.json")):
                self._answer(404, {"code": 20404, "message": "Not found", "status": 404})
                return
            auth = _basic(self.headers.get("Authorization", ""))
            if auth != (state.account_sid, state.auth_token):
                self._answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
                return
            status, body, delay = state.next_answer(dict(parse_qsl(raw)), self.path, auth)
            if delay:
                state._release.wait(delay)
            self._answer(status, body)

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up (a time-out)
                self.wfile.write(data)

    return Handler


def _basic(header: str) -> tuple[str, str] | None:
    if not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password


class FakeTwilioServer:
    """``with FakeTwilioServer() as fake:`` serves on ``fake.url`` until the block ends."""

    def __init__(self) -> None:
        self.state = FakeTwilio()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.server.daemon_threads = True
        self.state.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeTwilio:
        self.thread.start()
        return self.state

    def __exit__(self, *exc: object) -> None:
        self.state._release.set()  # let a held time-out answer end
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
