"""The routing configuration: which receivers hear of which alarms, grouped how, escalated along which tiers.

Parsed once, from YAML, into typed objects; every error names the file, the line
and the key, and says what was expected (``routing.yml:14: route.routes[0].receivers[1]:
unknown receiver 'noc-mai' (defined: noc-console, noc-mail)``). The file holds:

- ``receivers``: name → ``{type: email, to: [...]}`` | ``{type: webhook, url: ...}`` |
  ``{type: mqtt, topic: ...}`` | ``{type: console}``;
- ``route``: the routing tree (Alertmanager's): the root matches every alarm; its
  ``routes`` are tried in order and the first that matches takes the alarm, unless it
  says ``continue: true`` — then the next siblings are tried too; an alarm that no
  child takes stays with the parent. A route matches by ``matchers`` (``severity=critical``,
  ``role=~"cs|cs_recovery"``, ``prefecture!=01``) and ``min_severity``; it names its
  ``receivers``, an ``escalation`` policy, and grouping: ``group_by`` labels,
  ``group_wait``, ``group_interval``, ``repeat_interval``. Children inherit what they
  do not set;
- ``escalation_policies``: name → ``tiers`` (name, receivers, ``wait`` before the next
  tier — every tier but the last) and an optional ``repeat_interval`` for the last tier;
- ``inhibit_rules``: ``source`` and ``target`` matchers and ``equal`` labels.

Durations are written with their unit: ``30s``, ``10m``, ``4h``, ``1h30m``.
``default_routing()`` is the built-in tree used when no file is configured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Mapping

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from alerting.alarms import severity_rank
from alerting.model import SEVERITY_ORDER
from alerting.silences import InhibitRule, Matcher, MatcherError, match_all, parse_matcher
from monitor.configerror import ConfigError
from monitor.yaml_nodes import SAFE_LOADER, describe_node

RECEIVER_TYPES = {"email": ("to",), "webhook": ("url",), "mqtt": ("topic",), "console": ()}
_ROUTE_KEYS = ("name", "matchers", "min_severity", "receivers", "escalation", "group_by", "group_wait",
               "group_interval", "repeat_interval", "continue", "routes")
_ROOT_ONLY_FORBIDDEN = ("matchers", "min_severity", "continue")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhd])+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}

_DEFAULT_YAML = """
receivers:
  noc-console: {type: console}
  noc-mail: {type: email, to: [noc@localhost]}
route:
  receivers: [noc-console]
  group_by: [prefecture, kind]
  group_wait: 10s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - name: noc-urgent
      min_severity: error
      receivers: [noc-console, noc-mail]
"""


class RoutingError(ConfigError):
    """The routing file cannot be used; the message names file, line and key."""


@dataclass(frozen=True, slots=True)
class Receiver:
    name: str
    type: str  # email | webhook | mqtt | console
    to: tuple[str, ...] = ()  # email
    url: str | None = None  # webhook
    topic: str | None = None  # mqtt


@dataclass(frozen=True, slots=True)
class EscalationTier:
    name: str  # e.g. noc-operator, noc-lead, system-management, national-oncall
    receivers: tuple[str, ...]
    wait: float | None  # seconds without acknowledgement before the next tier; None for the last tier


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    name: str
    tiers: tuple[EscalationTier, ...]
    repeat_interval: float | None = None  # the last tier is told again this often until someone acknowledges

    def wait(self, step: int) -> float | None:
        """How long step ``step`` waits for an acknowledgement before the next step (None: it is the end)."""
        return self.tiers[step].wait if step < len(self.tiers) - 1 else self.repeat_interval


@dataclass(frozen=True, slots=True)
class Route:
    id: str  # its name, or its place in the file ("route.routes[0]")
    receivers: tuple[str, ...]
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    escalation: str | None = None
    matchers: tuple[Matcher, ...] = ()
    min_severity: str | None = None
    continue_: bool = False
    routes: tuple[Route, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.min_severity is not None and severity_rank(labels.get("severity", "")) > severity_rank(
                self.min_severity):
            return False
        return match_all(self.matchers, labels)

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes that take an alarm with these labels (Alertmanager's walk), deepest first."""
        if not self.matches(labels):
            return []
        taken: list[Route] = []
        for child in self.routes:
            found = child.match(labels)
            taken.extend(found)
            if found and not child.continue_:
                break
        return taken or [self]

    def group_key(self, labels: Mapping[str, str]) -> str:
        """One aggregation group per route and values of its ``group_by`` labels."""
        return f"{self.id}{{" + ",".join(f"{k}={labels.get(k, '')}" for k in self.group_by) + "}"

    def walk(self) -> Iterator[Route]:
        yield self
        for child in self.routes:
            yield from child.walk()


