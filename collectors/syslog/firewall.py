"""Firewall traffic logs → ``FirewallRecord``, and any syslog message → the shared ``Event``.

Every boundary of 住基ネット sits behind a dedicated firewall, and the fleet is
mixed: Cisco ASA, FortiGate, Juniper SRX, Palo Alto and Linux netfilter. Each
logs an allowed or denied connection in its own way; the IDS, the console and the
alarm rules want one shape: action, protocol, source and destination address and
port, and the rule that decided. A message that is not a traffic decision gives
``None`` (it stays an ordinary syslog event).

Pure functions; they see only the parsed message, never raise on odd input
(fuzzed with the parser), and use regexes anchored on vendor keywords so an
unrelated line costs a few substring tests.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.envelope import Event, EventType, Severity, origin_of

if TYPE_CHECKING:
    from collectors.syslog.parse import SyslogMessage
    from monitor.inventory.model import Device, Inventory

SOURCE = "collector.syslog"

VENDOR_NAMES = {"cisco_asa": "Cisco ASA", "fortigate": "FortiGate", "juniper_srx": "Juniper SRX",
                "paloalto": "PAN-OS", "netfilter": "netfilter"}
_RULE_WORDS = {"cisco_asa": "access-list", "fortigate": "policy", "juniper_srx": "policy", "paloalto": "rule",
               "netfilter": "prefix"}
_PROTOCOLS = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 41: "ipv6", 47: "gre", 50: "esp", 51: "ah",
              58: "icmpv6", 89: "ospf", 112: "vrrp", 132: "sctp"}


@dataclass(frozen=True, slots=True)
class FirewallRecord:
    """One connection decision, vendor-neutral. Ports are None for port-less protocols (ICMP)."""

    vendor: str  # cisco_asa | fortigate | juniper_srx | paloalto | netfilter
    action: str  # allow | deny
    protocol: str | None  # tcp, udp, icmp, … (lower case; the number if unnamed)
    src_ip: str | None
    src_port: int | None
    dst_ip: str | None
    dst_port: int | None
    rule: str | None = None  # ACL / policy / rule name or id, netfilter log prefix
    event: str | None = None  # the vendor's event: "106023", "RT_FLOW_SESSION_DENY", "end", …
    vendor_action: str | None = None  # the action word as logged: "accept", "reset-both", "DROP", …
    src_zone: str | None = None  # zone or interface
    dst_zone: str | None = None
    event_time: float | None = None  # the firewall's own time, when the log carries one (FortiGate)
    device_name: str | None = None  # the firewall's own name in the log body (FortiGate devname, PAN-OS device)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}  # type: ignore[attr-defined]


def parse_firewall(msg: "SyslogMessage") -> FirewallRecord | None:
    """Recognise a vendor traffic log in ``msg``; None if it is none of the known formats."""
    text = msg.message
    app = msg.app or ""
    if "%ASA-" in app or "%FTD-" in app or "%ASA-" in text[:24] or "%FTD-" in text[:24]:
        return _asa(app, text)
    if "RT_FLOW" in app or (msg.msgid or "").startswith("RT_FLOW") or "RT_FLOW_SESSION_" in text:
        return _srx(msg)
    if "srcip=" in text and "type=" in text:
        return _fortigate(text)
    if ",TRAFFIC," in text[:80]:
        return _paloalto(text)
    if " SRC=" in text and " DST=" in text and "IN=" in text:
        return _netfilter(text)
    return None


def _protocol(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if value.isdigit():
        return _PROTOCOLS.get(int(value), value) if len(value) <= 3 else None
    return value.lower()


def _port(value: str | None, protocol: str | None = None) -> int | None:
    if not value or not value.isdigit() or len(value) > 5 or protocol in ("icmp", "icmpv6"):
        return None
    port = int(value)
    return port if port <= 65535 else None


# --- Cisco ASA / FTD --------------------------------------------------------

_ADDR = r"([0-9A-Fa-f:.]+)"
_ASA_ID = re.compile(r"%(?:ASA|FTD)-(?:[a-z]+-)?(\d)-(\d{6})")
_ASA_BUILT = re.compile(
    r"(Built|Teardown) (?:(inbound|outbound) )?(TCP|UDP|SCTP) connection \d+ for ([^:\s]+):" + _ADDR
    + r"/(\d+)(?: \([^)]*\))* to ([^:\s]+):" + _ADDR + r"/(\d+)")
_ASA_ICMP = re.compile(r"(Built|Teardown) (?:(inbound|outbound) )?(ICMP|ICMPv6) connection for faddr " + _ADDR
                       + r"/\d+(?:\([^)]*\))? gaddr " + _ADDR + r"/\d+ laddr " + _ADDR)
_ASA_106023 = re.compile(r"Deny (protocol \d+|\S+) src ([^:\s]+):" + _ADDR + r"(?:/(\d+))? dst ([^:\s]+):" + _ADDR
                         + r"(?:/(\d+))?")
_ASA_GROUP = re.compile(r'by access-group "([^"]*)"')
_ASA_106100 = re.compile(r"access-list (\S+) (permitted|denied|est-allowed) (\w+) ([^/\s]+)/" + _ADDR
                         + r"\((\d+)\)(?:\([^)]*\))? -> ([^/\s]+)/" + _ADDR + r"\((\d+)\)")
_ASA_FROM_TO = re.compile(r"(?<!\w)(?:Deny (?:(?:inbound|outbound) )?|(?:Inbound|Outbound) )?(\w+) (?:\(no connection\) )?"
                          r"(?:connection denied |access denied by ACL )?from " + _ADDR + r"/(\d+) to "
                          r"(?:([^:\s]+):)?" + _ADDR + r"/(\d+)(?:.*? on interface (\S+))?")


def _asa(app: str, text: str) -> FirewallRecord | None:
    ident = _ASA_ID.search(app) or _ASA_ID.search(text[:32])
    if ident is None:
        return None
    event = ident.group(2)
    if event in ("302013", "302014", "302015", "302016"):
        m = _ASA_BUILT.search(text)
        if m is None:
            return None
        verb, direction, proto, if1, a1, p1, if2, a2, p2 = m.groups()
        ends = ((if2, a2, p2), (if1, a1, p1)) if direction == "outbound" else ((if1, a1, p1), (if2, a2, p2))
        (sz, sa, sp), (dz, da, dp) = ends
        return FirewallRecord("cisco_asa", "allow", proto.lower(), sa, _port(sp), da, _port(dp), None, event,
                              verb, sz, dz)
    if event in ("302020", "302021"):
        m = _ASA_ICMP.search(text)
        if m is None:
            return None
        verb, direction, proto, faddr, _gaddr, laddr = m.groups()
        src, dst = (laddr, faddr) if direction == "outbound" else (faddr, laddr)
        return FirewallRecord("cisco_asa", "allow", proto.lower(), src, None, dst, None, None, event, verb)
    if event == "106023":
        m = _ASA_106023.search(text)
        if m is None:
            return None
        proto_text, sz, sa, sp, dz, da, dp = m.groups()
        proto = _protocol(proto_text.split()[-1])
        group = _ASA_GROUP.search(text, m.end())
        return FirewallRecord("cisco_asa", "deny", proto, sa, _port(sp, proto), da, _port(dp, proto),
                              group.group(1) if group else None, event, "Deny", sz, dz)
    if event == "106100":
        m = _ASA_106100.search(text)
        if m is None:
            return None
        acl, verdict, proto_text, sz, sa, sp, dz, da, dp = m.groups()
        proto = _protocol(proto_text)
        action = "deny" if verdict == "denied" else "allow"
        return FirewallRecord("cisco_asa", action, proto, sa, _port(sp, proto), da, _port(dp, proto), acl, event,
                              verdict, sz, dz)
    if event in ("106001", "106006", "106007", "106015", "710003"):
        m = _ASA_FROM_TO.search(text)
        if m is None:
            return None
        proto_text, sa, sp, dz, da, dp, iface = m.groups()
        proto = _protocol(proto_text)
        return FirewallRecord("cisco_asa", "deny", proto, sa, _port(sp, proto), da, _port(dp, proto), None, event,
                              "Deny", iface, dz)
    return None


# --- FortiGate ---------------------------------------------------------------

_KV = re.compile(r'(?<![\w.\-])([\w.\-]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)')
_FG_ALLOW = frozenset({"accept", "close", "timeout", "server-rst", "client-rst", "start", "pass", "permit"})
_FG_DENY = frozenset({"deny", "block", "blocked", "drop", "reject", "ip-conn", "dropped"})
_FG_TZ = re.compile(r"([+-])(\d{2}):?(\d{2})")


def _fortigate(text: str) -> FirewallRecord | None:
    kv = {k: (v[1:-1] if v.startswith('"') else v) for k, v in _KV.findall(text)}
    if kv.get("type") != "traffic" or "srcip" not in kv or "dstip" not in kv:
        return None
    raw = kv.get("action", "")
    action = "allow" if raw in _FG_ALLOW else "deny" if raw in _FG_DENY else None
    if action is None:
        return None
    proto = _protocol(kv.get("proto"))
    return FirewallRecord("fortigate", action, proto, kv["srcip"], _port(kv.get("srcport"), proto), kv["dstip"],
                          _port(kv.get("dstport"), proto), kv.get("policyid") or kv.get("policyname"),
                          kv.get("subtype"), raw, kv.get("srcintf"), kv.get("dstintf"), _fortigate_time(kv),
                          kv.get("devname") or None)


def _fortigate_time(kv: dict[str, str]) -> float | None:
    """``eventtime`` is epoch in s, ms, µs or ns depending on the FortiOS release."""
    raw = kv.get("eventtime", "")
    if raw.isdigit() and 9 <= len(raw) <= 19:
        value = int(raw)
        divisor = 1e9 if value > 1e17 else 1e6 if value > 1e14 else 1e3 if value > 1e11 else 1.0
        return value / divisor
    return None


# --- Juniper SRX (RT_FLOW) ------------------------------------------------------

_SRX_EVENT = re.compile(r"RT_FLOW_SESSION_[A-Z_]+")
_SRX_TUPLE = re.compile(r"(?<![0-9A-Fa-f:.])" + _ADDR + r"/(\d+)->" + _ADDR + r"/(\d+)")
_SRX_PROTO = re.compile(r"(\d{1,3})(?:\(\d+\))?")


def _srx_action(event: str) -> str | None:
    if "_DENY" in event or "_REJECT" in event:
        return "deny"
    if "_CREATE" in event or "_CLOSE" in event:
        return "allow"
    return None


def _srx(msg: "SyslogMessage") -> FirewallRecord | None:
    text = msg.message
    found = _SRX_EVENT.search(msg.msgid or "") or _SRX_EVENT.search(text[:64])
    if found is None:
        return None
    event = found.group(0)
    action = _srx_action(event)
    if action is None:
        return None
    params = next((v for k, v in msg.structured_data.items() if k.startswith("junos@2636")), None)
    if params and "source-address" in params:
        proto = _protocol(params.get("protocol-id"))
        return FirewallRecord("juniper_srx", action, proto, params.get("source-address"),
                              _port(params.get("source-port"), proto), params.get("destination-address"),
                              _port(params.get("destination-port"), proto), params.get("policy-name"), event,
                              None, params.get("source-zone-name"), params.get("destination-zone-name"))
    m = _SRX_TUPLE.search(text)
    if m is None:
        return None
    src, sport, dst, dport = m.groups()
    # after the tuple: [0x0] service [nat tuple] [0x0] [nat rule types/names] PROTO[(icmp)] policy from-zone to-zone …
    tokens = text[m.end():].split()
    proto = policy = src_zone = dst_zone = None
    for i, token in enumerate(tokens):
        p = _SRX_PROTO.fullmatch(token)
        if p is not None:
            proto = _protocol(p.group(1))
            policy, src_zone, dst_zone = (tokens[i + 1:i + 4] + [None, None, None])[:3]
            break
    return FirewallRecord("juniper_srx", action, proto, src, _port(sport, proto), dst, _port(dport, proto), policy,
                          event, None, src_zone, dst_zone)


# --- Palo Alto PAN-OS TRAFFIC (CSV) -------------------------------------------------

# field positions of the PAN-OS 10/11 traffic log (syslog field descriptions, "Traffic Log Fields")
_PAN_TYPE, _PAN_SUBTYPE, _PAN_SRC, _PAN_DST, _PAN_RULE = 3, 4, 7, 8, 11
_PAN_FROM_ZONE, _PAN_TO_ZONE, _PAN_SPORT, _PAN_DPORT, _PAN_PROTO, _PAN_ACTION = 16, 17, 24, 25, 29, 30
_PAN_DEVICE = 52
_PAN_DENY = ("deny", "drop", "drop-icmp", "reset-client", "reset-server", "reset-both", "block-url",
             "block-continue", "block-override", "drop-all-packets")


def _paloalto(text: str) -> FirewallRecord | None:
    try:
        fields = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        return None
    if len(fields) <= _PAN_ACTION or fields[_PAN_TYPE] != "TRAFFIC":
        return None
    raw = fields[_PAN_ACTION]
    action = "allow" if raw == "allow" else "deny" if raw in _PAN_DENY else None
    if action is None:
        return None
    proto = _protocol(fields[_PAN_PROTO])
    return FirewallRecord("paloalto", action, proto, fields[_PAN_SRC] or None,
                          _port(fields[_PAN_SPORT], proto), fields[_PAN_DST] or None, _port(fields[_PAN_DPORT], proto),
                          fields[_PAN_RULE] or None, fields[_PAN_SUBTYPE] or None, raw,
                          fields[_PAN_FROM_ZONE] or None, fields[_PAN_TO_ZONE] or None, None,
                          fields[_PAN_DEVICE] if len(fields) > _PAN_DEVICE and fields[_PAN_DEVICE] else None)


# --- Linux netfilter (iptables/nftables LOG) ------------------------------------------

_NF_UPTIME = re.compile(r"\[\s*\d+\.\d+\]")
_NF_START = re.compile(r"(?:^|(?<=\s))IN=(\S*) OUT=(\S*)")
_NF_FIELD = re.compile(r"\b(SRC|DST|PROTO|SPT|DPT)=(\S*)")
_NF_DENY = re.compile(r"(?<![A-Za-z])(DROP|DROPPED|REJECT|REJECTED|DENY|DENIED|BLOCK|BLOCKED)(?![A-Za-z])", re.I)
_NF_ALLOW = re.compile(r"(?<![A-Za-z])(ACCEPT|ACCEPTED|ALLOW|ALLOWED|PERMIT|PERMITTED|PASS)(?![A-Za-z])", re.I)


def _netfilter(text: str) -> FirewallRecord | None:
    m = _NF_START.search(text)
    if m is None:
        return None
    in_if, out_if = m.groups()
    prefix = text[:m.start()]
    uptime = _NF_UPTIME.match(prefix.lstrip())
    if uptime is not None:  # the kernel's "[seconds.micros]" stamp
        prefix = prefix.lstrip()[uptime.end():]
    verdict = _NF_DENY.search(prefix)
    action = "deny" if verdict else None
    if verdict is None:
        verdict = _NF_ALLOW.search(prefix)
        action = "allow" if verdict else None
    if verdict is None or action is None:
        return None
    values = dict(_NF_FIELD.findall(text, m.end()))
    if "SRC" not in values or "DST" not in values:
        return None
    proto = _protocol(values.get("PROTO"))
    rule = prefix.strip(" []:") or None
    return FirewallRecord("netfilter", action, proto, values["SRC"], _port(values.get("SPT"), proto), values["DST"],
                          _port(values.get("DPT"), proto), rule, None, verdict.group(1), in_if or None,
                          out_if or None)


# --- to the shared envelope ----------------------------------------------------------

def lookup_device(inventory: "Inventory | None", peer: str | None, hostname: str | None) -> "Device | None":
    """The sender: by source address first (the true sender), else by the HOSTNAME field
    (device id, short or fully qualified, or an address)."""
    if inventory is None:
        return None
    if peer is not None:
        device = inventory.device_by_address.get(peer)
        if device is not None:
            return device
    if hostname:
        device = inventory.devices.get(hostname) or inventory.device_by_address.get(hostname)
        if device is None and "." in hostname and not hostname[0].isdigit():
            device = inventory.devices.get(hostname.split(".", 1)[0])
        return device
    return None


def to_event(msg: "SyslogMessage", inventory: "Inventory | None" = None) -> Event:
    """The ``Event(EventType.SYSLOG)`` every package consumes; Origin from the inventory."""
    fw = msg.firewall
    device = lookup_device(inventory, msg.peer, msg.hostname or (fw.device_name if fw else None))
    origin = origin_of(inventory, device)
    body: dict[str, Any] = {"facility": msg.facility, "severity": msg.severity, "format": msg.format}
    for key in ("hostname", "app", "procid", "msgid", "peer", "sequence"):
        value = getattr(msg, key)
        if value is not None:
            body[key] = value
    if msg.structured_data:
        body["structured_data"] = msg.structured_data
    if msg.received:
        body["received"] = msg.received
    if msg.timestamp_source != "header":
        body["timestamp_source"] = msg.timestamp_source
    if fw is not None:
        body["firewall"] = fw.to_json()
    return Event(EventType.SYSLOG, msg.timestamp, SOURCE, origin, Severity.from_syslog(msg.severity), msg.message,
                 fw.src_ip if fw else None, fw.dst_ip if fw else None, body)


def _endpoint(ip: str | None, port: int | None) -> str:
    host = ip or "?"
    if ":" in host and port is not None:
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


def describe(record: FirewallRecord) -> str:
    """``ALLOW tcp 10.1.1.1:5000 → 10.2.2.2:443 (FortiGate policy 12)`` — the operator's one line."""
    label = VENDOR_NAMES.get(record.vendor, record.vendor)
    if record.rule:
        label += f" {_RULE_WORDS.get(record.vendor, 'rule')} {record.rule}"
    elif record.event:
        label += f" {record.event}"
    return (f"{record.action.upper()} {record.protocol or '?'} {_endpoint(record.src_ip, record.src_port)} → "
            f"{_endpoint(record.dst_ip, record.dst_port)} ({label})")

