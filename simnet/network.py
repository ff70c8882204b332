"""The simulated national network: every device of an inventory, live on loopback.

Owns the devices' state, the active faults, and the derived reachability: a
device answers only if it is powered, not isolated, and some chain of parents
back to the root (the national FW) is up with no cut line on the way. Latency
and loss add up along the chosen path.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.inventory.model import Inventory, Tier
from monitor.logs import fields
from simnet.clock import SimClock
from simnet.device import SimDevice, SimInterface, build_device
from simnet.limits import ensure_fd_limit
from simnet.notifier import TrapNotifier
from simnet.faults import Fault, FaultError, FaultKind, new_fault_id, parse_kind, validate_params
from monitor.snmp import usm
from simnet.snmp.agent import SnmpAgentServer
from simnet.snmp.engine import AgentConfig

if TYPE_CHECKING:
    from simnet.tls import TlsServicePool

log = logging.getLogger("simnet")


@dataclass
class SimnetConfig:
    """Embedded defaults of the simulation. The secrets are the simulation's own, not production's."""

    snmp_port: int = 161
    tls_port: int = 443
    community: str = "public"
    v3_user: str = "jukimon"
    v3_auth_protocol: str = "SHA"
    v3_auth_key: str = "jukimon-auth-key"
    v3_priv_key: str = "jukimon-priv-key"
    clock_speed: float = 1.0
    state_dir: Path = field(default_factory=lambda: Path("state/simnet"))
    tls: bool = True
    trap_receivers: tuple[tuple[str, int], ...] = ()  # where devices send linkDown/linkUp/coldStart/...
    trap_version: str = "2c"  # "2c", or "3" (authPriv with the v3 user above)

    def agent_config(self) -> AgentConfig:
        auth = usm.AUTH_PROTOCOLS.get(self.v3_auth_protocol)
        if auth is None:
            raise ValueError(f"unknown SNMPv3 auth protocol {self.v3_auth_protocol!r}")
        user = usm.UsmUser(self.v3_user, auth, self.v3_auth_key, self.v3_priv_key)
        return AgentConfig(frozenset({self.community.encode()}), usm.KeyCache({user.name.encode(): user}))


@dataclass
class _FaultEffects:
    """What the active faults amount to; diffed against the previous state on every change."""

    powered_off: set[str] = field(default_factory=set)
    isolated: set[str] = field(default_factory=set)
    cpu: set[str] = field(default_factory=set)
    disk: set[str] = field(default_factory=set)
    cert_expired: set[str] = field(default_factory=set)
    admin_down: set[tuple[str, int]] = field(default_factory=set)
    cut_links: set[str] = field(default_factory=set)
    latency_ms: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    loss: dict[str, float] = field(default_factory=dict)


class SimNetwork:
    def __init__(self, inventory: Inventory, config: SimnetConfig | None = None,
                 clock: SimClock | None = None):
        self.inventory = inventory
        self.config = config or SimnetConfig()
        self.clock = clock or SimClock(speed=self.config.clock_speed)
        now = self.clock.now()
        self.devices: dict[str, SimDevice] = {}
        uplinks: dict[str, list] = defaultdict(list)
        downlinks: dict[str, list] = defaultdict(list)
        for link in inventory.links.values():
            uplinks[link.a].append(link)
            downlinks[link.b].append(link)
        for device in inventory.polled_devices():
            if device.address is None:
                continue
            site = inventory.sites[device.site]
            self.devices[device.id] = build_device(device, site.name, uplinks[device.id],
                                                   downlinks[device.id], now)
        self._order = _topological_order(self.devices)
        self._link_ends: dict[str, list[tuple[SimDevice, SimInterface]]] = defaultdict(list)
        for sim in self.devices.values():
            for iface in sim.interfaces:
                if iface.link_id:
                    self._link_ends[iface.link_id].append((sim, iface))
        self._faults: dict[str, Fault] = {}
        self._effects = _FaultEffects()
        self._snmp: SnmpAgentServer | None = None
        self._notifier: TrapNotifier | None = None
        self._tls: Any = None
        self._recompute_reachability()

    # --- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        ensure_fd_limit(len(self.devices))  # the SNMP sockets; the TLS pool asks for its own
        agent_config = self.config.agent_config()
        self._snmp = SnmpAgentServer(agent_config, self.clock.now, port=self.config.snmp_port)
        await self._snmp.start(self.devices.values())
        if self.config.trap_receivers:
            self._notifier = TrapNotifier(self._snmp, agent_config, list(self.config.trap_receivers),
                                          version=self.config.trap_version, community=self.config.community.encode(),
                                          user=self.config.v3_user.encode(), now=self.clock.now)
            self._snmp.on_bad_community = self._notifier.authentication_failed
        if self.config.tls:
            from simnet.tls import SimulationCA, TlsServicePool

            ca = SimulationCA.load_or_create(self.config.state_dir)
            self._tls = TlsServicePool(
                ca, port=self.config.tls_port, state_dir=self.config.state_dir,
                is_answering=lambda device_id: self.devices[device_id].answering,
                delay_of=lambda device_id: self.devices[device_id].delay,
                now=lambda: dt.datetime.fromtimestamp(self.clock.now(), dt.timezone.utc),
            )
            await self._tls.start(s.device for s in self.devices.values() if s.device.role.serves_tls)
        log.info("simulated network up", extra=fields(devices=len(self.devices),
                                                      snmp_port=self.config.snmp_port,
                                                      tls_port=self.config.tls_port if self._tls else None))

    async def stop(self) -> None:
        if self._tls is not None:
            await self._tls.stop()
            self._tls = None
        if self._snmp is not None:
            self._notifier = None
            await self._snmp.stop()
            self._snmp = None

    async def __aenter__(self) -> "SimNetwork":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def tls_pool(self) -> TlsServicePool | None:
        """The devices' TLS services (``simnet.tls.TlsServicePool``), or None without TLS or before start."""
        return self._tls

    @property
    def snmp_stats(self) -> dict[str, int]:
        return dict(self._snmp.stats) if self._snmp else {}

    def device(self, device_id: str) -> SimDevice:
        try:
            return self.devices[device_id]
        except KeyError:
            raise FaultError(f"no simulated device {device_id!r}") from None

    # --- faults ----------------------------------------------------------

    def inject(self, kind: FaultKind | str, target: str, **params: Any) -> Fault:
        """Inject a fault; returns it (with the id used to clear it)."""
        kind = parse_kind(kind) if isinstance(kind, str) else kind
        clean = validate_params(kind, params)
        self._check_target(kind, target, clean)
        fault = Fault(new_fault_id(), kind, target, clean, self.clock.now())
        if kind is FaultKind.REBOOT:
            self.device(target).reboot(self.clock.now())
            if self._notifier is not None:
                self._notifier.restarted(self.device(target), cold=False)
        else:
            self._faults[fault.id] = fault
            self._apply()
        log.warning("fault injected", extra=fields(fault=fault.id, kind=kind.value, target=target, **clean))
        return fault

    def clear(self, fault_id: str) -> Fault:
        fault = self._faults.pop(fault_id, None)
        if fault is None:
            raise FaultError(f"no active fault {fault_id!r}")
        self._apply()
        log.warning("fault cleared", extra=fields(fault=fault.id, kind=fault.kind.value, target=fault.target))
        return fault

    def clear_all(self) -> list[Fault]:
        cleared = list(self._faults.values())
        self._faults.clear()
        self._apply()
        if cleared:
            log.warning("all faults cleared", extra=fields(count=len(cleared)))
        return cleared

    def faults(self) -> list[Fault]:
        return list(self._faults.values())

    def _check_target(self, kind: FaultKind, target: str, params: dict[str, Any]) -> None:
        if kind.target_kind == "link":
            if target not in self.inventory.links:
                raise FaultError(f"no leased line {target!r}")
        elif kind.target_kind == "site":
            site = self.inventory.sites.get(target)
            if site is None:
                raise FaultError(f"no site {target!r}")
            if not self._lines_of_site(target):
                raise FaultError(f"site {target!r} has no leased lines of its own")
        else:
            device = self.device(target)
            if kind is FaultKind.INTERFACE_DOWN and not 1 <= params["if_index"] <= len(device.interfaces):
                raise FaultError(f"{target} has interfaces 1..{len(device.interfaces)}")
            if kind is FaultKind.CERT_EXPIRED and not device.device.role.serves_tls:
                raise FaultError(f"{target} ({device.device.role.value}) has no TLS service")

    def _lines_of_site(self, site_id: str) -> list[str]:
        """The leased lines whose downstream router sits at the site."""
        return [l.id for l in self.inventory.links.values()
                if l.a in self.devices and self.devices[l.a].device.site == site_id]

    def _effects_of_faults(self) -> _FaultEffects:
        eff = _FaultEffects()
        for fault in self._faults.values():
            kind, target = fault.kind, fault.target
            if kind is FaultKind.DEVICE_DOWN:
                eff.powered_off.add(target)
            elif kind is FaultKind.ISOLATE:
                eff.isolated.add(target)
            elif kind is FaultKind.CPU_EXHAUSTION:
                eff.cpu.add(target)
            elif kind is FaultKind.DISK_EXHAUSTION:
                eff.disk.add(target)
            elif kind is FaultKind.CERT_EXPIRED:
                eff.cert_expired.add(target)
            elif kind is FaultKind.INTERFACE_DOWN:
                eff.admin_down.add((target, fault.params["if_index"]))
            elif kind is FaultKind.LINE_CUT:
                eff.cut_links.add(target)
            elif kind is FaultKind.SITE_LINES_CUT:
                eff.cut_links.update(self._lines_of_site(target))
            elif kind is FaultKind.LINK_LATENCY:
                eff.latency_ms[target] += fault.params["latency_ms"]
            elif kind is FaultKind.LINK_LOSS:
                kept = 1.0 - eff.loss.get(target, 0.0)
                eff.loss[target] = 1.0 - kept * (1.0 - fault.params["loss"])
        return eff

    def _apply(self) -> None:
        """Bring device state in line with the active faults, touching only what changed."""
        now = self.clock.now()
        old, new = self._effects, self._effects_of_faults()
        changed_ports: list[tuple[SimDevice, SimInterface]] = []
        powered_on = old.powered_off - new.powered_off
        for device_id in powered_on:
            self.devices[device_id].powered = True
            self.devices[device_id].reboot(now)  # back from power loss: a fresh boot
        for device_id in new.powered_off - old.powered_off:
            self.devices[device_id].advance_counters(now)
            self.devices[device_id].powered = False
        for attr, ids_old, ids_new in (("isolated", old.isolated, new.isolated),
                                       ("cpu_exhausted", old.cpu, new.cpu),
                                       ("disk_exhausted", old.disk, new.disk)):
            for device_id in ids_old ^ ids_new:
                sim = self.devices[device_id]
                sim.advance_counters(now)
                setattr(sim, attr, device_id in ids_new)
        for device_id, if_index in old.admin_down ^ new.admin_down:
            sim = self.devices[device_id]
            iface = sim.interfaces[if_index - 1]
            if sim.set_interface_state(iface, now, admin_down=(device_id, if_index) in new.admin_down):
                changed_ports.append((sim, iface))
        for link_id in old.cut_links ^ new.cut_links:
            for sim, iface in self._link_ends[link_id]:
                if sim.set_interface_state(iface, now, link_cut=link_id in new.cut_links):
                    changed_ports.append((sim, iface))
        if self._tls is not None:
            for device_id in old.cert_expired ^ new.cert_expired:
                self._tls.set_certificate_expired(device_id, device_id in new.cert_expired)
        self._effects = new
        self._recompute_reachability()
        if self._notifier is not None:  # after reachability: only devices that can reach anyone send
            for sim, iface in changed_ports:
                self._notifier.link_changed(sim, iface)
            for device_id in powered_on:
                self._notifier.restarted(self.devices[device_id], cold=True)

    def _recompute_reachability(self) -> None:
        eff = self._effects
        edge_links = self.inventory.link_by_edge
        for sim in self._order:
            device = sim.device
            alive = sim.powered and not sim.isolated
            if not device.parents:
                sim.reachable, sim.delay, sim.loss = alive, 0.0, 0.0
                continue
            best: tuple[float, float] | None = None
            for parent_id in device.parents:
                parent = self.devices.get(parent_id)
                if parent is None or not parent.reachable:
                    continue
                link = edge_links.get((device.id, parent_id))
                delay, loss = parent.delay, parent.loss
                if link is not None:
                    if link.id in eff.cut_links:
                        continue
                    delay += eff.latency_ms.get(link.id, 0.0) / 1000.0
                    loss = 1.0 - (1.0 - loss) * (1.0 - eff.loss.get(link.id, 0.0))
                if best is None or delay < best[0]:
                    best = (delay, loss)
            sim.reachable = alive and best is not None
            sim.delay, sim.loss = best if best is not None else (0.0, 0.0)

    # --- description -----------------------------------------------------

    def listening_summary(self) -> list[dict[str, Any]]:
        """Per tier: device count and address range, for the start-up banner."""
        by_tier: dict[Tier, list[SimDevice]] = defaultdict(list)
        for sim in self.devices.values():
            by_tier[self.inventory.sites[sim.device.site].tier].append(sim)
        rows = []
        for tier in Tier:
            sims = by_tier.get(tier, [])
            if not sims:
                continue
            addresses = sorted((s.device.address for s in sims), key=_address_key)  # type: ignore[arg-type]
            rows.append({"tier": tier.value, "devices": len(sims), "first": addresses[0], "last": addresses[-1],
                         "tls": sum(1 for s in sims if s.device.role.serves_tls)})
        return rows


def _address_key(address: str) -> tuple[int, ...]:
    return tuple(int(part) for part in address.split("."))


def _topological_order(devices: dict[str, SimDevice]) -> list[SimDevice]:
    """Parents before children (Kahn). Parents outside the simulated set are ignored;
    the inventory validator has already rejected cycles."""
    pending = {i: sum(1 for p in s.device.parents if p in devices) for i, s in devices.items()}
    children: dict[str, list[str]] = defaultdict(list)
    for device_id, sim in devices.items():
        for parent in sim.device.parents:
            if parent in devices:
                children[parent].append(device_id)
    ready = [i for i, count in pending.items() if count == 0]
    order: list[SimDevice] = []
    while ready:
        device_id = ready.pop()
        order.append(devices[device_id])
        for child in children[device_id]:
            pending[child] -= 1
            if pending[child] == 0:
                ready.append(child)
    if len(order) != len(devices):
        raise ValueError("device parents form a cycle")
    return order
