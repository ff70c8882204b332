"""The simulated operators' audit stream (操作ログ), sent to the monitor as it happens, over TLS syslog (RFC 5425).

``AuditSender`` walks ``AuditStream``'s records day by day on the simulation's
clock: each record leaves when simulated time reaches its timestamp (records
already past when the sender starts are skipped, as a CS does not resend
yesterday). While the monitor's listener is away the records are dropped and
counted, one log line on losing and one on regaining the connection.

Both ends are certified by the simulation CA (``simnet.certs``), as the real CS
and the monitor would be by the J-LIS CA: ``receiver_context`` for the monitor's
listener (certificate for 127.0.0.1), ``sender_context`` for the simulation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import logging
import ssl
from collections import Counter
from pathlib import Path

from monitor.japan_time import JST
from monitor.inventory.model import Device, Inventory, Lifecycle, Role
from monitor.logs import fields
from simnet.audit_stream import AuditStream, Injection
from monitor.files import write_atomic, write_private
from simnet.certs import DEFAULT_PROFILE, SimulationCA, issue_service_certificate
from simnet.clock import SimClock

log = logging.getLogger("simnet.audit_sender")

RECONNECT_EVERY = 5.0  # real seconds between attempts while the monitor is away
_YIELD_EVERY = 500  # records handled back to back (skipped or catching up) before letting the simulation run
RECEIVER_ID = "jukimon-audit-receiver"


def frame(line: str) -> bytes:
    """One record as an octet-counted RFC 5424 message (facility log audit, as the CS sends it)."""
    message = f"<110>1 - - jukimon-audit - - - {line}".encode()
    return b"%d %s" % (len(message), message)


class AuditSender:
    def __init__(self, stream: AuditStream, clock: SimClock, target: tuple[str, int], context: ssl.SSLContext,
                 injection: Injection | None = None):
        self.stream, self.clock, self.target = stream, clock, target
        self._context = context
        self._injection = injection  # labelled misuse merged into the days it falls on
        self._writer: asyncio.StreamWriter | None = None
        self._retry_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self.stats: Counter[str] = Counter()

    @classmethod
    def for_network(cls, inventory: Inventory, clock: SimClock, target: tuple[str, int],
                    state_dir: Path) -> AuditSender:
        return cls(AuditStream(inventory), clock, target, sender_context(state_dir))

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-sender")
        log.info("audit stream started", extra=fields(target=f"{self.target[0]}:{self.target[1]}"))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._disconnect()

    async def _run(self) -> None:
        began = self.clock.now()
        day = dt.datetime.fromtimestamp(began, JST).date()
        while True:
            records = self.stream.records(day, 1, self._injection_on(day))
            # The first record makes the whole day (~4 x 10^5 records nationally): in a thread, so the
            # simulated agents keep answering meanwhile.
            first = await asyncio.to_thread(next, records, None)
            for n, record in enumerate(itertools.chain((first,) if first else (), records), start=1):
                if n % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                ts = dt.datetime.fromisoformat(str(record["ts"])).timestamp()
                if ts < began:
                    continue
                delay = (ts - self.clock.now()) / self.clock.speed
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._send(json.dumps(record, ensure_ascii=False))
            day += dt.timedelta(days=1)

    def _injection_on(self, day: dt.date) -> Injection | None:
        """The injected records of that day only (``AuditStream.records`` merges every earlier one too)."""
        if self._injection is None:
            return None
        start = dt.datetime.combine(day, dt.time(), JST).timestamp()
        return Injection([(ts, r) for ts, r in self._injection.records if start <= ts < start + 86_400])

    async def _send(self, line: str) -> None:
        if self._writer is None and not await self._connect():
            self.stats["dropped"] += 1
            return
        assert self._writer is not None
        try:
            self._writer.write(frame(line))
            await self._writer.drain()
        except (ConnectionError, ssl.SSLError) as exc:
            self.stats["dropped"] += 1
            log.warning("audit stream lost", extra=fields(target=f"{self.target[0]}:{self.target[1]}",
                                                          error=type(exc).__name__))
            await self._disconnect()
            return
        self.stats["sent"] += 1

    async def _connect(self) -> bool:
        loop = asyncio.get_running_loop()
        if loop.time() < self._retry_at:
            return False
        try:
            _, self._writer = await asyncio.open_connection(*self.target, ssl=self._context)
        except (OSError, ssl.SSLError) as exc:
            self._retry_at = loop.time() + RECONNECT_EVERY
            if not self.stats["failed_connects"]:
                log.warning("audit stream: monitor not reachable, retrying", extra=fields(
                    target=f"{self.target[0]}:{self.target[1]}", error=type(exc).__name__))
            self.stats["failed_connects"] += 1
            return False
        if self.stats["failed_connects"]:
            log.info("audit stream connected", extra=fields(target=f"{self.target[0]}:{self.target[1]}"))
        self.stats["connects"] += 1
        self.stats["failed_connects"] = 0
        return True

    async def _disconnect(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, ssl.SSLError):
                pass  # already gone: nothing left to flush


def sender_context(state_dir: Path) -> ssl.SSLContext:
    """The simulation's side: trusts the simulation CA only."""
    ca = SimulationCA.load_or_create(state_dir)
    return ssl.create_default_context(cadata=ca.cert_pem.decode())


def receiver_context(state_dir: Path) -> ssl.SSLContext:
    """The monitor's side: a certificate for 127.0.0.1 issued by the simulation CA, kept in ``state_dir``."""
    ca = SimulationCA.load_or_create(state_dir)
    today = dt.date.today()
    receiver = Device(RECEIVER_ID, "", Role.NETWORK_MONITOR, "監視装置 (操作ログ受信)", "127.0.0.1", (),
                      Lifecycle("jukimon", today, today, today, DEFAULT_PROFILE, today + dt.timedelta(days=365)))
    cert_pem, key_pem = issue_service_certificate(ca, receiver, now=dt.datetime.now(dt.timezone.utc))
    cert_file, key_file = state_dir / f"{RECEIVER_ID}.crt", state_dir / f"{RECEIVER_ID}.key"
    write_private(key_file, key_pem)
    write_atomic(cert_file, cert_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context
