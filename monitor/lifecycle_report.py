"""The fleet's renewal plan (更改計画): what must be renewed by when, for people and for programs.

Groups lifecycle findings by the month they fall due — with everything overdue
or without a deadline of its own (compromised crypto) in one "now" row first —
and counts each month by finding kind, role and prefecture. Rendered as aligned
Japanese text for a terminal, or as JSON. Backs ``jukimon lifecycle report``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from monitor.envelope import Severity
from monitor.inventory.model import Inventory, Role, Tier
from monitor.lifecycle import FINDING_KINDS, LifecycleChecker, LifecycleFinding, LifecycleSettings, severity_rank
from monitor.terminal import display_width

_KIND_LABELS = {
    "hw_support_end": "HWサポート終了",
    "sw_support_end": "SWサポート終了",
    "cert_expired": "証明書期限切れ",
    "cert_expiry": "証明書期限間近",
    "weak_key": "危殆化鍵",
    "weak_signature": "危殆化署名",
}
_SEVERITY_LABELS = {Severity.CRITICAL.value: "重大", Severity.WARNING.value: "警告", Severity.INFO.value: "情報"}
_CENTRE_LABELS = {Tier.NATIONAL.value: "全国センター", Tier.AGGREGATION.value: "集約センター", Tier.AGENCY.value: "国の機関等"}


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """One device in one month of the plan, with the findings that fall due then."""

    device: str
    role: str
    prefecture: str  # JIS code; for a device of the centres, its tier ("national", "aggregation", "agency")
    findings: tuple[LifecycleFinding, ...]

    @property
    def severity(self) -> str:
        return min((f.severity for f in self.findings), key=severity_rank)

    @property
    def due(self) -> dt.date | None:
        return min((f.due for f in self.findings if f.due is not None), default=None)


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One month of the plan. ``month`` None is "now": overdue, or compromised crypto (no deadline of its own)."""

    month: str | None  # "YYYY-MM"
    due_by: dt.date | None  # the month's last day
    entries: tuple[PlanEntry, ...]  # most severe, then soonest, first
    by_kind: dict[str, int]  # findings per kind
    by_role: dict[str, int]  # devices per role
    by_prefecture: dict[str, int]  # devices per prefecture (or centre tier)

    def by_severity(self) -> dict[str, int]:
        """Devices by their worst finding in this month."""
        counts = Counter(e.severity for e in self.entries)
        return {s.value: counts[s.value] for s in Severity if counts[s.value]}


@dataclass(frozen=True)
class RenewalPlan:
    as_of: dt.date
    rows: tuple[PlanRow, ...]  # "now" first, then month by month
    prefecture_names: dict[str, str] = field(default_factory=dict)  # prefecture key → Japanese name

    @property
    def device_count(self) -> int:
        return len({e.device for row in self.rows for e in row.entries})

    @property
    def finding_count(self) -> int:
        return sum(len(e.findings) for row in self.rows for e in row.entries)


def renewal_plan(findings: Iterable[LifecycleFinding], inventory: Inventory, *, today: dt.date) -> RenewalPlan:
    """Group findings by the month they fall due; findings due before ``today`` or without a due date go to "now"."""
    grouped: dict[str | None, dict[str, list[LifecycleFinding]]] = defaultdict(lambda: defaultdict(list))
    for finding in findings:
        overdue = finding.due is None or finding.due < today
        grouped[None if overdue else f"{finding.due:%Y-%m}"][finding.device].append(finding)
    keys = sorted(grouped, key=lambda month: month or "")  # None ("now") first
    rows = tuple(_row(month, grouped[month], inventory) for month in keys)
    return RenewalPlan(today, rows, _prefecture_names(inventory))


