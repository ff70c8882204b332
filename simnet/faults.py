"""The faults that can be injected into the simulated network, and their validation.

A fault is a record (kind, target, parameters, when); the network applies it to
device state and recomputes reachability. Requests to inject come from Python,
the CLI and drills, so every field is checked here, once, with a clear message.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    DEVICE_DOWN = "device_down"  # powered off / hung: silent; comes back rebooted
    REBOOT = "reboot"  # instantaneous: sysUpTime and counters restart
    LINE_CUT = "line_cut"  # one leased line (target: link id)
    SITE_LINES_CUT = "site_lines_cut"  # every leased line of a site (both lines of a duplicated pair)
    INTERFACE_DOWN = "interface_down"  # params: if_index
    LINK_LATENCY = "link_latency"  # params: latency_ms (added round-trip delay behind the line)
    LINK_LOSS = "link_loss"  # params: loss (0..1, per request)
    CPU_EXHAUSTION = "cpu_exhaustion"
    DISK_EXHAUSTION = "disk_exhaustion"
    CERT_EXPIRED = "cert_expired"  # the device's TLS certificate is presented expired
    ISOLATE = "isolate"  # disconnected from the network, still running (the drill's 切り離し)

    @property
    def target_kind(self) -> str:
        return {
            FaultKind.LINE_CUT: "link",
            FaultKind.LINK_LATENCY: "link",
            FaultKind.LINK_LOSS: "link",
            FaultKind.SITE_LINES_CUT: "site",
        }.get(self, "device")

    @property
    def lasting(self) -> bool:
        """False for events that happen once and leave nothing to clear."""
        return self is not FaultKind.REBOOT


class FaultError(ValueError):
    """An injection or clear request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Fault:
    id: str
    kind: FaultKind
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0  # simulated epoch seconds

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        return data


_ids = itertools.count(1)


def new_fault_id() -> str:
    return f"F{next(_ids):05d}"


def parse_kind(value: str) -> FaultKind:
    try:
        return FaultKind(value)
    except ValueError:
        choices = ", ".join(k.value for k in FaultKind)
        raise FaultError(f"unknown fault kind {value!r}; choose one of: {choices}") from None


def validate_params(kind: FaultKind, params: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise the parameters a kind takes; reject the ones it does not."""
    allowed = {
        FaultKind.INTERFACE_DOWN: {"if_index"},
        FaultKind.LINK_LATENCY: {"latency_ms"},
        FaultKind.LINK_LOSS: {"loss"},
    }.get(kind, set())
    unknown = set(params) - allowed
    if unknown:
        raise FaultError(f"{kind.value} takes no parameter(s) {', '.join(sorted(unknown))}")
    clean: dict[str, Any] = {}
    if kind is FaultKind.INTERFACE_DOWN:
        clean["if_index"] = _number(params, "if_index", int, 1, 10_000)
    elif kind is FaultKind.LINK_LATENCY:
        clean["latency_ms"] = _number(params, "latency_ms", float, 0.0, 60_000.0)
    elif kind is FaultKind.LINK_LOSS:
        clean["loss"] = _number(params, "loss", float, 0.0, 1.0)
    return clean


def _number(params: dict[str, Any], name: str, kind: type, low: float, high: float) -> Any:
    if name not in params:
        raise FaultError(f"parameter {name} is required")
    try:
        value = kind(params[name])
    except (TypeError, ValueError):
        raise FaultError(f"parameter {name} must be a number, got {params[name]!r}") from None
    if not low <= value <= high:
        raise FaultError(f"parameter {name} must be between {low} and {high}, got {value}")
    return value
