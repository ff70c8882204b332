"""The alarm book (アラーム台帳): alarms born from the monitor's conditions, what operators do to them, their timelines.

One alarm per condition fingerprint. The lifecycle::

    firing ──acknowledge──▶ acknowledged ──┐
       │                                   ├──▶ resolved ──close──▶ closed
       └──────────────────────────────────-┘
         (the condition clears, or an operator resolves it by hand with a reason)

A condition raised again under the fingerprint of a resolved or closed alarm
*reopens* that alarm: it fires again, its acknowledgement is dropped and its
timeline goes on (so the operator sees that it came back). An alarm resolved by
hand while the condition still holds stays resolved until the condition clears
and comes back. A condition raised inside a maintenance window is an alarm like
any other, flagged ``in_maintenance``: recorded and shown, never notified.

Everything that happens to an alarm is appended to its timeline, which exports
as JSON and as Japanese text (times in JST). The book keeps which alarms changed
(``dirty``) for the store.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict
from typing import Any, Iterable

from alerting.model import SEVERITY_ORDER, Alarm, AlarmStatus, TimelineEntry
from alerting.silences import Muting
from monitor.inventory.model import Inventory
from monitor.japan_time import JST
from monitor.logs import fields
from monitor.state.engine import Changes
from monitor.state.model import Condition, ConditionKind

log = logging.getLogger("alerting.alarms")

OPEN_STATUSES = (AlarmStatus.FIRING, AlarmStatus.ACKNOWLEDGED)
STATUS_JA = {AlarmStatus.FIRING: "発生中", AlarmStatus.ACKNOWLEDGED: "確認済み", AlarmStatus.RESOLVED: "解決済み",
             AlarmStatus.CLOSED: "完了"}
ACTION_JA = {"raised": "発生", "updated": "更新", "cleared": "条件解消", "reopened": "再発", "acknowledged": "確認",
             "commented": "コメント", "resolved": "解決", "closed": "完了", "notified": "通知",
             "escalated": "エスカレーション", "silenced": "サイレンス", "unsilenced": "サイレンス解除",
             "inhibited": "抑制", "uninhibited": "抑制解除"}


def severity_rank(severity: str) -> int:
    """0 for the most severe (emergency); unknown severities after all known ones."""
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


class AlarmError(ValueError):
    """An operator action that cannot be done to this alarm; the message says why (Japanese)."""


class UnknownAlarm(AlarmError):
    """No alarm has this fingerprint."""


# Raised by an IDS and resolved by people: the monitor's restart reconciliation leaves them alone.
IDS_KINDS = frozenset({ConditionKind.IDS_TRAFFIC, ConditionKind.IDS_OPERATIONS})


def alarm_labels(condition: Condition, inventory: Inventory) -> dict[str, str]:
    """Labels for routing, grouping, silences and inhibition: the condition's, and where its subject sits."""
    labels = {"kind": condition.kind.value, "subject": condition.subject, "severity": condition.severity,
              "source": "ids" if condition.kind in IDS_KINDS else "monitor"}
    device = inventory.devices.get(condition.subject)
    if device is None and condition.subject in inventory.links:
        device = inventory.devices.get(inventory.links[condition.subject].a)  # a line sits at its downstream end
    site = inventory.sites.get(device.site if device is not None else condition.subject)
    if device is not None:
        labels["role"] = device.role.value
    if site is not None:
        labels["site"] = site.id
        labels["tier"] = site.tier.value
    prefecture = (device.prefecture if device is not None else None) or (site.prefecture if site else None)
    if prefecture:
        labels["prefecture"] = prefecture
    return labels


