"""The alerting service: the monitor's changes in, notifications out, operators' actions in between.

A pipeline read top to bottom, once a second (``tick``)::

    conditions ─▶ alarm book ─▶ routing tree ─▶ aggregation groups
    every tick:  inhibit + silence (muting) ─▶ group schedule (wait, interval, repeat, escalation)
                 ─▶ render ─▶ outbox.enqueue ─▶ timeline ─▶ store

``on_changes`` is a ``StateEngine`` listener (synchronous, in memory only);
``tick`` sends what is due and saves. The outbox is engineer B's ``DurableOutbox``
(alerting.notify): idempotent by ``Notification.id``
(``group_key|receiver|step|sequence``) and durable before ``enqueue`` returns.

Wiring (monitor/mainjob.py)::

    alerting = AlertingService(inventory, load_routing(path) if path else None, outbox, store)
    await alerting.start(engine.active())   # after engine.start(): alarms for conditions raised while down
    engine.listeners.append(alerting.on_changes)
    ...
    await alerting.stop()
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, Sequence

from alerting.alarm_store import AlarmStore
from alerting.alarms import OPEN_STATUSES, AlarmBook, jst, severity_rank
from alerting.escalation import AlarmGroup, Dispatch, Snapshot
from alerting.model import Alarm, AlarmStatus, Notification
from alerting.notify import is_drill
from alerting.notify import render as render_notification
from alerting.routing import RoutingConfig, default_routing
from alerting.silences import Matcher, Muting, Silence, SilenceBook, inhibitors, match_all, matchers_of
from monitor.inventory.model import Inventory
from monitor.logs import fields
from monitor.state.engine import Changes
from monitor.state.model import Condition
from monitor.store import Store

log = logging.getLogger("alerting")

KIND_JA = {"firing": "障害発生", "resolved": "復旧", "escalation": "エスカレーション", "reminder": "再通知"}

class Renderer(Protocol):
    """Subject and body of one notification (alerting.notify.render: jinja2 templates, Japanese by default)."""

    def __call__(self, kind: str, alarms: Sequence[Alarm], receiver: str, *,
                 escalation_step: int | None = None) -> tuple[str, str]: ...


class Outbox(Protocol):
    """Where notifications go (alerting.notify.DurableOutbox): idempotent by id, durable before it returns."""

    async def enqueue(self, n: Notification) -> None: ...


@dataclass(frozen=True)
class Children:
    """What a root cause hides: the subjects it made unreachable (exact count) and the alarms it inhibits."""

    subjects: tuple[str, ...]
    count: int
    inhibited: list[Alarm]


class AlertingService:
    def __init__(self, inventory: Inventory, routing: RoutingConfig | None, outbox: Outbox,
                 store: Store | None = None, clock: Callable[[], float] = time.time, *,
                 render: Renderer = render_notification, tick_every: float = 1.0,
                 fence: Callable[[], bool] | None = None) -> None:
        self.inventory = inventory
        self.fence = fence  # active/standby (monitor.lease): tick only while this monitor may act
        self.routing = routing or default_routing()
        self.outbox = outbox
        self.clock = clock
        self.render = render
        self.tick_every = tick_every
        self.book = AlarmBook(inventory)
        self.silences = SilenceBook()
        self.groups: dict[str, AlarmGroup] = {}
        self._db = store
        self._store: AlarmStore | None = None
        self._routed: dict[str, tuple[str, ...]] = {}  # fingerprint → group keys
        self._dirty_groups: set[str] = set()
        self._dirty_silences: set[str] = set()
        self._save_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    # --- running --------------------------------------------------------------------------------------------------

    async def restore(self, active: Iterable[Condition] | None = None) -> None:
        """Load what the store kept; then, given the monitor's active conditions, catch up with them."""
        if self._db is not None:
            self._store = await AlarmStore.open(self._db)
            saved = await self._store.load()
            self.book.alarms = {a.fingerprint: a for a in saved.alarms}
            self.silences = SilenceBook(saved.silences)
            self.groups = {g.key: g for g in saved.groups}
            told = set().union(*(g.notified for g in self.groups.values()))
            for alarm in saved.alarms:
                if alarm.status is not AlarmStatus.CLOSED or alarm.fingerprint in told:
                    self._route(alarm.fingerprint)
            log.info("alerting restored", extra=fields(alarms=len(saved.alarms), groups=len(self.groups),
                                                       silences=len(saved.silences)))
        if active is not None:
            for fingerprint in self.book.reconcile(active, self.clock()):
                self._route(fingerprint)

    async def start(self, active: Iterable[Condition] | None = None) -> None:
        await self.restore(active)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="alerting")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.fence is None or self.fence():  # a monitor that lost its lease must not overwrite the holder's
            await self._save()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_every)
            try:
                await self.tick()
            except Exception:
                # Outbox away: the schedule did not advance, the next tick sends the same again (same ids).
                # Store away: what changed stays dirty and the next tick saves it. Logged once, not every second.
                if not self._failing:
                    log.exception("alerting tick failed; retrying every tick")
                self._failing = True
            else:
                if self._failing:
                    log.info("alerting tick recovered")
                self._failing = False

    # --- input ----------------------------------------------------------------------------------------------------

    def on_changes(self, changes: Changes) -> None:
        """StateEngine listener: alarms raised, updated, resolved; routed to their groups at once."""
        for fingerprint in self.book.apply(changes, self.clock()):
            self._route(fingerprint)

    def _route(self, fingerprint: str) -> None:
        alarm = self.book.alarms[fingerprint]
        keys = []
        for route in self.routing.routes_for(alarm.labels):
            key = route.group_key(alarm.labels) + ("{drill}" if alarm.drill else "")  # drills never share a message
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = AlarmGroup(key, route.id, {k: alarm.labels.get(k, "")
                                                                      for k in route.group_by})
            group.members.add(fingerprint)
            keys.append(key)
        for old in set(self._routed.get(fingerprint, ())) - set(keys):
            self.groups[old].members.discard(fingerprint)
        self._routed[fingerprint] = tuple(keys)

    # --- the pipeline ---------------------------------------------------------------------------------------------

    async def tick(self) -> None:
        """Mute, send what is due, save. Called every ``tick_every`` seconds by the background loop."""
        if self.fence is not None and not self.fence():
            return  # a standby neither sends nor escalates nor saves: the active monitor does
        now = self.clock()
        self._refresh_muting(now)
        for group in list(self.groups.values()):
            route = self.routing.routes_by_id.get(group.route)
            if route is None:  # from a routing file since changed: its alarms are routed to new groups
                continue
            policy = self.routing.policy_of(route)
            snap = self._snapshot(group)
            if group.observe(snap, policy, now):
                self._dirty_groups.add(group.key)
            while (dispatch := group.due(snap, route, policy, now)) is not None:
                await self._send(group, dispatch, now)
                group.sent(dispatch, snap, now)
                self._dirty_groups.add(group.key)
            group.members -= {fp for fp in snap.resolved
                              if self.book.alarms[fp].status is AlarmStatus.CLOSED and fp not in group.notified}
        await self._save()

    def _refresh_muting(self, now: float) -> None:
        firing = [a for a in self.book.alarms.values() if a.status in OPEN_STATUSES]
        inhibited = inhibitors(firing, self.routing.inhibit_rules)
        for alarm in firing:
            self.book.set_muting(alarm.fingerprint, Muting(self.silences.silencing(alarm.labels, now),
                                                           inhibited.get(alarm.fingerprint)), now)

    def _snapshot(self, group: AlarmGroup) -> Snapshot:
        firing, unacked, resolved = set(), set(), set()
        for fingerprint in group.members:
            alarm = self.book.alarms[fingerprint]
            if alarm.status in OPEN_STATUSES:
                if self.book.notifiable(alarm):
                    firing.add(fingerprint)
                    if alarm.status is AlarmStatus.FIRING:
                        unacked.add(fingerprint)
            else:
                resolved.add(fingerprint)
        return Snapshot(frozenset(firing), frozenset(unacked), frozenset(resolved))

    async def _send(self, group: AlarmGroup, dispatch: Dispatch, now: float) -> None:
        alarms = [self.book.alarms[fp] for fp in dispatch.alarms]
        for name in dispatch.receivers:
            subject, body = self.render(dispatch.kind, alarms, name, escalation_step=dispatch.step
                                        if dispatch.kind == "escalation" else None)
            await self.outbox.enqueue(Notification(
                f"{group.key}|{name}|{dispatch.step}|{dispatch.sequence}", name, group.key, dispatch.alarms,
                subject, body, now, dispatch.kind, drill=is_drill(alarms)))
        if not dispatch.receivers:
            return
        receivers = ", ".join(dispatch.receivers)
        for alarm in alarms:
            if dispatch.kind == "escalation":
                self.book.note(alarm.fingerprint, now, "escalated", f"{dispatch.tier} へエスカレーション: {receivers}",
                               tier=dispatch.tier, step=dispatch.step, receivers=list(dispatch.receivers))
            else:
                self.book.note(alarm.fingerprint, now, "notified", f"{KIND_JA[dispatch.kind]}: {receivers}",
                               kind=dispatch.kind, step=dispatch.step, receivers=list(dispatch.receivers))
        log.info("notifications enqueued", extra=fields(group=group.key, kind=dispatch.kind, step=dispatch.step,
                                                        sequence=dispatch.sequence, receivers=receivers,
                                                        alarms=len(alarms)))

    async def _save(self) -> None:
        async with self._save_lock:
            alarms, group_keys, silence_ids = set(self.book.dirty), set(self._dirty_groups), set(self._dirty_silences)
            if self._store is not None and (alarms or group_keys or silence_ids):
                await self._store.save([self.book.alarms[fp] for fp in alarms],
                                       [self.silences.silences[i] for i in silence_ids],
                                       [self.groups[k] for k in group_keys])
            # Only what was saved: changes made while the save awaited stay dirty for the next one.
            self.book.dirty -= alarms
            self._dirty_groups -= group_keys
            self._dirty_silences -= silence_ids

    # --- operator actions (persisted before they return) ----------------------------------------------------------

    async def acknowledge(self, fingerprint: str, user: str, comment: str = "") -> Alarm:
        """Stops the escalation and the repeats of the alarm's groups (at the next tick)."""
        return await self._operator(self.book.acknowledge, fingerprint, user, comment)

    async def resolve(self, fingerprint: str, user: str, reason: str) -> Alarm:
        """By hand, with a reason; the groups that told of the alarm tell of its resolution."""
        return await self._operator(self.book.resolve, fingerprint, user, reason)

    async def close(self, fingerprint: str, user: str, comment: str = "") -> Alarm:
        return await self._operator(self.book.close, fingerprint, user, comment)

    async def comment(self, fingerprint: str, user: str, text: str) -> Alarm:
        return await self._operator(self.book.comment, fingerprint, user, text)

    async def _operator(self, action: Callable[[str, str, str, float], Alarm], fingerprint: str, user: str,
                        text: str) -> Alarm:
        """Apply an action of the book (``AlarmError`` if it cannot be done) and save it before returning."""
        alarm = action(fingerprint, user, text, self.clock())
        await self._save()
        log.info("operator action", extra=fields(fingerprint=fingerprint, user=user, status=alarm.status.value))
        return alarm

    async def add_silence(self, matchers: Iterable[Matcher | str], start: float, end: float, author: str,
                          reason: str) -> Silence:
        """Raises ``SilenceError`` (Japanese, naming the field) when the silence is not valid."""
        silence = self.silences.add(matchers, start, end, author, reason, self.clock())
        self._dirty_silences.add(silence.id)
        await self._save()
        log.info("silence added", extra=fields(silence=silence.id, author=silence.author,
                                               matchers=" ".join(map(str, silence.matchers)), end=jst(silence.end)))
        return silence

    async def expire_silence(self, silence_id: str, user: str) -> Silence:
        silence = self.silences.expire(silence_id, user, self.clock())
        self._dirty_silences.add(silence.id)
        await self._save()
        log.info("silence expired by hand", extra=fields(silence=silence.id, user=user))
        return silence

    # --- queries --------------------------------------------------------------------------------------------------

    def open_alarms(self, matchers: Iterable[Matcher | str] = (), *, min_severity: str | None = None,
                    statuses: Iterable[AlarmStatus] | None = None) -> list[Alarm]:
        """Alarms not closed (or of the given statuses), most severe first, then oldest first."""
        wanted = set(statuses) if statuses is not None else {s for s in AlarmStatus if s is not AlarmStatus.CLOSED}
        parsed = matchers_of(matchers)
        ceiling = severity_rank(min_severity) if min_severity is not None else None
        found = [a for a in self.book.alarms.values() if a.status in wanted and match_all(parsed, a.labels)
                 and (ceiling is None or severity_rank(a.severity) <= ceiling)]
        return sorted(found, key=lambda a: (severity_rank(a.severity), a.started, a.fingerprint))

    def alarm(self, fingerprint: str) -> Alarm | None:
        return self.book.alarms.get(fingerprint)

    def muting(self, fingerprint: str) -> Muting:
        """Why an alarm is not notified (silences, inhibiting alarm); empty when it is not muted."""
        return self.book.muting.get(fingerprint, Muting())

    def children(self, fingerprint: str) -> Children:
        alarm = self.book.get(fingerprint)
        inhibited = [a for fp, m in self.book.muting.items() if m.inhibited_by == fingerprint
                     and (a := self.book.alarms[fp]).status in OPEN_STATUSES]
        return Children(alarm.suppressed, alarm.suppressed_count, inhibited)
