"""The state engine's settings (the ``monitor:`` section of the configuration); light to import."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.configerror import ConfigError
from monitor.state.health import HealthSettings


@dataclass(frozen=True)
class MonitorSettings:
    health: HealthSettings = field(default_factory=HealthSettings)
    settle: float = 0.5  # seconds between judgements while observations keep changing
    tick: float = 5.0  # judgement at least this often (time-driven changes)
    recheck_spacing: float = 2.0  # a suspect device is asked again at most this often
    hold_max: float = 25.0  # longest a failure waits for its parents' fresh answer before it is judged
    event_hold: float = 600.0  # how long a reboot or an order violation stays an active condition
    checkpoint_every: float = 30.0

    def check(self, key: str) -> None:
        self.health.check(f"{key}.health")
        for name in ("settle", "tick", "hold_max", "event_hold", "checkpoint_every", "recheck_spacing"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{key}.{name}: must be a number > 0")
