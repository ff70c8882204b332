"""Traffic-IDS alerts as the monitor's conditions: one alarm per alert type, source and destination.

An EVE alert becomes a ``Condition`` of kind ``IDS_TRAFFIC`` whose fingerprint
``ids_traffic:<type>:<src_ip>:<dest_ip>`` is what alerting deduplicates on: while
that alarm is open, the same pattern between the same hosts again is an update of
it. Its subject is the source's device when the inventory knows the address (so
routing and silences see its site), else the address itself. Raised by the IDS,
resolved by people. The details are the EVE alert as the engine wrote it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Mapping

from ids.alarms import RECENT, AlarmSink
from ids.traffic.eve import AlertType, alert_time, jukimon_type
from ids.traffic.matrix import host_index
from monitor.envelope import Severity
from monitor.inventory import Device, Inventory
from monitor.logs import fields
from monitor.state.model import Condition, ConditionKind

if TYPE_CHECKING:
    from alerting.service import AlertingService

log = logging.getLogger("ids.traffic.alarms")

Alert = dict[str, Any]

TYPE_JA = {
    AlertType.SCAN: "ポートスキャン",
    AlertType.BRUTE_FORCE: "総当たり接続",
    AlertType.MATRIX_VIOLATION: "通信マトリクス違反",
    AlertType.FORBIDDEN_PROTOCOL: "禁止プロトコル",
    AlertType.CLEARTEXT: "暗号化されていない通信",
    AlertType.TUNNEL: "トンネリング (ICMP/DNS)",
    AlertType.ARP_SPOOF: "ARP なりすまし",
    AlertType.BEACON: "定期的な不審通信 (ビーコン)",
    AlertType.VOLUME_ANOMALY: "通信量の異常",
    AlertType.NEW_PEER: "新しい通信相手",
    AlertType.SIGNATURE: "シグネチャ一致",
    AlertType.FLOOD: "フラッド攻撃",
}
# Suricata's priority: 1 is the most severe.
SEVERITY = {1: Severity.CRITICAL, 2: Severity.ERROR, 3: Severity.WARNING}


def fingerprint_of(alert: Mapping[str, Any]) -> str:
    return f"{ConditionKind.IDS_TRAFFIC.value}:{jukimon_type(alert)}:{alert['src_ip']}:{alert['dest_ip']}"


def severity_of(alert: Mapping[str, Any]) -> str:
    return SEVERITY.get(alert["alert"]["severity"], Severity.WARNING).value


def rule_of(alert: Mapping[str, Any]) -> str:
    """The rule or baseline behind the judgement (a loaded rule's text, a detector's threshold)."""
    return alert["alert"]["metadata"].get("jukimon_rule", [alert["alert"]["signature"]])[0]


def endpoint(address: str, hosts: Mapping[str, Device]) -> str:
    """An address as people read it: the device's name and address when the inventory knows it."""
    device = hosts.get(address)
    return f"{device.name} ({address})" if device is not None else address


def alarm_condition(alert: Mapping[str, Any], hosts: Mapping[str, Device]) -> Condition:
    """The condition alerting turns into an alarm; ``hosts`` is ``matrix.host_index(inventory)``."""
    kind = AlertType(jukimon_type(alert))
    source = hosts.get(alert["src_ip"])
    summary = (f"通信監視: {TYPE_JA[kind]} — {endpoint(alert['src_ip'], hosts)} → {endpoint(alert['dest_ip'], hosts)}"
               f" ({alert['alert']['signature']})")
    return Condition(fingerprint_of(alert), ConditionKind.IDS_TRAFFIC, source.id if source else alert["src_ip"],
                     severity_of(alert), alert_time(alert), summary, details=dict(alert))


class TrafficAlarms(AlarmSink[Alert]):
    """The traffic IDS's alert sink: EVE alerts as alarms through alerting, the recent ones for the console."""

    def __init__(self, inventory: Inventory, alerting: "AlertingService | None" = None, keep: int = RECENT):
        super().__init__(alerting, keep)
        self.hosts = host_index(inventory)

    def condition(self, alert: Alert) -> Condition:
        return alarm_condition(alert, self.hosts)

    def log_alert(self, alert: Alert) -> None:
        log.info("traffic IDS alert", extra=fields(type=jukimon_type(alert), src=alert["src_ip"], dest_port=alert.get("dest_port"),
                                                   dest=alert["dest_ip"], signature=alert["alert"]["signature"],
                                                   severity=severity_of(alert)))
