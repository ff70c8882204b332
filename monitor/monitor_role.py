"""The monitor alone (``jukimon monitor run``): fed from the bus, active or standby behind a lease.

    collectors (processes, any host) ──MQTT──► intake ──► history, state engine, lifecycle
                                                              │ changes
                 lease in PostgreSQL (monitor.lease) ── fence ┤
                                                              ▼
                                   alerting ──► durable outbox ──► mail, MQTT, webhooks, console inbox

No simulation, no collectors: those run elsewhere (``jukimon collector run``) and
publish; the engine's rechecks go back to them on ``<prefix>/control/recheck``.

Every monitor judges from the bus — a *warm* standby: its states and conditions are
current in memory and its console shows them — but only the lease holder acts:

- it writes the judgement to the store (a standby's writes are dropped: ``StandbyStore``), each write
  transaction fenced by its term in the database (``Lease.hold``: a paused ex-holder's late write is refused);
- it publishes the judgement on the bus (``monitor/state``, ``monitor/condition``);
- it runs alerting and the durable outbox (``fence`` asked before each tick and each delivery).

Maintenance windows live in the store and either console may add or remove one: every
monitor reloads them every ``MAINTENANCE_SYNC`` seconds, and the new holder once more
(and judges again) before it acts.

Taking over: the new holder writes its current picture (states; active conditions,
keeping the start time the store has; conditions the store still holds active but it
does not see, cleared), then starts ``AlertingService`` with the engine's active
conditions — it loads the old holder's alarms and groups from the store, so what was
notified is not notified again — and the outbox resumes the pending rows (ids are
deterministic: a row the old holder enqueued is sent once). Losing the lease: the
fence is already closed; alerting and the outbox are stopped without saving.

Not here (they stay in ``jukimon run``): the report cascade, the operation and traffic
IDS listeners, the TSDB writer (collectors write it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from alerting.notify import DurableOutbox, Receiver
from alerting.routing import RoutingConfig
from monitor.intake import BusIntake
from monitor.lease import Lease
from monitor.lifecycle import LifecycleChecker
from monitor.logs import fields
from monitor.mainjob import MainJob, _cancel, sync_maintenance
from monitor.mqtt_tls import client_context
from monitor.state.bus import StateBus
from monitor.state.engine import Changes, StateEngine
from monitor.state.model import ConditionStatus
from monitor.store import Store

log = logging.getLogger("jukimon.monitor")

MAINTENANCE_SYNC = 10.0  # seconds: how soon a window set on the other monitor's console counts here
_WRITES = frozenset({"save_states", "append_transitions", "save_conditions", "save_judgement", "put_checkpoint"})


class StandbyStore:
    """The store as the state engine sees it: reads pass, the judgement's writes only while ``writes()``."""

    def __init__(self, store: Any, writes: Callable[[], bool]) -> None:
        self._store, self._writes = store, writes

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name in _WRITES:
            async def gated(*args: Any, **kwargs: Any) -> None:
                if self._writes():
                    await attr(*args, **kwargs)
            return gated
        return attr


