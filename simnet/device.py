"""The live state of one simulated device: uptime, interfaces, counters, resources.

State changes only through the methods here (called by the network when faults
are injected or cleared); the MIB reads it. Counters are integrated lazily, on
read, over simulated time, so an idle device costs nothing between polls.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from monitor.inventory.model import Device, Link, Role
from simnet import traffic
from simnet.snmp.engine import AgentIdentity, engine_id_for

INTEGRATION_STEP = 300.0  # seconds of simulated time per integration step


@dataclass(frozen=True)
class RoleProfile:
    """Hardware of a role: what HOST-RESOURCES and the LAN side of IF-MIB show."""

    cpus: int
    memory_mb: int
    disk_gb: int
    idle_cpu: float
    lan: tuple[str, ...]  # LAN interface names (Ethernet)
    lan_speed_mbps: int
    peak_utilisation: float  # share of LAN capacity at the busiest hour
    services: int  # sysServices
    data_volume: bool = False  # has a separate /var volume (servers)


_SERVER = RoleProfile(8, 32768, 600, 8, ("eth0", "eth1"), 1000, 0.05, 72, data_volume=True)
_NETWORK = RoleProfile(2, 4096, 8, 4, ("ge-0/0/0",), 1000, 0.03, 6)
_FIREWALL = RoleProfile(4, 8192, 16, 6, ("outside", "inside"), 1000, 0.04, 6)

PROFILES: dict[Role, RoleProfile] = {
    Role.CS: RoleProfile(4, 16384, 300, 5, ("eth0", "eth1"), 1000, 0.03, 72, data_volume=True),
    Role.CS_RECOVERY: RoleProfile(4, 16384, 300, 2, ("eth0",), 1000, 0.005, 72, data_volume=True),
    Role.FW: _FIREWALL,
    Role.ROUTER: _NETWORK,
    Role.PREFECTURE_CORE: RoleProfile(4, 8192, 8, 6, ("ge-0/0/0",), 10000, 0.03, 6),
    Role.PREFECTURE_FW: _FIREWALL,
    Role.AGGREGATION_FW: _FIREWALL,
    Role.NATIONAL_FW: _FIREWALL,
    Role.PREFECTURE_UNIT: _SERVER,
    Role.NATIONAL_SERVER: _SERVER,
    Role.IDS_SENSOR: _SERVER,
    Role.NETWORK_MONITOR: _SERVER,
    Role.CALL_CENTER: _SERVER,
    Role.CARD_ISSUING: _SERVER,
    Role.AGENCY_SERVER: _SERVER,
}

IF_TYPE_ETHERNET = 6
IF_TYPE_PPP = 23


@dataclass(slots=True)
class SimInterface:
    index: int
    name: str
    if_type: int
    speed_mbps: int
    alias: str  # leased-line circuit id, or empty
    link_id: str | None
    peak: float
    phase: float
    in_octets: int = 0
    out_octets: int = 0
    in_packets: int = 0
    out_packets: int = 0
    in_errors: int = 0
    updated: float = 0.0  # simulated time the counters are integrated up to
    last_change: float = 0.0
    link_cut: bool = False
    admin_down: bool = False

    @property
    def oper_up(self) -> bool:
        return not (self.link_cut or self.admin_down)

    def advance(self, now: float, carrying: bool) -> None:
        """Integrate traffic from ``updated`` to ``now``."""
        t = self.updated
        if now <= t:
            return
        if carrying and self.oper_up:
            bytes_per_s = self.speed_mbps * 125_000
            while t < now:
                step = min(INTEGRATION_STEP, now - t)
                util = traffic.utilisation(t + step / 2, self.phase, self.peak)
                octets_in = int(bytes_per_s * util * step)
                octets_out = int(bytes_per_s * util * step * 0.7)
                self.in_octets += octets_in
                self.out_octets += octets_out
                self.in_packets += octets_in // 620
                self.out_packets += octets_out // 540
                t += step
        self.updated = now


@dataclass(slots=True)
class Storage:
    index: int
    descr: str
    ram: bool
    allocation_unit: int
    size_units: int
    base_used: float  # fraction


@dataclass(eq=False)
class SimDevice:
    device: Device
    site_name: str
    profile: RoleProfile
    interfaces: list[SimInterface]
    storages: list[Storage]
    phase: float
    identity: AgentIdentity
    boot_time: float  # simulated epoch of last boot
    powered: bool = True  # False: 'device down' fault
    isolated: bool = False
    cpu_exhausted: bool = False
    disk_exhausted: bool = False
    # derived by the network from the topology and faults:
    reachable: bool = True
    delay: float = 0.0  # seconds added to every answer
    loss: float = 0.0  # probability that a request or its answer is lost

    @property
    def answering(self) -> bool:
        return self.powered and not self.isolated and self.reachable

    def uptime_ticks(self, now: float) -> int:
        return max(0, int((now - self.boot_time) * 100))

    def advance_counters(self, now: float) -> None:
        carrying = self.powered and not self.isolated
        for iface in self.interfaces:
            iface.advance(now, carrying)

    def reboot(self, now: float) -> None:
        """Power-cycle: uptime and counters restart from zero (as on real hardware)."""
        self.boot_time = now
        self.identity.reboot()
        for iface in self.interfaces:
            iface.in_octets = iface.out_octets = iface.in_packets = iface.out_packets = iface.in_errors = 0
            iface.updated = now
            iface.last_change = now

    def set_interface_state(self, iface: SimInterface, now: float, *, link_cut: bool | None = None,
                            admin_down: bool | None = None) -> bool:
        """Change a port's state; True if its operational status changed."""
        self.advance_counters(now)
        was_up = iface.oper_up
        if link_cut is not None:
            iface.link_cut = link_cut
        if admin_down is not None:
            iface.admin_down = admin_down
        if iface.oper_up == was_up:
            return False
        iface.last_change = now
        return True

    def cpu_percent(self, now: float) -> int:
        if self.cpu_exhausted:
            return 100
        return traffic.cpu_load(now, self.phase, self.profile.idle_cpu)

    def storage_used(self, storage: Storage, now: float) -> int:
        if self.disk_exhausted and not storage.ram:
            return storage.size_units - max(1, storage.size_units // 2000)
        wobble = 0.01 * traffic.utilisation(now, self.phase, 1.0) if storage.ram else 0.0
        return int(storage.size_units * min(0.99, storage.base_used + wobble))


def build_device(device: Device, site_name: str, uplinks: list[Link], downlinks: list[Link],
                 now: float) -> SimDevice:
    """Create the simulated state for an inventory device.

    ``uplinks``: leased lines where the device is the downstream end (its WAN);
    ``downlinks``: lines that terminate on it from below (a core router's serial ports).
    """
    profile = PROFILES[device.role]
    seed = zlib.crc32(device.id.encode())
    phase = (seed % 1000) / 1000.0
    interfaces: list[SimInterface] = []

    def add(name: str, if_type: int, speed: int, alias: str, link_id: str | None, peak: float) -> None:
        interfaces.append(SimInterface(len(interfaces) + 1, name, if_type, speed, alias, link_id, peak,
                                       phase, updated=now, last_change=now))

    for i, link in enumerate(uplinks):
        add(f"wan{i}", IF_TYPE_PPP, link.bandwidth_mbps, link.circuit_id, link.id, 0.35)
    for name in profile.lan:
        add(name, IF_TYPE_ETHERNET, profile.lan_speed_mbps, "", None, profile.peak_utilisation)
    for i, link in enumerate(downlinks):
        add(f"ser{i}", IF_TYPE_PPP, link.bandwidth_mbps, link.circuit_id, link.id, 0.35)

    storages = [Storage(1, "Physical memory", True, 1024, profile.memory_mb * 1024, 0.35 + 0.3 * phase)]
    storages.append(Storage(31, "/", False, 4096, profile.disk_gb * 262_144, 0.3 + 0.3 * phase))
    if profile.data_volume:
        storages.append(Storage(32, "/var", False, 4096, profile.disk_gb * 2 * 262_144, 0.4 + 0.3 * phase))

    # devices booted at different times, within the last ~90 days
    boot = now - 3600 - (seed % (90 * 86_400))
    return SimDevice(device, site_name, profile, interfaces, storages, phase,
                     AgentIdentity(engine_id_for(device.id)), boot)
