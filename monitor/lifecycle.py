"""Lifecycle checks (機器更改・暗号危殆化): what in the fleet must be renewed, and by when.

Owns the judgement of renewal data: hardware and software support deadlines
from the inventory (the six-year renewal cycle), and the certificate each TLS
server presents — its expiry and whether its key or signature hash is
compromised (暗号危殆化: the reason every CS had to be renewed by a deadline).
Certificate facts read live by the collectors (``Sample("tls", ...)``) override
the inventory's for that device: the inventory says what was installed, the
probe says what is actually served.

Findings become ``Condition``s of kind LIFECYCLE so that the monitor raises,
deduplicates and clears them like any other condition.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Any, Mapping

from monitor.envelope import Severity
from monitor.inventory.model import Device, Inventory
from monitor.logs import fields
from monitor.state.model import Condition, ConditionKind
from monitor.configerror import ConfigError
from monitor.japan_time import JST

log = logging.getLogger("jukimon.lifecycle")

# The watched network runs on Japan time: a day of checks starts at midnight JST.

HW_SUPPORT_END = "hw_support_end"
SW_SUPPORT_END = "sw_support_end"
CERT_EXPIRY = "cert_expiry"
CERT_EXPIRED = "cert_expired"
WEAK_KEY = "weak_key"
WEAK_SIGNATURE = "weak_signature"
FINDING_KINDS = (HW_SUPPORT_END, SW_SUPPORT_END, CERT_EXPIRED, CERT_EXPIRY, WEAK_KEY, WEAK_SIGNATURE)

INVENTORY, LIVE = "inventory", "live"

# Key algorithms measured against the RSA floor (integer-factorisation / discrete-log sizes); the rest are
# elliptic curves, measured against the EC floor.
_FINITE_FIELD_ALGORITHMS = frozenset({"rsa", "dsa"})


@dataclass(frozen=True)
class LifecycleSettings:
    """Thresholds of the lifecycle checks (config key ``lifecycle``)."""

    warn_days_support: int = 365  # a renewal takes a budget year: warn a year ahead
    critical_days_support: int = 90
    warn_days_cert: int = 60
    critical_days_cert: int = 14
    min_rsa_bits: int = 2048
    min_ec_bits: int = 256
    forbidden_hashes: tuple[str, ...] = ("md5", "sha1")

    def check(self, key: str) -> None:
        # Imported here: monitor.config imports this module to embed the settings.

        for name in ("support", "cert"):
            warn, critical = getattr(self, f"warn_days_{name}"), getattr(self, f"critical_days_{name}")
            if not 0 <= critical <= warn:
                raise ConfigError(f"{key}.critical_days_{name}: must be between 0 and warn_days_{name} ({warn}), "
                                  f"got {critical}")
        for name in ("min_rsa_bits", "min_ec_bits"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{key}.{name}: must be at least 1")
        for name in self.forbidden_hashes:
            if not name or name != name.lower():
                raise ConfigError(f"{key}.forbidden_hashes: hash names are lower case as in X.509 (sha1), "
                                  f"got {name!r}")


def severity_rank(severity: str) -> int:
    """Most severe first, in the order of ``Severity``."""
    return _SEVERITY_RANK[severity]


_SEVERITY_RANK = {s.value: i for i, s in enumerate(Severity)}


@dataclass(frozen=True, slots=True)
class LifecycleFinding:
    """One thing to renew on one device: what, how urgent, by when, and where the fact came from."""

    device: str
    kind: str  # one of FINDING_KINDS
    severity: str  # monitor.envelope.Severity value
    due: dt.date | None  # None: no deadline of its own (compromised crypto must go at once)
    source: str  # INVENTORY | LIVE
    summary: str  # one line for people (Japanese)

    @property
    def fingerprint(self) -> str:
        return f"lifecycle:{self.device}:{self.kind}"

    def condition(self, started: float) -> Condition:
        return Condition(self.fingerprint, ConditionKind.LIFECYCLE, self.device, self.severity, started,
                         self.summary, details={"finding": self.kind, "source": self.source,
                                                "due": self.due.isoformat() if self.due else None})


def to_conditions(findings: list[LifecycleFinding], ts: float) -> list[Condition]:
    """The findings as conditions of kind LIFECYCLE, fingerprint ``lifecycle:<device>:<kind>``."""
    return [finding.condition(ts) for finding in findings]


@dataclass(frozen=True, slots=True)
class _Certificate:
    """The certificate facts a device is judged on, from the inventory or read live."""

    algorithm: str
    key_size: int
    signature_hash: str
    due: dt.date | None  # last day of validity, a UTC day as X.509 states it (and as the inventory records it)
    expires_at: float | None  # the exact instant, when read live
    source: str
    read_at: float = 0.0


def _inventory_certificate(device: Device) -> _Certificate | None:
    life = device.lifecycle
    if life.crypto is None:
        return None
    return _Certificate(life.crypto.algorithm, life.crypto.key_size, life.crypto.signature_hash.lower(),
                        life.cert_not_after, None, INVENTORY)


def _live_certificate(values: Mapping[str, Any], ts: float) -> _Certificate | None:
    """The facts of one ``tls`` sample, or None when it carries no certificate (a failed check)."""
    algorithm, key_size, digest = values.get("key_algorithm"), values.get("key_size"), values.get("signature_hash")
    if not (isinstance(algorithm, str) and isinstance(digest, str) and _is_number(key_size)):
        return None
    not_after = values.get("not_after")
    if not _is_number(not_after):
        days_left = values.get("days_left")  # a sample may carry only the days left at read time
        not_after = ts + days_left * 86_400 if _is_number(days_left) else None
    try:
        due = dt.datetime.fromtimestamp(not_after, dt.timezone.utc).date() if not_after is not None else None
    except (OverflowError, OSError, ValueError):  # a year beyond 9999: not a certificate anyone issued
        return None
    return _Certificate(algorithm.lower(), int(key_size), digest.lower(), due, not_after, LIVE, ts)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def start_of_day(day: dt.date) -> float:
    """Midnight JST of ``day``, as epoch seconds: the instant a date-only check is made at."""
    return dt.datetime.combine(day, dt.time(), JST).timestamp()


_SUPPORT_LABELS = {HW_SUPPORT_END: "HWサポート終了", SW_SUPPORT_END: "SWサポート終了"}


class LifecycleChecker:
    """Judges the fleet's renewal data against ``LifecycleSettings``; remembers certificates read live."""

    def __init__(self, inventory: Inventory, settings: LifecycleSettings | None = None) -> None:
        self.inventory = inventory
        self.settings = settings or LifecycleSettings()
        self._certificates: dict[str, _Certificate] = {}
        for device in inventory.devices.values():
            certificate = _inventory_certificate(device)
            if certificate is not None:
                self._certificates[device.id] = certificate

    def observe_tls(self, device_id: str, values: Mapping[str, Any], ts: float) -> None:
        """Record the certificate facts of one ``tls`` sample; they replace the inventory's for the device.

        A failed check carries no certificate and changes nothing: the last certificate seen still stands.
        """
        if device_id not in self.inventory.devices:
            log.debug("tls facts for a device not in the inventory", extra=fields(device=device_id))
            return
        certificate = _live_certificate(values, ts)
        if certificate is None:
            return
        known = self._certificates.get(device_id)
        if known is not None and known.source == LIVE and known.read_at > ts:
            return  # an older sample delivered late
        if known is not None and _facts(known) != _facts(certificate):
            # Once per change, not per sample: a renewal, or live facts differing from the inventory.
            log.info("certificate differs from the last known", extra=fields(
                device=device_id, was=_describe(known), now=_describe(certificate)))
        self._certificates[device_id] = certificate

    def findings(self, today: dt.date, now_ts: float | None = None) -> list[LifecycleFinding]:
        """Every finding in the fleet, most severe and soonest first.

        ``today`` dates the deadlines; ``now_ts`` (default: midnight JST of ``today``) decides whether a
        certificate read live has expired within the day.
        """
        now = start_of_day(today) if now_ts is None else now_ts
        found: list[LifecycleFinding] = []
        for device in self.inventory.devices.values():
            found += self._device_findings(device, today, now)
        found.sort(key=lambda f: (severity_rank(f.severity), f.due or dt.date.min, f.device, f.kind))
        return found

    def findings_for(self, device_id: str, today: dt.date, now_ts: float | None = None) -> list[LifecycleFinding]:
        """The findings of one device (KeyError if it is not in the inventory)."""
        now = start_of_day(today) if now_ts is None else now_ts
        return self._device_findings(self.inventory.devices[device_id], today, now)

    def _device_findings(self, device: Device, today: dt.date, now: float) -> list[LifecycleFinding]:
        life = device.lifecycle
        found = [f for f in (self._support(device.id, HW_SUPPORT_END, life.hw_support_end, today),
                             self._support(device.id, SW_SUPPORT_END, life.sw_support_end, today)) if f]
        certificate = self._certificates.get(device.id)
        if certificate is not None:
            found += self._crypto(device.id, certificate)
            expiry = self._expiry(device.id, certificate, today, now)
            if expiry is not None:
                found.append(expiry)
        return found

    def _support(self, device: str, kind: str, end: dt.date, today: dt.date) -> LifecycleFinding | None:
        days = (end - today).days
        severity = self._severity(days, self.settings.warn_days_support, self.settings.critical_days_support)
        if severity is None:
            return None
        label = _SUPPORT_LABELS[kind]
        summary = (f"{label}済み ({end.isoformat()}, {-days}日経過)" if days < 0
                   else f"{label}まで残り{days}日 ({end.isoformat()})")
        return LifecycleFinding(device, kind, severity, end, INVENTORY, summary)

    def _crypto(self, device: str, cert: _Certificate) -> list[LifecycleFinding]:
        """暗号危殆化. A planned renewal, not an outage: a warning, without a deadline of its own."""
        settings, found = self.settings, []
        floor = settings.min_rsa_bits if cert.algorithm in _FINITE_FIELD_ALGORITHMS else settings.min_ec_bits
        if cert.key_size < floor:
            found.append(LifecycleFinding(device, WEAK_KEY, Severity.WARNING.value, None, cert.source,
                                          f"{cert.algorithm.upper()} {cert.key_size}ビット鍵は危殆化対象 "
                                          f"({floor}ビット以上が必要)"))
        if cert.signature_hash in settings.forbidden_hashes:
            banned = ", ".join(_hash_name(h) for h in settings.forbidden_hashes)
            found.append(LifecycleFinding(device, WEAK_SIGNATURE, Severity.WARNING.value, None, cert.source,
                                          f"{_hash_name(cert.signature_hash)}署名は危殆化対象 (使用不可: {banned})"))
        return found

    def _expiry(self, device: str, cert: _Certificate, today: dt.date, now: float) -> LifecycleFinding | None:
        if cert.due is None:
            return None
        due, days = cert.due, (cert.due - today).days
        # A certificate read live expires at its instant; one from the inventory after its last day.
        if (cert.expires_at <= now) if cert.expires_at is not None else days < 0:
            return LifecycleFinding(device, CERT_EXPIRED, Severity.CRITICAL.value, due, cert.source,
                                    f"証明書の有効期限切れ ({due.isoformat()}, {max(0, -days)}日経過)")
        days = max(0, days)  # a UTC last day can be "yesterday" in Japan for the hours before the instant
        severity = self._severity(days, self.settings.warn_days_cert, self.settings.critical_days_cert)
        if severity is None:
            return None
        return LifecycleFinding(device, CERT_EXPIRY, severity, due, cert.source,
                                f"証明書の有効期限まで残り{days}日 ({due.isoformat()})")

    @staticmethod
    def _severity(days_left: int, warn: int, critical: int) -> str | None:
        """Both thresholds inclusive: at ``critical`` days left it is critical."""
        if days_left <= critical:
            return Severity.CRITICAL.value
        if days_left <= warn:
            return Severity.WARNING.value
        return None


def _facts(cert: _Certificate) -> tuple[str, int, str, dt.date | None]:
    return cert.algorithm, cert.key_size, cert.signature_hash, cert.due


def _describe(cert: _Certificate) -> str:
    due = cert.due.isoformat() if cert.due else "?"
    return f"{cert.algorithm}-{cert.key_size}/{cert.signature_hash} until {due} ({cert.source})"


def _hash_name(name: str) -> str:
    """``sha1`` → ``SHA-1``, ``md5`` → ``MD5``: the names operators read in certificate viewers."""
    upper = name.upper()
    return f"SHA-{upper[3:]}" if upper.startswith("SHA") and upper[3:].isdigit() else upper


__all__ = [
    "CERT_EXPIRED",
    "CERT_EXPIRY",
    "FINDING_KINDS",
    "HW_SUPPORT_END",
    "INVENTORY",
    "JST",
    "LIVE",
    "LifecycleChecker",
    "LifecycleFinding",
    "LifecycleSettings",
    "SW_SUPPORT_END",
    "WEAK_KEY",
    "WEAK_SIGNATURE",
    "severity_rank",
    "start_of_day",
    "to_conditions",
]