def _row(month: str | None, by_device: dict[str, list[LifecycleFinding]], inventory: Inventory) -> PlanRow:
    entries = []
    for device_id, found in by_device.items():
        device = inventory.devices[device_id]
        found.sort(key=lambda f: (severity_rank(f.severity), f.due or dt.date.min, FINDING_KINDS.index(f.kind)))
        entries.append(PlanEntry(device_id, device.role.value, device.prefecture or inventory.sites[device.site].tier.value,
                                 tuple(found)))
    entries.sort(key=lambda e: (severity_rank(e.severity), e.due or dt.date.min, e.device))
    kinds = Counter(f.kind for e in entries for f in e.findings)
    roles = Counter(e.role for e in entries)
    return PlanRow(
        month, _month_end(month), tuple(entries),
        by_kind={k: kinds[k] for k in FINDING_KINDS if kinds[k]},
        by_role={r.value: roles[r.value] for r in Role if roles[r.value]},
        by_prefecture=dict(sorted(Counter(e.prefecture for e in entries).items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def _month_end(month: str | None) -> dt.date | None:
    if month is None:
        return None
    year, number = int(month[:4]), int(month[5:])
    return dt.date(year, number, calendar.monthrange(year, number)[1])


def _prefecture_names(inventory: Inventory) -> dict[str, str]:
    names = {s.prefecture: s.name for s in inventory.sites_of_tier(Tier.PREFECTURE) if s.prefecture}
    return {**_CENTRE_LABELS, **names}


# -- JSON -----------------------------------------------------------------------------------


def render_json(plan: RenewalPlan) -> dict[str, Any]:
    return {
        "as_of": plan.as_of.isoformat(),
        "devices": plan.device_count,
        "findings": plan.finding_count,
        "rows": [
            {
                "month": row.month,
                "due_by": _iso(row.due_by),
                "devices": len(row.entries),
                "by_severity": row.by_severity(),
                "by_kind": row.by_kind,
                "by_role": row.by_role,
                "by_prefecture": row.by_prefecture,
                "entries": [
                    {"device": e.device, "role": e.role, "prefecture": e.prefecture,
                     "prefecture_name": plan.prefecture_names.get(e.prefecture, e.prefecture),
                     "severity": e.severity, "due": _iso(e.due),
                     "findings": [{"kind": f.kind, "severity": f.severity, "due": _iso(f.due), "source": f.source,
                                   "summary": f.summary, "fingerprint": f.fingerprint} for f in e.findings]}
                    for e in row.entries
                ],
            }
            for row in plan.rows
        ],
    }


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day is not None else None


# -- text -----------------------------------------------------------------------------------

_LINE_WIDTH = 100


def render_text(plan: RenewalPlan, *, devices_per_row: int | None = 20) -> str:
    """Aligned Japanese text for a terminal; at most ``devices_per_row`` devices listed per month (None: all)."""
    out = [f"機器更改計画 renewal plan  基準日 {plan.as_of.isoformat()}  "
           f"対象 {plan.device_count:,}台 / {plan.finding_count:,}件"]
    if not plan.rows:
        out.append("更改・更新が必要な機器はありません。")
    for row in plan.rows:
        out.append("")
        out += _render_row(plan, row, devices_per_row)
    return "\n".join(out) + "\n"


def _render_row(plan: RenewalPlan, row: PlanRow, devices_per_row: int | None) -> list[str]:
    title = "至急 (期限超過・危殆化)" if row.month is None else f"{row.month} ({_iso(row.due_by)}まで)"
    severities = "  ".join(f"{_SEVERITY_LABELS.get(s, s)} {n:,}" for s, n in row.by_severity().items())
    names = plan.prefecture_names
    lines = [f"■ {title}  {len(row.entries):,}台  {severities}"]
    lines += _counts("種別", {_KIND_LABELS[k]: n for k, n in row.by_kind.items()})
    lines += _counts("役割", row.by_role)
    lines += _counts("地域", {names.get(p, p): n for p, n in row.by_prefecture.items()})
    shown = row.entries if devices_per_row is None else row.entries[:devices_per_row]
    table = [("機器", "役割", "地域", "期限", "重要度", "内容")]
    table += [(e.device, e.role, names.get(e.prefecture, e.prefecture), _iso(e.due) or "-",
               _SEVERITY_LABELS.get(e.severity, e.severity), " / ".join(f.summary for f in e.findings))
              for e in shown]
    lines += ["  " + line for line in _align(table)]
    if len(shown) < len(row.entries):
        lines.append(f"  … 他 {len(row.entries) - len(shown):,}台 (--json で全件)")
    return lines


def _counts(label: str, counts: dict[str, int]) -> list[str]:
    """``  種別  HWサポート終了 120  SWサポート終了 80`` wrapped at the line width, continuations aligned."""
    head = f"  {label}"
    lines, line, on_line = [], head, 0
    for name, n in counts.items():
        item = f"{name} {n:,}"
        if on_line and display_width(line) + 2 + display_width(item) > _LINE_WIDTH:
            lines.append(line)
            line, on_line = " " * display_width(head), 0
        line, on_line = f"{line}  {item}", on_line + 1
    lines.append(line)
    return lines


def _align(table: list[tuple[str, ...]]) -> list[str]:
    """Pad every column but the last to its widest cell, counting full-width characters as two columns."""
    widths = [max(display_width(r[i]) for r in table) for i in range(len(table[0]) - 1)]
    return ["  ".join([*(cell + " " * (w - display_width(cell)) for cell, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip()
            for r in table]



# -- command --------------------------------------------------------------------------------


def lifecycle_command(inventory: Inventory, as_json: bool, today: dt.date,
                      settings: LifecycleSettings | None = None) -> str:
    """``jukimon lifecycle report``: the renewal plan of the inventory as of ``today``, from inventory data."""
    findings = LifecycleChecker(inventory, settings).findings(today)
    plan = renewal_plan(findings, inventory, today=today)
    if as_json:
        return json.dumps(render_json(plan), ensure_ascii=False, indent=2) + "\n"
    return render_text(plan)


__all__ = ["PlanEntry", "PlanRow", "RenewalPlan", "lifecycle_command", "render_json", "render_text",
           "renewal_plan"]
