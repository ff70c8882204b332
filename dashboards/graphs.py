"""Line graphs as server-rendered SVG: the short-term history of a device, without a charting library.

One ``Graph`` is a few series over the same time window, drawn as polylines on a
fixed viewBox (the browser scales it). A gap in the data — no sample for more
than ``GAP_SLOTS`` slots, e.g. while the device was down — breaks the line
instead of drawing a straight bridge across the outage. Series are cut to
``MAX_POINTS`` with ``collectors.history.downsample`` (per-bucket min and max,
so spikes and drops to zero survive). Values are formatted per unit (ms, %,
bit/s with k/M/G).

The SVG is built from numbers only; the text in it (axis labels) is produced
here from numbers, and the graph's title and series names are escaped by the
template that places it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from markupsafe import Markup

from collectors.history import Point, downsample

WIDTH, HEIGHT = 480, 170
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 8, 20
MAX_POINTS = 300
GAP_SLOTS = 3.5
TICKS_Y = 4
TICKS_X = 6


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: Sequence[Point]


@dataclass(frozen=True, slots=True)
class Graph:
    key: str  # catalogue key of the title
    title_detail: str  # e.g. the interface or the volume, "" if none
    unit: str  # "ms", "%", "bps", "ratio"
    series: tuple[Series, ...]

    @property
    def empty(self) -> bool:
        return not any(s.points for s in self.series)


def format_value(value: float, unit: str) -> str:
    if unit == "bps":
        for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= factor:
                return f"{value / factor:.3g} {prefix}bit/s"
        return f"{value:.3g} bit/s"
    if unit == "%":
        return f"{value:.3g}%"
    if unit == "ratio":
        return f"{100 * value:.3g}%"
    return f"{value:.3g} {unit}"


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^n at or above ``value`` (a readable axis top)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def render_svg(graph: Graph, start: float, end: float, slot: float, time_label: Callable[[float], str]) -> Markup:
    """The graph over ``[start, end]``; ``slot`` (seconds between samples) decides what counts as a gap."""
    series = [(s.name, downsample(s.points, MAX_POINTS)) for s in graph.series]
    values = [v for _, points in series for _, v in points]
    top = nice_ceiling(max(values, default=0.0) * 1.05)
    if graph.unit == "%":
        top = min(top, 100.0) if max(values, default=0.0) <= 100 else top
    span = max(end - start, 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(ts: float) -> float:
        return LEFT + plot_w * (ts - start) / span

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for i in range(TICKS_Y + 1):
        value = top * i / TICKS_Y
        gy = y(value)
        parts.append(f'<line class="{"axis" if i == 0 else "grid"}" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
                     f'y1="{gy:.1f}" y2="{gy:.1f}"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{gy + 3:.1f}" text-anchor="end">'
                     f'{Markup.escape(format_value(value, graph.unit))}</text>')
    for i in range(TICKS_X + 1):
        ts = start + span * i / TICKS_X
        anchor = "start" if i == 0 else "end" if i == TICKS_X else "middle"
        parts.append(f'<text x="{x(ts):.1f}" y="{HEIGHT - 5}" text-anchor="{anchor}">'
                     f'{Markup.escape(time_label(ts))}</text>')
    for index, (_, points) in enumerate(series):
        for run in _runs(points, slot * GAP_SLOTS):
            coords = " ".join(f"{x(ts):.1f},{y(v):.1f}" for ts, v in run)
            if len(run) == 1:  # a lone sample between gaps: a dot, not an invisible line
                ts, v = run[0]
                parts.append(f'<circle class="s{index % 4}" cx="{x(ts):.1f}" cy="{y(v):.1f}" r="1.5"/>')
            else:
                parts.append(f'<polyline class="s{index % 4}" points="{coords}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _runs(points: Sequence[Point], gap: float) -> list[list[Point]]:
    """Split at gaps longer than ``gap`` seconds."""
    runs: list[list[Point]] = []
    for point in points:
        if runs and point[0] - runs[-1][-1][0] <= gap:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs
