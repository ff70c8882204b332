"""The simulated fleet's TLS services: one listener per server on its own loopback address.

The collectors' lifecycle checks read algorithm, key size, signature hash and expiry
from the certificate a device presents, so each device serves the certificate its
lifecycle data describes. ~3,600 listeners live in one asyncio process, hence:

* plain ``loop.create_server`` with a tiny ``Protocol`` per connection (no streams);
* TLS only after accept, via ``loop.start_tls`` with the device's own context —
  which lets a silent device be a black hole (accept, never answer) and lets a
  configured delay sit before the handshake;
* certificates issued lazily on a device's first connection (in a worker thread,
  because key generation and context loading would stall every other simulated
  device), contexts kept in a small LRU (``ssl`` needs cert/key *files*, which
  are written to ``state_dir/certs``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import socket
import ssl
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

from monitor.inventory.model import Device
from monitor.logs import fields
from simnet.limits import ensure_fd_limit
from monitor.files import write_atomic, write_private
from simnet.certs import KeyPool, SimulationCA, issue_service_certificate

logger = logging.getLogger(__name__)

WEAK_CIPHERS = "DEFAULT:@SECLEVEL=0"  # OpenSSL 3 refuses RSA-1024 / SHA-1 certs at level 2
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def server_context(cert_file: Path, key_file: Path, client_ca: bytes | None = None) -> ssl.SSLContext:
    """A server context that will present weak certificates too (the fleet has some).

    With ``client_ca`` it asks every client for a certificate and verifies one if given
    (device-to-device traffic is mutually authenticated); the monitor's certificate check
    sends none and is still served.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(WEAK_CIPHERS)  # must precede load_cert_chain, which checks the level
    ctx.load_cert_chain(cert_file, key_file)
    if client_ca is not None:
        ctx.load_verify_locations(cadata=client_ca.decode())
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def client_context(cert_file: Path, key_file: Path, ca: bytes) -> ssl.SSLContext:
    """A device's client side: presents its certificate, trusts the simulation CA only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(WEAK_CIPHERS)
    ctx.check_hostname = False  # peers are named by address; the chain to the CA is what counts
    ctx.load_verify_locations(cadata=ca.decode())
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


class TlsServicePool:
    """Every simulated server's TLS service, on ``(device.address, port)``.

    ``is_answering(device_id)`` False makes the device a black hole (connection held,
    nothing sent); ``delay_of(device_id)`` seconds pass before the handshake.
    """

    def __init__(
        self,
        ca: SimulationCA,
        *,
        port: int,
        state_dir: Path,
        is_answering: Callable[[str], bool],
        delay_of: Callable[[str], float] = lambda _id: 0.0,
        now: Callable[[], dt.datetime] = _utc_now,
        keys: KeyPool | None = None,
        context_cache_size: int = 256,
        silent_hold: float = 60.0,
        idle_timeout: float = 10.0,
        handshake_timeout: float = 10.0,
        backlog: int = 64,
    ) -> None:
        self.ca = ca
        self._ca_pem = ca.cert_pem  # appended to every chain file; serialise once
        self.port = port
        self.cert_dir = Path(state_dir) / "certs"
        self.is_answering = is_answering
        self.delay_of = delay_of
        self.now = now
        self.keys = keys or KeyPool()
        self.context_cache_size = context_cache_size
        self.silent_hold = silent_hold
        self.idle_timeout = idle_timeout
        self.handshake_timeout = handshake_timeout
        self.backlog = backlog

        self._by_address: dict[str, Device] = {}
        self._servers: list[asyncio.Server] = []
        self._connections: set[_Connection] = set()
        self._contexts: OrderedDict[str, ssl.SSLContext] = OrderedDict()
        self._building: dict[str, asyncio.Task[ssl.SSLContext]] = {}
        self._generation: dict[str, int] = {}  # bumped when a device's cert must change
        self._issued: dict[str, int] = {}  # generation whose cert files are on disk
        self._expired: set[str] = set()
        # Own workers: the shared default executor may be busy with (or exhausted by)
        # other simulation work, and a starved cert build stalls every handshake.
        self._executor: ThreadPoolExecutor | None = None
        self._counts = dict.fromkeys(
            ("connections", "handshakes", "handshake_failures", "silent_holds", "certificates_issued"), 0
        )

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, devices: Iterable[Device]) -> None:
        """Bind one listener per TLS-serving device with an address; all or nothing."""
        loop = asyncio.get_running_loop()
        wanted = [d for d in devices if d.role.serves_tls and d.address]
        for device in wanted:
            other = self._by_address.get(device.address)  # type: ignore[arg-type]
            if other is not None and other.id != device.id:
                raise ValueError(f"{device.id} and {other.id} share address {device.address}")
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        ensure_fd_limit(len(wanted))
        started: list[asyncio.Server] = []
        added: list[str] = []
        try:
            for device in wanted:
                address: str = device.address  # type: ignore[assignment]
                if address in self._by_address:
                    continue  # already listening (start called again)
                sock = self._listen_socket(device)
                self._by_address[address] = device
                added.append(address)
                started.append(
                    await loop.create_server(lambda: _Connection(self), sock=sock, backlog=self.backlog)
                )
        except BaseException:
            for server in started:
                server.close()
            for address in added:
                del self._by_address[address]
            raise
        self._servers.extend(started)
        logger.info("tls services listening", extra=fields(listeners=len(self._servers), port=self.port))

    def _listen_socket(self, device: Device) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((device.address, self.port))
            sock.listen(self.backlog)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            where = f"{device.id}: cannot listen on {device.address}:{self.port}"
            raise OSError(exc.errno, f"{where}: {exc.strerror}") from exc
        return sock

    async def stop(self) -> None:
        """Close every listener and connection; cancel pending handshakes and cert builds."""
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        conns = list(self._connections)
        tasks = [c.task for c in conns if c.task is not None and not c.task.done()]
        tasks += [t for t in self._building.values() if not t.done()]
        for conn in conns:
            conn.abort()  # also cancels its task
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in servers:
            await server.wait_closed()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        await asyncio.sleep(0)  # let the aborted transports run connection_lost and close their sockets
        self._connections.clear()
        self._building.clear()
        self._by_address.clear()
        logger.info("tls services stopped", extra=fields(listeners=len(servers)))

    def stats(self) -> dict[str, int]:
        return {**self._counts, "listeners": len(self._servers), "open_connections": len(self._connections)}

    # --- certificates ---------------------------------------------------------------

    def set_certificate_expired(self, device_id: str, expired: bool) -> None:
        """Fault injection: present an expired certificate (or the lifecycle one again).

        The re-issue happens on the device's next connection (it may need a key
        generated, which must not block here); the cached context is dropped now, so
        no handshake after this call presents the old certificate.
        """
        if expired:
            self._expired.add(device_id)
        else:
            self._expired.discard(device_id)
        self._generation[device_id] = self._generation.get(device_id, 0) + 1
        self._contexts.pop(device_id, None)

    async def context_for(self, device: Device) -> ssl.SSLContext:
        """The device's server context: cached, or built once however many clients wait."""
        ctx = self._contexts.get(device.id)
        if ctx is not None:
            self._contexts.move_to_end(device.id)
            return ctx
        task = self._building.get(device.id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._build(device))
            self._building[device.id] = task
            task.add_done_callback(lambda _t, key=device.id: self._building.pop(key, None))
        return await asyncio.shield(task)

    async def _build(self, device: Device) -> ssl.SSLContext:
        while True:
            generation = self._generation.get(device.id, 0)
            issue = self._issued.get(device.id) != generation
            expired = device.id in self._expired
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="simnet-tls-certs")
            ctx = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._make_context, device, issue, expired, self.now()
            )
            if self._generation.get(device.id, 0) == generation:
                break  # else the fault state changed while we built: build again
        if issue:
            self._issued[device.id] = generation
            self._counts["certificates_issued"] += 1
        self._contexts[device.id] = ctx
        while len(self._contexts) > self.context_cache_size:
            self._contexts.popitem(last=False)
        return ctx

    def _make_context(self, device: Device, issue: bool, expired: bool, now: dt.datetime) -> ssl.SSLContext:
        """Worker thread: issue + write the device's PEM files if needed, then load them."""
        stem = _UNSAFE.sub("_", device.id)
        cert_file, key_file = self.cert_dir / f"{stem}.crt", self.cert_dir / f"{stem}.key"
        if issue:
            cert_pem, key_pem = issue_service_certificate(
                self.ca, device, now=now, expired=expired, keys=self.keys
            )
            write_private(key_file, key_pem)
            write_atomic(cert_file, cert_pem + self._ca_pem)  # leaf + CA, for verifying clients
        return server_context(cert_file, key_file, self._ca_pem)

    async def client_context_for(self, device: Device) -> ssl.SSLContext:
        """``device`` as a client (its own certificate, mutual authentication); issues it if not yet done."""
        await self.context_for(device)  # the certificate files exist once the server context does
        stem = _UNSAFE.sub("_", device.id)
        return await asyncio.to_thread(client_context, self.cert_dir / f"{stem}.crt", self.cert_dir / f"{stem}.key",
                                       self._ca_pem)


