"""What mutes an alarm: label matchers, silences (by hand) and inhibition (by rule).

A muted alarm is still recorded and shown — with who or what muted it — but no
receiver is told about it. Two things mute:

- a *silence* (サイレンス): matchers over the alarm's labels, a start and an end,
  an author and a reason. It is active between start and end and expires by
  itself; expiring it by hand sets its end to now.
- an *inhibition* (抑制): while a source alarm fires, targets that match a rule are
  muted. Beside the configured rules (source matchers, target matchers, labels that
  must be equal) one rule is built in: a root cause (``root_cause``,
  ``site_unreachable``) inhibits the alarms of the subjects it made unreachable and
  of its own site — the operator gets one alarm per root cause, not 300.

Matchers are Alertmanager's: ``label=value``, ``label!=value``, ``label=~regex``,
``label!~regex`` (regexes match the whole value; a missing label is the empty string).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, replace
from typing import Iterable, Mapping

from alerting.model import Alarm, AlarmStatus

_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*")
ROOT_CAUSE_KINDS = frozenset({"root_cause", "site_unreachable"})


class MatcherError(ValueError):
    """A matcher that cannot be parsed or whose regex does not compile."""


@dataclass(frozen=True, slots=True)
class Matcher:
    label: str
    op: str  # "=", "!=", "=~", "!~"
    value: str

    def __post_init__(self) -> None:
        if self.op not in ("=", "!=", "=~", "!~"):
            raise MatcherError(f"{self}: 演算子は =, !=, =~, !~ のいずれかです")
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise MatcherError(f"{self}: 正規表現が不正です ({exc})") from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.label, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = re.fullmatch(self.value, value) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.label}{self.op}{json.dumps(self.value, ensure_ascii=False)}"


def parse_matcher(text: str) -> Matcher:
    """``severity=critical``, ``site=~"muni-01-.*"`` (the value may be double-quoted)."""
    found = _MATCHER.fullmatch(text)
    if found is None:
        raise MatcherError(f"{text!r}: 「ラベル 演算子 値」の形で書いてください (例: severity=critical, site=~\"muni-01-.*\")")
    label, op, value = found.groups()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise MatcherError(f"{text!r}: 引用符で囲んだ値が不正です") from None
    return Matcher(label, op, value)


def matchers_of(items: Iterable[Matcher | str]) -> tuple[Matcher, ...]:
    return tuple(m if isinstance(m, Matcher) else parse_matcher(m) for m in items)


def match_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


# --- silences ---------------------------------------------------------------------------------------------------


class SilenceError(ValueError):
    """A silence that cannot be created or changed; the message says which field and why (Japanese)."""


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    start: float
    end: float
    author: str
    reason: str
    created: float
    expired_by: str | None = None  # who ended it early, if someone did

    def state(self, now: float) -> str:
        """``pending`` before start, ``active`` between start and end, ``expired`` after."""
        if now < self.start:
            return "pending"
        return "active" if now < self.end else "expired"

    def silences(self, labels: Mapping[str, str], now: float) -> bool:
        return self.state(now) == "active" and match_all(self.matchers, labels)


class SilenceBook:
    """Every silence, active or not; expired ones stay for the record."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self.silences: dict[str, Silence] = {s.id: s for s in silences}

    def add(self, matchers: Iterable[Matcher | str], start: float, end: float, author: str, reason: str,
            now: float) -> Silence:
        try:
            parsed = matchers_of(matchers)
        except MatcherError as exc:
            raise SilenceError(f"matchers: {exc}") from None
        if not parsed:
            raise SilenceError("matchers: 少なくとも1つの条件が必要です")
        if all(m.matches({}) for m in parsed):
            # A silence that matches an alarm without any label would silence everything.
            raise SilenceError("matchers: 空の値にも一致する条件だけでは全アラームが対象になります; 値を限定してください")
        if end <= start:
            raise SilenceError("end: 終了時刻は開始時刻より後にしてください")
        if end <= now:
            raise SilenceError("end: 終了時刻が過去です")
        if not author.strip():
            raise SilenceError("author: 作成者を入力してください")
        if not reason.strip():
            raise SilenceError("reason: 理由を入力してください")
        silence = Silence(uuid.uuid4().hex[:12], parsed, start, end, author.strip(), reason.strip(), now)
        self.silences[silence.id] = silence
        return silence

    def expire(self, silence_id: str, user: str, now: float) -> Silence:
        silence = self.silences.get(silence_id)
        if silence is None:
            raise SilenceError(f"id: サイレンス {silence_id} はありません")
        if silence.state(now) == "expired":
            raise SilenceError(f"id: サイレンス {silence_id} は既に終了しています")
        expired = replace(silence, start=min(silence.start, now), end=now, expired_by=user)
        self.silences[silence_id] = expired
        return expired

    def active(self, now: float) -> list[Silence]:
        return [s for s in self.silences.values() if s.state(now) == "active"]

    def silencing(self, labels: Mapping[str, str], now: float) -> tuple[str, ...]:
        """Ids of the active silences that match these labels."""
        return tuple(s.id for s in self.silences.values() if s.silences(labels, now))


