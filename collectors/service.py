"""The collectors as one service: every device of the inventory polled on its cadence, results fanned out.

The scheduler owns timing, the probes own protocols, and results go to any
number of sinks (MQTT publisher, TSDB writer, short-term history, the monitor)
as envelope records. Every poll yields a ``poll`` sample (ok, duration, error)
so the monitor can apply its own hysteresis; a device's first poll and every
change of its reachability yield one POLL event (the bus keeps it as the
device's retained state) and one log line on a change — not one per poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from collectors.scheduler import Cadence, PollScheduler
from collectors.snmp.client import SnmpAuthError, SnmpClient, SnmpError, SnmpTimeout
from collectors.snmp.probe import SYS_UPTIME, TablesChanged, learn_tables, poll_device
from collectors.snmp.samples import PollConverter
from collectors.icmp_probe import check_icmp
from collectors.tls_probe import check_tls
from monitor.config import CollectorSettings
from monitor.envelope import Event, EventType, Origin, Sample, Severity, origin_of
from monitor.inventory.model import Device, Inventory
from monitor.logs import fields

log = logging.getLogger("collectors")

Sink = Callable[[list[Sample | Event]], None]  # one call per poll: what it produced, in order


@dataclass(frozen=True)
class Target:
    device: Device
    origin: Origin
    kind: str  # "snmp" | "tls" | "icmp"


@dataclass
class DeviceStatus:
    """``last_update_success`` in Home Assistant's words: what anyone may read about a device."""

    ok: bool | None = None  # None: not polled yet
    since: float = 0.0
    error: str | None = None


class CollectorService:
    def __init__(self, inventory: Inventory, settings: CollectorSettings, client: SnmpClient,
                 sinks: Iterable[Sink] = (), *, snmp_port: int | None = None, tls_port: int | None = None,
                 source: str | None = None):
        self.settings = settings
        self.source = source  # the TLS and ICMP checks' local address, like the SNMP client's (None: the kernel's)
        self.client = client
        self.sinks = list(sinks)
        self.snmp_port = snmp_port or settings.snmp.port
        self.tls_port = tls_port or settings.tls_port
        self.converter = PollConverter()
        self.status: dict[str, DeviceStatus] = {}
        self._failing: set[str] = set()  # devices whose last SNMP poll failed: re-checked with a quick question
        self.scheduler: PollScheduler[Target] = PollScheduler(self._poll, concurrency=settings.concurrency)
        self.inventory = inventory
        self.assigned: frozenset[str] | None = None  # None: every device; else this process's shard
        self._polled: set[str] = set()
        self.set_inventory(inventory)

    def set_inventory(self, inventory: Inventory) -> None:
        """Follow an inventory change without a restart: new devices join, removed ones leave."""
        self.inventory = inventory
        self._apply_targets()

    def set_assigned(self, device_ids: Iterable[str] | None, *, poll_now: Iterable[str] = ()) -> None:
        """Poll only these devices of the inventory (a sharded collector's share); None: all of them.

        Devices that stay keep their place on the time grid. The grid depends only on the device, so a
        device handed over by a live collector is polled by its new owner in the same phase: no gap, no
        double poll. ``poll_now`` are devices whose previous owner is gone: asked at once, since it may
        have missed their last due time.
        """
        self.assigned = None if device_ids is None else frozenset(device_ids)
        self._apply_targets()
        for device_id in poll_now:
            for kind in ("snmp", "icmp", "tls"):
                self.scheduler.poll_soon((device_id, kind))

    def _apply_targets(self) -> None:
        targets = []
        polled: set[str] = set()
        for device in self.inventory.polled_devices():
            if device.address is None or (self.assigned is not None and device.id not in self.assigned):
                continue
            polled.add(device.id)
            origin = origin_of(self.inventory, device)
            interval = self.settings.interval_for(device.id, device.role)
            targets.append(((device.id, "snmp"), Target(device, origin, "snmp"),
                            Cadence(interval=interval, recheck_interval=min(self.settings.recheck_interval, interval),
                                    backoff_max=max(60.0, interval))))
            if self.settings.icmp:
                every = self.settings.icmp_interval
                targets.append(((device.id, "icmp"), Target(device, origin, "icmp"),
                                Cadence(interval=every, recheck_interval=min(2.0, every),
                                        backoff_max=max(60.0, every))))
            if device.role.serves_tls:
                tls = self.settings.tls_interval
                targets.append(((device.id, "tls"), Target(device, origin, "tls"),
                                Cadence(interval=tls, recheck_interval=min(10.0, tls), backoff_max=max(600.0, tls))))
        self.scheduler.set_targets(targets)
        for device_id in self._polled - polled:
            self._forget(device_id)
        self._polled = polled

    def _forget(self, device_id: str) -> None:
        """A device we no longer poll: if it comes back, its first poll is a first poll again (state
        announced, tables learned, port changes meanwhile not reported twice). Its last counter readings
        stay — a few per interface, bounded by the inventory — so its first rates back are the mean over
        the absence; ``CounterTracker.forget`` scans every counter of every device, far too slow for the
        thousands of devices a rebalance moves at once."""
        self.status.pop(device_id, None)
        self._failing.discard(device_id)
        self.converter.devices.pop(device_id, None)

    def start(self) -> None:
        self.scheduler.start()

    def recheck(self, device_id: str) -> None:
        """Ask a suspect device now, with the quick question first (the monitor wants a fresh answer
        before it blames a child, or a trap said the line to it went down)."""
        if self.scheduler.poll_soon((device_id, "snmp")):
            self._failing.add(device_id)

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.client.close()

    def emit(self, records: list[Sample | Event]) -> None:
        for sink in self.sinks:
            try:
                sink(records)
            except Exception:  # one broken sink must not stop polling
                log.exception("sink failed", extra=fields(sink=getattr(sink, "__qualname__", repr(sink))))

    # --- probes ---------------------------------------------------------------

    async def _poll(self, target: Target) -> bool:
        if target.kind == "tls":
            return await self._poll_tls(target)
        if target.kind == "icmp":
            return await self._poll_icmp(target)
        return await self._poll_snmp(target)

    async def _poll_icmp(self, target: Target) -> bool:
        check = await check_icmp(target.device.address, timeout=self.settings.timeout, source=self.source)
        values: dict[str, float | int | str | bool] = {"sent": check.sent, "received": check.received,
                                                       "loss": round(check.loss, 4)}
        if check.rtt_avg_ms is not None:
            values.update(rtt_avg_ms=round(check.rtt_avg_ms, 3), rtt_max_ms=round(check.rtt_max_ms or 0, 3))
        if check.error:
            values["error"] = check.error
        self.emit([Sample("icmp", time.time(), target.origin, values)])
        return check.received > 0

    async def _poll_snmp(self, target: Target) -> bool:
        device, origin = target.device, target.origin
        history = self.converter.history(device.id)
        began = time.perf_counter()
        error: str | None = None
        try:
            if device.id in self._failing:
                await self._quick_check(device.address)
            if history.tables is None:
                history.tables = await learn_tables(self.client, device.address, self.snmp_port)
            try:
                raw = await poll_device(self.client, device.address, self.snmp_port, history.tables)
            except TablesChanged:
                history.tables = await learn_tables(self.client, device.address, self.snmp_port)
                raw = await poll_device(self.client, device.address, self.snmp_port, history.tables)
        except SnmpTimeout:
            error = "timeout"
        except SnmpAuthError:
            error = "auth"
        except SnmpError as exc:
            error = f"error: {exc}"[:200]
        now = time.time()
        if error is None:
            self._failing.discard(device.id)
        else:
            self._failing.add(device.id)
        duration_ms = round((time.perf_counter() - began) * 1000, 3)
        records: list[Sample | Event] = [Sample("poll", now, origin, {
            "ok": error is None, "duration_ms": duration_ms, **({"error": error} if error else {})},
            {"probe": "snmp"})]
        transition = self._transition(target, error, now)
        if transition is not None:
            records.append(transition)
        if error is None:
            samples, events = self.converter.convert(origin, raw, now)
            records += samples
            records += events
        self.emit(records)
        return error is None

    async def _quick_check(self, address: str) -> None:
        """One GET of sysUpTime with a short deadline: a device still silent fails fast (SnmpTimeout)."""
        try:
            await asyncio.wait_for(self.client.get(address, self.snmp_port, [SYS_UPTIME]),
                                   self.settings.recheck_timeout)
        except asyncio.TimeoutError:
            raise SnmpTimeout(f"no answer from {address} (re-check)") from None

    async def _poll_tls(self, target: Target) -> bool:
        device, origin = target.device, target.origin
        check = await check_tls(device.address, self.tls_port, timeout=self.settings.timeout, source=self.source)
        now = time.time()
        values: dict[str, float | int | str | bool] = {"ok": check.ok}
        if check.connect_ms is not None:
            values["connect_ms"] = round(check.connect_ms, 3)
        if check.handshake_ms is not None:
            values["handshake_ms"] = round(check.handshake_ms, 3)
        if check.error:
            values["error"] = check.error
        cert = check.certificate
        if cert is not None:
            values.update({"days_left": round(cert.days_left(now), 2), "key_size": cert.key_size,
                           "key_algorithm": cert.key_algorithm, "signature_hash": cert.signature_hash,
                           "weak": cert.weak, "not_after": cert.not_after})
        records: list[Sample | Event] = [Sample("tls", now, origin, values)]
        if cert is not None:
            records.append(Event(EventType.TLS, now, "collector.tls", origin,
                            Severity.WARNING if cert.weak or cert.days_left(now) < 30 else Severity.INFO,
                            f"{device.id} certificate {cert.key_algorithm}-{cert.key_size}/{cert.signature_hash}, "
                            f"{cert.days_left(now):.0f} days left",
                            body={"subject": cert.subject, "issuer": cert.issuer, "tls_version": check.tls_version,
                                  **{k: v for k, v in values.items() if k not in ("ok",)}}))
        self.emit(records)
        return check.ok

    def _transition(self, target: Target, error: str | None, now: float) -> Event | None:
        """The device's reachability, on its first poll and whenever it changes — not every poll."""
        status = self.status.setdefault(target.device.id, DeviceStatus())
        ok = error is None
        if status.ok is ok:
            return None
        first = status.ok is None
        status.ok, status.since, status.error = ok, now, error
        device = target.device
        if not first or not ok:  # one log line per change, none for a device that simply works
            if ok:
                log.info("device answering again", extra=fields(device=device.id, address=device.address))
            else:
                log.warning("device not answering", extra=fields(device=device.id, address=device.address,
                                                                 error=error))
        return Event(EventType.POLL, now, "collector.snmp", target.origin, Severity.INFO if ok else Severity.ERROR,
                     f"{device.id} {'answering' if ok else 'not answering: ' + str(error)}",
                     body={"reachable": ok, "error": error, "since": now, "first": first})

    def unreachable(self) -> list[str]:
        return [device_id for device_id, s in self.status.items() if s.ok is False]


async def run_collectors_for(seconds: float, service: CollectorService) -> None:
    """Run for a bounded time (tools and tests)."""
    service.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await service.stop()
