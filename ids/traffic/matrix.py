"""The communication matrix: which roles talk to which, on which ports, in which direction.

Derived from the inventory and the seeds' flows. On a closed leased-line network every
legitimate flow is one of these; anything else between two known hosts is a violation.
Business terminals have no management address in the inventory; they get one here, in
their municipality's /24 from .200 up (``terminal_address``), so captures can name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from ids.traffic.decode import TCP, UDP
from monitor.inventory import Device, Inventory, Role, Subsystem

TLS = 443
SNMP = 161
_SERVERS = frozenset({Role.CS, Role.CS_RECOVERY})
_Predicate = Callable[[Device, Device], bool]


@dataclass(frozen=True, slots=True)
class MatrixRule:
    name: str  # what the flow is, in the seeds' words
    src: frozenset[Role]
    dst: frozenset[Role]
    proto: int
    ports: frozenset[int]
    condition: _Predicate = lambda s, d: True
    periodic: bool = False  # scheduled by design (polling): never a beacon
    any_peer: bool = False  # any two such hosts may talk (a move between any two towns): never a new peer


def _same_prefecture(s: Device, d: Device) -> bool:
    return s.prefecture is not None and s.prefecture == d.prefecture


def _subsystem(*subsystems: Subsystem) -> _Predicate:
    return lambda s, d: d.subsystem in subsystems


def _from_subsystem(*subsystems: Subsystem) -> _Predicate:
    return lambda s, d: s.subsystem in subsystems


def _roles(*roles: Role) -> frozenset[Role]:
    return frozenset(roles)


_POLLED = frozenset(r for r in Role if r.answers_snmp)
_TLS_SERVERS = frozenset(r for r in Role if r.serves_tls)

RULES: tuple[MatrixRule, ...] = (
    MatrixRule("change notification CS → prefecture unit", _SERVERS, _roles(Role.PREFECTURE_UNIT), TCP,
               frozenset({TLS}), _same_prefecture),
    MatrixRule("change notification prefecture unit → national server", _roles(Role.PREFECTURE_UNIT),
               _roles(Role.NATIONAL_SERVER), TCP, frozenset({TLS}), _subsystem(Subsystem.DATABASE, Subsystem.BUSINESS)),
    MatrixRule("CS ↔ CS notice (転出・転入通知)", _SERVERS, _SERVERS, TCP, frozenset({TLS}), any_peer=True),
    MatrixRule("national → agency provision", _roles(Role.NATIONAL_SERVER), _roles(Role.AGENCY_SERVER), TCP,
               frozenset({TLS}), _from_subsystem(Subsystem.PROVISION)),
    MatrixRule("agency immediate query → provision subsystem", _roles(Role.AGENCY_SERVER),
               _roles(Role.NATIONAL_SERVER), TCP, frozenset({TLS}), _subsystem(Subsystem.PROVISION)),
    MatrixRule("file delivery national → CS and prefecture unit", _roles(Role.NATIONAL_SERVER),
               _SERVERS | {Role.PREFECTURE_UNIT}, TCP, frozenset({TLS}), _from_subsystem(Subsystem.BUSINESS)),
    MatrixRule("national server cluster internal", _roles(Role.NATIONAL_SERVER), _roles(Role.NATIONAL_SERVER), TCP,
               frozenset({TLS})),
    MatrixRule("business terminal → own CS", _roles(Role.TERMINAL), _SERVERS, TCP, frozenset({TLS}),
               lambda s, d: s.site == d.site),
    MatrixRule("operations polling (SNMP)", _roles(Role.NETWORK_MONITOR), _POLLED, UDP, frozenset({161}), periodic=True),
    MatrixRule("operations TLS certificate check", _roles(Role.NETWORK_MONITOR), _TLS_SERVERS, TCP,
               frozenset({TLS}), periodic=True),
    MatrixRule("SNMP trap to the network monitor", _POLLED, _roles(Role.NETWORK_MONITOR), UDP, frozenset({162}), periodic=True),
    MatrixRule("syslog to the network monitor", _POLLED, _roles(Role.NETWORK_MONITOR), UDP, frozenset({514}), periodic=True),
    MatrixRule("syslog over TLS to the network monitor", _POLLED, _roles(Role.NETWORK_MONITOR), TCP,
               frozenset({6514}), periodic=True),
)


def terminal_address(inventory: Inventory, terminal: Device) -> str | None:
    """The business terminal's address: its municipality's /24, host 200 + its number."""
    site_hosts = [d.address for d in inventory.devices_by_site.get(terminal.site, ()) if d.address]
    number = int("".join(c for c in terminal.id.rsplit("term", 1)[-1] if c.isdigit()) or 0)
    if not site_hosts or not 0 < number <= 55:
        return None
    return site_hosts[0].rsplit(".", 1)[0] + f".{200 + number}"


def host_index(inventory: Inventory) -> dict[str, Device]:
    """Every addressable host: management addresses plus terminal addresses."""
    hosts = dict(inventory.device_by_address)
    for device in inventory.devices.values():
        if device.role is Role.TERMINAL:
            address = terminal_address(inventory, device)
            if address:
                hosts[address] = device
    return hosts


def network_monitor(inventory: Inventory) -> Device | None:
    """The inventory's network monitor (ネットワーク監視装置): where operations polling comes from."""
    return next((d for d in inventory.devices.values() if d.role is Role.NETWORK_MONITOR and d.address), None)


class Matrix:
    """Judges a flow between two addresses; results are cached per (src, dst, proto, port).

    ``monitor_sources``: further addresses the monitor polls from (a configured collector source,
    the monitoring host's own address) — as the *client* of a flow they are the network monitor, so
    its polling is judged as polling; as a destination they stay unknown (the monitor's listeners
    take traps and syslog on ports of their own, not the matrix's).
    """

    def __init__(self, inventory: Inventory, rules: tuple[MatrixRule, ...] = RULES,
                 tls_ports: frozenset[int] = frozenset({TLS}), monitor_sources: Iterable[str] = (),
                 snmp_ports: frozenset[int] = frozenset({SNMP})):
        self.hosts = host_index(inventory)
        self.rules = rules
        self.tls_ports = tls_ports  # the simulation serves TLS on 8443 when not root, or where it is told
        self.snmp_ports = snmp_ports  # likewise its agents: 1161 when not root
        monitor = network_monitor(inventory)
        self.clients = dict(self.hosts)
        if monitor is not None:
            self.clients.update((a, monitor) for a in monitor_sources if a not in self.hosts)
        self._cache: dict[tuple[str, str, int, int], MatrixRule | None] = {}

    def known(self, address: str) -> Device | None:
        return self.hosts.get(address)

    def judged(self, src: str, dst: str) -> bool:
        """Whether a flow from ``src`` to ``dst`` is between two known hosts (the matrix has a say)."""
        return src in self.clients and dst in self.hosts

    def rule_for(self, src: str, dst: str, proto: int, port: int) -> MatrixRule | None:
        """The rule allowing the flow, or None. Only meaningful when both ends are known hosts."""
        key = (src, dst, proto, port)
        try:
            return self._cache[key]
        except KeyError:
            pass
        s, d = self.clients[src], self.hosts[dst]
        wanted = TLS if port in self.tls_ports else SNMP if proto == UDP and port in self.snmp_ports else port
        found = next((r for r in self.rules if r.proto == proto and wanted in r.ports and s.role in r.src
                      and d.role in r.dst and r.condition(s, d)), None)
        self._cache[key] = found
        return found
