"""The state engine: poll results and events in, states, transitions and conditions out — kept across restarts.

It is a sink of the collectors (``CollectorService`` calls ``engine.sink(records)``
for every poll) and of the listeners (``engine.on_event``). Observations update
each device's health at once (cheap); the judgement over the whole graph
(``monitor.state.judge``) runs at most every ``settle`` seconds when something
changed, and every ``tick`` seconds anyway — the operating window, maintenance
windows, holds and flapping change with time alone.

Every change is written to the store (states, transitions, conditions; the
health counters as a checkpoint) and handed to the listeners (alerting, bus,
console). On start the engine reloads all of it, so a restart neither re-raises
a condition nor forgets one: fingerprints and start times survive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

from monitor.envelope import Event, EventType, Sample, Severity
from monitor.inventory.model import Inventory
from monitor.logs import fields
from monitor.maintenance import MaintenanceBook
from monitor.schedule.order import OrderChecker
from monitor.schedule.window import OperatingCalendar
from monitor.state.health import DeviceHealth, HealthTracker
from monitor.state.judge import SCHEDULED_ROLES, ConditionSpec, Judge, Judgement, Topology
from monitor.state.settings import MonitorSettings
from monitor.state.model import (Condition, ConditionKind, ConditionStatus, State, StateRecord, SubjectKind,
                                 Transition)
from monitor.store import Store, StoreUnavailable

log = logging.getLogger("monitor.state")

HEALTH_CHECKPOINT = "state.health"


@dataclass
class Changes:
    """What one judgement changed: for listeners (alerting, bus, console)."""

    states: list[StateRecord] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    raised: list[Condition] = field(default_factory=list)
    updated: list[Condition] = field(default_factory=list)
    cleared: list[Condition] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.states or self.raised or self.updated or self.cleared)


Listener = Callable[[Changes], None]


class StateEngine:
    def __init__(self, inventory: Inventory, settings: MonitorSettings | None = None, *,
                 calendar: OperatingCalendar | None = None, maintenance: MaintenanceBook | None = None,
                 store: Store | None = None, clock: Callable[[], float] = time.time,
                 calendar_clock: Callable[[], float] | None = None,
                 recheck: Callable[[str], None] | None = None):
        self.settings = settings or MonitorSettings()
        self.inventory = inventory
        self.topology = Topology(inventory)
        self.health = HealthTracker(self.settings.health,
                                    frozenset(link.circuit_id for link in inventory.links.values()))
        self.maintenance = maintenance or MaintenanceBook(inventory)
        self.calendar = calendar or OperatingCalendar()
        self.judge = Judge(self.topology, self.health, _CalendarAt(self.calendar, clock, calendar_clock),
                           self.maintenance, hold_max=self.settings.hold_max)
        self.order = OrderChecker(inventory)
        self.store = store
        self.clock = clock
        self.recheck = recheck
        self.listeners: list[Listener] = []
        self.states: dict[tuple[SubjectKind, str], StateRecord] = {}
        self.conditions: dict[str, Condition] = {}  # active only
        self._timed: dict[str, tuple[ConditionSpec, float]] = {}  # reboot / order violation → until
        self._link_by_circuit = {link.circuit_id: link for link in inventory.links.values()}
        self._suspected: dict[str, float] = {}  # device → when it was last asked to be re-checked
        self._dirty = True
        self._pending: list[Changes] = []  # for the store
        self._task: asyncio.Task[None] | None = None

    # --- input ----------------------------------------------------------------

    def sink(self, records: list[Sample | Event]) -> None:
        """One poll's records, from the collectors."""
        for record in records:
            device_id = record.origin.device
            if device_id is None or device_id not in self.topology.devices:
                continue
            if isinstance(record, Sample):
                if record.measurement == "poll":
                    role = record.origin.role or ""
                    ok = bool(record.fields.get("ok"))
                    if self.health.observe_poll(device_id, role, ok, record.ts):
                        self._alive_changed(device_id, record.ts)
                    if not ok:
                        self._suspect_parents(device_id, record.ts)
                else:
                    self.health.observe_sample(device_id, record)
            else:
                self.on_event(record)
        if self.health.dirty:
            self._dirty, self.health.dirty = True, False

    def on_event(self, event: Event) -> None:
        device_id = event.origin.device
        if device_id is None or device_id not in self.topology.devices:
            return
        if event.event_type is EventType.TRAP and event.body.get("trap") == "linkDown":
            self._suspect_line(device_id, event.body.get("if_index"), event.ts)
        if event.event_type is EventType.STATE and event.body.get("change") == "reboot":
            self.health.observe_reboot(device_id, event.ts)
            device = self.topology.devices[device_id]
            self._hold(ConditionSpec(ConditionKind.REBOOTED, device_id, Severity.NOTICE,
                                     f"{device.name} 再起動を検知 (稼働時間 {event.body.get('uptime_s', 0):.0f} 秒)"),
                       event.ts)

    # --- asking again, early ------------------------------------------------------
    # The collectors poll every 10 s; a fault is confirmed in seconds only if the monitor asks the
    # suspects at once (a quick question each): the parents of a device that just failed, and the far
    # end of a line another device reported down by trap.

    def _suspect_parents(self, device_id: str, ts: float) -> None:
        for parent in self.topology.devices[device_id].parents:
            health = self.health.devices.get(parent)
            if health is None or health.last_ok < ts:
                self._suspect(parent, ts)

    def _suspect_line(self, reporter: str, if_index: object, ts: float) -> None:
        circuit = self.health.line_ports.get((reporter, str(if_index)))
        link = self._link_by_circuit.get(circuit) if circuit else None
        if link is not None and link.a != reporter:
            self._suspect(link.a, ts)

    def _suspect(self, device_id: str, ts: float) -> None:
        if self.recheck is None or ts - self._suspected.get(device_id, 0.0) < self.settings.recheck_spacing:
            return
        self._suspected[device_id] = ts
        self.recheck(device_id)

    def _alive_changed(self, device_id: str, ts: float) -> None:
        health = self.health.devices[device_id]
        if self._previous_state(device_id) is State.UNREACHABLE and health.changes:
            health.changes.pop()  # answering again after its parent's outage is not this device flapping
        device = self.topology.devices[device_id]
        if device.role not in SCHEDULED_ROLES:
            return
        for violation in self.order.observe(device_id, bool(self.health.devices[device_id].alive), ts):
            self._hold(ConditionSpec(ConditionKind.ORDER_VIOLATION, device_id, Severity.WARNING, violation.summary,
                                     detail=str(violation.rule)), ts)

    def _hold(self, spec: ConditionSpec, ts: float) -> None:
        self._timed[spec.fingerprint] = (spec, ts + self.settings.event_hold)
        self._dirty = True

    # --- judgement ------------------------------------------------------------

    def evaluate(self, now: float | None = None) -> Changes:
        """Judge the whole network now; apply and return what changed."""
        now = self.clock() if now is None else now
        judgement = self.judge.judge(now, self._previous_state)
        self._dirty = False
        changes = Changes()
        self._apply_states(judgement, now, changes)
        self._apply_conditions(judgement, now, changes)
        if self.recheck is not None:
            for device_id in judgement.recheck:
                self.recheck(device_id)
        if changes:
            self._pending.append(changes)
            for listener in self.listeners:
                try:
                    listener(changes)
                except Exception:
                    log.exception("state listener failed")
        return changes

    def _previous_state(self, device_id: str) -> State:
        record = self.states.get((SubjectKind.DEVICE, device_id))
        return record.state if record is not None else State.UNKNOWN

    def _apply_states(self, judgement: Judgement, now: float, changes: Changes) -> None:
        for kind, table in ((SubjectKind.DEVICE, judgement.devices), (SubjectKind.LINK, judgement.links),
                            (SubjectKind.SITE, judgement.sites)):
            for subject, (state, reason) in table.items():
                key = (kind, subject)
                flapping = kind is SubjectKind.DEVICE and self.health.flapping(subject, now)
                old = self.states.get(key)
                if old is not None and old.state is state and old.reason == reason and old.flapping == flapping:
                    continue
                record = StateRecord(kind, subject, state, now if old is None or old.state is not state else old.since,
                                     reason, flapping)
                self.states[key] = record
                changes.states.append(record)
                if old is not None and old.state is not state:
                    changes.transitions.append(Transition(kind, subject, old.state, state, now, reason))

    def _apply_conditions(self, judgement: Judgement, now: float, changes: Changes) -> None:
        wanted = dict(judgement.conditions)
        for fingerprint, (spec, until) in list(self._timed.items()):
            if until <= now:
                del self._timed[fingerprint]
            else:
                wanted[fingerprint] = spec
        for fingerprint, spec in wanted.items():
            current = self.conditions.get(fingerprint)
            details = {"suppressed_count": spec.suppressed_count} if spec.suppressed_count else {}
            if current is None:
                condition = Condition(fingerprint, spec.kind, spec.subject, spec.severity.value, now, spec.summary,
                                      suppressed=spec.suppressed, in_maintenance=spec.in_maintenance,
                                      details=details)
                self.conditions[fingerprint] = condition
                changes.raised.append(condition)
                log.warning("condition raised", extra=fields(fingerprint=fingerprint, severity=spec.severity.value,
                                                             summary=spec.summary,
                                                             maintenance=spec.in_maintenance or None))
            elif (current.summary, current.suppressed, current.in_maintenance, current.severity) != (
                    spec.summary, spec.suppressed, spec.in_maintenance, spec.severity.value):
                updated = replace(current, summary=spec.summary, suppressed=spec.suppressed,
                                  in_maintenance=spec.in_maintenance, severity=spec.severity.value, details=details)
                self.conditions[fingerprint] = updated
                changes.updated.append(updated)
        for fingerprint in [f for f in self.conditions if f not in wanted]:
            cleared = replace(self.conditions.pop(fingerprint), status=ConditionStatus.CLEARED, cleared=now)
            changes.cleared.append(cleared)
            log.info("condition cleared", extra=fields(fingerprint=fingerprint,
                                                       lasted_s=round(now - cleared.started, 1)))

    # --- running ----------------------------------------------------------------

    async def start(self) -> None:
        if self.store is not None:
            await self._restore()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="state-engine")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._flush(checkpoint=True)

    async def _run(self) -> None:
        last_judgement = last_checkpoint = 0.0
        while True:
            await asyncio.sleep(self.settings.settle)
            mono = time.monotonic()
            if self._dirty or mono - last_judgement >= self.settings.tick:
                try:
                    self.evaluate()
                except Exception:  # a bug in one judgement must not stop the monitor
                    log.exception("judgement failed")
                last_judgement = mono
            checkpoint = mono - last_checkpoint >= self.settings.checkpoint_every
            try:
                await self._flush(checkpoint)
            except StoreUnavailable:  # away for a while: keep judging, keep the backlog (the store logs once)
                continue
            except Exception:
                log.exception("store write failed; will retry", extra=fields(backlog=len(self._pending)))
                continue
            if checkpoint:
                last_checkpoint = mono

    async def _flush(self, checkpoint: bool) -> None:
        if self.store is None:
            self._pending.clear()
            return
        # A condition raised or cleared must not reach the store without the health that decided it: restored
        # after a kill with older health, the first judgement would clear it (and a later one raise it anew).
        checkpoint = checkpoint or any(c.raised or c.cleared for c in self._pending)
        while self._pending:
            changes = self._pending[0]  # oldest first, one transaction each: a retry never appends twice
            await self.store.save_judgement(changes.states, changes.transitions,
                                            [*changes.raised, *changes.updated, *changes.cleared])
            self._pending.pop(0)
        if checkpoint:
            await self.store.put_checkpoint(HEALTH_CHECKPOINT, {
                "health": {d: h.checkpoint() for d, h in self.health.devices.items() if h.alive is not None},
                "timed": {f: [_spec_json(spec), until] for f, (spec, until) in self._timed.items()}})

    async def _restore(self) -> None:
        assert self.store is not None
        for record in await self.store.load_states():
            self.states[(record.kind, record.subject)] = record
        for condition in await self.store.load_conditions(active_only=True):
            self.conditions[condition.fingerprint] = condition
        saved = await self.store.get_checkpoint(HEALTH_CHECKPOINT) or {}
        for device_id, data in saved.get("health", {}).items():
            if device_id in self.topology.devices:
                self.health.devices[device_id] = DeviceHealth.restore(data)
        for fingerprint, (spec, until) in saved.get("timed", {}).items():
            self._timed[fingerprint] = (_spec_from_json(spec), float(until))
        log.info("state restored", extra=fields(states=len(self.states), conditions=len(self.conditions),
                                                devices=len(self.health.devices)))

    # --- reading ------------------------------------------------------------------

    def state_of(self, kind: SubjectKind, subject: str) -> StateRecord | None:
        return self.states.get((kind, subject))

    def active(self, kinds: Iterable[ConditionKind] | None = None) -> list[Condition]:
        wanted = set(kinds) if kinds is not None else None
        return [c for c in self.conditions.values() if wanted is None or c.kind in wanted]


class _CalendarAt:
    """The operating calendar, asked at the calendar clock's time (tests and drills may set the calendar's day)."""

    def __init__(self, calendar: OperatingCalendar, clock: Callable[[], float],
                 calendar_clock: Callable[[], float] | None):
        self.calendar, self.clock, self.calendar_clock = calendar, clock, calendar_clock

    def expected_running(self, ts: float, prefecture: str | None = None) -> bool:
        if self.calendar_clock is not None:
            ts = self.calendar_clock() + (ts - self.clock())
        return self.calendar.expected_running(ts, prefecture)


def _spec_json(spec: ConditionSpec) -> dict:
    return {"kind": spec.kind.value, "subject": spec.subject, "severity": spec.severity.value,
            "summary": spec.summary, "detail": spec.detail}


def _spec_from_json(data: dict) -> ConditionSpec:
    return ConditionSpec(ConditionKind(data["kind"]), data["subject"], Severity(data["severity"]), data["summary"],
                         detail=data.get("detail", ""))


__all__ = ["Changes", "MonitorSettings", "StateEngine"]