@dataclass(frozen=True)
class RoutingConfig:
    route: Route
    receivers: dict[str, Receiver]
    policies: dict[str, EscalationPolicy]
    inhibit_rules: tuple[InhibitRule, ...] = ()
    source: str = "<built-in routing>"
    routes_by_id: dict[str, Route] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "routes_by_id", {r.id: r for r in self.route.walk()})

    def routes_for(self, labels: Mapping[str, str]) -> list[Route]:
        return self.route.match(labels)

    def policy_of(self, route: Route) -> EscalationPolicy | None:
        return self.policies[route.escalation] if route.escalation else None


def default_routing() -> RoutingConfig:
    """Critical and error alarms to the NOC console and mail; everything else to the console."""
    return parse_routing(_DEFAULT_YAML, "<built-in routing>")


def load_routing(path: str | Path) -> RoutingConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RoutingError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RoutingError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_routing(text, str(path))


def parse_routing(text: str, source: str = "<string>") -> RoutingConfig:
    try:
        root = yaml.compose(text, Loader=SAFE_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise RoutingError(f"{source}{line}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:  # a character YAML does not allow (ReaderError has no mark)
        raise RoutingError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise RoutingError(f"{source}: not valid YAML: nested too deeply") from None
    if root is None:
        raise RoutingError(f"{source}: empty: expected a mapping with keys receivers, route")
    return _Parser(source).config(root)


class _Parser:
    """Reads the composed YAML node tree, so that every error can point at its line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.receivers: dict[str, Receiver] = {}
        self.policies: dict[str, EscalationPolicy] = {}

    def config(self, root: Node) -> RoutingConfig:
        top = self.mapping(root, "routing", ("receivers", "route", "escalation_policies", "inhibit_rules"),
                           required=("receivers", "route"))
        self.receivers = {name: self.receiver(name, node, f"receivers.{name}")
                          for name, node in self.named(top["receivers"], "receivers")}
        if "escalation_policies" in top:
            self.policies = {name: self.policy(name, node, f"escalation_policies.{name}")
                             for name, node in self.named(top["escalation_policies"], "escalation_policies")}
        rules = tuple(self.inhibit_rule(node, f"inhibit_rules[{i}]")
                      for i, node in enumerate(self.sequence(top["inhibit_rules"], "inhibit_rules")
                                               if "inhibit_rules" in top else ()))
        route = self.route(top["route"], "route", None)
        ids = [r.id for r in route.walk()]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise RoutingError(f"{self.source}: route names used twice: {', '.join(twice)} (names must be unique)")
        return RoutingConfig(route, self.receivers, self.policies, rules, self.source)

    # --- sections ---------------------------------------------------------------------------------------------

    def receiver(self, name: str, node: Node, key: str) -> Receiver:
        kind_node = self.mapping(node, key, None, required=("type",))["type"]
        kind = self.string(kind_node, f"{key}.type")
        if kind not in RECEIVER_TYPES:
            raise self.error(kind_node, f"{key}.type", f"unknown receiver type {kind!r} (expected one of: "
                                                       f"{', '.join(RECEIVER_TYPES)})")
        wanted = RECEIVER_TYPES[kind]
        values = self.mapping(node, key, ("type", *wanted), required=wanted)
        if kind == "email":
            to = self.strings(values["to"], f"{key}.to", nonempty=True)
            for i, address in enumerate(to):
                if "@" not in address:
                    raise self.error(values["to"], f"{key}.to[{i}]", f"expected a mail address, got {address!r}")
            return Receiver(name, kind, to=to)
        if kind == "webhook":
            url = self.string(values["url"], f"{key}.url")
            if not url.startswith(("http://", "https://")):
                raise self.error(values["url"], f"{key}.url", f"expected an http:// or https:// URL, got {url!r}")
            return Receiver(name, kind, url=url)
        if kind == "mqtt":
            topic = self.string(values["topic"], f"{key}.topic")
            if "+" in topic or "#" in topic:
                raise self.error(values["topic"], f"{key}.topic", "a topic to publish to cannot hold + or #")
            return Receiver(name, kind, topic=topic)
        return Receiver(name, kind)

    def policy(self, name: str, node: Node, key: str) -> EscalationPolicy:
        values = self.mapping(node, key, ("tiers", "repeat_interval"), required=("tiers",))
        tier_nodes = self.sequence(values["tiers"], f"{key}.tiers")
        if not tier_nodes:
            raise self.error(values["tiers"], f"{key}.tiers", "expected at least one tier")
        tiers = []
        for i, tier_node in enumerate(tier_nodes):
            tier_key = f"{key}.tiers[{i}]"
            last = i == len(tier_nodes) - 1
            tier = self.mapping(tier_node, tier_key, ("name", "receivers", "wait"),
                                required=("name", "receivers") if last else ("name", "receivers", "wait"))
            if last and "wait" in tier:
                raise self.error(tier["wait"], f"{tier_key}.wait",
                                 "the last tier has no next tier to wait for: use the policy's repeat_interval")
            wait = None if last else self.duration(tier["wait"], f"{tier_key}.wait", positive=True)
            tiers.append(EscalationTier(self.string(tier["name"], f"{tier_key}.name"),
                                        self.receiver_names(tier["receivers"], f"{tier_key}.receivers"), wait))
        repeat = (self.duration(values["repeat_interval"], f"{key}.repeat_interval", positive=True)
                  if "repeat_interval" in values else None)
        return EscalationPolicy(name, tuple(tiers), repeat)

    def inhibit_rule(self, node: Node, key: str) -> InhibitRule:
        values = self.mapping(node, key, ("source", "target", "equal"), required=("source", "target"))
        return InhibitRule(self.matchers(values["source"], f"{key}.source", nonempty=True),
                           self.matchers(values["target"], f"{key}.target", nonempty=True),
                           self.strings(values["equal"], f"{key}.equal") if "equal" in values else ())

    def route(self, node: Node, key: str, parent: Route | None) -> Route:
        values = self.mapping(node, key, _ROUTE_KEYS, required=("receivers",) if parent is None else ())
        if parent is None:
            for name in _ROOT_ONLY_FORBIDDEN:
                if name in values:
                    raise self.error(values[name], f"{key}.{name}", "the root route takes every alarm: "
                                                                    "put matchers on its child routes")
        escalation = parent.escalation if parent else None
        if "escalation" in values:
            escalation = self.string(values["escalation"], f"{key}.escalation")
            if escalation not in self.policies:
                raise self.error(values["escalation"], f"{key}.escalation",
                                 f"unknown escalation policy {escalation!r} (defined: "
                                 f"{', '.join(self.policies) or 'none'})")
        min_severity = None
        if "min_severity" in values:
            min_severity = self.string(values["min_severity"], f"{key}.min_severity")
            if min_severity not in SEVERITY_ORDER:
                raise self.error(values["min_severity"], f"{key}.min_severity",
                                 f"expected one of {', '.join(SEVERITY_ORDER)}, got {min_severity!r}")

        def inherited(name: str, default: float) -> float:
            if name in values:
                return self.duration(values[name], f"{key}.{name}", positive=name != "group_wait")
            return getattr(parent, name) if parent else default

        route = Route(
            id=self.string(values["name"], f"{key}.name") if "name" in values else key,
            receivers=(self.receiver_names(values["receivers"], f"{key}.receivers") if "receivers" in values
                       else parent.receivers if parent else ()),
            group_by=(self.strings(values["group_by"], f"{key}.group_by") if "group_by" in values
                      else parent.group_by if parent else ("prefecture", "kind")),
            group_wait=inherited("group_wait", 30.0),
            group_interval=inherited("group_interval", 300.0),
            repeat_interval=inherited("repeat_interval", 4 * 3600.0),
            escalation=escalation,
            matchers=self.matchers(values["matchers"], f"{key}.matchers") if "matchers" in values else (),
            min_severity=min_severity,
            continue_=self.boolean(values["continue"], f"{key}.continue") if "continue" in values else False)
        children = (tuple(self.route(child, f"{key}.routes[{i}]", route)
                          for i, child in enumerate(self.sequence(values["routes"], f"{key}.routes")))
                    if "routes" in values else ())
        return replace(route, routes=children)

    # --- values -----------------------------------------------------------------------------------------------

    def receiver_names(self, node: Node, key: str) -> tuple[str, ...]:
        names = self.strings(node, key)
        for i, name in enumerate(names):
            if name not in self.receivers:
                raise self.error(node.value[i], f"{key}[{i}]", f"unknown receiver {name!r} (defined: "
                                                               f"{', '.join(self.receivers) or 'none'})")
        return names

    def matchers(self, node: Node, key: str, nonempty: bool = False) -> tuple[Matcher, ...]:
        items = self.sequence(node, key)
        if nonempty and not items:
            raise self.error(node, key, "expected at least one matcher such as kind=root_cause")
        out = []
        for i, item in enumerate(items):
            text = self.string(item, f"{key}[{i}]")
            try:
                out.append(parse_matcher(text))
            except MatcherError as exc:
                raise self.error(item, f"{key}[{i}]", f"expected a matcher label=value, label!=value, "
                                                      f"label=~regex or label!~regex: {exc}") from None
        return tuple(out)

    def duration(self, node: Node, key: str, positive: bool) -> float:
        text = self.string(node, key) if isinstance(node, ScalarNode) and node.tag.endswith(":str") else None
        if text is None or not _DURATION.fullmatch(text):
            raise self.error(node, key, f"expected a duration with its unit such as 30s, 10m, 4h, got {describe_node(node)}")
        seconds = sum(float(n) * _UNIT[u] for n, u in _DURATION_PART.findall(text))
        if positive and seconds <= 0:
            raise self.error(node, key, "expected a duration > 0")
        return seconds

    def boolean(self, node: Node, key: str) -> bool:
        if not (isinstance(node, ScalarNode) and node.tag.endswith(":bool")):
            raise self.error(node, key, f"expected true or false, got {describe_node(node)}")
        return node.value.lower() in ("true", "yes", "on")

    def string(self, node: Node, key: str) -> str:
        if not (isinstance(node, ScalarNode) and node.tag.endswith(":str")) or not node.value.strip():
            raise self.error(node, key, f"expected a text, got {describe_node(node)}")
        return node.value.strip()

    def strings(self, node: Node, key: str, nonempty: bool = False) -> tuple[str, ...]:
        items = self.sequence(node, key)
        if nonempty and not items:
            raise self.error(node, key, "expected at least one entry")
        return tuple(self.string(item, f"{key}[{i}]") for i, item in enumerate(items))

    def sequence(self, node: Node, key: str) -> list[Node]:
        if not isinstance(node, SequenceNode):
            raise self.error(node, key, f"expected a list, got {describe_node(node)}")
        return list(node.value)

    def named(self, node: Node, key: str) -> list[tuple[str, Node]]:
        """A mapping of user-chosen names (receivers, policies) to their definitions."""
        return list(self.mapping(node, key, None).items())

    def mapping(self, node: Node, key: str, known: tuple[str, ...] | None,
                required: tuple[str, ...] = ()) -> dict[str, Node]:
        if not isinstance(node, MappingNode):
            wanted = f" with keys {', '.join(known)}" if known else ""
            raise self.error(node, key, f"expected a mapping{wanted}, got {describe_node(node)}")
        values: dict[str, Node] = {}
        for name_node, value in node.value:
            name = self.string(name_node, key)
            if name in values:
                raise self.error(name_node, f"{key}.{name}", "given twice")
            if known is not None and name not in known:
                raise self.error(name_node, f"{key}.{name}", f"unknown key (expected one of: {', '.join(known)})")
            values[name] = value
        for name in required:
            if name not in values:
                raise self.error(node, f"{key}.{name}", "missing (required)")
        return values

    def error(self, node: Node, key: str, problem: str) -> RoutingError:
        return RoutingError(f"{self.source}:{node.start_mark.line + 1}: {key}: {problem}")
