"""The after-action report (訓練結果報告): HTML in Japanese with an SVG timeline chart, the per-prefecture table
and the confirmation-latency distribution; the metrics as JSON; a PDF printed by headless Chromium when present.

The charts are inline SVG drawn here (no script, no external file), so the HTML is
one self-contained file that prints as it shows. Findings are sentences derived from
the metrics: missed deadlines, actions out of order, stragglers, unanswered recipients.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from drills.compare import compare
from drills.scoring import Metrics, ReportStats
from drills.timeline import EntryKind, Timeline
from monitor.japan_time import JST
from monitor.logs import fields

log = logging.getLogger("drills.report")

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("drills", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined)
_LANES = ((EntryKind.FAULT, "障害注入", "#c0392b"), (EntryKind.CLEAR, "復旧", "#27ae60"),
          (EntryKind.MESSAGE, "連絡", "#7f8c8d"), (EntryKind.IDS, "IDS", "#8e44ad"),
          (EntryKind.CONDITION, "検知", "#d35400"), (EntryKind.ACTION, "対応", "#2c3e50"),
          (EntryKind.REPORT, "報告", "#2471a3"))
_REPORT_COLOURS = ("#2471a3", "#17a589", "#b9770e", "#884ea0")


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path
    timeline: Path
    pdf: Path | None


def write_report(metrics: Metrics, timeline: Timeline, directory: Path, *, pdf: bool = True,
                 previous: dict[str, Any] | None = None) -> ReportFiles:
    """The report files in ``directory``; ``previous`` (an earlier run's metrics.json) adds the comparison."""
    directory.mkdir(parents=True, exist_ok=True)
    html = directory / "report.html"
    html.write_text(render_html(metrics, timeline, previous), encoding="utf-8")
    metrics_json = directory / "metrics.json"
    metrics_json.write_text(json.dumps(metrics.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
    timeline_json = directory / "timeline.json"
    timeline_json.write_text(json.dumps(timeline.to_json(), ensure_ascii=False), encoding="utf-8")
    printed = print_pdf(html, directory / "report.pdf") if pdf else None
    return ReportFiles(html, metrics_json, timeline_json, printed)


def render_html(metrics: Metrics, timeline: Timeline, previous: dict[str, Any] | None = None) -> str:
    return _ENV.get_template("report.html.j2").render(
        m=metrics, findings=findings(metrics), timeline_svg=timeline_chart(metrics, timeline),
        changes=compare(metrics, previous) if previous is not None else [],
        previous=previous, value=_value,
        histograms=[(r, latency_histogram(r, i)) for i, r in enumerate(metrics.reports)],
        events=[e for e in timeline.sorted() if e.kind not in (EntryKind.CONFIRM,)],
        jst=_jst, minutes=_minutes, offset=lambda at: _minutes(at - metrics.started))


def print_pdf(html: Path, pdf: Path) -> Path | None:
    """Print the HTML to A4 PDF with headless Chromium; None (and a log line) when there is none or it fails."""
    browser = next((found for name in CHROMIUM if (found := shutil.which(name))), None)
    if browser is None:
        log.warning("no chromium: the report is HTML only", extra=fields(html=str(html)))
        return None
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
               f"--print-to-pdf={pdf}", html.resolve().as_uri()]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=120)
    except (subprocess.SubprocessError, OSError) as exc:
        log.warning("PDF printing failed", extra=fields(error=str(exc)[:300]))
        return None
    return pdf if pdf.exists() else None


def findings(m: Metrics) -> list[str]:
    found = []
    for x in m.expectations:
        if x.out_of_order:
            found.append(f"「{x.what}」が前提となる事象より前に行われました（順序違反）。")
        elif not x.met:
            got = f"（期限内 {x.rate:.1%}）" if x.rate is not None else "（期限内に実施なし）"
            found.append(f"期待行動「{x.what}」が期限を守れませんでした{got}。")
    never = [s for s in m.stragglers if s.latency is None]
    if never:
        found.append(f"受信確認のない組織が延べ {len(never)} 件ありました（下表の遅延・未確認一覧）。")
    late = len(m.stragglers) - len(never)
    if late:
        found.append(f"受信確認が遅れた組織が延べ {late} 件ありました。")
    if m.time_to_detect is None and any(x.kind == "action" for x in m.expectations):
        found.append("障害の検知が記録されていません。")
    if not found:
        found.append("すべての期待行動が期限内に行われました。")
    return found


# --- charts ----------------------------------------------------------------------------------------------------

def timeline_chart(m: Metrics, timeline: Timeline, width: int = 960) -> Markup:
    """Lanes of events over the drill's minutes, and each report's cumulative receipts (0–100 %) below."""
    span = max(m.ended - m.started, 1.0)
    left, lane_h, curve_h = 90, 22, 140
    top_curve = len(_LANES) * lane_h + 20
    height = top_curve + curve_h + 40
    x = lambda at: left + (width - left - 20) * (at - m.started) / span  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="訓練タイムライン" class="chart">']
    for i, (kind, label, colour) in enumerate(_LANES):
        y = i * lane_h + 14
        parts.append(f'<text x="4" y="{y + 4}" class="lane">{label}</text>'
                     f'<line x1="{left}" y1="{y}" x2="{width - 20}" y2="{y}" class="grid"/>')
        for e in timeline.of(kind):
            parts.append(f'<circle cx="{x(e.at):.1f}" cy="{y}" r="5" fill="{colour}">'
                         f'<title>{escape(_minutes(e.at - m.started))} {escape(e.subject)} {escape(e.text)}</title>'
                         f'</circle>')
    base = top_curve + curve_h
    parts.append(f'<text x="4" y="{top_curve + 10}" class="lane">受信確認率</text>'
                 f'<rect x="{left}" y="{top_curve}" width="{width - left - 20}" height="{curve_h}" class="frame"/>')
    for i, r in enumerate(m.reports):
        total = r.tiers["all"].targets or 1
        points = [f"{x(r.issued_at):.1f},{base}"]
        points += [f"{x(r.issued_at + lat):.1f},{base - curve_h * (n + 1) / total:.1f}"
                   for n, lat in enumerate(r.latencies)]
        parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{_colour(i)}" stroke-width="2">'
                     f'<title>{escape(r.label)}</title></polyline>')
    step = _tick_step(span)
    for t in range(0, int(span) + 1, step):
        parts.append(f'<text x="{x(m.started + t):.1f}" y="{base + 16}" class="tick">{t // 60}分</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def latency_histogram(r: ReportStats, index: int, width: int = 460, height: int = 160) -> Markup:
    """Confirmations per latency bin (minutes after issue)."""
    if not r.latencies:
        return Markup('<p class="empty">受信確認なし</p>')
    bin_s = max(60, _tick_step(r.latencies[-1]) // 2)
    counts: dict[int, int] = {}
    for lat in r.latencies:
        counts[int(lat // bin_s)] = counts.get(int(lat // bin_s), 0) + 1
    bins = max(counts) + 1
    peak = max(counts.values())
    bar_w = (width - 40) / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 20}" class="chart" '
             f'role="img" aria-label="{escape(r.label)} 受信確認までの時間">']
    for b, count in counts.items():
        h = (height - 10) * count / peak
        parts.append(f'<rect x="{30 + b * bar_w:.1f}" y="{height - h:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                     f'height="{h:.1f}" fill="{_colour(index)}"><title>{b * bin_s // 60}–{(b + 1) * bin_s // 60}分: '
                     f'{count}</title></rect>')
    for b in range(0, bins + 1, max(1, bins // 6)):
        parts.append(f'<text x="{30 + b * bar_w:.1f}" y="{height + 14}" class="tick">{b * bin_s // 60}分</text>')
    parts.append(f'<text x="2" y="12" class="tick">{peak}</text></svg>')
    return Markup("".join(parts))


def _value(number: float | None, unit: str) -> str:
    if unit == "s":
        return _minutes(number)
    if number is None:
        return "—"
    return f"{number:.1f}%" if unit == "%" else f"{number:g}"


def _colour(index: int) -> str:
    return _REPORT_COLOURS[index % len(_REPORT_COLOURS)]


def _tick_step(span: float) -> int:
    return next((s for s in (60, 300, 600, 900, 1800, 3600) if span / s <= 12), 7200)


def _jst(ts: float | None) -> str:
    return "—" if ts is None else dt.datetime.fromtimestamp(ts, JST).strftime("%Y-%m-%d %H:%M:%S")


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    return f"{sign}{int(seconds // 60)}分{int(seconds % 60):02d}秒"

