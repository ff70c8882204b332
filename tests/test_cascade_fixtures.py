"""Shared parts of the cascade tests: a real SMTP server that can refuse, a simulated clock, configured keys.

The SMTP server is aiosmtpd's ``Controller`` (a real SMTP server on a free loopback
port, in its own thread, so it does not compete with the sender's event loop). It
keeps every accepted message with its envelope recipient, and answers 451 to the
recipients listed in ``refuse`` — a temporary failure, as a full mailbox server gives.
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.policy import compat32
from pathlib import Path
from typing import Any, Iterator

from aiosmtpd.controller import Controller

from alerting.cascade import CascadeSettings, generate_keypair, generate_link_key
from tests.servers import free_port

T0 = 1_638_923_400.0  # 2021-12-08 09:30 JST: the drill of seed 003
BASE_URL = "http://testserver"
LINK = re.compile(rf"{re.escape(BASE_URL)}/cascade/confirm\?token=[A-Za-z0-9_.%-]+")


class SimClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Received:
    recipient: str
    data: bytes

    def header(self, name: str) -> str:
        """A header's raw value (ASCII headers only: the X-Jukimon-* ones)."""
        match = re.search(rb"^" + name.encode() + rb": ([^\r\n]*)", self.data, re.M | re.I)
        return match.group(1).decode() if match else ""

    def link(self) -> str:
        msg = message_from_bytes(self.data, policy=compat32)
        body = msg.get_payload(decode=True).decode("utf-8")  # type: ignore[union-attr]
        found = LINK.search(body)
        assert found, body
        return found.group(0)


@dataclass
class SmtpSink:
    """Handler for aiosmtpd: keeps accepted messages; answers 451 for addresses in ``refuse``."""

    refuse: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802 (aiosmtpd)
                          options: list[str]) -> str:
        if address in self.refuse:
            return "451 4.2.0 mailbox temporarily unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd)
        with self.lock:
            self.received.extend(Received(r, envelope.original_content) for r in envelope.rcpt_tos)
        return "250 Message accepted for delivery"

    def take(self) -> list[Received]:
        """Everything received since the last call."""
        with self.lock:
            taken, self.received = self.received, []
        return taken


@contextlib.contextmanager
def smtp_sink(port: int | None = None) -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.port = port or free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def cascade_settings(tmp_path: Path, smtp_port: int, **changes: Any) -> CascadeSettings:
    """Settings with fresh keys under tmp_path and the test SMTP server."""
    settings = CascadeSettings(
        smtp_port=smtp_port, base_url=BASE_URL, private_key=tmp_path / "keys" / "ed25519.pem",
        public_key=tmp_path / "keys" / "ed25519.pub.pem", link_key=tmp_path / "keys" / "link.key")
    if not settings.private_key.exists():
        generate_keypair(settings.private_key, settings.public_key)
        generate_link_key(settings.link_key)
    settings = replace(settings, **changes)
    settings.check("cascade")
    return settings
