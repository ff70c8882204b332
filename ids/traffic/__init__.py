"""Traffic IDS: suspicious communication patterns on the closed network.

Public surface::

    from ids.traffic import (Engine, IdsConfig, replay, replay_alerts, learn_baseline, FrameLearner, Baseline,
                             load_rules, to_event)
"""

from ids.traffic.baseline import Baseline
from ids.traffic.config import IdsConfig
from ids.traffic.engine import Engine, EngineStats
from ids.traffic.eve import AlertType, jukimon_type
from ids.traffic.events import to_event
from ids.traffic.replay import FrameLearner, learn_baseline, replay, replay_alerts
from ids.traffic.rules import DEFAULT_RULES, load_rules

__all__ = ["AlertType", "Baseline", "DEFAULT_RULES", "Engine", "EngineStats", "FrameLearner", "IdsConfig", "jukimon_type",
           "learn_baseline", "load_rules", "replay", "replay_alerts", "to_event"]
