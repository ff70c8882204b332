"""Reading a scenario file: YAML → ``Scenario``, with every problem reported at its line.

The file is composed into YAML nodes (``yaml.compose``) rather than loaded, so each
value keeps its position: an error reads ``annual.yml:23: timeline[2].fault.kind:
unknown fault kind 'isolat'; choose one of: ...``. The reader does not stop at the
first problem: each timeline entry, expectation and participant is checked on its
own and all problems are raised together in one ``ScenarioError``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from monitor.yaml_nodes import SAFE_LOADER, describe_node
from drills.scenario import (ClearInject, Delay, Distribution, Expectation, ExpectationKind, FaultInject,
                             IdsEventInject, Inject, MessageInject, Mode, Participant, ReportInject, Role, Scenario,
                             Scoring, Window, check_template)
from monitor.japan_time import JST
from simnet.faults import FaultError, parse_kind, validate_params

T = TypeVar("T")
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_ID = re.compile(r"[A-Za-z0-9_.-]{1,60}")
_STEP = re.compile(r"初報|終報|第([0-9０-９]+)報")
ACTIONS = ("fault", "clear", "report", "message", "ids_event")


@dataclasses.dataclass(frozen=True)
class ScenarioProblem:
    source: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.key}: {self.message}"


class ScenarioError(ValueError):
    def __init__(self, problems: list[ScenarioProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class _Skip(Exception):
    """The current item has a problem (already recorded): go on with the next one."""


def load_scenario(path: Path | str) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([ScenarioProblem(str(path), 0, "file", f"cannot read ({exc.strerror})")]) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError([ScenarioProblem(str(path), 0, "file", f"not UTF-8 text (byte {exc.start})")]) from None
    return parse_scenario(text, str(path), name=path.stem, path=path)


def parse_scenario(text: str, source: str = "<string>", *, name: str = "scenario",
                   path: Path | None = None) -> Scenario:
    try:
        root = yaml.compose(text, Loader=SAFE_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = ScenarioProblem(source, mark.line + 1 if mark else 0, "file",
                                  f"not valid YAML: {exc.problem or exc.context}")
        raise ScenarioError([problem]) from None
    except yaml.YAMLError as exc:  # a character YAML does not allow (ReaderError has no mark)
        raise ScenarioError([ScenarioProblem(source, 0, "file", f"not valid YAML: {str(exc).splitlines()[0]}")]) from None
    except RecursionError:
        raise ScenarioError([ScenarioProblem(source, 0, "file", "not valid YAML: nested too deeply")]) from None
    reader = _Reader(source)
    if root is None:
        reader.problems.append(ScenarioProblem(source, 1, "file", "empty: expected a mapping with title, window, "
                                                                 "timeline"))
        raise ScenarioError(reader.problems)
    scenario = reader.scenario(root, name, path)
    if reader.problems or scenario is None:
        raise ScenarioError(reader.problems)
    return scenario


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[ScenarioProblem] = []

    # --- sections ---------------------------------------------------------------------------------------------

    def scenario(self, root: Node, name: str, path: Path | None) -> Scenario | None:
        try:
            top = self.mapping(root, "scenario", ("title", "description", "mode", "window", "scope", "participants",
                                                  "timeline", "expect", "scoring"),
                               required=("title", "window", "timeline"))
        except _Skip:
            return None
        fields: dict[str, Any] = {"mode": Mode.LIVE}
        with self.item():
            fields["title"] = self.string(top["title"], "title")
        if "description" in top:
            with self.item():
                fields["description"] = self.string(top["description"], "description")
        if "mode" in top:
            with self.item():
                fields["mode"] = self.choice(top["mode"], "mode", Mode)
        with self.item():
            fields["window"] = self.window(top["window"])
        if "scope" in top:
            with self.item():
                fields["scope"] = self.scope(top["scope"])
        if "participants" in top:
            fields["participants"] = tuple(self.each(top["participants"], "participants", self.participant))
        timeline = tuple(sorted(self.each(top["timeline"], "timeline", self.inject), key=lambda i: i.at))
        timeline = self.check_timeline(timeline)
        expectations = tuple(self.each(top["expect"], "expect", self.expectation)) if "expect" in top else ()
        self.check_references(timeline, expectations)
        if "scoring" in top:
            with self.item():
                fields["scoring"] = self.scoring(top["scoring"])
        if self.problems:
            return None
        return Scenario(name=name, timeline=timeline, expectations=expectations, source=path, **fields)

    def window(self, node: Node) -> Window:
        values = self.mapping(node, "window", ("start", "end"), required=("start", "end"))
        start, end = self.datetime(values["start"], "window.start"), self.datetime(values["end"], "window.end")
        if end <= start:
            raise self.error(values["end"], "window.end", "must be after window.start")
        return Window(start, end)

    def scope(self, node: Node) -> tuple[str, ...]:
        if isinstance(node, ScalarNode) and node.value == "all":
            return ()
        codes = []
        for i, item in enumerate(self.sequence(node, "scope", "'all' or a list of prefecture JIS codes")):
            code = self.string(item, f"scope[{i}]")
            if not (len(code) == 2 and code.isdigit() and 1 <= int(code) <= 47):
                raise self.error(item, f"scope[{i}]", f"expected a prefecture JIS code '01'..'47', got {code!r}")
            codes.append(code)
        return tuple(codes)

    def participant(self, node: Node, key: str) -> Participant:
        values = self.mapping(node, key, ("role", "name", "delay", "no_show"), required=("role",))
        role = self.choice(values["role"], f"{key}.role", Role)
        name = self.string(values["name"], f"{key}.name") if "name" in values else role.value
        delay = self.delay(values["delay"], f"{key}.delay") if "delay" in values else Delay()
        no_show = self.number(values["no_show"], f"{key}.no_show", 0.0, 1.0) if "no_show" in values else 0.0
        return Participant(role, name, delay, no_show)

    def delay(self, node: Node, key: str) -> Delay:
        values = self.mapping(node, key, ("distribution", "median", "sigma", "low", "high"),
                              required=("distribution",))
        dist = self.choice(values["distribution"], f"{key}.distribution", Distribution)
        needs = {Distribution.UNIFORM: ("low", "high"), Distribution.LOGNORMAL: ("median",),
                 Distribution.FIXED: ("median",), Distribution.EXPONENTIAL: ("median",)}[dist]
        for name in needs:
            if name not in values:
                raise self.error(node, f"{key}.{name}", f"missing (required for {dist.value})")
        got = {n: self.duration(values[n], f"{key}.{n}") for n in ("median", "low", "high") if n in values}
        if "sigma" in values:
            got["sigma"] = self.number(values["sigma"], f"{key}.sigma", 0.0, 5.0)
        if dist is Distribution.UNIFORM and got["high"] < got["low"]:
            raise self.error(values["high"], f"{key}.high", "must not be below low")
        if dist is not Distribution.UNIFORM and got["median"] <= 0 and dist is not Distribution.FIXED:
            raise self.error(values["median"], f"{key}.median", "must be more than 0")
        return Delay(dist, **got)

    def inject(self, node: Node, key: str) -> Inject:
        values = self.mapping(node, key, ("at", "id", *ACTIONS), required=("at",))
        at = self.attempt(lambda: self.duration(values["at"], f"{key}.at"))  # and go on to check the action too
        inject_id = self.identifier(values["id"], f"{key}.id") if "id" in values else key.replace("[", "-")[:-1]
        given = [a for a in ACTIONS if a in values]
        if len(given) != 1:
            raise self.error(node, key, f"expected exactly one of {', '.join(ACTIONS)}, got "
                                        f"{', '.join(given) or 'none'}")
        kind = given[0]
        action = getattr(self, f"inject_{kind}")(values[kind], f"{key}.{kind}")
        if at is None:
            raise _Skip()
        return Inject(inject_id, at, action, node.start_mark.line + 1)

    def inject_fault(self, node: Node, key: str) -> FaultInject:
        values = self.mapping(node, key, ("kind", "target", "params"), required=("kind", "target"))
        try:
            kind = parse_kind(self.string(values["kind"], f"{key}.kind"))
        except FaultError as exc:
            raise self.error(values["kind"], f"{key}.kind", str(exc)) from None
        params = self.plain(values["params"]) if "params" in values else {}
        if not isinstance(params, dict):
            raise self.error(values["params"], f"{key}.params", "expected a mapping of parameter names to values")
        try:
            params = validate_params(kind, params)
        except FaultError as exc:
            raise self.error(values.get("params", node), f"{key}.params", str(exc)) from None
        return FaultInject(kind, self.string(values["target"], f"{key}.target"), params)

    def inject_clear(self, node: Node, key: str) -> ClearInject:
        return ClearInject(self.identifier(node, key))

    def inject_report(self, node: Node, key: str) -> ReportInject:
        values = self.mapping(node, key, ("step", "body"), required=("step", "body"))
        step = self.string(values["step"], f"{key}.step")
        match = _STEP.fullmatch(step)
        if match is None:
            raise self.error(values["step"], f"{key}.step", f"expected 初報, 第N報 or 終報, got {step!r}")
        body = self.string(values["body"], f"{key}.body")
        problem = check_template(body)
        if problem:
            raise self.error(values["body"], f"{key}.body", problem)
        sequence = 1 if step == "初報" else 0 if step == "終報" else int(match.group(1))  # 終報: numbered later
        return ReportInject(sequence, step == "終報", body)

    def inject_message(self, node: Node, key: str) -> MessageInject:
        values = self.mapping(node, key, ("to", "text"), required=("to", "text"))
        return MessageInject(self.choice(values["to"], f"{key}.to", Role), self.string(values["text"], f"{key}.text"))

    def inject_ids_event(self, node: Node, key: str) -> IdsEventInject:
        record = self.plain(node)
        if not isinstance(record, dict) or not record:
            raise self.error(node, key, "expected a mapping (the event's fields)")
        return IdsEventInject(record)

    def expectation(self, node: Node, key: str) -> Expectation:
        values = self.mapping(node, key, ("id", "confirm", "action", "by", "tier", "within", "after", "min_rate",
                                          "points"), required=("within",))
        if ("confirm" in values) == ("action" in values):
            raise self.error(node, key, "expected exactly one of confirm (a report inject id) or action (a name)")
        common: dict[str, Any] = {"within": self.duration(values["within"], f"{key}.within"),
                                  "line": node.start_mark.line + 1}
        if "points" in values:
            common["points"] = self.number(values["points"], f"{key}.points", 0.0, 1000.0)
        if "confirm" in values:
            report = self.identifier(values["confirm"], f"{key}.confirm")
            tier = self.choice(values["tier"], f"{key}.tier", Role) if "tier" in values else None
            if tier not in (None, Role.PREFECTURE, Role.MUNICIPALITY):
                raise self.error(values["tier"], f"{key}.tier", "expected prefecture or municipality")
            rate = self.number(values["min_rate"], f"{key}.min_rate", 0.0, 1.0) if "min_rate" in values else 1.0
            after = self.identifier(values["after"], f"{key}.after") if "after" in values else report
            exp_id = self.identifier(values["id"], f"{key}.id") if "id" in values else f"confirm-{report}-{tier}"
            return Expectation(exp_id, ExpectationKind.CONFIRM, after=after, report=report, tier=tier,
                               min_rate=rate, **common)
        for name in ("after", "by"):
            if name not in values:
                raise self.error(node, f"{key}.{name}", "missing (required for an action)")
        action = self.identifier(values["action"], f"{key}.action")
        return Expectation(self.identifier(values["id"], f"{key}.id") if "id" in values else action,
                           ExpectationKind.ACTION, after=self.identifier(values["after"], f"{key}.after"),
                           action=action, by=self.choice(values["by"], f"{key}.by", Role), **common)

    def scoring(self, node: Node) -> Scoring:
        values = self.mapping(node, "scoring", ("pass_mark", "straggler_after"))
        got: dict[str, float] = {}
        if "pass_mark" in values:
            got["pass_mark"] = self.number(values["pass_mark"], "scoring.pass_mark", 0.0, 100.0)
        if "straggler_after" in values:
            got["straggler_after"] = self.duration(values["straggler_after"], "scoring.straggler_after")
        return Scoring(**got)

    # --- whole-scenario checks --------------------------------------------------------------------------------

    def check_timeline(self, timeline: tuple[Inject, ...]) -> tuple[Inject, ...]:
        """Unique ids; clears name an earlier fault; reports in order 初報, 第2報, ..., 終報. Returns the
        timeline with the 終報 numbered (it follows the last report before it)."""
        seen: dict[str, Inject] = {}
        checked = []
        previous = 0
        for inject in timeline:
            if inject.id in seen:
                self.at_line(inject.line, f"timeline.{inject.id}", f"id used twice (first at line "
                                                                   f"{seen[inject.id].line})")
            seen.setdefault(inject.id, inject)
            action = inject.action
            if isinstance(action, ClearInject):
                cleared = seen.get(action.fault)
                if cleared is None or not isinstance(cleared.action, FaultInject):
                    self.at_line(inject.line, f"timeline.{inject.id}.clear",
                                 f"expected the id of an earlier fault inject, got {action.fault!r}")
            if isinstance(action, ReportInject):
                if previous < 0:
                    self.at_line(inject.line, f"timeline.{inject.id}.report", "no report may follow the 終報")
                elif action.final:
                    action = dataclasses.replace(action, sequence=previous + 1)
                    inject = dataclasses.replace(inject, action=action)
                    if previous == 0:
                        self.at_line(inject.line, f"timeline.{inject.id}.report", "expected 初報 before the 終報")
                elif action.sequence != previous + 1:
                    wanted = "初報" if previous == 0 else f"第{previous + 1}報"
                    self.at_line(inject.line, f"timeline.{inject.id}.report",
                                 f"expected {wanted} here (reports go 初報, 第2報, ..., 終報), got {action.label}")
                previous = -1 if action.final else action.sequence
            checked.append(inject)
        return tuple(checked)

    def check_references(self, timeline: tuple[Inject, ...], expectations: tuple[Expectation, ...]) -> None:
        injects = {i.id: i for i in timeline}
        ids = {e.id for e in expectations}
        for e in expectations:
            key = f"expect.{e.id}"
            if e.kind is ExpectationKind.CONFIRM and not isinstance(getattr(injects.get(e.report), "action", None),
                                                                    ReportInject):
                self.at_line(e.line, f"{key}.confirm", f"expected the id of a report inject, got {e.report!r}")
            if e.after not in injects and e.after not in ids:
                self.at_line(e.line, f"{key}.after", f"expected the id of an inject or expectation, got {e.after!r}")
            if e.after == e.id:
                self.at_line(e.line, f"{key}.after", "an expectation cannot count from itself")
        if len(ids) != len(expectations):
            twice = sorted({e.id for e in expectations if sum(x.id == e.id for x in expectations) > 1})
            self.at_line(expectations[0].line, "expect", f"ids used twice: {', '.join(twice)}")

    # --- values -----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def item(self) -> Iterator[None]:
        try:
            yield
        except _Skip:
            pass

    def attempt(self, read: Callable[[], T]) -> T | None:
        """The value, or None when it has a problem (recorded)."""
        try:
            return read()
        except _Skip:
            return None

    def each(self, node: Node, key: str, read: Callable[[Node, str], T]) -> list[T]:
        found = []
        try:
            items = self.sequence(node, key, "a list")
        except _Skip:
            return []
        for i, item in enumerate(items):
            with self.item():
                found.append(read(item, f"{key}[{i}]"))
        return found

    def error(self, node: Node, key: str, message: str) -> _Skip:
        self.at_line(node.start_mark.line + 1, key, message)
        return _Skip()

    def at_line(self, line: int, key: str, message: str) -> None:
        self.problems.append(ScenarioProblem(self.source, line, key, message))

    def mapping(self, node: Node, key: str, known: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, Node]:
        if not isinstance(node, MappingNode):
            raise self.error(node, key, f"expected a mapping with keys {', '.join(known)}, got {describe_node(node)}")
        values: dict[str, Node] = {}
        for name_node, value in node.value:
            name = str(name_node.value)
            if name in values:
                raise self.error(name_node, f"{key}.{name}", "given twice")
            if name not in known:
                raise self.error(name_node, f"{key}.{name}", f"unknown key (expected one of: {', '.join(known)})")
            values[name] = value
        missing = [name for name in required if name not in values]
        if missing:
            raise self.error(node, f"{key}.{missing[0]}", "missing (required)")
        return values

    def sequence(self, node: Node, key: str, wanted: str) -> list[Node]:
        if not isinstance(node, SequenceNode):
            raise self.error(node, key, f"expected {wanted}, got {describe_node(node)}")
        return list(node.value)

    def string(self, node: Node, key: str) -> str:
        if not isinstance(node, ScalarNode) or node.tag.endswith(":null") or not str(node.value).strip():
            raise self.error(node, key, f"expected text, got {describe_node(node)}")
        return str(node.value)

    def identifier(self, node: Node, key: str) -> str:
        value = self.string(node, key)
        if not _ID.fullmatch(value):
            raise self.error(node, key, f"expected an id of letters, digits, '_', '.', '-', got {value!r}")
        return value

    def choice(self, node: Node, key: str, enum: type[Any]) -> Any:
        value = self.string(node, key)
        try:
            return enum(value)
        except ValueError:
            raise self.error(node, key, f"expected one of {', '.join(m.value for m in enum)}, got {value!r}") from None

    def number(self, node: Node, key: str, low: float, high: float) -> float:
        try:
            value = float(self.string(node, key))
        except ValueError:
            raise self.error(node, key, f"expected a number, got {describe_node(node)}") from None
        if not low <= value <= high:
            raise self.error(node, key, f"expected a number from {low:g} to {high:g}, got {value:g}")
        return value

    def duration(self, node: Node, key: str) -> float:
        """Seconds, or a duration like 90s, 15m, 1h30m."""
        text = self.string(node, key).replace(" ", "")
        if text.isdigit():
            return float(text)
        match = _DURATION.fullmatch(text)
        if not text or match is None:
            raise self.error(node, key, f"expected a duration such as 90s, 15m or 1h30m, got {text!r}")
        hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return float(hours * 3600 + minutes * 60 + seconds)

    def datetime(self, node: Node, key: str) -> dt.datetime:
        text = self.string(node, key)
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise self.error(node, key, f"expected a date and time like 2021-12-08T09:30+09:00, got {text!r}") \
                from None
        return value if value.tzinfo else value.replace(tzinfo=JST)

    def plain(self, node: Node) -> Any:
        """A node as plain Python values (for free-form records and parameters)."""
        return yaml.SafeLoader("").construct_document(node)


BUILTIN = Path(__file__).parent / "scenarios"


def builtin_scenarios() -> dict[str, Path]:
    """The scenarios shipped with Jukimon, by name (the file's stem)."""
    return {path.stem: path for path in sorted(BUILTIN.glob("*.yml"))}


def find_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a scenario file."""
    builtin = builtin_scenarios()
    if name_or_path in builtin:
        return load_scenario(builtin[name_or_path])
    if not Path(name_or_path).exists():
        problem = ScenarioProblem(name_or_path, 0, "file", f"no such file and no built-in scenario of that name "
                                                          f"(built-in: {', '.join(builtin)})")
        raise ScenarioError([problem])
    return load_scenario(name_or_path)
