"""What a notification says: subject and plain-text body from jinja2 templates, in Japanese by default.

``render`` turns a group of alarms into the (subject, body) a ``Notification``
carries; the receivers only move those texts. Every kind (firing, resolved,
escalation, reminder) uses ``templates/notification.txt.j2`` — the kind changes
the intro — with words from the message catalogue and times in JST with the era
year (令和8年(2026年)12月2日).

A drill (訓練) must never be mistaken for a real incident: when every alarm of
the group comes from a drill, the subject starts with 【訓練】 and the body opens
and closes with a drill banner; a drill alarm inside a real group is tagged on
its own line. ``mark_drill`` re-applies the marks at delivery time to any
notification flagged as a drill, whoever wrote its text.

Text templates are not autoescaped (``<`` in a summary stays ``<`` in a mail);
HTML templates (``*.html.j2``) are.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jinja2

from alerting.model import SEVERITY_ORDER, Alarm, Notification
from alerting.notify.catalogue import DEFAULT_LANG, MESSAGES
from alerting.notify.codec import notification_dict
from alerting.notify.jpdate import era_year, jst
from monitor.inventory.generate import load_prefectures

KINDS = ("firing", "resolved", "escalation", "reminder")
MAX_LISTED = 20  # a burst of 50 is one mail, but its body lists the worst 20 and points to the console

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("alerting.notify", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    undefined=jinja2.StrictUndefined,  # a misspelt variable fails the test suite, not a 3 a.m. mail
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


class Translator:
    """The catalogue in one language, as the templates use it: ``t("key", name=value)`` and terms."""

    def __init__(self, lang: str) -> None:
        if lang not in MESSAGES:
            raise ValueError(f"language {lang!r} not in the catalogue (have: {', '.join(MESSAGES)})")
        self.lang = lang
        self._messages = MESSAGES[lang]

    def __call__(self, key: str, **values: Any) -> str:
        return self._messages[key].format(**values)

    def term(self, group: str, value: str) -> str:
        """A coded value (severity, status, condition kind) in words; unknown codes shown as they are."""
        return self._messages.get(f"{group}.{value}", value)

    def time(self, ts: float) -> str:
        when = jst(ts)
        weekday = self("weekdays").split()[when.weekday()]
        return self("date", era=era_year(when.date()), year=when.year, month=when.month, day=when.day,
                    weekday=weekday, time=when.strftime("%H:%M:%S"))

    def label(self, key: str, value: str) -> str:
        """An alarm label as people read it: condition kinds in words, prefecture codes as names."""
        if key == "kind":
            return self.term("condition", value)
        if key == "prefecture":
            for pref in load_prefectures():
                if pref.code == value:
                    return pref.name_ja if self.lang == "ja" else pref.name_en
        return value


def is_drill(alarms: Sequence[Alarm]) -> bool:
    """A notification is a drill notification when every alarm in it is a drill alarm."""
    return bool(alarms) and all(a.drill for a in alarms)


def render(kind: str, alarms: Sequence[Alarm], receiver: str, *, lang: str = DEFAULT_LANG,
           escalation_step: int | None = None) -> tuple[str, str]:
    """Subject and plain-text body of one notification about ``alarms`` to ``receiver``."""
    if kind not in KINDS:
        raise ValueError(f"notification kind {kind!r} is not one of {', '.join(KINDS)}")
    if not alarms:
        raise ValueError("a notification needs at least one alarm")
    if kind == "escalation" and escalation_step is None:
        raise ValueError("an escalation notification needs its escalation_step")
    t = Translator(lang)
    ordered = sorted(alarms, key=_worst_first)
    drill = is_drill(ordered)
    kind_name = t(f"kind.{kind}", step=escalation_step)
    more = t("subject.more", count=len(ordered) - 1) if len(ordered) > 1 else ""
    subject = t("subject", tag=t("drill.tag") if drill else "", kind=kind_name,
                severity=t.term("severity", ordered[0].severity), summary=_one_line(ordered[0].summary), more=more)
    body = _env.get_template("notification.txt.j2").render(
        t=t, kind=kind, alarms=ordered[:MAX_LISTED], unlisted=len(ordered) - MAX_LISTED, count=len(ordered),
        drill=drill, receiver=receiver, step=escalation_step)
    return subject, body


def mark_drill(n: Notification) -> Notification:
    """``n`` with the drill marks guaranteed when it is a drill: 【訓練】 first in the subject, a banner in the body."""
    if not n.drill:
        return n
    tag = MESSAGES[DEFAULT_LANG]["drill.tag"]
    subject = n.subject if n.subject.startswith(tag) else tag + n.subject
    body = n.body if tag in n.body.split("\n", 1)[0] else f"{MESSAGES[DEFAULT_LANG]['drill.banner']}\n\n{n.body}"
    return dataclasses.replace(n, subject=subject, body=body)


def html_body(n: Notification) -> str:
    """The HTML alternative of a mail: the plain body, escaped, under a header that is red for a drill."""
    return _env.get_template("mail.html.j2").render(subject=n.subject, body=n.body, drill=n.drill)


def webhook_payload(n: Notification) -> dict[str, Any]:
    """A JSON body for chat incoming webhooks (Slack, Mattermost, Rocket.Chat: ``text`` is all they need).

    ``jukimon`` carries the notification's identity for non-chat consumers
    (deduplicate on ``id`` across a redelivery); chat tools ignore keys they do not know.
    """
    meta = {k: v for k, v in notification_dict(n).items() if k not in ("subject", "body")}
    return {"text": f"{n.subject}\n\n{n.body}", "jukimon": meta}


def _worst_first(alarm: Alarm) -> tuple[int, float, str]:
    rank = SEVERITY_ORDER.index(alarm.severity) if alarm.severity in SEVERITY_ORDER else len(SEVERITY_ORDER)
    return rank, alarm.started, alarm.fingerprint


def _one_line(text: str) -> str:
    return " ".join(text.split())
