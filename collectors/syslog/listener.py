"""Syslog listeners: UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425), one ``Event`` per message.

A listener must outlive whatever its senders do: a malformed message is counted
under its rejection reason (``stats()``) and logged once per reason per sender,
never per packet, and never stops the listener. TCP buffers are bounded per
connection: a frame longer than ``max_length`` closes that connection only.

Framing on a stream is detected from its first byte: a digit means octet-counting
("LEN SP MSG", the only framing RFC 5425 allows, and rsyslog's default), "<"
means one message per LF (the traditional way). TLS accepts both, since not every
sender honours RFC 5425.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import ssl
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from collectors.syslog.firewall import to_event
from monitor.japan_time import JST
from collectors.syslog.parse import MAX_LENGTH, SyslogError, parse_syslog
from collectors.udp_socket import DrainingUdpSocket
from monitor.envelope import Event
from monitor.logs import fields

if TYPE_CHECKING:
    from monitor.inventory.model import Inventory

log = logging.getLogger("collectors.syslog")

OnEvent = Callable[[Event], Awaitable[None] | None]
_WARNED_LIMIT = 10_000  # distinct (sender, reason) pairs remembered before the memory starts over
_MAX_PENDING = 1_000  # async callbacks in flight for UDP before datagrams are dropped
_UDP_RCVBUF = 4 * 1024 * 1024


def _peer_address(addr: Any) -> str:
    """The sender's address as the inventory writes it (an IPv4 peer of a dual-stack socket is ::ffff:a.b.c.d)."""
    host = str(addr[0])
    return host[7:] if host.startswith("::ffff:") and "." in host else host


