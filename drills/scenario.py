"""A drill scenario (訓練シナリオ) as data: window, scope, participants, timeline of injects, expected actions, scoring.

The loader (``drills.loader``) builds these from YAML and has already checked
everything that can be checked without a network: fault kinds and parameters,
report order (初報 → 第N報 → 終報), references between injects and expectations,
body templates. Times inside a scenario are offsets in seconds from the drill's start.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from simnet.faults import FaultKind


class Mode(StrEnum):
    LIVE = "live"  # fault injects go into the simulated network
    TABLETOP = "tabletop"  # 机上訓練: messages and expected actions only, no faults


class Role(StrEnum):
    """Who takes part. Prefectures and municipalities are the cascade's recipients; the NOC acts."""

    NATIONAL = "national"  # 全国センター: issues the reports
    NOC = "noc"  # ネットワーク監視: detects, opens the incident, decides
    PREFECTURE = "prefecture"  # 都道府県住基ネット担当者
    MUNICIPALITY = "municipality"  # 市区町村住基ネット担当者


class Distribution(StrEnum):
    FIXED = "fixed"  # always ``median``
    UNIFORM = "uniform"  # between ``low`` and ``high``
    EXPONENTIAL = "exponential"  # mean ``median / ln 2``
    LOGNORMAL = "lognormal"  # ``median`` and ``sigma`` (people: most quick, a long tail)


@dataclass(frozen=True)
class Delay:
    """How long a simulated participant takes to act (seconds)."""

    distribution: Distribution = Distribution.LOGNORMAL
    median: float = 300.0
    sigma: float = 0.6
    low: float = 0.0
    high: float = 0.0

    def sample(self, rng: random.Random) -> float:
        if self.distribution is Distribution.FIXED:
            return self.median
        if self.distribution is Distribution.UNIFORM:
            return rng.uniform(self.low, self.high)
        if self.distribution is Distribution.EXPONENTIAL:
            return rng.expovariate(math.log(2) / self.median)
        return rng.lognormvariate(math.log(self.median), self.sigma)


@dataclass(frozen=True)
class Participant:
    role: Role
    name: str
    delay: Delay = Delay()
    no_show: float = 0.0  # probability that one who should act never does (per report or action)


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class FaultInject:
    kind: FaultKind
    target: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClearInject:
    fault: str  # id of the fault inject to clear (復旧)


@dataclass(frozen=True)
class ReportInject:
    """A step of the report cascade; the body is a jinja2 template (see ``render``)."""

    sequence: int  # 1 = 初報, 2.. = 第N報
    final: bool  # 終報
    body: str

    @property
    def label(self) -> str:
        if self.final:
            return "終報"
        return "初報" if self.sequence == 1 else f"第{self.sequence}報"

    def render(self, values: dict[str, Any]) -> str:
        return _TEMPLATES.from_string(self.body).render(values)


@dataclass(frozen=True)
class MessageInject:
    """Free text handed to a role (e.g. a call to the NOC: 「集約センターからウイルス検知の連絡」)."""

    to: Role
    text: str


@dataclass(frozen=True)
class IdsEventInject:
    """A synthetic IDS or operation-pattern event: a plain record on the timeline for now."""

    record: dict[str, Any]


Action = FaultInject | ClearInject | ReportInject | MessageInject | IdsEventInject


@dataclass(frozen=True)
class Inject:
    id: str
    at: float  # seconds after the start
    action: Action
    line: int = 0  # in the scenario file, for messages


class ExpectationKind(StrEnum):
    CONFIRM = "confirm"  # recipients of a report confirm receipt within the deadline
    ACTION = "action"  # someone performs a named action (detect, open_incident, approve_isolation, ...)


@dataclass(frozen=True)
class Expectation:
    id: str
    kind: ExpectationKind
    within: float  # seconds after the reference
    after: str  # id of an inject or of another expectation (whose action) the deadline counts from
    points: float = 10.0
    action: str = ""  # ACTION: its name
    by: Role | None = None  # ACTION: who performs it
    report: str = ""  # CONFIRM: id of the report inject
    tier: Role | None = None  # CONFIRM: prefecture, municipality, or None for both
    min_rate: float = 1.0  # CONFIRM: share of the tier's recipients that must confirm in time
    line: int = 0


@dataclass(frozen=True)
class Scoring:
    pass_mark: float = 80.0  # per cent of the points
    straggler_after: float = 1800.0  # a confirmation later than this after its report (or none) is a straggler


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    mode: Mode
    window: Window
    timeline: tuple[Inject, ...]
    expectations: tuple[Expectation, ...] = ()
    participants: tuple[Participant, ...] = ()
    scope: tuple[str, ...] = ()  # prefecture JIS codes; empty = every prefecture
    description: str = ""
    scoring: Scoring = Scoring()
    source: Path | None = None

    def inject(self, inject_id: str) -> Inject:
        return next(i for i in self.timeline if i.id == inject_id)

    @property
    def duration(self) -> float:
        """How long the drill runs: the window, but never shorter than its last inject or a deadline that
        counts from an inject (the 終報's receipts are awaited even when it goes out near the window's end)."""
        at = {i.id: i.at for i in self.timeline}
        deadlines = [at[e.after] + e.within for e in self.expectations if e.after in at]
        return max([self.window.seconds, *at.values(), *deadlines])

    def faults(self) -> list[Inject]:
        return [i for i in self.timeline if isinstance(i.action, FaultInject)]


# Inject bodies are plain text (mails, the timeline); the console's HTML templates escape them where shown.
_TEMPLATES = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)  # nosec B701
TEMPLATE_VALUES = ("title", "target", "target_name", "started", "now", "scenario")


def check_template(body: str) -> str | None:
    """None if the body is a valid template using only the known values, else what is wrong."""
    try:
        parsed = _TEMPLATES.parse(body)
        unknown = sorted(jinja2.meta.find_undeclared_variables(parsed) - set(TEMPLATE_VALUES))
    except jinja2.TemplateSyntaxError as exc:
        return f"template error on its line {exc.lineno}: {exc.message}"
    except RecursionError:  # jinja2's parser recurses per nesting level of brackets
        return "template nested too deeply"
    if unknown:
        return f"unknown template value(s) {', '.join(unknown)} (known: {', '.join(TEMPLATE_VALUES)})"
    return None

