"""Running a drill: the scenario's injects on the drill clock, the cascade's reports, and everything on one timeline.

``DrillRunner.run()`` works through a queue of timed steps: the scenario's injects,
the simulated participants' confirmations and actions, and a periodic tick (reminders
to the overdue, receipts that came in from real people). ``pause``/``resume`` hold the
drill clock; ``abort`` stops at once and clears every fault the drill injected — as
does the normal end, so a drill never leaves the simulation broken.

In live mode fault injects go to a ``FaultTarget`` behind the safety interlock; the
runner checks every fault of the scenario before the first step and refuses the whole
drill if one is not allowed. In tabletop mode faults are only announced on the timeline.
Every cascade message is a drill message (``Incident.drill``): 【訓練】 in subject and body.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Awaitable, Callable

from alerting.cascade import Cascade, Channel, Forwarding, Incident, OrgTier, Report
from alerting.cascade.model import jst_text
from drills.clock import DrillAborted, DrillClock
from drills.faults import DrillRefused, FaultTarget, check_simulated
from drills.participants import SimulatedParticipants
from drills.scenario import (ClearInject, Expectation, ExpectationKind, FaultInject, IdsEventInject, Inject,
                             MessageInject, Mode, ReportInject, Role, Scenario)
from drills.timeline import EntryKind, Timeline
from monitor.inventory.model import Inventory
from monitor.japan_time import JST
from monitor.logs import fields
from monitor.state.engine import Changes, StateEngine

log = logging.getLogger("drills.runner")

TIER_ROLE = {OrgTier.PREFECTURE: Role.PREFECTURE, OrgTier.MUNICIPALITY: Role.MUNICIPALITY}
MONITOR = "jukimon"  # who "detects" when the state engine raises a condition


class Status(StrEnum):
    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    ABORTED = "aborted"
    FINISHED = "finished"


@dataclass
class DrillResult:
    scenario: Scenario
    incident: Incident
    started: float
    ended: float
    status: Status
    timeline: Timeline
    reports: dict[str, Report] = field(default_factory=dict)  # report inject id → report issued


Step = Callable[[], Awaitable[None]]


class DrillRunner:
    def __init__(self, scenario: Scenario, cascade: Cascade, clock: DrillClock, inventory: Inventory, *,
                 faults: FaultTarget | None = None, participants: SimulatedParticipants | None = None,
                 engine: StateEngine | None = None, tabletop: bool = False, tick: float = 300.0,
                 on_step: Callable[[DrillRunner], None] | None = None) -> None:
        self.scenario = scenario
        self.cascade = cascade
        self.clock = clock
        self.inventory = inventory
        self.faults = faults
        self.participants = participants
        self.engine = engine
        self.live = scenario.mode is Mode.LIVE and not tabletop
        self.tick = tick
        self.on_step = on_step
        self.status = Status.READY
        self.timeline = Timeline()
        self.started = clock()
        stamp = dt.datetime.fromtimestamp(self.started, JST).strftime("%Y%m%d%H%M%S")
        self.incident = Incident(f"drill-{scenario.name}-{stamp}"[:100], scenario.title, drill=True,
                                 opened=self.started)
        self.reports: dict[str, Report] = {}
        self._queue: list[tuple[float, int, Step]] = []
        self._seq = itertools.count()
        self._injected: dict[str, str] = {}  # fault inject id → simulation's fault id, while active
        self._recorded: set[tuple[str, str]] = set()  # (report id, org) confirmations on the timeline
        self._last_fault_at: float | None = None

    # --- control ----------------------------------------------------------------------------------------------

    async def run(self) -> DrillResult:
        """Run the drill to its end (or abort); faults it injected are cleared either way."""
        await self._preflight()
        if self.engine is not None:
            self.engine.listeners.append(self._on_changes)
        self.status = Status.RUNNING
        self._record(EntryKind.PHASE, "start", f"訓練開始: {self.scenario.title}", mode="live" if self.live
                     else "tabletop")
        log.info("drill started", extra=fields(drill=self.incident.id, live=self.live))
        for inject in self.scenario.timeline:
            self._push(self.started + inject.at, self._inject_step(inject))
        end = self.started + self.scenario.duration
        for at in _ticks(self.started + self.tick, end, self.tick):
            self._push(at, self._tick)
        try:
            await self._loop(end)
            self.status = Status.FINISHED
        except DrillAborted:
            pass
        finally:
            if self.status is not Status.FINISHED:  # aborted, or stopped by an error: clean up all the same
                self.status = Status.ABORTED
            if self.engine is not None:
                self.engine.listeners.remove(self._on_changes)
            await self._clear_all("abort" if self.status is Status.ABORTED else "end")
            self._sync_confirmations()
            self._record(EntryKind.PHASE, self.status.value, "訓練中止" if self.status is Status.ABORTED
                         else "訓練終了")
        log.info("drill ended", extra=fields(drill=self.incident.id, status=self.status.value))
        return DrillResult(self.scenario, self.incident, self.started, self.clock(), self.status, self.timeline,
                           dict(self.reports))

    def pause(self) -> None:
        if self.status is Status.RUNNING:
            self.clock.pause()
            self.status = Status.PAUSED
            self._record(EntryKind.PHASE, "pause", "一時停止")

    def resume(self) -> None:
        if self.status is Status.PAUSED:
            self.status = Status.RUNNING
            self._record(EntryKind.PHASE, "resume", "再開")
            self.clock.resume()

    def abort(self) -> None:
        self.clock.abort()

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    @property
    def confirmations(self) -> int:
        """Receipts on the timeline so far (all reports)."""
        return len(self._recorded)

    def record_action(self, action: str, by: str, at: float | None = None) -> None:
        """An operator action (from the console, the CLI or a simulated participant)."""
        when = self.clock() if at is None else at
        first = self.timeline.first(EntryKind.ACTION, action) is None
        self._record(EntryKind.ACTION, action, by, at=when)
        if first:  # what counts from an expectation counts from the first time its action was done
            for expectation in self.scenario.expectations:
                if expectation.kind is ExpectationKind.ACTION and expectation.action == action:
                    self._schedule_followers(expectation.id, when)

    # --- the loop ---------------------------------------------------------------------------------------------

    async def _loop(self, end: float) -> None:
        """Take every step whose time has come; wait (in slices, so steps pushed meanwhile are not missed)."""
        while self._queue and self._queue[0][0] <= end:
            at = self._queue[0][0]
            await self.clock.sleep_until(min(at, self.clock() + self.tick))
            due: list[Step] = []
            while self._queue and self._queue[0][0] <= self.clock():
                due.append(heapq.heappop(self._queue)[2])
            for step in due:
                await step()
            if self.on_step is not None:
                self.on_step(self)
        await self.clock.sleep_until(end)

    def _push(self, at: float, step: Step) -> None:
        heapq.heappush(self._queue, (at, next(self._seq), step))

    async def _preflight(self) -> None:
        if not self.live:
            return
        if self.faults is None:
            raise DrillRefused("a live drill needs the simulated network (or run it as a tabletop drill)")
        await self.faults.check()
        refused = []
        for inject in self.scenario.faults():
            action = inject.action
            assert isinstance(action, FaultInject)
            try:
                check_simulated(self.faults.inventory, action.kind, action.target)
            except DrillRefused as exc:
                refused.append(f"{inject.id} (line {inject.line}): {exc}")
        if refused:
            raise DrillRefused("safety interlock: " + "; ".join(refused))

    # --- injects ----------------------------------------------------------------------------------------------

    def _inject_step(self, inject: Inject) -> Step:
        async def step() -> None:
            action = inject.action
            if isinstance(action, FaultInject):
                await self._fault(inject, action)
            elif isinstance(action, ClearInject):
                await self._clear(action.fault, "scenario")
            elif isinstance(action, ReportInject):
                await self._report(inject, action)
            elif isinstance(action, MessageInject):
                self._record(EntryKind.MESSAGE, inject.id, action.text, to=action.to.value)
            elif isinstance(action, IdsEventInject):
                self._record(EntryKind.IDS, inject.id, str(action.record.get("summary", "")), record=action.record)
            self._schedule_followers(inject.id, self.clock())
        return step

    async def _fault(self, inject: Inject, action: FaultInject) -> None:
        self._last_fault_at = self.clock()
        text = f"{action.kind.value} → {action.target}"
        if not self.live:
            self._record(EntryKind.FAULT, inject.id, f"（机上）{text}", target=action.target, injected=False)
            return
        assert self.faults is not None
        try:
            fault_id = await self.faults.inject(action.kind, action.target, action.params)
        except DrillRefused as exc:
            self._record(EntryKind.REFUSED, inject.id, str(exc), target=action.target)
            return
        self._injected[inject.id] = fault_id
        self._record(EntryKind.FAULT, inject.id, text, target=action.target, injected=True, fault=fault_id)

    async def _clear(self, inject_id: str, reason: str) -> None:
        fault_id = self._injected.pop(inject_id, None)
        if fault_id is not None and self.faults is not None:
            if fault_id in await self.faults.active():
                await self.faults.clear(fault_id)
            self._record(EntryKind.CLEAR, inject_id, f"復旧（{reason}）", fault=fault_id, reason=reason)
        elif not self.live:
            self._record(EntryKind.CLEAR, inject_id, "（机上）復旧", reason=reason)

    async def _clear_all(self, reason: str) -> None:
        for inject_id in list(self._injected):
            await self._clear(inject_id, reason)

    async def _report(self, inject: Inject, action: ReportInject) -> None:
        now = self.clock()
        report = Report(self.incident.id, action.sequence, action.render(self._template_values(now)), now,
                        final=action.final, scope=self.scenario.scope)
        await self.cascade.issue(self.incident, report)
        self.reports[inject.id] = report
        deliveries = self.cascade.tracker.deliveries(report.id)
        self._record(EntryKind.REPORT, inject.id, report.label, report=report.id, sequence=report.sequence,
                     final=report.final, sent=len(deliveries), at_issue=now)
        self._schedule_confirmations(report, [d.org for d in deliveries])

    def _template_values(self, now: float) -> dict[str, Any]:
        faults = self.scenario.faults()
        target = faults[0].action.target if faults else ""  # type: ignore[union-attr]
        device = self.inventory.devices.get(target)
        first = self.timeline.first(EntryKind.FAULT)
        return {"title": self.scenario.title, "scenario": self.scenario.name, "target": target,
                "target_name": device.name if device else target,
                "started": jst_text(first.at if first else self.started), "now": jst_text(now)}

    # --- simulated participants -------------------------------------------------------------------------------

    def _schedule_confirmations(self, report: Report, orgs: list[str]) -> None:
        if self.participants is None:
            return
        directory = self.cascade.tracker.directory
        for org_id in sorted(orgs):
            delivery = self.cascade.tracker.delivery(report.id, org_id)
            role = TIER_ROLE.get(directory[org_id].tier)
            if delivery is None or delivery.delivered_at is None or role is None:
                continue
            delay = self.participants.delay(role)
            if delay is not None:
                self._push(delivery.delivered_at + delay, self._confirm_step(report, org_id, role))

    def _confirm_step(self, report: Report, org_id: str, role: Role) -> Step:
        async def step() -> None:
            assert self.participants is not None
            await self.cascade.tracker.confirm(report.id, org_id, Channel.CONSOLE, by=self.participants.name(role))
            self._sync_one(report.id, org_id)
            org = self.cascade.tracker.directory[org_id]
            if role is Role.PREFECTURE and self.cascade.tracker.directory.forwarding_of(org) is Forwarding.PREFECTURE:
                await self.cascade.forward(report.id, org_id, by=self.participants.name(role))
                self._schedule_confirmations(report, [m.id for m in self.cascade.tracker.directory.municipalities(org)])
        return step

    def _schedule_followers(self, reference: str, at: float) -> None:
        """Simulated participants act on the expectations that count from what just happened."""
        if self.participants is None:
            return
        for expectation in self.scenario.expectations:
            if expectation.kind is ExpectationKind.ACTION and expectation.after == reference \
                    and not self._monitor_detects(expectation):
                assert expectation.by is not None
                delay = self.participants.delay(expectation.by)
                if delay is not None:
                    self._push(at + delay, self._action_step(expectation))

    def _monitor_detects(self, expectation: Expectation) -> bool:
        """With a state engine attached in a live drill, detection is the monitor's, not a simulated person's."""
        return expectation.action == "detect" and self.engine is not None and self.live

    def _action_step(self, expectation: Expectation) -> Step:
        async def step() -> None:
            assert self.participants is not None and expectation.by is not None
            self.record_action(expectation.action, self.participants.name(expectation.by))
        return step

    # --- what happened elsewhere ------------------------------------------------------------------------------

    async def _tick(self) -> None:
        reminded = await self.cascade.remind()
        if reminded:
            self._record(EntryKind.REMINDER, "cascade", f"督促 {reminded} 通", count=reminded)
        self._sync_confirmations()

    def _sync_confirmations(self) -> None:
        """Receipts by any channel (people at the console or the mail link, MQTT) onto the timeline."""
        for report in self.reports.values():
            for delivery in self.cascade.tracker.deliveries(report.id):
                if delivery.confirmed_at is not None:
                    self._sync_one(report.id, delivery.org)

    def _sync_one(self, report_id: str, org_id: str) -> None:
        if (report_id, org_id) in self._recorded:
            return
        delivery = self.cascade.tracker.delivery(report_id, org_id)
        if delivery is None or delivery.confirmed_at is None:
            return
        self._recorded.add((report_id, org_id))
        self._record(EntryKind.CONFIRM, org_id, delivery.confirmed_by or "", at=delivery.confirmed_at,
                     report=report_id, via=delivery.confirmed_via)

    def _on_changes(self, changes: Changes) -> None:
        """The state engine's listener: conditions onto the timeline; the first one after a fault is detection."""
        for condition in changes.raised:
            self._record(EntryKind.CONDITION, condition.subject, condition.summary, at=condition.started,
                         fingerprint=condition.fingerprint, severity=condition.severity)
            if self._last_fault_at is not None and self.timeline.first(
                    EntryKind.ACTION, "detect", since=self._last_fault_at) is None:
                self.record_action("detect", MONITOR, at=max(condition.started, self._last_fault_at))

    def _record(self, kind: EntryKind, subject: str, text: str = "", *, at: float | None = None,
                **data: Any) -> None:
        entry = self.timeline.add(self.clock() if at is None else at, kind, subject, text, **data)
        if kind is not EntryKind.CONFIRM:
            log.info("drill event", extra=fields(drill=self.incident.id, kind=kind.value, subject=subject,
                                                  text=entry.text))


def _ticks(first: float, end: float, every: float) -> list[float]:
    return [first + i * every for i in range(int((end - first) // every) + 1)] if first <= end else []
