"""Small SVG charts drawn on the server: no JavaScript, no CDN, readable when printed or offline.

Each function returns escaped, self-contained SVG markup sized by its viewBox (CSS sets the width).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Optional, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 14, 14, 28
COLORS = {"blue": "#2563eb", "amber": "#d97706", "red": "#dc2626", "green": "#059669", "violet": "#7c3aed",
          "slate": "#64748b"}


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Optional[float]]  # one per bucket; None where there is nothing to say
    color: str = "blue"
    kind: str = "line"  # line | bar


def nice_ticks(top: float, count: int = 4, integer: bool = False) -> list[float]:
    """Round tick values from 0 to at least `top` (steps of 1, 2 or 5 times a power of ten);
    `integer` keeps counts on whole numbers."""
    top = top if top > 0 else 1.0
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if integer:
        step = max(1, math.ceil(step))
    return [round(step * i, 10) for i in range(int(math.ceil(top / step - 1e-9)) + 1)]


def number(value: float) -> str:
    """Compact tick label: 0.25, 12, 1.5k, 2M."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def _frame(body: list[str], label: str) -> Markup:
    svg = (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" '
           f'xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>")
    return Markup(svg)


def _empty(label: str, message: str = "No data in this window yet") -> Markup:
    return _frame([f'<text class="chart-empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
                   f'{escape(message)}</text>'], label)


def _y_axis(ticks: list[float], y: Callable[[float], float], fmt: Callable[[float], str]) -> list[str]:
    parts = []
    for tick in ticks:
        ty = y(tick)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end">{escape(fmt(tick))}</text>')
    return parts


def histogram(bins: Sequence[tuple[float, float, int]], *, label: str,
              markers: Sequence[tuple[float, str]] = ()) -> Markup:
    """Bars of counts over value ranges [lo, hi); `markers` draw dashed vertical lines (thresholds)."""
    if not bins or not any(count for _lo, _hi, count in bins):
        return _empty(label)
    lo, hi = bins[0][0], bins[-1][1]
    ticks = nice_ticks(max(c for _l, _h, c in bins), integer=True)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(value: float) -> float:
        return LEFT + (value - lo) / ((hi - lo) or 1) * plot_w

    def y(value: float) -> float:
        return TOP + plot_h - value / ticks[-1] * plot_h

    parts = _y_axis(ticks, y, number)
    for b_lo, b_hi, count in bins:
        if count:
            x0, x1 = x(b_lo) + 1, x(b_hi) - 1
            parts.append(f'<rect class="bar" fill="{COLORS["blue"]}" x="{x0:.1f}" y="{y(count):.1f}" '
                         f'width="{max(x1 - x0, 1):.1f}" height="{y(0) - y(count):.1f}" rx="2">'
                         f'<title>{b_lo:.2f} to {b_hi:.2f}: {count}</title></rect>')
    for i in range(5):
        value = lo + (hi - lo) * i / 4
        parts.append(f'<text class="tick" x="{x(value):.1f}" y="{HEIGHT - 8}" text-anchor="middle">{value:.2f}</text>')
    for value, text in markers:
        if lo <= value <= hi:
            parts.append(f'<line class="marker" x1="{x(value):.1f}" x2="{x(value):.1f}" y1="{TOP}" y2="{y(0):.1f}"/>')
            anchor = "end" if x(value) > WIDTH * 0.7 else "start"
            dx = -4 if anchor == "end" else 4
            parts.append(f'<text class="marker-label" x="{x(value) + dx:.1f}" y="{TOP + 10}" '
                         f'text-anchor="{anchor}">{escape(text)}</text>')
    return _frame(parts, label)


def time_chart(buckets: Sequence[datetime], series: Sequence[Series], *, label: str,
               y_format: Callable[[float], str] = number, x_format: str = "%H:%M",
               y_min_top: float = 0.0, integer: bool = False) -> Markup:
    """Bars and lines over time buckets sharing one y axis from zero, with a legend and tooltips."""
    values = [v for s in series for v in s.values if v is not None]
    if not buckets or not values or not any(values):
        return _empty(label)
    ticks = nice_ticks(max(max(values), y_min_top), integer=integer)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM - 16
    slot = plot_w / len(buckets)
    top = TOP + 16

    def cx(i: int) -> float:
        return LEFT + slot * (i + 0.5)

    def y(value: float) -> float:
        return top + plot_h - value / ticks[-1] * plot_h

    parts = _y_axis(ticks, y, y_format)
    bars = [s for s in series if s.kind == "bar"]
    bar_w = max(min(slot * 0.8 / max(len(bars), 1), 28), 1)
    for n, s in enumerate(bars):
        for i, value in enumerate(s.values):
            if value:
                x0 = cx(i) - bar_w * len(bars) / 2 + n * bar_w
                parts.append(f'<rect class="bar" fill="{COLORS[s.color]}" x="{x0:.1f}" y="{y(value):.1f}" '
                             f'width="{max(bar_w - 1, 1):.1f}" height="{y(0) - y(value):.1f}" rx="2">'
                             f'<title>{escape(s.name)} {buckets[i].strftime("%Y-%m-%d %H:%M")}: '
                             f'{escape(y_format(value))}</title></rect>')
    for s in (s for s in series if s.kind == "line"):
        parts += _line(s, [(cx(i), y(v), v, i) for i, v in enumerate(s.values) if v is not None], buckets, slot,
                       y_format)
    # Label from the newest bucket back, so the bucket holding the latest data always has its time.
    every = max(1, math.ceil(len(buckets) / 7))
    for i in range(len(buckets) - 1, -1, -every):
        parts.append(f'<text class="tick" x="{cx(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                     f'{escape(buckets[i].strftime(x_format))}</text>')
    legend_x = LEFT
    for s in series:
        parts.append(f'<rect x="{legend_x}" y="{TOP - 2}" width="10" height="10" rx="2" fill="{COLORS[s.color]}"/>'
                     f'<text class="legend" x="{legend_x + 14}" y="{TOP + 7}">{escape(s.name)}</text>')
        legend_x += 24 + 7 * len(s.name)
    return _frame(parts, label)


def runs(points: Sequence[tuple]) -> list[list[tuple]]:
    """Points split where buckets are missing (index i = the bucket), so a line never bridges a gap."""
    found: list[list[tuple]] = []
    for point in points:
        if found and point[-1] == found[-1][-1][-1] + 1:
            found[-1].append(point)
        else:
            found.append([point])
    return found


def _line(s: Series, points: Sequence[tuple[float, float, float, int]], buckets: Sequence[datetime], slot: float,
          y_format: Callable[[float], str]) -> list[str]:
    """One path per run of consecutive buckets, its last point marked; a point with no neighbour gets a
    marker big enough to see on its own."""
    parts, lone, ends = [], set(), set()
    for run in runs(points):
        ends.add(run[-1][-1])
        if len(run) == 1:
            lone.add(run[0][-1])
            continue
        path = " ".join(f"{'M' if k == 0 else 'L'}{px:.1f},{py:.1f}" for k, (px, py, _v, _i) in enumerate(run))
        parts.append(f'<path class="line" stroke="{COLORS[s.color]}" d="{path}"/>')
    dense = len(points) > 16  # many buckets: a clean line, with invisible hover targets for the values
    for px, py, value, i in points:
        if i in lone:
            css, radius = "dot lone", 5.0
        elif not dense or i in ends:
            css, radius = "dot", 3.0
        else:
            css, radius = "hover", max(slot / 2, 3)
        parts.append(f'<circle class="{css}" fill="{COLORS[s.color]}" cx="{px:.1f}" cy="{py:.1f}" r="{radius:.1f}">'
                     f'<title>{escape(s.name)} {buckets[i].strftime("%Y-%m-%d %H:%M")}: '
                     f'{escape(y_format(value))}</title></circle>')
    return parts


def bar_list(items: Sequence[tuple[str, int]], *, label: str, color: str = "amber") -> Markup:
    """Horizontal bars with their labels and values, largest first (e.g. open cases by reason)."""
    items = sorted((i for i in items if i[1]), key=lambda i: -i[1])[:8]
    if not items:
        return _empty(label, "Nothing open: the queue is empty")
    row = min(30, (HEIGHT - 12) / len(items))
    top_value = max(v for _l, v in items)
    label_w, value_w = 170, 60
    span = WIDTH - label_w - value_w - 10
    parts = []
    for i, (text, value) in enumerate(items):
        y0 = 6 + i * row
        width = max(value / top_value * span, 2)
        parts.append(f'<text class="bar-label" x="{label_w - 8}" y="{y0 + row / 2 + 4:.1f}" text-anchor="end">'
                     f'{escape(text)}</text>')
        parts.append(f'<rect class="bar" fill="{COLORS[color]}" x="{label_w}" y="{y0 + 4:.1f}" width="{width:.1f}" '
                     f'height="{row - 8:.1f}" rx="3"><title>{escape(text)}: {value}</title></rect>')
        parts.append(f'<text class="bar-value" x="{label_w + width + 6:.1f}" y="{y0 + row / 2 + 4:.1f}">{value}</text>')
    return _frame(parts, label)
