"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, on a free port, keeping every message
it receives. It can be stopped and started again on the same port (the "server is down" case).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    """One delivery: the envelope and the message as bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes

    def parsed(self) -> EmailMessage:
        """The message parsed the way a modern mail client would."""
        return message_from_bytes(self.content, policy=policy.default)


class _Collector:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.content)
            )
        return "250 Message accepted for delivery"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    """``start()``/``stop()`` an aiosmtpd server; ``received`` lists what it got."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.port = free_port()
        self._collector = _Collector()
        self._controller: Controller | None = None

    def start(self) -> None:
        """Listen (again) on this server's port."""
        self._controller = Controller(
            self._collector, hostname=self.host, port=self.port, decode_data=False
        )
        self._controller.start()

    def stop(self) -> None:
        """Stop listening: connections are refused until ``start()``."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def received(self) -> list[Received]:
        with self._collector.lock:
            return list(self._collector.received)

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, parsed."""
        return [item.parsed() for item in self.received]

    def config(self) -> dict[str, Any]:
        """The app settings that send mail here."""
        return {"MAIL_SERVER": self.host, "MAIL_PORT": self.port, "MAIL_SUPPRESS_SEND": False}