class _Connection(asyncio.Protocol):
    """One accepted connection: a black hole, or a delayed TLS upgrade and a banner."""

    __slots__ = ("pool", "transport", "tls", "device", "task", "timer", "done")

    def __init__(self, pool: TlsServicePool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.tls: asyncio.Transport | None = None
        self.device: Device | None = None
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        pool = self.pool
        sockname = transport.get_extra_info("sockname")
        self.device = pool._by_address.get(sockname[0]) if sockname else None
        if self.device is None:  # listener being torn down, or an address we never bound
            transport.abort()
            self.done = True
            return
        pool._connections.add(self)
        pool._counts["connections"] += 1
        loop = asyncio.get_running_loop()
        if not pool.is_answering(self.device.id):
            # Black hole: keep reading (to notice the client leaving) but never answer.
            pool._counts["silent_holds"] += 1
            self.timer = loop.call_later(pool.silent_hold, self.close)
            return
        transport.pause_reading()  # leave the ClientHello in the kernel until start_tls
        self.task = loop.create_task(self._serve())

    async def _serve(self) -> None:
        pool, device, raw = self.pool, self.device, self.transport
        assert device is not None and raw is not None
        try:
            delay = pool.delay_of(device.id)
            if delay > 0:
                await asyncio.sleep(delay)
            ctx = await pool.context_for(device)
            loop = asyncio.get_running_loop()
            self.tls = await loop.start_tls(
                raw, self, ctx, server_side=True,
                ssl_handshake_timeout=pool.handshake_timeout,
                ssl_shutdown_timeout=pool.handshake_timeout,
            )
        except asyncio.CancelledError:
            self.abort()
            raise
        except Exception as exc:  # the client's fault (garbage, early close) or a cert problem
            pool._counts["handshake_failures"] += 1
            # ssl.SSLError, resets and handshake timeouts are OSErrors: the client's doing.
            level = logging.DEBUG if isinstance(exc, OSError) else logging.WARNING
            logger.log(level, "tls handshake failed", extra=fields(device=device.id, error=repr(exc)))
            self.abort()
            return
        pool._counts["handshakes"] += 1
        self.tls.write(f"JUKI {device.id} READY\r\n".encode())
        self._touch()

    def _touch(self) -> None:
        """(Re)arm the idle timer: close after ``idle_timeout`` without client data."""
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(self.pool.idle_timeout, self.close)

    def data_received(self, data: bytes) -> None:
        if self.tls is not None:  # application data is ignored; it only proves liveness
            self._touch()
        # silent holds swallow whatever arrives

    def eof_received(self) -> bool:
        return False  # peer closed: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()

    def close(self) -> None:
        """Graceful close (FIN, or TLS close_notify when upgraded).

        Bookkeeping waits for ``connection_lost``, so ``stop()`` can still abort a
        connection whose peer never completes the TLS shutdown.
        """
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        (self.tls or self.transport).close()  # type: ignore[union-attr]

    def abort(self) -> None:
        for transport in (self.tls, self.transport):
            if transport is not None:
                transport.abort()
        self._finish()

    def _finish(self) -> None:
        """Idempotent bookkeeping; also runs when asyncio won't call connection_lost
        (a failed handshake does not reach the application protocol)."""
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.task is not None and not self.task.done() and self.task is not asyncio.current_task():
            self.task.cancel()
        self.pool._connections.discard(self)


__all__ = [
    "KeyPool",
    "SimulationCA",  # re-exported: callers set up the CA and the pool from one module
    "TlsServicePool",
    "WEAK_CIPHERS",
    "client_context",
    "issue_service_certificate",
    "server_context",
]
