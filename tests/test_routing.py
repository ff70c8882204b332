"""The routing file: the example parses into the tree the NOC expects, alarms walk it as in Alertmanager, and
every mistake in the file is reported with its line, its key and what was expected."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from alerting.routing import RoutingError, default_routing, load_routing, parse_routing
from tests.test_alerting_service import EXAMPLE


def route_ids(labels: dict[str, str], text: str | None = None) -> list[str]:
    routing = parse_routing(text) if text is not None else load_routing(EXAMPLE)
    return [r.id for r in routing.routes_for(labels)]


def test_the_example_file() -> None:
    routing = load_routing(EXAMPLE)
    assert {name: r.type for name, r in routing.receivers.items()} == {
        "noc-console": "console", "noc-mail": "email", "noc-lead-mail": "email", "system-management-mail": "email",
        "national-oncall": "webhook", "alarm-bus": "mqtt"}
    assert routing.receivers["system-management-mail"].to == ("sysmgmt@jlis.example.jp",
                                                              "sysmgmt-deputy@jlis.example.jp")
    assert routing.receivers["alarm-bus"].topic == "jukimon/alarms"
    noc = routing.policies["noc"]
    assert [(t.name, t.wait) for t in noc.tiers] == [("noc-operator", 600), ("noc-lead", 900),
                                                     ("system-management", 1800), ("national-oncall", None)]
    assert noc.wait(3) == noc.repeat_interval == 1800
    [rule] = routing.inhibit_rules
    assert [str(m) for m in rule.source] == ['kind="root_cause"', 'role="prefecture_unit"'] and rule.equal == (
        "prefecture",)


@pytest.mark.parametrize(("labels", "expected"), [
    ({"severity": "critical", "kind": "root_cause", "tier": "national", "site": "national"},
     ["bus", "national-centre"]),
    ({"severity": "error", "kind": "device_down", "tier": "municipality", "prefecture": "01"}, ["bus", "urgent"]),
    ({"severity": "error", "kind": "lifecycle", "tier": "municipality"}, ["bus", "lifecycle"]),
    ({"severity": "warning", "kind": "degraded", "tier": "aggregation"}, ["bus", "console"]),
])
def test_alarms_walk_the_tree(labels: dict[str, str], expected: list[str]) -> None:
    assert route_ids(labels) == expected


def test_children_inherit_what_they_do_not_set() -> None:
    routing = load_routing(EXAMPLE)
    lifecycle, urgent = routing.routes_by_id["lifecycle"], routing.routes_by_id["urgent"]
    assert (lifecycle.group_wait, lifecycle.group_interval, lifecycle.repeat_interval) == (600, 300, 86400)
    assert (urgent.group_by, urgent.group_wait, urgent.escalation) == (("prefecture", "kind"), 30, "noc")
    national = routing.routes_by_id["national-centre"]
    assert national.group_key({"site": "aggregation", "kind": "root_cause", "prefecture": ""}) == (
        "national-centre{site=aggregation,kind=root_cause}")


def test_the_root_takes_what_no_route_matches() -> None:
    text = """
        receivers: {noc-console: {type: console}, noc-mail: {type: email, to: [noc@jlis.example.jp]}}
        route:
          receivers: [noc-console]
          routes:
            - {matchers: ["prefecture!=01", 'role=~"cs|cs_recovery"'], receivers: [noc-mail]}
        """
    assert route_ids({"prefecture": "47", "role": "cs"}, textwrap.dedent(text)) == ["route.routes[0]"]
    assert route_ids({"prefecture": "01", "role": "cs"}, textwrap.dedent(text)) == ["route"]
    assert route_ids({"prefecture": "47", "role": "cs_recovery_x"}, textwrap.dedent(text)) == ["route"]


def test_the_built_in_tree() -> None:
    routing = default_routing()
    for severity in ("emergency", "critical", "error"):
        [route] = routing.routes_for({"severity": severity})
        assert route.receivers == ("noc-console", "noc-mail")
    for severity in ("warning", "notice"):
        [route] = routing.routes_for({"severity": severity})
        assert route.receivers == ("noc-console",)


BASE = """\
receivers:
  noc-console: {type: console}