class AlarmBook:
    """Every alarm by fingerprint (closed ones too: a fingerprint that fires again reopens its alarm)."""

    def __init__(self, inventory: Inventory, alarms: Iterable[Alarm] = ()) -> None:
        self.inventory = inventory
        self.alarms: dict[str, Alarm] = {a.fingerprint: a for a in alarms}
        self.muting: dict[str, Muting] = {}
        self.dirty: set[str] = set()  # changed since the last save

    # --- from the monitor -------------------------------------------------------------------------------------

    def apply(self, changes: Changes, now: float) -> set[str]:
        """One judgement's raised, updated and cleared conditions; returns the fingerprints touched."""
        for condition in changes.raised:
            self.fire(condition, now)
        for condition in changes.updated:
            self.update(condition, now)
        for condition in changes.cleared:
            self.clear(condition.fingerprint, condition.cleared or now)
        return {c.fingerprint for c in (*changes.raised, *changes.updated, *changes.cleared)}

    def fire(self, condition: Condition, now: float) -> Alarm:
        alarm = self.alarms.get(condition.fingerprint)
        if alarm is not None and alarm.status in OPEN_STATUSES:
            return self.update(condition, now)  # the same condition again (e.g. after a restart)
        fresh = Alarm(condition.fingerprint, alarm_labels(condition, self.inventory), condition.summary,
                      condition.severity, condition.started, suppressed=condition.suppressed,
                      suppressed_count=_suppressed_count(condition), in_maintenance=condition.in_maintenance)
        reopened = alarm is not None
        if alarm is not None:
            fresh.timeline = alarm.timeline
        self.alarms[fresh.fingerprint] = fresh
        text = condition.summary + (" (保守中: 通知しません)" if condition.in_maintenance else "")
        self._append(fresh, condition.started, "reopened" if reopened else "raised", "monitor", text,
                     severity=condition.severity)
        log.info("alarm firing", extra=fields(fingerprint=fresh.fingerprint, severity=fresh.severity,
                                              reopened=reopened or None, maintenance=fresh.in_maintenance or None))
        return fresh

    def update(self, condition: Condition, now: float) -> Alarm:
        alarm = self.alarms.get(condition.fingerprint)
        if alarm is None:
            return self.fire(condition, now)
        changed = {name: [old, new] for name, old, new in (
            ("severity", alarm.severity, condition.severity), ("suppressed_count", alarm.suppressed_count,
                                                               _suppressed_count(condition)),
            ("in_maintenance", alarm.in_maintenance, condition.in_maintenance)) if old != new}
        if not changed and alarm.summary == condition.summary and alarm.suppressed == condition.suppressed:
            return alarm
        alarm.summary, alarm.severity = condition.summary, condition.severity
        alarm.labels["severity"] = condition.severity
        alarm.suppressed, alarm.suppressed_count = condition.suppressed, _suppressed_count(condition)
        alarm.in_maintenance = condition.in_maintenance
        self._append(alarm, now, "updated", "monitor", condition.summary, **changed)
        return alarm

    def clear(self, fingerprint: str, at: float) -> Alarm | None:
        """The condition no longer holds: an open alarm is resolved; one resolved by hand just notes it."""
        alarm = self.alarms.get(fingerprint)
        if alarm is None:
            return None
        if alarm.status in OPEN_STATUSES:
            alarm.status, alarm.resolved_at = AlarmStatus.RESOLVED, at
            self._append(alarm, at, "resolved", "monitor", "条件が解消しました")
            log.info("alarm resolved", extra=fields(fingerprint=fingerprint, lasted_s=round(at - alarm.started, 1)))
        else:
            self._append(alarm, at, "cleared", "monitor", "条件が解消しました")
        return alarm

    def reconcile(self, active: Iterable[Condition], now: float) -> set[str]:
        """Match the monitor's active conditions after a restart: fire the missing, resolve the gone."""
        conditions = {c.fingerprint: c for c in active}
        touched = set()
        for condition in conditions.values():
            alarm = self.alarms.get(condition.fingerprint)
            # Resolved (or closed) before this condition started: it came back while alerting was down.
            if alarm is None or (alarm.status not in OPEN_STATUSES and (alarm.resolved_at or 0) < condition.started):
                self.fire(condition, now)
                touched.add(condition.fingerprint)
        for alarm in list(self.alarms.values()):
            if alarm.status in OPEN_STATUSES and alarm.labels.get("source") == "monitor" \
                    and alarm.fingerprint not in conditions:
                self.clear(alarm.fingerprint, now)
                touched.add(alarm.fingerprint)
        return touched

    # --- operator actions -------------------------------------------------------------------------------------

    def acknowledge(self, fingerprint: str, user: str, comment: str, now: float) -> Alarm:
        alarm = self.get(fingerprint)
        if alarm.status is not AlarmStatus.FIRING:
            raise AlarmError(f"{fingerprint}: {STATUS_JA[alarm.status]}のアラームは確認できません")
        alarm.status, alarm.acknowledged_by, alarm.acknowledged_at = AlarmStatus.ACKNOWLEDGED, _who(user), now
        self._append(alarm, now, "acknowledged", alarm.acknowledged_by, comment.strip())
        return alarm

    def resolve(self, fingerprint: str, user: str, reason: str, now: float) -> Alarm:
        alarm = self.get(fingerprint)
        if alarm.status not in OPEN_STATUSES:
            raise AlarmError(f"{fingerprint}: {STATUS_JA[alarm.status]}のアラームは解決できません")
        if not reason.strip():
            raise AlarmError(f"{fingerprint}: 手動で解決するには理由が必要です")
        alarm.status, alarm.resolved_at = AlarmStatus.RESOLVED, now
        self._append(alarm, now, "resolved", _who(user), reason.strip())
        return alarm

    def close(self, fingerprint: str, user: str, comment: str, now: float) -> Alarm:
        alarm = self.get(fingerprint)
        if alarm.status is not AlarmStatus.RESOLVED:
            raise AlarmError(f"{fingerprint}: 完了にできるのは解決済みのアラームだけです (現在: {STATUS_JA[alarm.status]})")
        alarm.status, alarm.closed_at = AlarmStatus.CLOSED, now
        self._append(alarm, now, "closed", _who(user), comment.strip())
        return alarm

    def comment(self, fingerprint: str, user: str, text: str, now: float) -> Alarm:
        alarm = self.get(fingerprint)
        if not text.strip():
            raise AlarmError(f"{fingerprint}: コメントが空です")
        self._append(alarm, now, "commented", _who(user), text.strip())
        return alarm

    # --- what alerting does -----------------------------------------------------------------------------------

    def note(self, fingerprint: str, at: float, action: str, text: str = "", **data: Any) -> None:
        """Record what alerting did (notified, escalated, ...) on the alarm's timeline."""
        self._append(self.get(fingerprint), at, action, "alerting", text, **data)

    def set_muting(self, fingerprint: str, muting: Muting, now: float) -> None:
        """Keep why an alarm is muted; its timeline records each change (silenced, inhibited, and back)."""
        old = self.muting.get(fingerprint, Muting())
        if old == muting:
            return
        self.muting[fingerprint] = muting
        added = [s for s in muting.silenced_by if s not in old.silenced_by]
        if added:
            self.note(fingerprint, now, "silenced", "サイレンス中: 通知しません", silences=added)
        elif old.silenced_by and not muting.silenced_by:
            self.note(fingerprint, now, "unsilenced", "サイレンス終了", silences=list(old.silenced_by))
        if muting.inhibited_by and muting.inhibited_by != old.inhibited_by:
            self.note(fingerprint, now, "inhibited", f"{muting.inhibited_by} により抑制", source=muting.inhibited_by)
        elif old.inhibited_by and not muting.inhibited_by:
            self.note(fingerprint, now, "uninhibited", "抑制解除", source=old.inhibited_by)

    # --- reading ----------------------------------------------------------------------------------------------

    def get(self, fingerprint: str) -> Alarm:
        alarm = self.alarms.get(fingerprint)
        if alarm is None:
            raise UnknownAlarm(f"{fingerprint}: そのアラームはありません")
        return alarm

    def notifiable(self, alarm: Alarm) -> bool:
        """Firing (acknowledged or not), not under maintenance, not silenced, not inhibited."""
        return (alarm.status in OPEN_STATUSES and not alarm.in_maintenance
                and not self.muting.get(alarm.fingerprint))

    def _append(self, alarm: Alarm, at: float, action: str, actor: str, text: str = "", **data: Any) -> None:
        alarm.timeline.append(TimelineEntry(at, action, actor, text, data))
        self.dirty.add(alarm.fingerprint)


