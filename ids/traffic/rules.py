"""A documented subset of the Suricata/Snort rule language, so published rules can be loaded.

Supported: ``alert`` with protocol ``tcp|udp|icmp|ip``; addresses ``any``, an IP, a CIDR,
``[a,b]`` lists, ``!`` negation and ``$HOME_NET``/``$EXTERNAL_NET`` (both any: the whole
network is home); ports ``any``, ``n``, ``a:b``, lists and negation; direction ``->`` or
``<>``. Options: ``msg``, ``content`` (with ``|hex|`` and ``!``), ``nocase``, ``pcre``
(``/re/flags`` with i, s, m, x), ``flow`` (to_server, to_client, from_server, from_client,
established), ``threshold`` (type limit|threshold|both, track by_src|by_dst, count, seconds),
``sid``, ``rev``, ``classtype``, ``priority``. Other options are ignored (listed in
``Rule.ignored``); rules with other actions or protocols are skipped with a warning.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from ids.traffic.decode import ICMP, TCP, UDP
from monitor.logs import fields

log = logging.getLogger(__name__)

_PROTOS = {"tcp": (TCP,), "udp": (UDP,), "icmp": (ICMP,), "ip": (TCP, UDP, ICMP)}
_HEADER = re.compile(r"^(\w+)\s+(\w+)\s+(\S+|\[[^\]]*\])\s+(\S+|\[[^\]]*\])\s+(->|<>)\s+"
                     r"(\S+|\[[^\]]*\])\s+(\S+|\[[^\]]*\])\s*\((.*)\)\s*$")
_PRIORITY_BY_CLASS = {"attempted-admin": 1, "trojan-activity": 1, "attempted-recon": 2, "policy-violation": 2}


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Match:
    """One address or port expression: any, or a set of positives with negatives."""

    include: tuple = ()
    exclude: tuple = ()

    def addr(self, value: str) -> bool:
        ip = ipaddress.ip_address(value)
        if any(ip in net for net in self.exclude):
            return False
        return not self.include or any(ip in net for net in self.include)

    def port(self, value: int) -> bool:
        if any(lo <= value <= hi for lo, hi in self.exclude):
            return False
        return not self.include or any(lo <= value <= hi for lo, hi in self.include)


@dataclass(frozen=True)
class Content:
    pattern: bytes
    nocase: bool = False
    negated: bool = False


@dataclass
class Rule:
    text: str
    protos: tuple[int, ...]
    src: Match
    sport: Match
    dst: Match
    dport: Match
    bidirectional: bool
    msg: str = ""
    sid: int = 0
    rev: int = 1
    classtype: str = "misc-activity"
    priority: int = 3
    contents: list[Content] = field(default_factory=list)
    pcres: list[re.Pattern[bytes]] = field(default_factory=list)
    flow: frozenset[str] = frozenset()
    threshold: dict[str, str] | None = None
    ignored: list[str] = field(default_factory=list)


def _split_list(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        return [t.strip() for t in text[1:-1].split(",") if t.strip()]
    return [text]


def _addresses(text: str) -> Match:
    include, exclude = [], []
    for item in _split_list(text):
        negated = item.startswith("!")
        item = item.lstrip("!")
        if item in ("any", "$HOME_NET", "$EXTERNAL_NET"):
            if negated:
                raise RuleError(f"negated {item} matches nothing")
            continue
        (exclude if negated else include).append(ipaddress.ip_network(item, strict=False))
    return Match(tuple(include), tuple(exclude))


def _ports(text: str) -> Match:
    include, exclude = [], []
    for item in _split_list(text):
        negated = item.startswith("!")
        item = item.lstrip("!")
        if item == "any":
            continue
        lo, _, hi = item.partition(":")
        span = (int(lo or 0), int(hi or 65535) if _ else int(lo))
        (exclude if negated else include).append(span)
    return Match(tuple(include), tuple(exclude))


def _content(value: str) -> bytes:
    """Suricata content: text with |41 42| hex runs; quotes and escapes already stripped."""
    out = bytearray()
    for i, part in enumerate(value.split("|")):
        out += bytes.fromhex(part) if i % 2 else part.encode()
    return bytes(out)


def _options(text: str) -> list[tuple[str, str]]:
    """``key:value;`` pairs, honouring quotes and backslash escapes inside values."""
    options, key, value, in_quotes, escaped, in_value = [], "", "", False, False, False
    for ch in text:
        if escaped:
            value += ch if ch in '";\\' else "\\" + ch  # only these are escapes; \w stays for pcre
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            in_quotes = not in_quotes
        elif ch == ";" and not in_quotes:
            if key.strip():
                options.append((key.strip(), value.strip()))
            key, value, in_value = "", "", False
        elif ch == ":" and not in_value and not in_quotes:
            in_value = True
        elif in_value:
            value += ch
        else:
            key += ch
    if key.strip():
        options.append((key.strip(), value.strip()))
    return options


def parse_rule(text: str) -> Rule | None:
    """The rule, or None for actions/protocols outside the subset."""
    m = _HEADER.match(text.strip())
    if not m:
        raise RuleError(f"not a rule: {text[:80]}")
    action, proto, src, sport, direction, dst, dport, body = m.groups()
    if action != "alert" or proto not in _PROTOS:
        return None
    rule = Rule(text, _PROTOS[proto], _addresses(src), _ports(sport), _addresses(dst), _ports(dport),
                direction == "<>")
    for key, value in _options(body):
        if key == "msg":
            rule.msg = value
        elif key == "content":
            negated = value.startswith("!")
            rule.contents.append(Content(_content(value.lstrip("!")), negated=negated))
        elif key == "nocase" and rule.contents:
            last = rule.contents[-1]
            rule.contents[-1] = Content(last.pattern.lower(), True, last.negated)
        elif key == "pcre":
            rule.pcres.append(_pcre(value))
        elif key == "flow":
            rule.flow = frozenset(v.strip() for v in value.split(","))
        elif key == "threshold":
            rule.threshold = dict(part.strip().split(None, 1) for part in value.split(","))
        elif key in ("sid", "rev", "priority"):
            setattr(rule, key, int(value))
        elif key == "classtype":
            rule.classtype = value
            rule.priority = _PRIORITY_BY_CLASS.get(value, rule.priority)
        else:
            rule.ignored.append(key)
    if not rule.sid:
        raise RuleError(f"rule without sid: {text[:80]}")
    return rule


def _pcre(value: str) -> re.Pattern[bytes]:
    negated = value.startswith("!")
    if negated:
        raise RuleError("negated pcre is outside the supported subset")
    body, _, flags = value[1:].rpartition("/")
    bits = 0
    for flag, bit in (("i", re.I), ("s", re.S), ("m", re.M), ("x", re.X)):
        if flag in flags:
            bits |= bit
    try:
        return re.compile(body.encode(), bits)
    except re.error as exc:  # re.error is not a ValueError
        raise RuleError(f"pcre does not compile: {exc}") from None
    except RecursionError:
        raise RuleError("pcre nested too deeply") from None


def load_rules(path: str | Path) -> list[Rule]:
    """Rules from a .rules file: one per line, ``#`` comments, trailing backslash continues a line."""
    rules: list[Rule] = []
    pending = ""
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        text, pending = pending + line, ""
        try:
            rule = parse_rule(text)
        except (RuleError, ValueError) as exc:
            log.warning("rule skipped", extra=fields(file=str(path), line=number, reason=str(exc)))
            continue
        if rule is None:
            log.warning("rule outside the supported subset", extra=fields(file=str(path), line=number))
            continue
        rules.append(rule)
    return rules


DEFAULT_RULES = Path(__file__).parent / "rules" / "jukimon.rules"