route:
  receivers: [noc-console]
"""
ROUTE = "route: {receivers: []}\n"


@pytest.mark.parametrize(("text", "line", "message"), [
    (BASE + "  routes:\n    - receivers: [noc-consol]\n", 6,
     "route.routes[0].receivers[0]: unknown receiver 'noc-consol' (defined: noc-console)"),
    (BASE + "  group_wait: 30\n", 5, "route.group_wait: expected a duration with its unit such as 30s, 10m, 4h, got 30"),
    (BASE + "  group_wiat: 30s\n", 5, "route.group_wiat: unknown key (expected one of: name, matchers, min_severity"),
    (BASE + "  routes:\n    - matchers: ['site=~\"muni-(01\"']\n", 6,
     "route.routes[0].matchers[0]: expected a matcher label=value, label!=value, label=~regex or label!~regex"),
    (BASE + "  routes:\n    - min_severity: major\n", 6,
     "route.routes[0].min_severity: expected one of emergency, alert, critical, error, warning"),
    (BASE + "  routes:\n    - escalation: noc\n", 6, "route.routes[0].escalation: unknown escalation policy 'noc'"),
    (BASE + "  matchers: [kind=root_cause]\n", 5, "route.matchers: the root route takes every alarm"),
    (BASE + "  routes: {receivers: [noc-console]}\n", 5, "route.routes: expected a list, got a mapping"),
    (BASE + "  routes:\n    - {receivers: [noc-console], continue: yes please}\n", 6,
     "route.routes[0].continue: expected true or false, got 'yes please'"),
    (BASE + "  group_by: [site]\n  group_by: [kind]\n", 6, "route.group_by: given twice"),
    ("receivers: [noc-console]\nroute: {receivers: []}\n", 1, "receivers: expected a mapping, got a list"),
    ("receivers:\n  noc-console: {type: console}\n", 1, "routing.route: missing (required)"),
    ("receivers:\n  noc-mail: {type: email, to: [noc]}\n" + BASE[BASE.index("route:"):], 2,
     "receivers.noc-mail.to[0]: expected a mail address, got 'noc'"),
    ("receivers:\n  pager:\n    type: sms\n" + ROUTE, 3,
     "receivers.pager.type: unknown receiver type 'sms' (expected one of: email, webhook, mqtt, console)"),
    ("receivers:\n  hook: {type: webhook, url: ftp://x}\n" + ROUTE, 2, "receivers.hook.url: expected an http:// or https://"),
    ("receivers:\n  hook: {type: webhook}\n" + ROUTE, 2, "receivers.hook.url: missing (required)"),
    (BASE + "escalation_policies:\n  noc:\n    tiers:\n      - {name: a, receivers: [noc-console]}\n"
            "      - {name: b, receivers: [noc-console]}\n", 8, "escalation_policies.noc.tiers[0].wait: missing"),
    (BASE + "escalation_policies:\n  noc:\n    tiers:\n      - {name: a, receivers: [noc-console], wait: 5m}\n", 8,
     "escalation_policies.noc.tiers[0].wait: the last tier has no next tier to wait for"),
    (BASE + "inhibit_rules:\n  - {source: [], target: [kind=degraded]}\n", 6,
     "inhibit_rules[0].source: expected at least one matcher"),
    (BASE + "  routes:\n    - receivers: [noc-console\n", 7, "not valid YAML"),
])
def test_errors_name_the_line_the_key_and_what_was_expected(text: str, line: int, message: str) -> None:
    with pytest.raises(RoutingError) as caught:
        parse_routing(text, "routing.yml")
    assert str(caught.value).startswith(f"routing.yml:{line}: ")
    assert message in str(caught.value)


def test_a_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "routing.yml"
    path.write_text(BASE + "  group_interval: 0s\n", encoding="utf-8")
    with pytest.raises(RoutingError, match=rf"^{path}:5: route.group_interval: expected a duration > 0$"):
        load_routing(path)
    with pytest.raises(RoutingError, match="cannot read"):
        load_routing(tmp_path / "missing.yml")
