"""Alerts in Suricata EVE-JSON form, so existing tooling (jq recipes, SIEM parsers) reads them.

Every alert names its detector in ``alert.metadata.jukimon_type`` (exactly one of
``AlertType``), the rule or baseline in ``alert.metadata.jukimon_rule`` and carries
the facts behind the judgement in a top-level ``evidence`` object.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Mapping

from ids.traffic.decode import PROTO_NAMES

if TYPE_CHECKING:
    from ids.traffic.decode import Packet
    from ids.traffic.flows import Flow


class AlertType(StrEnum):
    SCAN = "scan"
    BRUTE_FORCE = "brute_force"
    MATRIX_VIOLATION = "matrix_violation"
    FORBIDDEN_PROTOCOL = "forbidden_protocol"
    CLEARTEXT = "cleartext"
    TUNNEL = "tunnel"
    ARP_SPOOF = "arp_spoof"
    BEACON = "beacon"
    VOLUME_ANOMALY = "volume_anomaly"
    NEW_PEER = "new_peer"
    SIGNATURE = "signature"
    FLOOD = "flood"


# Built-in detectors sign their alerts in Suricata's local range; loaded rules keep their own sid.
SIGNATURE_IDS = {t: 9_100_001 + i for i, t in enumerate(AlertType) if t is not AlertType.SIGNATURE}

_CATEGORY = {
    AlertType.SCAN: "Detection of a Network Scan",
    AlertType.BRUTE_FORCE: "Attempted User Privilege Gain",
    AlertType.MATRIX_VIOLATION: "Potential Corporate Privacy Violation",
    AlertType.FORBIDDEN_PROTOCOL: "Potential Corporate Privacy Violation",
    AlertType.CLEARTEXT: "Potential Corporate Privacy Violation",
    AlertType.TUNNEL: "Potentially Bad Traffic",
    AlertType.ARP_SPOOF: "Potentially Bad Traffic",
    AlertType.BEACON: "A Network Trojan was Detected",
    AlertType.VOLUME_ANOMALY: "Potentially Bad Traffic",
    AlertType.NEW_PEER: "Misc activity",
    AlertType.SIGNATURE: "Misc activity",
    AlertType.FLOOD: "Attempted Denial of Service",
}
_SEVERITY = {AlertType.NEW_PEER: 3, AlertType.VOLUME_ANOMALY: 2, AlertType.SCAN: 2, AlertType.CLEARTEXT: 2}


def timestamp(ts: float) -> str:
    """EVE's timestamp format (UTC offset spelled +0000), from whole microseconds as a capture stores them."""
    seconds, micros = divmod(round(ts * 1_000_000), 1_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, dt.timezone.utc).replace(microsecond=micros)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f%z")


def make_alert(kind: AlertType, pkt: "Packet", signature: str, rule: str, evidence: dict[str, Any], *,
               flow: "Flow | None" = None, sid: int | None = None, severity: int | None = None,
               category: str | None = None, dest: str | None = None) -> dict[str, Any]:
    """One EVE alert record about ``pkt`` (``dest`` overrides the destination, e.g. the flood victim)."""
    record: dict[str, Any] = {
        "timestamp": timestamp(pkt.ts),
        "event_type": "alert",
        "src_ip": pkt.src,
        "src_port": pkt.sport,
        "dest_ip": dest or pkt.dst,
        "dest_port": pkt.dport,
        "proto": PROTO_NAMES.get(pkt.proto, str(pkt.proto)),
        "alert": {
            "action": "allowed",
            "gid": 1,
            "signature_id": sid or SIGNATURE_IDS[kind],
            "rev": 1,
            "signature": signature,
            "category": category or _CATEGORY[kind],
            "severity": severity or _SEVERITY.get(kind, 1),
            "metadata": {"jukimon_type": [kind.value], "jukimon_rule": [rule]},
        },
        "evidence": evidence,
    }
    if flow is not None:
        record["flow_id"] = flow.id
        record["flow"] = flow.eve()
    return record


def jukimon_type(record: Mapping[str, Any]) -> str:
    return record["alert"]["metadata"]["jukimon_type"][0]


def alert_time(record: Mapping[str, Any]) -> float:
    """Epoch seconds of an EVE record's timestamp."""
    return dt.datetime.strptime(record["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
