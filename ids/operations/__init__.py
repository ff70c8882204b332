"""Operation-pattern IDS (不審な業務パターンの常時監視): suspicious behaviour of business-terminal operators.

Audit records (docs/audit-records.md) are ingested — validated, resident codes
pseudonymised with a keyed HMAC — and judged by detectors, each of which explains
its alert with a rule or baseline and evidence::

    from ids.operations import OperationsIds, replay
    ids = OperationsIds(inventory)
    for alert in ids.feed(lines): print(alert.to_json())
"""

from ids.operations.alerts import Alert, AlertType
from ids.operations.engine import Engine
from ids.operations.purposes import PURPOSES, Purpose, Scope
from ids.operations.records import Action, Event, Ingestor
from ids.operations.replay import OperationsIds, replay
from ids.operations.settings import OpsIdsSettings
from ids.operations.pseudonym import Pseudonymiser

__all__ = [
    "PURPOSES",
    "Action",
    "Alert",
    "AlertType",
    "Engine",
    "Event",
    "Ingestor",
    "OperationsIds",
    "OpsIdsSettings",
    "Pseudonymiser",
    "Purpose",
    "Scope",
    "replay",
]
