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
from collections import deque
from typing import TYPE_CHECKING

from ids.operations.alerts import Alert, AlertType
from monitor.inventory.model import Inventory
from monitor.logs import fields
from monitor.state.engine import Changes
from monitor.state.model import Condition, ConditionKind

if TYPE_CHECKING:
    from alerting.service import AlertingService

log = logging.getLogger("ids.operations.alarms")

RECENT = 500  # alerts the console keeps in memory; the alarms themselves are in the store

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


class IdsAlarms:
    """The IDS's alert sink: raises alarms through alerting and keeps the recent alerts for the console.

    Alerts that arrive before alerting is attached (the simulation starts first) are
    raised when it is.
    """

    def __init__(self, inventory: Inventory, alerting: "AlertingService | None" = None, keep: int = RECENT):
        self.inventory = inventory
        self.alerting = alerting
        self.recent: deque[Alert] = deque(maxlen=keep)
        self._waiting: list[Alert] = []
        self.count = 0  # alerts since start (``recent`` keeps the last ``keep``)

    def __call__(self, alert: Alert) -> None:
        self.recent.append(alert)
        self.count += 1
        log.info("operation IDS alert", extra=fields(type=alert.type.value, organisation=alert.organisation,
                                                     actor=actor_of(alert), severity=alert.severity))
        if self.alerting is None:
            self._waiting.append(alert)
        else:
            self._raise([alert])

    def attach(self, alerting: "AlertingService") -> None:
        self.alerting = alerting
        waiting, self._waiting = self._waiting, []
        if waiting:
            self._raise(waiting)

    def _raise(self, alerts: list[Alert]) -> None:
        assert self.alerting is not None
        self.alerting.on_changes(Changes(raised=[alarm_condition(a, self.inventory) for a in alerts]))
