"""A local HTTP server speaking the Twilio Messages API, for tests and benchmarks.

``POST /2010-04-01/Accounts/{sid}/Messages.json`` with HTTP Basic auth answers 201 and a JSON
message with a fresh ``sid``, and records the request (form fields, auth). On demand (``fail``)
the next answers are a 400 with a Twilio error code, a 429, a 500, or a time-out (the answer
comes after the client gave up). A real server on 127.0.0.1, in a thread
(``FakeTwilioServer``), or in a process of its own (``FakeTwilioProcess``, as a real gateway
is: the benchmark uses it, so the server does not share the worker's interpreter).
``GET /_fake/count`` answers how many messages it accepted.

    .venv/bin/python -m tests.fake_twilio     # prints its URL, serves until stdin closes
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import subprocess
import sys
import threading
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

PATH_PREFIX = "/2010-04-01/Accounts/"
COUNT_PATH = "/_fake/count"
ROOT = Path(__file__).resolve().parent.parent


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

        def do_GET(self) -> None:
            if self.path != COUNT_PATH:
                self._answer(404, {"code": 20404, "message": "Not found", "status": 404})
                return
            with state._lock:
                accepted = len(state.requests)
            self._answer(200, {"accepted": accepted})

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


class FakeTwilioProcess:
    """``with FakeTwilioProcess() as fake:`` serves the fake from a process of its own on
    ``fake.url`` (with ``account_sid`` and ``auth_token`` as ``FakeTwilio``'s) until the block
    ends; ``fake.accepted()`` asks it how many messages it took."""

    def __init__(self) -> None:
        self.account_sid = FakeTwilio.account_sid
        self.auth_token = FakeTwilio.auth_token
        self.url = ""
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> FakeTwilioProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_twilio"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = (self.process.stdout.readline() if self.process.stdout else "").strip()
        if not self.url:
            self.__exit__()
            raise RuntimeError("the fake Twilio server did not start")
        return self

    def accepted(self) -> int:
        """How many messages the server accepted so far."""
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1
        with direct.open(self.url + COUNT_PATH, timeout=10) as answer:
            return int(json.load(answer)["accepted"])

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        if self.process.stdin:
            self.process.stdin.close()  # the server's cue to stop
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self.process = None


def main() -> None:
    """Serve until standard input closes, after printing the URL (``FakeTwilioProcess``)."""
    with FakeTwilioServer() as state:
        print(state.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
