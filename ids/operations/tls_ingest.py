"""Audit records over TLS syslog (RFC 5425): the CS and servers send, the IDS listens on its own port.

Each frame is octet-counted (``LEN SP MSG``) and holds an RFC 5424 message whose MSG is
one audit record in the documented JSON form. The IDS has its own listener rather than
the shared syslog collector's because a rejected message must never be logged or
forwarded with its content: audit messages carry resident codes until ingestion has
pseudonymised them. A malformed frame closes its connection; a malformed message or
record is counted by reason (``stats()``) and logged without content.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import Counter
from typing import Callable

from collectors.syslog.parse import SyslogError, parse_syslog
from ids.operations.alerts import Alert
from ids.operations.replay import OperationsIds
from monitor.logs import fields

log = logging.getLogger("ids.operations.tls_ingest")

MAX_FRAME = 65_536
_LENGTH_DIGITS = len(str(MAX_FRAME))


class AuditListener:
    def __init__(self, ids: OperationsIds, on_alert: Callable[[Alert], None], host: str, port: int,
                 context: ssl.SSLContext):
        self.ids, self.on_alert = ids, on_alert
        self._where = (host, port, context)
        self._server: asyncio.Server | None = None
        self._stats: Counter[str] = Counter()
        self.address: tuple[str, int] = (host, port)

    async def start(self) -> None:
        host, port, context = self._where
        self._server = await asyncio.start_server(self._serve, host, port, ssl=context, ssl_handshake_timeout=10.0,
                                                  limit=MAX_FRAME + 64)
        self.address = self._server.sockets[0].getsockname()[:2]
        log.info("audit listener up", extra=fields(tls=f"{self.address[0]}:{self.address[1]}"))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def stats(self) -> dict[str, int]:
        return {**self._stats, **{f"record_{k}": v for k, v in self.ids.ingestor.rejected.items()}}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername", ("?",))[0])
        try:
            while frame := await self._frame(reader, peer):
                self._handle(frame, peer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the sender went away mid-frame: what was complete has been judged
        finally:
            writer.close()

    async def _frame(self, reader: asyncio.StreamReader, peer: str) -> bytes | None:
        """The next octet-counted frame, or None at the end of the stream or after a framing error."""
        try:
            length = await reader.readuntil(b" ")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            return self._bad_frame(peer)
        digits = length[:-1]
        if not digits.isdigit() or len(digits) > _LENGTH_DIGITS or not 0 < int(digits) <= MAX_FRAME:
            return self._bad_frame(peer)
        return await reader.readexactly(int(digits))

    def _bad_frame(self, peer: str) -> None:
        self._stats["bad_frame"] += 1
        log.warning("audit stream closed: bad octet-counted frame", extra=fields(peer=peer))
        return None

    def _handle(self, frame: bytes, peer: str) -> None:
        self._stats["messages"] += 1
        try:
            message = parse_syslog(frame, received=time.time(), peer=peer, max_length=MAX_FRAME, firewall=False)
        except SyslogError as problem:
            self._stats[problem.reason] += 1
            log.warning("audit message rejected", extra=fields(peer=peer, reason=problem.reason))
            return
        event = self.ids.ingestor.ingest_line(message.message, peer)
        if event is not None:
            for alert in self.ids.engine.observe(event):
                self.on_alert(alert)