def _suppressed_count(condition: Condition) -> int:
    return int(condition.details.get("suppressed_count", len(condition.suppressed)))


def _who(user: str) -> str:
    if not user.strip():
        raise AlarmError("操作者 (user) が必要です")
    return user.strip()


# --- export -----------------------------------------------------------------------------------------------------


def jst(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, JST).strftime("%Y-%m-%d %H:%M:%S JST")


def timeline_json(alarm: Alarm, muting: Muting | None = None) -> str:
    """The alarm and its whole timeline as one JSON document (times as epoch seconds and as JST text)."""
    document = asdict(alarm)
    document["status"] = alarm.status.value
    document["timeline"] = [{**asdict(e), "at_jst": jst(e.at)} for e in alarm.timeline]
    if muting is not None:
        document["muting"] = asdict(muting)
    return json.dumps(document, ensure_ascii=False, indent=2)


def timeline_text(alarm: Alarm) -> str:
    """The timeline in Japanese, one line per entry, for a report or a mail."""
    lines = [f"アラーム: {alarm.summary}", f"識別子: {alarm.fingerprint}",
             f"重大度: {alarm.severity}  状態: {STATUS_JA[alarm.status]}", f"発生: {jst(alarm.started)}",
             "ラベル: " + " ".join(f"{k}={v}" for k, v in sorted(alarm.labels.items()))]
    if alarm.suppressed_count:
        lines.append(f"配下の監視不能: {alarm.suppressed_count} 台")
    lines.append("経過:")
    for entry in alarm.timeline:
        lines.append(f"  {jst(entry.at)}  {ACTION_JA.get(entry.action, entry.action)}  {entry.actor}"
                     + (f"  {entry.text}" if entry.text else ""))
    return "\n".join(lines) + "\n"
