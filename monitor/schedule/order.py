"""Start-up and shut-down order (起動・停止順序) of the three server tiers.

Seed 002 §4 point (1): start national server → prefecture servers → CS, stop
CS → prefecture servers → national server. The checker is fed the observed
running/stopped transitions and reports each one that breaks the order.

A tier is judged as a whole: the national servers are one cluster and a
prefecture's CS depend on that prefecture's unit, so a tier counts as running
while any of its members runs. One node of the national cluster failing while
the others run is a device fault, not an order violation. A device never
observed is neither running nor stopped: nothing is concluded from it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from monitor.inventory.model import Device, Inventory, Role
from monitor.logs import fields

log = logging.getLogger("jukimon.schedule")

COUNTERPARTS_SHOWN = 10


class ServerTier(IntEnum):
    """In start-up order."""

    NATIONAL = 0  # 全国サーバ
    PREFECTURE = 1  # 都道府県サーバ (処理装置)
    CS = 2  # コミュニケーションサーバ

    @property
    def code(self) -> str:
        return self.name.lower()

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {ServerTier.NATIONAL: "全国サーバ", ServerTier.PREFECTURE: "都道府県サーバ", ServerTier.CS: "CS"}
_TIER_OF_ROLE = {
    Role.NATIONAL_SERVER: ServerTier.NATIONAL,
    Role.PREFECTURE_UNIT: ServerTier.PREFECTURE,
    Role.CS: ServerTier.CS,
    Role.CS_RECOVERY: ServerTier.CS,
}


class OrderRule(StrEnum):
    CS_BEFORE_PREFECTURE = "cs_before_prefecture"
    CS_BEFORE_NATIONAL = "cs_before_national"
    PREFECTURE_BEFORE_NATIONAL = "prefecture_before_national"
    NATIONAL_STOP_BEFORE_PREFECTURE = "national_stop_before_prefecture"
    NATIONAL_STOP_BEFORE_CS = "national_stop_before_cs"
    PREFECTURE_STOP_BEFORE_CS = "prefecture_stop_before_cs"


@dataclass(frozen=True, slots=True)
class OrderViolation:
    device: str
    rule: OrderRule
    counterparts: tuple[str, ...]  # the first COUNTERPARTS_SHOWN, sorted
    counterpart_count: int
    ts: float
    summary: str  # one line, Japanese


# A group of servers that is running while any member runs: one tier within one scope
# (the whole country for the national tier, a prefecture for the others).
_Group = tuple[ServerTier, str | None]


class OrderChecker:
    """Remembers the last observed running state of every server and checks each transition."""

    def __init__(self, inventory: Inventory):
        self._devices: dict[str, Device] = {}
        self._members: dict[_Group, set[str]] = defaultdict(set)
        for device in inventory.devices.values():
            tier = _TIER_OF_ROLE.get(device.role)
            if tier is not None:
                self._devices[device.id] = device
                self._members[_group(tier, device.prefecture)].add(device.id)
        self._running: dict[_Group, set[str]] = defaultdict(set)
        self._observed: set[str] = set()

    def observe(self, device_id: str, running: bool, ts: float) -> list[OrderViolation]:
        """Record a device's running state; the violations this change commits, if any."""
        device = self._devices.get(device_id)
        if device is None:
            return []  # not a server of the three tiers
        tier = _TIER_OF_ROLE[device.role]
        group = _group(tier, device.prefecture)
        first = device_id not in self._observed
        was_running = device_id in self._running[group]
        self._observed.add(device_id)
        if running:
            self._running[group].add(device_id)
        else:
            self._running[group].discard(device_id)
        if first or running == was_running:
            return []
        if running:
            violations = self._started(device, tier, ts)
        elif not self._running[group]:  # the group stops only with its last member
            violations = self._stopped(device, tier, ts)
        else:
            violations = []
        for violation in violations:
            log.warning("order violation", extra=fields(device=device_id, rule=violation.rule.value,
                                                        counterparts=violation.counterpart_count))
        return violations

    def _started(self, device: Device, tier: ServerTier, ts: float) -> list[OrderViolation]:
        """Every tier above must already run; one whose members are all known and stopped is a violation."""
        violations = []
        for upper in ServerTier:
            if upper >= tier:
                break
            group = _group(upper, device.prefecture)
            members = self._members.get(group, set())
            if not members or self._running[group] or not members <= self._observed:
                continue
            rule = OrderRule(f"{tier.code}_before_{upper.code}")
            summary = f"起動順序違反: {tier.label}「{device.name}」が{upper.label}より先に起動しました"
            violations.append(_violation(device, rule, members, ts, f"{summary} (停止中の{upper.label} {len(members)}台)"))
        return violations

    def _stopped(self, device: Device, tier: ServerTier, ts: float) -> list[OrderViolation]:
        """Every tier below (within this tier's scope) must already be stopped."""
        violations = []
        for lower in ServerTier:
            if lower <= tier:
                continue
            running = set().union(*(self._running[group] for group in self._members
                                    if group[0] is lower and (tier is ServerTier.NATIONAL
                                                              or group[1] == device.prefecture)))
            if not running:
                continue
            rule = OrderRule(f"{tier.code}_stop_before_{lower.code}")
            summary = f"停止順序違反: {tier.label}「{device.name}」が{lower.label}より先に停止しました"
            violations.append(_violation(device, rule, running, ts, f"{summary} (稼働中の{lower.label} {len(running)}台)"))
        return violations


def _group(tier: ServerTier, prefecture: str | None) -> _Group:
    return (tier, None if tier is ServerTier.NATIONAL else prefecture)


def _violation(device: Device, rule: OrderRule, counterparts: set[str], ts: float, summary: str) -> OrderViolation:
    return OrderViolation(device.id, rule, tuple(sorted(counterparts)[:COUNTERPARTS_SHOWN]), len(counterparts),
                          ts, summary)
