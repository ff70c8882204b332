"""Schedule of the watched network: the common operating window (共通運用時間帯) and the
start-up / shut-down order of its server tiers.

Other packages import from here only::

    from monitor.schedule import OperatingCalendar, Phase, WindowSettings, OrderChecker
"""

from monitor.schedule.order import OrderChecker, OrderRule, OrderViolation, ServerTier
from monitor.schedule.window import OperatingCalendar, Phase, WindowSettings

__all__ = [
    "OperatingCalendar",
    "OrderChecker",
    "OrderRule",
    "OrderViolation",
    "Phase",
    "ServerTier",
    "WindowSettings",
]
