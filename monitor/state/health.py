"""What one device's own observations say about it: alive or not (with hysteresis), flapping, degraded.

The collectors report every poll (``poll`` sample: ok or not) and what the device
answered (system, interface, host, storage samples). This module turns that into
the device's *observed* health, before the dependency graph, the operating window
or maintenance are taken into account (that is ``monitor.state.judge``):

- alive: N consecutive failed polls to go dead, M successes to come back
  (per role), so one lost UDP answer is not an outage;
- flapping: too many alive/dead changes within a window — one FLAPPING
  condition instead of a stream of alarms, until it has been quiet a window long;
- degraded: an interface that was up and is down, lost poll answers, interface
  errors, latency, CPU, memory or disk above thresholds, each held for its
  sustain time before it counts, so a spike is not an alarm;
- certificate: what the TLS check read live (expired, expiring, weak crypto) —
  not a state, but a condition the NOC must see.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from monitor.configerror import ConfigError

IF_UP = 1  # IF-MIB ifOperStatus up
from monitor.envelope import Sample
from monitor.japan_time import JST


@dataclass(frozen=True)
class Threshold:
    limit: float
    sustain: float = 0.0  # seconds above the limit before it counts


@dataclass(frozen=True)
class HealthSettings:
    down_after: int = 2  # consecutive failed polls (the collectors re-check a failure within seconds)
    up_after: int = 1
    down_after_by_role: dict[str, int] = field(default_factory=dict)
    up_after_by_role: dict[str, int] = field(default_factory=dict)
    flap_window: float = 600.0  # seconds
    flap_changes: int = 4  # this many alive/dead changes within the window: flapping
    cpu_pct: Threshold = field(default_factory=lambda: Threshold(90.0, 60.0))
    disk_pct: Threshold = field(default_factory=lambda: Threshold(90.0, 0.0))
    if_errors_ps: Threshold = field(default_factory=lambda: Threshold(1.0, 30.0))
    # One SNMP round trip as the poller sees it, its own scheduling included: generous, and sustained,
    # so a busy poller (start-up: every device's tables learnt at once) is not taken for slow lines.
    rtt_ms: Threshold = field(default_factory=lambda: Threshold(1000.0, 60.0))
    loss: Threshold = field(default_factory=lambda: Threshold(0.2, 30.0))
    poll_loss: Threshold = field(default_factory=lambda: Threshold(0.15, 0.0))  # share of the last polls lost
    poll_window: int = 20  # polls the share is taken over
    cert_warn_days: float = 30.0

    def check(self, key: str) -> None:
        for name in ("down_after", "up_after", "flap_changes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{key}.{name}: must be at least 1")
        for name, table in (("down_after_by_role", self.down_after_by_role),
                            ("up_after_by_role", self.up_after_by_role)):
            for role, count in table.items():
                if count < 1:
                    raise ConfigError(f"{key}.{name}.{role}: must be at least 1")
        if self.poll_window < 5:
            raise ConfigError(f"{key}.poll_window: must be at least 5")
        if self.flap_window <= 0:
            raise ConfigError(f"{key}.flap_window: must be a number > 0")


@dataclass
class _Sustained:
    """A metric above its limit since when (None: not above)."""

    since: float | None = None
    value: float = 0.0


@dataclass
class DeviceHealth:
    alive: bool | None = None  # None: no verdict yet
    fail_streak: int = 0
    ok_streak: int = 0
    first_failure: float | None = None  # start of the current failure streak
    last_ok: float = 0.0  # time of the last successful poll
    last_poll: float = 0.0
    changes: deque[float] = field(default_factory=deque)  # times of alive/dead changes, within the window
    above: dict[str, _Sustained] = field(default_factory=dict)  # metric key → since when above
    degraded: dict[str, str] = field(default_factory=dict)  # metric key → human detail
    last_reboot: float | None = None
    outcomes: deque[bool] = field(default_factory=deque)  # the last polls: answered or not
    interfaces_up: set[str] = field(default_factory=set)  # ifIndex seen up (a port never up is not "down")
    certificate: dict[str, str] = field(default_factory=dict)  # finding → detail (expired, expiring, weak)

    def checkpoint(self) -> dict[str, Any]:
        """What must survive a restart so that it neither re-raises nor forgets a verdict."""
        return {"alive": self.alive, "last_ok": self.last_ok, "changes": list(self.changes),
                "last_reboot": self.last_reboot, "first_failure": self.first_failure}

    @classmethod
    def restore(cls, data: dict[str, Any]) -> "DeviceHealth":
        return cls(alive=data.get("alive"), last_ok=float(data.get("last_ok") or 0.0),
                   changes=deque(float(t) for t in data.get("changes", ())), last_reboot=data.get("last_reboot"),
                   # without it a failure streak would seem to start anew at the first poll after a restart
                   first_failure=data.get("first_failure"))


class HealthTracker:
    """Observed health of every device. ``observe_poll`` returns True when alive/dead changed;
    ``dirty`` is set by any change of a verdict (alive, degradations, certificate findings)."""

    def __init__(self, settings: HealthSettings | None = None, line_circuits: frozenset[str] = frozenset()):
        self.settings = settings or HealthSettings()
        self.line_circuits = line_circuits  # a port carrying a leased line is judged as the line, not the device
        self.devices: dict[str, DeviceHealth] = {}
        self.line_ports: dict[tuple[str, str], str] = {}  # (device, ifIndex) → circuit id of the line on it
        self.dirty = False

    def of(self, device_id: str) -> DeviceHealth:
        health = self.devices.get(device_id)
        if health is None:
            health = self.devices[device_id] = DeviceHealth()
        return health

    def observe_poll(self, device_id: str, role: str, ok: bool, ts: float) -> bool:
        health = self.of(device_id)
        health.last_poll = ts
        s = self.settings
        if ok:
            # A failure streak that ended without the device being judged dead was lost answers:
            # count them (a real outage is judged by the streak and does not count as loss).
            if health.fail_streak and health.alive:
                health.outcomes.extend([False] * health.fail_streak)
            health.outcomes.append(True)
            while len(health.outcomes) > s.poll_window:
                health.outcomes.popleft()
            lost = health.outcomes.count(False) / len(health.outcomes) if len(health.outcomes) >= 5 else 0.0
            self.dirty |= _apply_threshold(health, "poll_loss", s.poll_loss, lost, "ポーリング応答欠落 {:.0%}", ts)
            health.last_ok = ts
            health.ok_streak += 1
            health.fail_streak = 0
            health.first_failure = None
            if health.alive is not True and health.ok_streak >= s.up_after_by_role.get(role, s.up_after):
                return self._set_alive(health, True, ts)
            return False
        health.fail_streak += 1
        health.ok_streak = 0
        if health.first_failure is None:
            health.first_failure = ts
        if health.alive is not False and health.fail_streak >= s.down_after_by_role.get(role, s.down_after):
            return self._set_alive(health, False, ts)
        return False

    def _set_alive(self, health: DeviceHealth, alive: bool, ts: float) -> bool:
        if health.alive is not None:  # the first verdict is not a change
            health.changes.append(ts)
        health.alive = alive
        self.dirty = True
        return True

    def flapping(self, device_id: str, now: float) -> bool:
        health = self.devices.get(device_id)
        if health is None:
            return False
        while health.changes and health.changes[0] < now - self.settings.flap_window:
            health.changes.popleft()
        return len(health.changes) >= self.settings.flap_changes

    def observe_reboot(self, device_id: str, ts: float) -> None:
        self.of(device_id).last_reboot = ts

    def observe_sample(self, device_id: str, sample: Sample) -> None:
        """Thresholds on what the device answered, ports that went down, certificates read live."""
        s, values = self.settings, sample.fields
        if sample.measurement == "tls":
            self._certificate(device_id, values)
            return
        checks: list[tuple[str, Threshold, float | None, str]] = []
        if sample.measurement == "host":
            checks.append(("cpu", s.cpu_pct, _number(values.get("cpu_pct")), "CPU使用率 {:.0f}%"))
        elif sample.measurement == "storage":
            name = sample.tags.get("storage", "?")
            checks.append((f"disk:{name}", s.disk_pct, _number(values.get("used_pct")),
                           f"ディスク {name} 使用率 {{:.0f}}%"))
        elif sample.measurement == "interface":
            index = sample.tags.get("if_index", "?")
            label = sample.tags.get("if_name") or f"ifIndex {index}"
            errors = [_number(values.get(k)) for k in ("in_errors_ps", "out_errors_ps")]
            known = [e for e in errors if e is not None]
            checks.append((f"errors:{index}", s.if_errors_ps, max(known) if known else None,
                           f"{label} エラー {{:.1f}}/秒"))
            alias = sample.tags.get("if_alias")
            if alias in self.line_circuits:
                self.line_ports[(device_id, index)] = alias  # a linkDown trap on it names the line
            else:
                self._port(device_id, index, label, values.get("oper_status"))
        elif sample.measurement == "system":
            checks.append(("rtt", s.rtt_ms, _number(values.get("rtt_ms")), "応答時間 {:.0f} ms"))
        elif sample.measurement == "icmp":
            checks.append(("loss", s.loss, _number(values.get("loss")), "パケットロス {:.0%}"))
        health = self.of(device_id)
        for key, threshold, value, text in checks:
            self.dirty |= _apply_threshold(health, key, threshold, value, text, sample.ts)

    def _port(self, device_id: str, index: str, label: str, status: Any) -> None:
        """A port seen up that is now down degrades its device (one never up is an unused port)."""
        health = self.of(device_id)
        key = f"port:{index}"
        if status == IF_UP:
            health.interfaces_up.add(index)
            self.dirty |= health.degraded.pop(key, None) is not None
        elif status is not None and index in health.interfaces_up and key not in health.degraded:
            health.degraded[key] = f"{label} リンクダウン"
            self.dirty = True

    def _certificate(self, device_id: str, values: dict[str, Any]) -> None:
        days_left = _number(values.get("days_left"))
        if days_left is None:  # no certificate read (the check failed): nothing new about it
            return
        findings: dict[str, str] = {}
        if days_left <= 0:
            findings["cert_expired"] = f"証明書の有効期限切れ ({_jst_date(values.get('not_after'))})"
        elif days_left < self.settings.cert_warn_days:
            findings["cert_expiry"] = f"証明書の有効期限まで残り{days_left:.0f}日"
        if values.get("weak"):
            findings["weak_crypto"] = (f"危殆化した暗号: {values.get('key_algorithm', '?')}-{values.get('key_size', '?')}"
                                       f"/{values.get('signature_hash', '?')}")
        health = self.of(device_id)
        if findings != health.certificate:
            health.certificate = findings
            self.dirty = True


def _apply_threshold(health: DeviceHealth, key: str, threshold: Threshold, value: float | None, text: str,
                     ts: float) -> bool:
    if value is None:
        return False
    if value <= threshold.limit:
        health.above.pop(key, None)
        return health.degraded.pop(key, None) is not None
    mark = health.above.setdefault(key, _Sustained(since=ts))
    mark.value = value
    if ts - (mark.since or ts) < threshold.sustain:
        return False
    detail = text.format(value)
    changed = key not in health.degraded
    health.degraded[key] = detail
    return changed


def _jst_date(value: Any) -> str:
    """A certificate's notAfter (epoch seconds) as the day in Japan."""
    seconds = _number(value)
    if seconds is None:
        return str(value) if value is not None else "?"
    return dt.datetime.fromtimestamp(seconds, JST).date().isoformat()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
