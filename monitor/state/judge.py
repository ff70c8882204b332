"""From every device's observed health to the states and conditions an operator acts on.

One pass over the dependency graph, parents first (``Device.parents``: any one
working parent suffices):

- a dead device with a working parent is DOWN — a root cause; a dead device
  whose every parent is down or unreachable is UNREACHABLE, charged to the root
  causes above it, and raises nothing of its own;
- before a failure is called a root cause, the parent's evidence must be newer
  than the failure (the parent answered *after* the child fell silent); until
  then the child is held at its previous state and the parents are re-checked —
  this is what keeps a storm (a prefecture cut off: every device behind it
  failing before the prefecture's own routers are confirmed down) to one alarm;
- a leased-line router that is DOWN is the line: lines are judged per site —
  one of two lines down is "redundancy lost" (warning), every line down is one
  SITE_UNREACHABLE alarm with everything behind it suppressed;
- a scheduled server (CS, prefecture unit, national server) that is silent
  outside the operating window is OFF_SCHEDULE, not DOWN; a device under a
  maintenance window is MAINTENANCE, and its conditions are recorded but flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

from monitor.envelope import Severity
from monitor.inventory.model import Device, Inventory, Link, Role
from monitor.maintenance import MaintenanceBook
from monitor.state.health import HealthTracker
from monitor.state.model import ConditionKind, State

SCHEDULED_ROLES = frozenset({Role.CS, Role.CS_RECOVERY, Role.PREFECTURE_UNIT, Role.NATIONAL_SERVER})
SUPPRESSED_LISTED = 2000
# An expired certificate breaks the service now; weak crypto is planned renewal work (the renewal plan lists it).
_CERTIFICATE_SEVERITY = {"cert_expired": Severity.CRITICAL, "cert_expiry": Severity.WARNING,
                         "weak_crypto": Severity.NOTICE}  # ids kept on a root-cause condition (the count is always exact)


class Calendar(Protocol):
    """What the judgement asks of the operating calendar (monitor.schedule.window.OperatingCalendar)."""

    def expected_running(self, ts: float, prefecture: str | None = None) -> bool: ...


@dataclass(frozen=True)
class ConditionSpec:
    """A condition as the judgement sees it now; the engine keeps start times and history."""

    kind: ConditionKind
    subject: str
    severity: Severity
    summary: str
    suppressed: tuple[str, ...] = ()
    suppressed_count: int = 0
    in_maintenance: bool = False
    detail: str = ""  # part of the fingerprint when one subject can have several of a kind

    @property
    def fingerprint(self) -> str:
        return f"{self.kind.value}:{self.subject}" + (f":{self.detail}" if self.detail else "")


@dataclass
class Judgement:
    devices: dict[str, tuple[State, str]] = field(default_factory=dict)  # id → (state, reason)
    links: dict[str, tuple[State, str]] = field(default_factory=dict)
    sites: dict[str, tuple[State, str]] = field(default_factory=dict)
    conditions: dict[str, ConditionSpec] = field(default_factory=dict)
    recheck: set[str] = field(default_factory=set)  # parents whose fresh answer would settle a held failure


class Topology:
    """The inventory's graph, indexed once for the judgement pass."""

    def __init__(self, inventory: Inventory):
        self.inventory = inventory
        polled = {d.id: d for d in inventory.polled_devices() if d.address is not None}
        self.devices = polled
        self.order = _parents_first(polled)
        self.line_of_router: dict[str, Link] = {l.a: l for l in inventory.links.values() if l.a in polled}
        self.lines_of_site: dict[str, list[str]] = {}
        for router_id in self.line_of_router:
            self.lines_of_site.setdefault(polled[router_id].site, []).append(router_id)


