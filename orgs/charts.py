"""Server-rendered SVG charts: the geometry is computed here, ``templates/partials/chart.html`` draws it.

One frame (padding, a y scale with round gridlines, x labels) serves every kind: the score
line (``orgs.templatetags.console.score_chart``), stacked areas, grouped bars and plain lines.
A chart is a dict of coordinates the template writes out as they are; colours travel as SVG
presentation attributes, so the same drawing shows in the console and in WeasyPrint's PDF,
which reads no stylesheet inside an SVG. No JavaScript, nothing fetched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# The console's severity colours (static/css/watchpost.css), for drawings that carry their own.
SEVERITY_COLOURS = {"critical": "#8b0000", "high": "#c0392b", "medium": "#9a6409", "low": "#2874a6", "info": "#5f6b7a"}
ACCENT = "#1f5fbf"
GOOD = "#1a7340"


@dataclass(frozen=True)
class Series:
    key: str  # a CSS-safe name: the class of its shapes
    label: str
    colour: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class Frame:
    """The plotting area inside a ``width`` × ``height`` viewBox, with room for the axis labels."""

    width: int = 520
    height: int = 230
    left: int = 56
    right: int = 14
    top: int = 12
    bottom: int = 28

    @property
    def x0(self) -> int:
        return self.left

    @property
    def x1(self) -> int:
        return self.width - self.right

    @property
    def base(self) -> int:
        return self.height - self.bottom

    @property
    def inner_w(self) -> int:
        return self.x1 - self.x0

    @property
    def inner_h(self) -> int:
        return self.base - self.top

    def y(self, value: float, ymax: float) -> float:
        return round(self.base - self.inner_h * max(0.0, min(value, ymax)) / ymax, 1)

    def x_at(self, i: int, n: int) -> float:
        """The i-th of n evenly spaced points; a single point sits in the middle."""
        return round(self.x0 + (self.inner_w * i / (n - 1) if n > 1 else self.inner_w / 2), 1)


def nice_scale(top: float, ticks: int = 4) -> tuple[float, float]:
    """(ymax, step): ``top`` rounded up to a multiple of a 1-2-5 step, about ``ticks`` steps high."""
    if top <= 0:
        return 1.0, 1.0
    raw = top / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if step < 1 and top >= 1:
        step = 1.0
    return step * math.ceil(top / step), step


def gridlines(frame: Frame, values: Sequence[float], ymax: float,
              fmt: Callable[[float], str] | None = None) -> list[tuple[str, float]]:
    fmt = fmt or _number
    return [(fmt(v), frame.y(v, ymax)) for v in values]


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 1 or value == 0 else f"{value:g}"


LABEL_HEIGHT = 11  # a value label's text, in the SVG's units


def _frame_dict(frame: Frame, label: str) -> dict[str, Any]:
    return {"width": frame.width, "height": frame.height, "label": label, "x0": frame.x0, "x1": frame.x1,
            "base": frame.base, "tick_x": frame.x0 - 6, "axis_y": frame.height - 8,
            "areas": [], "rects": [], "lines": [], "points": [], "gridlines": [], "xlabels": [], "legend": []}


def _xlabels(frame: Frame, labels: Sequence[str], xs: Sequence[float]) -> list[tuple[float, str, str]]:
    """First, middle and last labels: enough to read the span without crowding a phone's width."""
    n = len(labels)
    if n == 0:
        return []
    if n == 1:
        return [(xs[0], labels[0], "middle")]
    chosen = [(0, "start"), (n - 1, "end")]
    if n >= 5:
        chosen.insert(1, (n // 2, "middle"))
    return [(xs[i], labels[i], anchor) for i, anchor in chosen]


def stacked_area_chart(*, labels: Sequence[str], series: Sequence[Series], label: str,
                       frame: Frame = Frame()) -> dict[str, Any]:
    """Areas stacked bottom-up in ``series`` order over evenly spaced ``labels`` (days)."""
    chart = _frame_dict(frame, label)
    n = len(labels)
    if not n:
        return chart
    totals = [sum((s.values[i] or 0) for s in series) for i in range(n)]
    ymax, step = nice_scale(max(totals))
    chart["gridlines"] = gridlines(frame, [step * k for k in range(int(round(ymax / step)) + 1)], ymax)
    if n == 1:  # one day: a column a little wide, so that it shows
        xs = [frame.x_at(0, 1) - 10, frame.x_at(0, 1) + 10]
        columns = [[v[0]] * 2 for v in (s.values for s in series)]
    else:
        xs = [frame.x_at(i, n) for i in range(n)]
        columns = [list(s.values) for s in series]
    lower = [0.0] * len(xs)
    for s, values in zip(series, columns):
        upper = [lo + (v or 0) for lo, v in zip(lower, values)]
        if any(values):
            top = [f"{x},{frame.y(u, ymax)}" for x, u in zip(xs, upper)]
            bottom = [f"{x},{frame.y(lo, ymax)}" for x, lo in zip(reversed(xs), reversed(lower))]
            chart["areas"].append({"d": "M" + " L".join(top + bottom) + " Z", "colour": s.colour, "key": s.key,
                                   "title": s.label})
        lower = upper
    chart["lines"].append({"d": "M" + " L".join(f"{x},{frame.y(t, ymax)}" for x, t in zip(xs, lower)),
                           "colour": "#1d2430", "key": "total", "width": 1})
    chart["xlabels"] = _xlabels(frame, labels, [frame.x_at(i, n) for i in range(n)])
    chart["legend"] = [{"key": s.key, "label": s.label, "colour": s.colour} for s in series]
    chart["last"] = {"x": xs[-1], "y": _label_y(frame.y(totals[-1], ymax), above=6), "text": _number(totals[-1])}
    return chart


def bar_chart(*, labels: Sequence[str], series: Sequence[Series], label: str, frame: Frame = Frame(),
              titles: Sequence[str] = (), fmt: Callable[[float], str] | None = None,
              colours: Sequence[str] = ()) -> dict[str, Any]:
    """Bars side by side per label, one per series; ``colours`` paints a one-series chart per label.

    ``titles`` are the hover texts (and screen readers' words) per label."""
    chart = _frame_dict(frame, label)
    n = len(labels)
    if not n:
        return chart
    fmt = fmt or _number
    top = max([(v or 0) for s in series for v in s.values] + [0])
    ymax, step = nice_scale(top)
    chart["gridlines"] = gridlines(frame, [step * k for k in range(int(round(ymax / step)) + 1)], ymax, fmt)
    slot = frame.inner_w / n
    bar_w = max(2.0, min(40.0, slot * 0.8 / len(series)))
    for i in range(n):
        start = frame.x0 + slot * i + (slot - bar_w * len(series)) / 2
        for j, s in enumerate(series):
            value = s.values[i]
            if value is None:
                continue
            y = frame.y(value, ymax)
            title = f"{s.label}: {fmt(value)}" + (f" ({titles[i]})" if i < len(titles) and titles[i] else "")
            chart["rects"].append({
                "x": round(start + j * bar_w, 1), "y": y, "w": round(bar_w - (1 if len(series) > 1 else 0), 1),
                "h": round(frame.base - y, 1), "colour": colours[i] if colours else s.colour, "key": s.key,
                "title": title, "value": fmt(value) if len(series) == 1 and n <= 8 else "",
                "cx": round(start + j * bar_w + bar_w / 2, 1),
            })
    centres = [round(frame.x0 + slot * (i + 0.5), 1) for i in range(n)]
    if n <= 8:  # few categories: each is named
        chart["xlabels"] = [(x, text, "middle") for x, text in zip(centres, labels)]
    else:
        chart["xlabels"] = _xlabels(frame, labels, centres)
    if len(series) > 1:
        chart["legend"] = [{"key": s.key, "label": s.label, "colour": s.colour} for s in series]
    return chart


def _label_y(y: float, *, above: int) -> float:
    """Where a value's label sits: above its point, or below it when above would leave the picture."""
    return y - above if y - above >= LABEL_HEIGHT else y + LABEL_HEIGHT + 4


def line_chart(*, labels: Sequence[str], series: Sequence[Series], label: str, ymax: float,
               grid: Sequence[float], frame: Frame = Frame(), fmt: Callable[[float], str] | None = None,
               titles: Sequence[str] = ()) -> dict[str, Any]:
    """Lines over evenly spaced labels on a fixed scale; a None value breaks the line."""
    chart = _frame_dict(frame, label)
    n = len(labels)
    if not n:
        return chart
    fmt = fmt or _number
    chart["gridlines"] = gridlines(frame, grid, ymax, fmt)
    xs = [frame.x_at(i, n) for i in range(n)]
    for s in series:
        parts, pen_down = [], False
        for i, (x, v) in enumerate(zip(xs, s.values)):
            if v is None:
                pen_down = False
                continue
            parts.append(f"{'L' if pen_down else 'M'}{x},{frame.y(v, ymax)}")
            pen_down = True
            title = f"{fmt(v)}" + (f" on {titles[i]}" if i < len(titles) else "")
            chart["points"].append({"x": x, "y": frame.y(v, ymax), "colour": s.colour, "title": title})
        if parts:
            chart["lines"].append({"d": " ".join(parts), "colour": s.colour, "key": s.key, "width": 2})
        known = [(x, v) for x, v in zip(xs, s.values) if v is not None]
        if known and len(series) == 1:
            chart["last"] = {"x": known[-1][0], "y": _label_y(frame.y(known[-1][1], ymax), above=8),
                             "text": fmt(known[-1][1])}
    if len(chart["points"]) > 40:  # dots on a long line are noise; its hover titles stay on the few
        chart["points"] = []
    chart["xlabels"] = _xlabels(frame, labels, xs)
    if len(series) > 1:
        chart["legend"] = [{"key": s.key, "label": s.label, "colour": s.colour} for s in series]
    return chart