def default_name() -> str:
    """Host and process: unique among the monitors sharing a broker (give ``--name`` to keep the MQTT session)."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class MonitorRole(MainJob):
    """``MainJob``'s pieces without the simulation and collectors; ``name`` names the MQTT session (keep it across
    restarts to get the events published meanwhile) and, with a random suffix, the lease holder."""

    name: str = field(default_factory=default_name)
    lease_name: str = "monitor"
    ttl: float = 15.0
    margin: float = 3.0
    with_console: bool = False
    lease: Lease | None = None
    intake: BusIntake | None = None
    _outbox: DurableOutbox | None = None
    _fenced_store: Store | None = None  # the holder's writes: the store, each transaction fenced by the lease
    _channels: tuple[RoutingConfig, dict[str, Receiver]] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _skipped_windows: set[str] = field(default_factory=set)  # maintenance windows warned about once

    async def _start(self) -> None:
        settings = self.config.outputs.mqtt
        if settings is None:
            raise RuntimeError("the monitor alone needs the collectors' broker (--broker or outputs.mqtt)")
        self.engine = await self._state_engine()
        assert self._store is not None
        # The holder is this process, not the name: a second process started by mistake under the same name (or
        # a quick restart) must wait for the lease like anybody else, never share it.
        holder = f"{self.name}/{secrets.token_hex(4)}"
        self.lease = lease = Lease(self._store.engine, self.lease_name, holder, ttl=self.ttl, margin=self.margin)
        lease.listeners.append(lambda _: self._changed.set())
        keeper = asyncio.get_running_loop().create_task(lease.run(), name="lease")
        # Stopped in reverse: alerting, intake, engine (its last flush while still active), then the lease.
        self._stoppers.append(self._release)
        self._stoppers.append(lambda: _cancel(keeper))
        # The holder's writes also carry its term to the database (Lease.hold): a holder paused between asking
        # ``active`` and writing cannot overwrite its successor's.
        self._fenced_store = self._store.fenced(lease.hold)
        self.engine.store = StandbyStore(self._fenced_store, lambda: lease.active)  # type: ignore[assignment]
        self.lifecycle = LifecycleChecker(self.inventory, self.config.lifecycle)
        mqtt = self._mqtt_publisher = await self._mqtt()
        assert mqtt is not None
        bus = StateBus(mqtt)
        self.engine.listeners.append(lambda changes: bus(changes) if lease.active else None)
        self.intake = BusIntake(settings.host, settings.port, [self._to_history, self.engine.sink, self._to_lifecycle],
                                client_id=f"jukimon-monitor-{self.name}", prefix=settings.topic_prefix, publisher=mqtt,
                                tls=client_context(settings.tls))
        self.engine.recheck = self.intake.recheck
        await self.engine.start()
        self._stoppers.append(self.engine.stop)
        await self.intake.start()
        self._stoppers.append(self.intake.stop)

        routing, _, receivers = await self._notification_channels()
        self._channels = (routing, receivers)
        if self.with_console:
            await self._start_console()
        follower = asyncio.get_running_loop().create_task(self._follow_lease(), name="lease-follower")
        self._stoppers.append(self._stand_by)
        self._stoppers.append(lambda: _cancel(follower))
        status = asyncio.get_running_loop().create_task(self._report_status(), name="status")
        self._stoppers.append(lambda: _cancel(status))
        windows = asyncio.get_running_loop().create_task(self._follow_maintenance(), name="maintenance-sync")
        self._stoppers.append(lambda: _cancel(windows))
        print(f"monitor {self.name}: lease {self.lease_name!r} ttl {self.ttl:g}s"
              f"{' (SQLite: always active)' if lease.solo else ''}, intake mqtt://{settings.host}:{settings.port}/"
              f"{settings.topic_prefix}/#", flush=True)
        log.info("monitor running", extra=fields(name=self.name, devices=len(self.inventory.devices),
                                                 store=self._store.url))

    async def _report_status(self) -> None:
        """Every ``status_every`` seconds: active or standby, what came in from the bus, devices per state."""
        assert self.lease is not None and self.intake is not None
        while True:
            await asyncio.sleep(self.status_every)
            counts = self.intake.counts
            log.info("status", extra=fields(role="active" if self.lease.active else "standby", epoch=self.lease.epoch,
                                            bus_connected=self.intake.connected.is_set(), records=counts["records"],
                                            malformed=counts["malformed"], rechecks=counts["rechecks"],
                                            **self._state_counts()))

    async def _follow_maintenance(self) -> None:
        """Maintenance windows added or removed on the other monitor's console reach this one's judgement."""
        assert self.engine is not None and self._store is not None
        while True:
            await asyncio.sleep(MAINTENANCE_SYNC)
            try:
                await sync_maintenance(self.engine.maintenance, self._store, self._skipped_windows)
            except Exception:  # the store away: the next round tries again (the store logs the outage)
                log.debug("maintenance windows not synchronised", exc_info=True)

    async def _follow_lease(self) -> None:
        """Take over or stand by whenever the lease says so; a failed step is tried again a second later."""
        assert self.lease is not None
        self._changed.set()
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                if self.lease.active and self.alerting is None:
                    await self._take_over()
                elif not self.lease.active and self.alerting is not None:
                    await self._stand_by()
            except Exception:
                log.exception("lease change not applied; trying again", extra=fields(active=self.lease.active))
                await asyncio.sleep(1.0)
                self._changed.set()

    async def _take_over(self) -> None:
        assert self.lease is not None and self.engine is not None and self._store is not None
        assert self._channels is not None
        await sync_maintenance(self.engine.maintenance, self._store, self._skipped_windows)  # the old active's latest
        self.engine.evaluate()  # judged with them before anything is written or alerted
        await self._write_picture(self.engine)
        routing, receivers = self._channels
        lease = self.lease
        self._outbox, self.alerting = await self._open_alerting(routing, receivers, fence=lambda: lease.active,
                                                                store=self._fenced_store)
        if self.console_context is not None:
            self.console_context.alerting = self.alerting
        log.warning("monitor active", extra=fields(name=self.name, epoch=lease.epoch,
                                                   conditions=len(self.engine.conditions)))
        print(f"monitor {self.name}: ACTIVE (epoch {lease.epoch})", flush=True)

    async def _stand_by(self) -> None:
        """Stop alerting and the outbox (their fence is already closed: nothing is sent or saved)."""
        alerting, outbox = self.alerting, self._outbox
        if alerting is None:
            return
        self.alerting, self._outbox = None, None
        if self.console_context is not None:
            self.console_context.alerting = None
        if self.engine is not None and alerting.on_changes in self.engine.listeners:
            self.engine.listeners.remove(alerting.on_changes)
        await alerting.stop()
        if outbox is not None:
            await outbox.stop()
        log.warning("monitor standing by", extra=fields(name=self.name))
        print(f"monitor {self.name}: standby", flush=True)

    async def _release(self) -> None:
        if self.lease is not None:
            try:
                await self.lease.release()
            except Exception:  # the store away at shutdown: the lease runs out by itself
                log.exception("lease not released; it expires by itself", extra=fields(ttl=self.ttl))

    async def _write_picture(self, engine: StateEngine) -> None:
        """The new holder's judgement into the store, before alerting reads it; start times as the store has them."""
        assert self._store is not None and self._fenced_store is not None
        stored = {c.fingerprint: c for c in await self._store.load_conditions(active_only=True)}
        for fingerprint, condition in list(engine.conditions.items()):
            if fingerprint in stored:
                engine.conditions[fingerprint] = replace(condition, started=stored[fingerprint].started)
        now = engine.clock()
        gone = [replace(c, status=ConditionStatus.CLEARED, cleared=now)
                for f, c in stored.items() if f not in engine.conditions]
        await self._fenced_store.save_states(list(engine.states.values()))
        await self._fenced_store.save_conditions([*engine.conditions.values(), *gone])
        if gone:  # the bus hears of their end too (alerting resolves their alarms when it starts)
            log.info("conditions the old holder left active cleared", extra=fields(count=len(gone)))
            for listener in engine.listeners:
                listener(Changes(cleared=gone))
