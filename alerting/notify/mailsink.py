"""An embedded mail sink for the demo and the tests: a real SMTP server (aiosmtpd) that keeps every mail as a file.

Each accepted mail is written as ``NNNNNN.eml`` under ``directory`` (readable
with any mail client) before the server answers 250, so what the sink has
acknowledged survives its own restart; ``count`` continues from the files
already there. It runs on the caller's event loop; ``port=0`` lets the kernel
choose a free port (``.port`` tells which).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from monitor.logs import fields

log = logging.getLogger("alerting.notify.mailsink")


class MailSink:
    def __init__(self, directory: Path | str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self.count = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.count = len(self._files())
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="jukimon-mailsink", loop=loop), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("mail sink listening", extra=fields(address=f"{self.host}:{self.port}", directory=self.directory))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> MailSink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd)
        """aiosmtpd's hook: store the mail, then acknowledge it."""
        self.count += 1
        (self.directory / f"{self.count:06d}.eml").write_bytes(envelope.original_content or b"")
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        """Every stored mail, oldest first, parsed (``msg["Subject"]`` is the decoded text)."""
        return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
                for path in self._files()]

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("*.eml"))
