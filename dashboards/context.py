"""What the console reads and acts on: the running monitor's parts, handed over by whoever serves it.

The main job (``monitor/mainjob.py``) builds one ``ConsoleContext`` from its live
objects; tests build one from a small running chain. The console never reaches
into the main job otherwise, so it can also run against a standby monitor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from alerting.notify import ConsoleReceiver
    from alerting.service import AlertingService
    from collectors.history import History
    from monitor.inventory.model import Inventory
    from monitor.maintenance import MaintenanceBook
    from monitor.state.engine import StateEngine
    from monitor.store import Store


@dataclass
class ConsoleContext:
    inventory: "Inventory"
    engine: "StateEngine"  # states (engine.states), active conditions, engine.listeners for live updates
    store: "Store"  # the monitor's database: console tables (users, sessions, audit, tickets) live here too
    alerting: "AlertingService | None" = None  # alarms and operator actions on them
    history: "History | None" = None  # short-term series for the graphs
    inbox: "ConsoleReceiver | None" = None  # notifications addressed to the console
    maintenance: "MaintenanceBook | None" = None
    secret_key: bytes = b""  # signs session cookies and CSRF tokens; the main job keeps one under state/
    clock: Callable[[], float] | None = None  # None: time.time
    extra: dict[str, object] = field(default_factory=dict)  # later views (cascade tracker, IDS, drills)
