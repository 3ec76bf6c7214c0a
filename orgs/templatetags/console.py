"""Small presentation tags shared by every console page: times, severities, grades, charts."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince, timeuntil

from orgs import budgets, windows
from orgs.charts import Frame
from orgs.charts import gridlines as chart_gridlines

register = template.Library()

SEVERITY_LABELS = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low", "info": "Info"}


@register.simple_tag
def reltime(value: datetime | None, empty: str = "–", style: str = ""):
    """A relative time ("3 minutes ago") with the absolute time on hover and in ``datetime``.

    ``style="date"`` is for deadlines: a future time reads as its date ("until 2026-12-30"), the
    relative time ("in 1 month") goes on hover; a past one reads as usual."""
    if value is None:
        return empty
    now = timezone.now()
    local = timezone.localtime(value)
    if style == "date" and value > now:
        return format_html('<time datetime="{}" title="in {} ({})">{}</time>', value.isoformat(),
                           timeuntil(value, now).split(",")[0], local.strftime("%Y-%m-%d %H:%M %Z"),
                           local.strftime("%Y-%m-%d"))
    if value <= now:
        text = "just now" if (now - value).total_seconds() < 60 else f"{timesince(value, now).split(',')[0]} ago"
    else:
        text = f"in {timeuntil(value, now).split(',')[0]}"
    return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(),
                       local.strftime("%Y-%m-%d %H:%M:%S %Z"), text)


@register.simple_tag
def severity(value: str):
    """The severity badge, the same colour on every page."""
    return format_html('<span class="sev sev-{}">{}</span>', value, SEVERITY_LABELS.get(value, value or "–"))


@register.simple_tag
def grade(value: str):
    if not value:
        return mark_safe('<span class="grade grade-none" title="not scored yet">–</span>')
    return format_html('<span class="grade grade-{}">{}</span>', value, value)


@register.filter
def duration(seconds) -> str:
    """1.2 s, 3 min 4 s, 2 h 5 min."""
    if seconds is None or seconds == "":
        return "–"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.inclusion_tag("partials/score_chart.html")
def score_chart(points, width: int = 600, height: int = 200, label: str = "Score over time"):
    """A server-rendered SVG line chart of scores (0–100) over time; ``points`` are (datetime, score), oldest first.

    Drawn in a fixed viewBox that keeps its aspect ratio (text never squashes) and scaled by CSS,
    so it needs no JavaScript and prints as it shows. The y axis marks the grade boundaries
    (A ≥ 90, C ≥ 65, D ≥ 40) and the latest score is written beside its point.
    """
    points = [(at, score) for at, score in points if at is not None and score is not None]
    frame = Frame(width=width, height=height, left=34, right=40, top=12, bottom=26)
    coords = []
    if points:
        t0 = points[0][0].timestamp()
        span = max(points[-1][0].timestamp() - t0, 1.0)
        for at, score in points:
            x = frame.x0 + (frame.inner_w * (at.timestamp() - t0) / span if len(points) > 1 else frame.inner_w / 2)
            coords.append((round(x, 1), frame.y(score, 100), at, score))
    gridlines = chart_gridlines(frame, (0, 40, 65, 90), 100)
    last = coords[-1] if coords else None
    return {
        "width": width, "height": height, "label": label, "coords": coords,
        "polyline": " ".join(f"{x},{y}" for x, y, _, _ in coords),
        "gridlines": gridlines, "x0": frame.x0, "x1": frame.x1, "label_x": frame.x0 - 6,
        "first": points[0][0] if points else None, "last_at": points[-1][0] if points else None,
        "last": last, "last_label_x": last[0] + 8 if last else 0, "last_label_y": last[1] + 4 if last else 0,
        "axis_y": height - 6, "single": len(points) == 1,
    }


@register.inclusion_tag("partials/chart.html")
def chart(chart: dict):
    """Any chart of ``orgs.charts`` (stacked areas, bars, lines), drawn as SVG with its legend and caption."""
    return {"chart": chart}


@register.simple_tag
def percent(part, whole) -> int:
    try:
        return max(0, min(100, round(100 * float(part) / float(whole)))) if whole else 0
    except (TypeError, ValueError):
        return 0


@register.filter
def scan_windows_text(ranges) -> str:
    """Stored scan windows as a person reads them: 'Mon-Fri 20:00-06:00; Sat-Sun all day', or ''."""
    try:
        return "; ".join(windows.to_text(ranges).splitlines())
    except windows.WindowError:
        return "(unreadable)"


@register.filter
def per_second(value) -> str:
    """A budget of new connections per second, or 'no limit'."""
    return budgets.budget_text(value, "a second")


@register.filter
def at_once(value) -> str:
    return budgets.budget_text(value, "at once")
