"""When an alarm group tells whom: grouping times (Alertmanager's) and escalation tiers (PagerDuty's).

An *aggregation group* is one route's alarms that share the values of the route's
``group_by`` labels. Its schedule, for one *episode* (from the first firing alarm
until every alarm it told of has been told resolved):

- the first notification waits ``group_wait`` from the episode's start, so a burst
  (50 CSs of one prefecture) becomes one notification;
- later changes — alarms joining, alarms resolved — go out together, at most every
  ``group_interval``; resolved alarms are told only to those told they fired;
- while an alarm it told of is unacknowledged, the group is repeated every
  ``repeat_interval`` (acknowledged alarms are someone's work: no repeats);
- with an escalation policy, step 0 is the route's receivers plus the first tier;
  an unacknowledged alarm ``wait`` after a step's notification moves the group to
  the next tier; the last tier is told again every ``repeat_interval`` of the
  policy, if it has one. An acknowledgement of every alarm told of stops the clock;
  an unacknowledged alarm appearing again restarts it (the step is kept). A step
  counts from when the previous one fell due, not from when a tick got to it: a
  restart delays the step that was due by its own length, and no later step (after
  an outage longer than a tier's wait, the overdue tiers are told at once).

Each send is one ``Dispatch`` with the group's next ``sequence`` number; the caller
enqueues it and only then calls ``sent`` — the state that numbers a dispatch is
saved after its notifications are in the outbox, so a restart in between sends the
same dispatch again under the same ids, which the outbox drops (no step lost, none
repeated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from alerting.routing import EscalationPolicy, Route


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The group's alarms now, as the schedule sees them."""

    firing: frozenset[str]  # notifiable (not muted, not in maintenance), acknowledged or not
    unacked: frozenset[str]  # of those, not acknowledged
    resolved: frozenset[str]  # resolved or closed


@dataclass(frozen=True, slots=True)
class Dispatch:
    """One send of a group: the same alarms to each receiver."""

    kind: str  # firing | resolved | escalation | reminder
    step: int  # escalation step (0 without a policy)
    sequence: int  # the group's send counter: with the step, part of every notification id
    receivers: tuple[str, ...]
    alarms: tuple[str, ...]  # fingerprints
    tier: str | None = None  # the tier's name, for escalations
    due: float | None = None  # escalations: when the step fell due — the next step counts from there, so a
    # restart (or a slow tick) shifts no later step


@dataclass(slots=True)
class Escalation:
    group_key: str
    policy: str
    step: int = 0
    step_at: float | None = None  # when the current step was told (or its clock restarted)
    acked: bool = False  # every alarm told of is acknowledged: the clock stands still


@dataclass(slots=True)
class AlarmGroup:
    key: str
    route: str  # Route.id
    labels: dict[str, str]  # the group_by labels' values
    since: float | None = None  # start of the current episode; None while idle
    last_flush: float | None = None  # last firing/resolved/reminder send of the episode
    notified: set[str] = field(default_factory=set)  # told firing, not yet told resolved
    sequence: int = 0  # never reset: ids stay unique across episodes
    escalation: Escalation | None = None
    members: set[str] = field(default_factory=set)  # fingerprints routed here (derived again after a restart)

    def observe(self, snap: Snapshot, policy: EscalationPolicy | None, now: float) -> bool:
        """Follow the alarms' changes (episode start and end, acknowledgements); true if the state changed."""
        before = self._state()
        self.notified &= self.members  # alarms routed elsewhere since (their labels changed)
        if policy is None:
            self.escalation = None
        elif (self.escalation is None or self.escalation.policy != policy.name
              or self.escalation.step >= len(policy.tiers)):  # new, or the configuration changed
            self.escalation = Escalation(self.key, policy.name)
        if snap.firing and self.since is None:
            self.since = now
        elif not snap.firing and not self.notified and self.since is not None:  # the episode is over
            self.since = self.last_flush = None
            if self.escalation is not None:
                self.escalation = Escalation(self.key, self.escalation.policy)
        esc = self.escalation
        if esc is not None and esc.step_at is not None:
            waiting = snap.unacked & self.notified
            if not waiting:
                esc.acked = True
            elif esc.acked:
                esc.acked, esc.step_at = False, now
        return self._state() != before

    def due(self, snap: Snapshot, route: Route, policy: EscalationPolicy | None, now: float) -> Dispatch | None:
        """What this group must send now, if anything (call again after ``sent``: two sends may be due)."""
        if self.since is None:
            return None
        if self.last_flush is None:
            if snap.firing and now >= self.since + route.group_wait:
                return self._dispatch("firing", 0, step_receivers(route, policy, 0), snap.firing)
            return None
        esc = self.escalation
        step = esc.step if esc is not None else 0
        changed = (snap.firing - self.notified) | (self.notified & snap.resolved)
        if changed and now >= self.last_flush + route.group_interval:
            return self._dispatch("firing" if snap.firing else "resolved", step,
                                  engaged_receivers(route, policy, step),
                                  snap.firing | (self.notified & snap.resolved))
        waiting = snap.unacked & self.notified
        if esc is not None and policy is not None and waiting and not esc.acked and esc.step_at is not None:
            wait = policy.wait(esc.step)
            if wait is not None and now >= esc.step_at + wait:
                following = min(esc.step + 1, len(policy.tiers) - 1)  # the last tier repeats itself
                tier = policy.tiers[following]
                return self._dispatch("escalation", following, tier.receivers, snap.firing, tier.name,
                                      esc.step_at + wait)
        if waiting and not changed and now >= self.last_flush + route.repeat_interval:
            return self._dispatch("reminder", step, engaged_receivers(route, policy, step), snap.firing)
        return None

    def sent(self, dispatch: Dispatch, snap: Snapshot, now: float) -> None:
        """The dispatch's notifications are in the outbox: advance the schedule past it."""
        self.sequence = dispatch.sequence + 1
        if dispatch.kind == "escalation":
            esc = self.escalation
            assert esc is not None and dispatch.due is not None
            # The last tier's repeats count from now: after a long outage it is told once, not once per repeat missed.
            esc.step_at = dispatch.due if dispatch.step != esc.step else now
            esc.step = dispatch.step
            return
        self.last_flush = now
        if dispatch.kind != "reminder":
            self.notified = (self.notified | snap.firing) - snap.resolved
        if self.escalation is not None and self.escalation.step_at is None:
            self.escalation.step_at = now  # the first notification starts the escalation clock

    def _dispatch(self, kind: str, step: int, receivers: tuple[str, ...], alarms: Iterable[str],
                  tier: str | None = None, due: float | None = None) -> Dispatch:
        return Dispatch(kind, step, self.sequence, receivers, tuple(sorted(alarms)), tier, due)

    def _state(self) -> tuple[object, ...]:
        esc = self.escalation
        return (self.since, self.last_flush, frozenset(self.notified),
                None if esc is None else (esc.policy, esc.step, esc.step_at, esc.acked))


def step_receivers(route: Route, policy: EscalationPolicy | None, step: int) -> tuple[str, ...]:
    """Who a step tells: step 0 is the route's receivers and the first tier; step n the n-th tier."""
    if policy is None:
        return route.receivers
    if step == 0:
        return _unique((*route.receivers, *policy.tiers[0].receivers))
    return policy.tiers[step].receivers


def engaged_receivers(route: Route, policy: EscalationPolicy | None, step: int) -> tuple[str, ...]:
    """Everyone told so far in this episode: they hear of changes and resolutions too."""
    return _unique(name for k in range(step + 1) for name in step_receivers(route, policy, k))


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))
