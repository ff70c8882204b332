"""Operation-IDS alerts as the monitor's conditions: one alarm per organisation, type and operator (or terminal).

An alert becomes a ``Condition`` of kind ``IDS_OPERATIONS`` whose fingerprint
``ids_operations:<organisation>:<type>:<operator or terminal>`` is what alerting
deduplicates on: while that alarm is open, a later episode of the same behaviour is
an update of it, not a new alarm. Such conditions are raised by the IDS and resolved
by people (no detector says "it stopped"). The details are the alert's own dict —
pseudonyms at most, never a clear resident code, since none survives ingestion.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ids.alarms import RECENT, AlarmSink
from ids.operations.alerts import Alert, AlertType
from monitor.inventory.model import Inventory
from monitor.logs import fields
from monitor.state.model import Condition, ConditionKind

if TYPE_CHECKING:
    from alerting.service import AlertingService

log = logging.getLogger("ids.operations.alarms")

TYPE_JA = {
    AlertType.OFF_HOURS: "時間外の操作",
    AlertType.BULK_LOOKUP: "大量照会",
    AlertType.UNENTITLED_PURPOSE: "権限外の事務での利用",
    AlertType.OUT_OF_JURISDICTION: "管轄外住民の照会",
    AlertType.ENUMERATION: "連番照会 (総当たり)",
    AlertType.BIOMETRIC_FAILURES: "静脈認証の連続失敗",
    AlertType.CONCURRENT_TERMINALS: "複数端末での同時利用",
    AlertType.UNKNOWN_TERMINAL: "未登録端末からの操作",
    AlertType.DORMANT_ACCOUNT: "休眠アカウントの利用",
    AlertType.AGENCY_OVERPULL: "提供先機関による過大取得",
}


def actor_of(alert: Alert) -> str:
    """Who the alert is about: the operator, or the terminal for terminal- and agency-level alerts."""
    return alert.operator or alert.terminal or "-"


def fingerprint_of(alert: Alert) -> str:
    return f"{ConditionKind.IDS_OPERATIONS.value}:{alert.organisation}:{alert.type.value}:{actor_of(alert)}"


def alarm_condition(alert: Alert, inventory: Inventory) -> Condition:
    """The condition alerting turns into an alarm; the summary names organisation and operator in Japanese."""
    site = inventory.sites.get(alert.organisation)
    where = f"{site.name} ({alert.organisation})" if site is not None else alert.organisation
    who = f"職員 {alert.operator}" if alert.operator else f"端末 {alert.terminal or '-'}"
    return Condition(fingerprint_of(alert), ConditionKind.IDS_OPERATIONS, alert.organisation, alert.severity,
                     alert.start, f"操作ログ監視: {TYPE_JA[alert.type]} — {where} {who}", details=alert.as_dict())


class IdsAlarms(AlarmSink[Alert]):
    """The operation IDS's alert sink: its alerts as alarms through alerting, the recent ones for the console."""

    def __init__(self, inventory: Inventory, alerting: "AlertingService | None" = None, keep: int = RECENT):
        super().__init__(alerting, keep)
        self.inventory = inventory

    def condition(self, alert: Alert) -> Condition:
        return alarm_condition(alert, self.inventory)

    def log_alert(self, alert: Alert) -> None:
        log.info("operation IDS alert", extra=fields(type=alert.type.value, organisation=alert.organisation,
                                                     actor=actor_of(alert), severity=alert.severity))