class Judge:
    def __init__(self, topology: Topology, health: HealthTracker, calendar: Calendar,
                 maintenance: MaintenanceBook, *, hold_max: float = 25.0,
                 scheduled_roles: frozenset[Role] = SCHEDULED_ROLES):
        self.topology = topology
        self.health = health
        self.calendar = calendar
        self.maintenance = maintenance
        self.hold_max = hold_max
        self.scheduled_roles = scheduled_roles

    def judge(self, now: float, previous: Callable[[str], State]) -> Judgement:
        out = Judgement()
        roots: dict[str, frozenset[str]] = {}  # unreachable device → the DOWN devices that explain it
        ok: dict[str, bool] = {}  # answering (reachable and alive) — what children may rely on
        down_roots: list[str] = []
        topo = self.topology
        lost_at: dict[str, float] = {}  # not answering (or cut off) since when
        for device in topo.order:
            health = self.health.devices.get(device.id)
            alive = health.alive if health is not None else None
            failed = [p for p in device.parents if not ok.get(p, True)]
            parent_ok = len(failed) < len(device.parents) or not device.parents
            if not parent_ok and alive is not False:
                # Cut off with everything in front of it — unless it answered after that happened
                # (a parent whose SNMP agent hangs may still forward traffic).
                answered_since = health is not None and health.last_ok > max(lost_at.get(p, now) for p in failed)
                parent_ok = answered_since
            in_maintenance = self.maintenance.active_for(device.id, now) is not None
            ok[device.id] = parent_ok and alive is not False
            if not parent_ok:
                causes = frozenset().union(*(roots.get(p, frozenset({p})) for p in failed))
                roots[device.id] = causes
                lost_at[device.id] = max(lost_at.get(p, now) for p in failed)
                state, reason = State.UNREACHABLE, "parent_down:" + ",".join(sorted(causes)[:3])
                if health is not None:
                    health.changes.clear()  # going silent behind a failed parent is not this device flapping
            elif alive is False:
                lost_at[device.id] = health.first_failure or now if health is not None else now
                if previous(device.id) is not State.DOWN and self._held(device, health, now, out):
                    state, reason = previous(device.id), "confirming"
                    ok[device.id] = True  # its children wait for this device's verdict too
                elif device.role in self.scheduled_roles and not self.calendar.expected_running(
                        now, device.prefecture):
                    state, reason = State.OFF_SCHEDULE, "outside_operating_window"
                else:
                    state, reason = State.DOWN, "not_answering"
                    down_roots.append(device.id)
            elif alive is None:
                state, reason = State.UNKNOWN, "not_polled_yet"
            elif health is not None and health.degraded:
                state, reason = State.DEGRADED, "; ".join(sorted(health.degraded.values()))
            else:
                state, reason = State.UP, ""
            if in_maintenance and state is not State.UP:
                state, reason = State.MAINTENANCE, f"maintenance ({reason})" if reason else "maintenance"
            out.devices[device.id] = (state, reason)
        self._conditions(out, roots, down_roots, now)
        self._links_and_sites(out)
        return out

    def _held(self, device: Device, health, now: float, out: Judgement) -> bool:
        """A fresh failure is not judged until a parent has answered after it began (or the hold runs out)."""
        if not device.parents or health.first_failure is None or now - health.first_failure >= self.hold_max:
            return False
        for parent in device.parents:
            parent_health = self.health.devices.get(parent)
            if parent_health is not None and parent_health.alive and parent_health.last_ok >= health.first_failure:
                return False
        out.recheck.update(device.parents)
        return True

    # --- conditions ---------------------------------------------------------

    def _conditions(self, out: Judgement, roots: dict[str, frozenset[str]], down_roots: list[str],
                    now: float) -> None:
        topo = self.topology
        charged: dict[str, list[str]] = {}
        for device_id, causes in roots.items():
            for cause in causes:
                charged.setdefault(cause, []).append(device_id)
        down_lines: dict[str, list[str]] = {}
        for device_id in down_roots:
            device = topo.devices[device_id]
            if self._flapping(device_id, now):
                continue
            if device_id in topo.line_of_router:
                down_lines.setdefault(device.site, []).append(device_id)
                continue
            children = charged.get(device_id, [])
            kind = ConditionKind.ROOT_CAUSE if children else ConditionKind.DEVICE_DOWN
            summary = (f"{device.name} 停止 — 配下 {len(children)} 台が監視不能" if children
                       else f"{device.name} 応答なし")
            self._add(out, ConditionSpec(kind, device_id, Severity.CRITICAL if children else Severity.ERROR, summary,
                                         tuple(sorted(children)[:SUPPRESSED_LISTED]), len(children),
                                         self._maintained(device_id, now)))
        for site_id, routers in down_lines.items():
            self._line_conditions(out, site_id, routers, charged, now)
        for device_id, health in self.health.devices.items():
            device = topo.devices.get(device_id)
            if device is None:
                continue
            if self._flapping(device_id, now):
                self._add(out, ConditionSpec(ConditionKind.FLAPPING, device_id, Severity.WARNING,
                                             f"{device.name} 状態が不安定 (応答あり/なしが{len(health.changes)}回変化)",
                                             in_maintenance=self._maintained(device_id, now)))
            for finding, detail in health.certificate.items():
                self._add(out, ConditionSpec(ConditionKind.LIFECYCLE, device_id,
                                             _CERTIFICATE_SEVERITY.get(finding, Severity.WARNING),
                                             f"{device.name} {detail}", detail=finding,
                                             in_maintenance=self._maintained(device_id, now)))
            if health.degraded and out.devices[device_id][0] in (State.DEGRADED, State.MAINTENANCE):
                self._add(out, ConditionSpec(ConditionKind.DEGRADED, device_id, Severity.WARNING,
                                             f"{device.name} 性能劣化: " + "; ".join(sorted(health.degraded.values())),
                                             in_maintenance=self._maintained(device_id, now)))

    def _line_conditions(self, out: Judgement, site_id: str, down: list[str], charged: dict[str, list[str]],
                         now: float) -> None:
        topo = self.topology
        site = topo.inventory.sites[site_id]
        lines = topo.lines_of_site.get(site_id, [])
        circuits = [topo.line_of_router[r].circuit_id for r in sorted(down)]
        maintained = any(self._maintained(r, now) for r in down)
        if len(down) < len(lines):
            if self._other_lines_unconfirmed(down, [r for r in lines if r not in down], now, out):
                return  # both lines may have gone at once: one site alarm, not "redundancy lost" first
            self._add(out, ConditionSpec(ConditionKind.REDUNDANCY_LOST, site_id, Severity.WARNING,
                                         f"{site.name} 二重化喪失: 回線 {', '.join(circuits)} 断 "
                                         f"(残り {len(lines) - len(down)} 回線で運用中)",
                                         in_maintenance=maintained))
            return
        behind = sorted({d for r in down for d in charged.get(r, [])})
        self._add(out, ConditionSpec(ConditionKind.SITE_UNREACHABLE, site_id, Severity.CRITICAL,
                                     f"{site.name} 全回線断 ({', '.join(circuits)}) — 配下 {len(behind)} 台が監視不能",
                                     tuple(behind[:SUPPRESSED_LISTED]), len(behind), maintained))

    def _other_lines_unconfirmed(self, down: list[str], others: list[str], now: float, out: Judgement) -> bool:
        """Has every surviving line answered since the first of the down lines fell silent? If not, ask again."""
        began = min((h.first_failure for r in down if (h := self.health.devices.get(r)) and h.first_failure),
                    default=None)
        if began is None or now - began >= self.hold_max:
            return False
        stale = [r for r in others if (h := self.health.devices.get(r)) is None or h.last_ok < began]
        out.recheck.update(stale)
        return bool(stale)

    def _links_and_sites(self, out: Judgement) -> None:
        topo = self.topology
        for router_id, link in topo.line_of_router.items():
            state, reason = out.devices[router_id]
            out.links[link.id] = (state, reason)
        worst: dict[str, tuple[State, str]] = {}
        for device_id, (state, _) in out.devices.items():
            site = topo.devices[device_id].site
            current = worst.get(site)
            if current is None or state.rank < current[0].rank:
                worst[site] = (state, device_id if state is not State.UP else "")
        out.sites.update(worst)

    def _add(self, out: Judgement, spec: ConditionSpec) -> None:
        out.conditions[spec.fingerprint] = spec

    def _maintained(self, device_id: str, now: float) -> bool:
        return self.maintenance.active_for(device_id, now) is not None

    def _flapping(self, device_id: str, now: float) -> bool:
        return self.health.flapping(device_id, now)


def _parents_first(devices: Mapping[str, Device]) -> list[Device]:
    order: list[Device] = []
    placed: set[str] = set()
    pending = list(devices.values())
    while pending:
        rest = []
        for device in pending:
            if all(p in placed or p not in devices for p in device.parents):
                order.append(device)
                placed.add(device.id)
            else:
                rest.append(device)
        if len(rest) == len(pending):  # a cycle (the inventory validator forbids it): judge the rest anyway
            order.extend(rest)
            break
        pending = rest
    return order