# --- inhibition -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """While an alarm matching ``source`` fires, alarms matching ``target`` with the same ``equal`` labels are muted."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    def inhibits(self, source: Alarm, target: Alarm) -> bool:
        return (match_all(self.source, source.labels) and match_all(self.target, target.labels)
                and all(source.labels.get(label, "") == target.labels.get(label, "") for label in self.equal))


def inhibitors(alarms: Iterable[Alarm], rules: Iterable[InhibitRule]) -> dict[str, str]:
    """Fingerprint of each inhibited firing alarm → the fingerprint of one firing alarm that inhibits it.

    Built in: a root cause (``ROOT_CAUSE_KINDS``) mutes the subjects it suppresses and its own site, but not
    another root cause. Rules add theirs. The inhibitor named is the first in ``alarms``' order.
    Indexed, not pairwise: in a storm thousands of alarms fire beside a hundred root causes, and this runs
    at every tick.
    """
    rules = tuple(rules)
    firing = [a for a in alarms if a.status in (AlarmStatus.FIRING, AlarmStatus.ACKNOWLEDGED)]
    Source = tuple[int, Alarm]  # its place in ``firing``: the earliest inhibitor wins
    by_subject: dict[str, Source] = {}  # a root cause's suppressed subjects
    by_site: dict[str, Source] = {}  # a root cause's own site
    by_rule: list[dict[tuple[str, ...], list[Source]]] = [{} for _ in rules]  # the rule's ``equal`` labels
    for place, alarm in enumerate(firing):
        if alarm.labels.get("kind") in ROOT_CAUSE_KINDS:
            for subject in alarm.suppressed:
                by_subject.setdefault(subject, (place, alarm))
            if site := alarm.labels.get("site"):
                by_site.setdefault(site, (place, alarm))
        for rule, sources in zip(rules, by_rule, strict=True):
            if match_all(rule.source, alarm.labels):
                sources.setdefault(_equal_key(rule, alarm), []).append((place, alarm))
    found: dict[str, str] = {}
    for target in firing:
        candidates: list[Source | None] = []
        if target.labels.get("kind") not in ROOT_CAUSE_KINDS:
            candidates += [by_subject.get(target.labels.get("subject", "")), by_site.get(target.labels.get("site", ""))]
        for rule, sources in zip(rules, by_rule, strict=True):
            if match_all(rule.target, target.labels):
                others = (s for s in sources.get(_equal_key(rule, target), ()) if s[1] is not target)
                candidates.append(next(others, None))
        present = [c for c in candidates if c is not None]
        if present:
            found[target.fingerprint] = min(present, key=lambda source: source[0])[1].fingerprint
    return found


def _equal_key(rule: InhibitRule, alarm: Alarm) -> tuple[str, ...]:
    return tuple(alarm.labels.get(label, "") for label in rule.equal)


@dataclass(frozen=True, slots=True)
class Muting:
    """Why an alarm is not notified (besides ``Alarm.in_maintenance``): for the console's flag and the timeline."""

    silenced_by: tuple[str, ...] = ()
    inhibited_by: str | None = None

    def __bool__(self) -> bool:
        return bool(self.silenced_by or self.inhibited_by)
