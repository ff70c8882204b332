"""Thresholds of the traffic IDS, with the defaults the tests and benchmark use."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ids.traffic.flows import FlowTimeouts
from monitor.configerror import ConfigError


@dataclass(frozen=True, slots=True)
class IdsConfig:
    flows: FlowTimeouts = field(default_factory=FlowTimeouts)
    hold: float = 3600.0  # seconds an alert with the same key stays suppressed
    scan_window: float = 60.0
    scan_ports: int = 20  # distinct ports on one host in a window: vertical scan
    scan_hosts: int = 20  # distinct hosts on one port in a window: horizontal scan
    brute_window: float = 60.0
    brute_attempts: int = 20  # connections to one service from one source in a window
    flood_pps: int = 500  # SYNs, echo requests or UDP datagrams to one host in one second
    tls_ports: frozenset[int] = frozenset({443, 6514, 8443})
    snmp_ports: frozenset[int] = frozenset({161, 1161})  # where agents answer (the simulation: 1161 unprivileged)
    forbidden_ports: dict[int, str] = field(default_factory=lambda: {
        445: "SMB", 139: "NetBIOS session (SMB)", 137: "NetBIOS name", 3389: "RDP", 53: "DNS", 80: "HTTP",
        23: "Telnet", 21: "FTP"})
    icmp_payload_max: int = 128  # bytes; a ping carries 56
    icmp_entropy_min: float = 6.0  # bits per byte over payloads of at least 64 bytes
    dns_label_max: int = 40
    dns_name_max: int = 100
    beacon_intervals: int = 10  # at least this many intervals between connections …
    beacon_jitter: float = 0.05  # … with standard deviation below this share of the mean
    beacon_min_interval: float = 5.0
    periodic_ports: frozenset[int] = frozenset({161, 162, 514, 6514, 123})  # polling is periodic by design
    volume_factor: float = 5.0  # bytes per minute above this multiple of the learned peak …
    volume_floor: int = 20_000_000  # … and above this many bytes per minute

    def check(self, key: str) -> None:
        """Every threshold and timeout must be positive; the jitter a share below 1."""
        for name, value in [*((f"flows.{f.name}", getattr(self.flows, f.name)) for f in fields(self.flows)),
                            *((f.name, getattr(self, f.name)) for f in fields(self))]:
            if isinstance(value, (int, float)) and value <= 0:
                raise ConfigError(f"{key}.{name}: must be positive")
        if self.beacon_jitter >= 1:
            raise ConfigError(f"{key}.beacon_jitter: a share of the mean interval, below 1")
        for name in ("tls_ports", "snmp_ports"):
            if not getattr(self, name):
                raise ConfigError(f"{key}.{name}: at least one port")


DEFAULT_CONFIG = IdsConfig()