class _FrameError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class SyslogListener:
    """Receives syslog on any of UDP, TCP and TLS and hands each message to ``on_event``.

    ``on_event`` may be a plain function or a coroutine function; on TCP/TLS a slow
    coroutine slows the reading of that connection (back-pressure), on UDP at most
    1,000 run at once and further datagrams are dropped (counted as ``overload``).
    Ports may be 0 in tests: ``address(kind)`` tells the bound one.
    """

    def __init__(self, on_event: OnEvent, inventory: "Inventory | None" = None, *,
                 udp: tuple[str, int] | None = None, tcp: tuple[str, int] | None = None,
                 tls: tuple[str, int, ssl.SSLContext] | None = None, max_length: int = MAX_LENGTH,
                 local_tz: dt.tzinfo = JST, max_connections: int = 4096,
                 clock: Callable[[], float] = time.time):
        if udp is None and tcp is None and tls is None:
            raise ValueError("a syslog listener needs at least one of udp, tcp, tls")
        self.on_event = on_event
        self.inventory = inventory
        self.udp, self.tcp, self.tls = udp, tcp, tls
        self.max_length = max_length
        self.local_tz = local_tz
        self.max_connections = max_connections
        self.clock = clock
        self._stats: Counter[str] = Counter()
        self._warned: set[tuple[str, str]] = set()
        self._udp_socket: DrainingUdpSocket | None = None
        self._servers: dict[str, asyncio.Server] = {}
        self._connections: set[asyncio.Task[Any]] = set()
        self._pending: set[asyncio.Task[Any]] = set()
        self._addresses: dict[str, tuple[str, int]] = {}

    # --- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        try:
            if self.udp is not None:
                # Emptied in batches: a burst must not wait one turn of a busy event loop per message.
                self._udp_socket = DrainingUdpSocket.bind(
                    *self.udp, lambda data, sender, _arrived: self._datagram(data, _peer_address(sender)),
                    receive_buffer=_UDP_RCVBUF, on_error=lambda _exc: self._count("socket_error"))  # ride out bursts
                self._addresses["udp"] = self._udp_socket.local_address
            limit = self.max_length + 64
            if self.tcp is not None:
                server = await asyncio.start_server(lambda r, w: self._serve(r, w, "tcp"), self.tcp[0], self.tcp[1],
                                                    limit=limit)
                self._servers["tcp"] = server
                self._addresses["tcp"] = server.sockets[0].getsockname()[:2]
            if self.tls is not None:
                host, port, context = self.tls
                server = await asyncio.start_server(lambda r, w: self._serve(r, w, "tls"), host, port, limit=limit,
                                                    ssl=context, ssl_handshake_timeout=10.0)
                self._servers["tls"] = server
                self._addresses["tls"] = server.sockets[0].getsockname()[:2]
        except BaseException:
            await self.stop()
            raise
        log.info("syslog listener up", extra=fields(**{k: f"{h}:{p}" for k, (h, p) in self._addresses.items()}))

    async def stop(self) -> None:
        for server in self._servers.values():
            server.close()
        if self._udp_socket is not None:
            self._udp_socket.close()
            self._udp_socket = None
        tasks = list(self._connections | self._pending)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._servers.values():
            await server.wait_closed()
        self._servers.clear()
        self._connections.clear()
        self._pending.clear()

    async def __aenter__(self) -> "SyslogListener":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def address(self, kind: str) -> tuple[str, int]:
        """The bound (host, port) of "udp", "tcp" or "tls"."""
        return self._addresses[kind]

    def stats(self) -> dict[str, int]:
        """Counters: ``received``, ``events``, one per rejection reason, connection and framing trouble."""
        return dict(self._stats)

    # --- one message -----------------------------------------------------------

    def _count(self, key: str) -> None:
        self._stats[key] += 1

    def _warn_once(self, peer: str, reason: str, sample: bytes | str, transport: str) -> None:
        key = (peer, reason)
        if key in self._warned:
            return
        if len(self._warned) >= _WARNED_LIMIT:
            self._warned.clear()
        self._warned.add(key)
        log.warning("syslog message rejected (further ones from this sender with this reason are only counted)",
                    extra=fields(peer=peer, reason=reason, transport=transport, sample=repr(sample[:120])))

    def _handle(self, data: bytes, peer: str, transport: str) -> Awaitable[None] | None:
        """Parse and deliver one message; returns the callback's awaitable if it is a coroutine."""
        self._stats["received"] += 1
        try:
            msg = parse_syslog(data, received=self.clock(), peer=peer, max_length=self.max_length,
                               local_tz=self.local_tz)
            event = to_event(msg, self.inventory)
        except SyslogError as exc:
            self._stats[exc.reason] += 1
            self._warn_once(peer, exc.reason, data, transport)
            return None
        except Exception:  # a parser bug must not take the listener down with it
            self._stats["internal_error"] += 1
            if (peer, "internal_error") not in self._warned:
                self._warned.add((peer, "internal_error"))
                log.exception("syslog parser failed", extra=fields(peer=peer, sample=repr(data[:120])))
            return None
        self._stats["events"] += 1
        try:
            result = self.on_event(event)
        except Exception:
            self._callback_failed(peer)
            return None
        return result if inspect.isawaitable(result) else None

    def _callback_failed(self, peer: str) -> None:
        self._stats["callback_error"] += 1
        if ("*", "callback_error") not in self._warned:
            self._warned.add(("*", "callback_error"))
            log.exception("syslog event consumer failed", extra=fields(peer=peer))

    async def _deliver(self, awaitable: Awaitable[None], peer: str) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            raise
        except Exception:
            self._callback_failed(peer)

    # --- UDP -------------------------------------------------------------------

    def _datagram(self, data: bytes, peer: str) -> None:
        if len(self._pending) >= _MAX_PENDING:
            self._stats["overload"] += 1
            return
        awaitable = self._handle(data, peer, "udp")
        if awaitable is not None:
            task = asyncio.ensure_future(self._deliver(awaitable, peer))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    # --- TCP and TLS -------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, transport: str) -> None:
        task = asyncio.current_task()
        peername = writer.get_extra_info("peername")
        peer = _peer_address(peername) if peername else "?"
        if task is not None:
            self._connections.add(task)
        try:
            if len(self._connections) > self.max_connections:
                self._stats["connection_limit"] += 1
                self._warn_once(peer, "connection_limit", b"", transport)
                return
            self._stats["connections"] += 1
            async for frame in self._frames(reader):
                awaitable = self._handle(frame, peer, transport)
                if awaitable is not None:
                    await self._deliver(awaitable, peer)
        except _FrameError as exc:
            self._stats[exc.reason] += 1
            self._warn_once(peer, exc.reason, b"", transport)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            self._stats["connection_error"] += 1
            log.debug("syslog connection error", extra=fields(peer=peer, error=str(exc)))
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def _frames(self, reader: asyncio.StreamReader):  # -> AsyncIterator[bytes]
        first = await reader.read(1)
        if not first:
            return
        if first.isdigit():
            async for frame in self._octet_counted(reader, first):
                yield frame
        else:
            async for frame in self._lf_delimited(reader, first):
                yield frame

    async def _octet_counted(self, reader: asyncio.StreamReader, first: bytes):
        prefix = first
        while True:
            try:
                head = prefix + await reader.readuntil(b" ")
            except asyncio.IncompleteReadError as exc:
                if (prefix + exc.partial).strip():
                    raise _FrameError("truncated_frame") from None
                return
            except asyncio.LimitOverrunError:
                raise _FrameError("bad_frame") from None
            prefix = b""
            digits = head[:-1]
            if not digits.isdigit() or len(digits) > 9 or digits.startswith(b"0"):
                raise _FrameError("bad_frame")
            length = int(digits)
            if length > self.max_length:
                raise _FrameError("frame_too_long")
            try:
                yield await reader.readexactly(length)
            except asyncio.IncompleteReadError:
                raise _FrameError("truncated_frame") from None

    async def _lf_delimited(self, reader: asyncio.StreamReader, first: bytes):
        prefix = first
        while True:
            try:
                line = prefix + await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                rest = (prefix + exc.partial).rstrip(b"\r\n")  # a last line without its LF
                if rest.strip():
                    if len(rest) > self.max_length:
                        raise _FrameError("frame_too_long") from None
                    yield rest
                return
            except asyncio.LimitOverrunError:
                raise _FrameError("frame_too_long") from None
            prefix = b""
            line = line.rstrip(b"\r\n")
            if len(line) > self.max_length:
                raise _FrameError("frame_too_long")
            if line.strip():
                yield line
