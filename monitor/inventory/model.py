"""The domain model of the watched network: sites, devices, leased lines.

Every package speaks these types. They are immutable: an inventory is loaded or
generated once and then shared; a change produces a new ``Inventory``.

Dependency semantics: ``Device.parents`` lists the devices through which this
device is reached from the national centre's network-monitoring server. Any one
working parent suffices (redundant paths, e.g. a firewall behind two leased-line
routers). A parent edge that runs over a leased line has a ``Link`` whose ``a``
end is the child (downstream) and ``b`` end is the parent (upstream).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Iterator


class Tier(StrEnum):
    """Where a site sits in the three-tier network (plus connected agencies)."""

    NATIONAL = "national"  # 全国センター (J-LIS)
    AGGREGATION = "aggregation"  # 都道府県サーバ集約センター
    AGENCY = "agency"  # 国の機関等 (情報提供サーバ)
    PREFECTURE = "prefecture"  # 都道府県ネットワーク
    MUNICIPALITY = "municipality"  # 市区町村


class PrefectureNetwork(StrEnum):
    """How a prefecture network is run (自営網 / 委託網)."""

    SELF_OPERATED = "self_operated"
    OUTSOURCED = "outsourced"


class Role(StrEnum):
    """What a device is. The simulation and the collectors act on the role."""

    CS = "cs"  # コミュニケーションサーバ (cluster member)
    CS_RECOVERY = "cs_recovery"  # 復旧用サーバ of a single-node CS
    FW = "fw"  # 市区町村 FW
    ROUTER = "router"  # one per leased line, at its downstream end
    TERMINAL = "terminal"  # 業務端末 with a vein-biometric reader
    PREFECTURE_CORE = "prefecture_core"  # core router of a prefecture network
    PREFECTURE_FW = "prefecture_fw"  # FW between prefecture network and aggregation centre
    PREFECTURE_UNIT = "prefecture_unit"  # 都道府県サーバ処理装置 (one per prefecture)
    AGGREGATION_FW = "aggregation_fw"  # FW of the aggregation centre
    NATIONAL_FW = "national_fw"  # 全国ネットワーク FW
    NATIONAL_SERVER = "national_server"  # 全国サーバ node (subsystem in Device.subsystem)
    IDS_SENSOR = "ids_sensor"
    NETWORK_MONITOR = "network_monitor"  # ネットワーク監視装置: the monitor's vantage point
    CALL_CENTER = "call_center"  # コールセンターサーバ
    CARD_ISSUING = "card_issuing"  # カード発行装置
    AGENCY_SERVER = "agency_server"  # 情報提供サーバ of a government agency

    @property
    def answers_snmp(self) -> bool:
        """Every network device and server is polled; business terminals are not."""
        return self is not Role.TERMINAL

    @property
    def serves_tls(self) -> bool:
        """Servers expose a TLS service whose certificate the lifecycle checks read."""
        return self in _TLS_ROLES


_TLS_ROLES = frozenset(
    {
        Role.CS,
        Role.CS_RECOVERY,
        Role.PREFECTURE_UNIT,
        Role.NATIONAL_SERVER,
        Role.NETWORK_MONITOR,
        Role.CALL_CENTER,
        Role.CARD_ISSUING,
        Role.AGENCY_SERVER,
    }
)


class Subsystem(StrEnum):
    """Subsystems of the national server cluster (全国サーバ)."""

    DATABASE = "database"  # データベースサブシステム
    PROVISION = "provision"  # 情報提供サブシステム
    BUSINESS = "business"  # 業務サブシステム
    OPERATIONS = "operations"  # 運用管理サブシステム
    SEARCH = "search"  # 検索サブシステム


@dataclass(frozen=True, slots=True)
class CryptoProfile:
    """Public-key parameters of a device's service certificate."""

    algorithm: str  # "rsa" | "ecdsa"
    key_size: int  # RSA modulus bits, or EC curve bits (256, 384)
    signature_hash: str  # "sha1" | "sha256" | "sha384"


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Renewal data: the six-year cycle, support deadlines, crypto in use."""

    model: str
    installed: dt.date
    hw_support_end: dt.date
    sw_support_end: dt.date
    crypto: CryptoProfile | None = None  # None for devices without a TLS service
    cert_not_after: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    tier: Tier
    name: str  # Japanese display name
    name_en: str
    parent: str | None  # site id; None only for the national centre
    prefecture: str | None = None  # JIS code "01".."47" for prefecture and municipality sites
    network: PrefectureNetwork | None = None  # prefectures only
    redundant_lines: bool = True  # municipalities: two leased lines (二重化) or one


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    site: str
    role: Role
    name: str
    address: str | None  # 127.x.y.z management address; None for terminals
    parents: tuple[str, ...]  # see module docstring
    lifecycle: Lifecycle
    subsystem: Subsystem | None = None  # national servers only
    prefecture: str | None = None  # JIS code the device serves (prefecture units, prefecture and municipality devices)
    cluster: str | None = None  # CS cluster / pair name
    vein_reader: bool = False  # terminals: 静脈認証装置 attached


@dataclass(frozen=True, slots=True)
class Link:
    """A leased line (専用回線). ``a`` is the downstream router, ``b`` the upstream device."""

    id: str
    circuit_id: str
    carrier: str
    bandwidth_mbps: int
    a: str
    b: str


@dataclass(frozen=True)
class Inventory:
    sites: dict[str, Site]
    devices: dict[str, Device]
    links: dict[str, Link]
    name: str = "inventory"

    @cached_property
    def devices_by_site(self) -> dict[str, list[Device]]:
        index: dict[str, list[Device]] = defaultdict(list)
        for device in self.devices.values():
            index[device.site].append(device)
        return dict(index)

    @cached_property
    def children(self) -> dict[str, list[str]]:
        """Device id → ids of devices that list it as a parent."""
        index: dict[str, list[str]] = defaultdict(list)
        for device in self.devices.values():
            for parent in device.parents:
                index[parent].append(device.id)
        return dict(index)

    @cached_property
    def link_by_edge(self) -> dict[tuple[str, str], Link]:
        """(child device id, parent device id) → the leased line between them."""
        return {(link.a, link.b): link for link in self.links.values()}

    @cached_property
    def device_by_address(self) -> dict[str, Device]:
        return {d.address: d for d in self.devices.values() if d.address}

    def polled_devices(self) -> Iterator[Device]:
        """Devices that answer SNMP (everything but business terminals)."""
        return (d for d in self.devices.values() if d.role.answers_snmp)

    def sites_of_tier(self, tier: Tier) -> list[Site]:
        return [s for s in self.sites.values() if s.tier is tier]

    @cached_property
    def _links_by_device(self) -> dict[str, list[Link]]:
        index: dict[str, list[Link]] = defaultdict(list)
        for link in self.links.values():
            index[link.a].append(link)
            index[link.b].append(link)
        return dict(index)

    def links_of(self, device_id: str) -> list[Link]:
        """Leased lines with the device at either end."""
        return self._links_by_device.get(device_id, [])


@dataclass(frozen=True, slots=True)
class InventoryProblem:
    """One thing wrong with an inventory file, located for the person fixing it."""

    message: str
    entry: str | None = None  # id of the offending site/device/link, if known
    line: int | None = None  # 1-based line in the source file, if known

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.entry is not None:
            where.append(self.entry)
        return f"{', '.join(where)}: {self.message}" if where else self.message


class InventoryError(ValueError):
    """Raised when an inventory cannot be loaded; carries every problem found."""

    def __init__(self, source: str, problems: list[InventoryProblem]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {source}: {p}" for p in problems[:50])
        more = f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s) in inventory {source}:\n{lines}{more}")


__all__ = [
    "CryptoProfile",
    "Device",
    "Inventory",
    "InventoryError",
    "InventoryProblem",
    "Lifecycle",
    "Link",
    "PrefectureNetwork",
    "Role",
    "Site",
    "Subsystem",
    "Tier",
]
