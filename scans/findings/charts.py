"""The findings' four trend charts, from ``scans.selectors.finding_trends_for_org``'s rows.

Shared by the dashboard and the organization report; drawn by ``orgs.charts`` (the console's one
chart engine). Each chart says in its caption what it counts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from orgs.charts import GOOD, SEVERITY_COLOURS, Frame, Series, bar_chart, line_chart, stacked_area_chart
from scans.models import SEVERITIES

SEVERITY_LABELS = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low", "info": "Info"}
NEW_COLOUR = "#c0392b"


def _day_label(day: dt.date) -> str:
    return f"{day:%b} {day.day}"


def _filled_days(rows, *, today: dt.date) -> list[dict[str, Any]]:
    """Every day from the first row to today: a day without a row (no refresh ran) carries the
    previous day's open counts and SLA, with nothing new or fixed."""
    if not rows:
        return []
    by_day = {r.day: r for r in rows}
    days, previous = [], None
    day = rows[0].day
    while day <= max(today, rows[-1].day):
        row = by_day.get(day)
        if row is not None:
            previous = row
            days.append({"day": day, "row": row, "carried": False})
        else:
            days.append({"day": day, "row": previous, "carried": True})
        day += dt.timedelta(days=1)
    return days


def open_by_severity_chart(days: list[dict[str, Any]], *, frame: Frame, window: int) -> dict[str, Any]:
    if not days:
        return {"empty": "No history yet: the first point is written when a session or an import is scored."}
    chart = stacked_area_chart(
        labels=[_day_label(d["day"]) for d in days], frame=frame,
        series=[Series(s, SEVERITY_LABELS[s], SEVERITY_COLOURS[s], [getattr(d["row"], f"open_{s}") for d in days])
                for s in SEVERITIES],
        label="Open findings by severity, per day")
    chart["caption"] = (f"Open findings at each day's last count (UTC), stacked by severity, over the last {window} "
                        "days: the dashboard's figures, potential findings left out.")
    return chart


def new_vs_fixed_chart(sessions, *, frame: Frame) -> dict[str, Any]:
    """``sessions`` newest first (as the selector reads them); drawn oldest first."""
    if not sessions:
        return {"empty": "No session or import has finished yet."}
    sessions = list(reversed(sessions))
    labels = [f"#{s.pk}" for s in sessions]
    titles = [f"{'import' if s.trigger == 'import' else 'session'} {s.pk}, {s.finished_at or s.created_at:%Y-%m-%d %H:%M}"
              for s in sessions]
    chart = bar_chart(labels=labels, titles=titles, frame=frame, label="New and fixed findings per session",
                      series=[Series("new", "New", NEW_COLOUR, [s.findings_new for s in sessions]),
                              Series("fixed", "Fixed", GOOD, [s.findings_fixed for s in sessions])])
    chart["caption"] = f"The last {len(sessions)} finished sessions and imports, oldest first."
    return chart


def _days(value: float) -> str:
    if value == 0:
        return "0 d"
    return f"{value:.1f} d" if value < 10 else f"{value:.0f} d"


def mean_time_to_fix_chart(days: list[dict[str, Any]], *, frame: Frame, window: int) -> dict[str, Any]:
    rows = [d["row"] for d in days if not d["carried"]]
    fixed = {s: sum(getattr(r, f"fixed_{s}") for r in rows) for s in SEVERITIES}
    seconds = {s: sum(getattr(r, f"fix_seconds_{s}") for r in rows) for s in SEVERITIES}
    shown = [s for s in SEVERITIES if fixed[s]]
    if not shown:
        return {"empty": f"No finding was fixed in the last {window} days.",
                "caption": "Mean time to fix: days from first seen to fixed, per severity."}
    chart = bar_chart(
        labels=[SEVERITY_LABELS[s] for s in shown], frame=frame, label="Mean time to fix per severity",
        titles=[f"{fixed[s]:,} fixed" for s in shown], fmt=_days,
        colours=[SEVERITY_COLOURS[s] for s in shown],
        series=[Series("mttf", "Mean time to fix", SEVERITY_COLOURS["high"],
                       [seconds[s] / fixed[s] / 86400 for s in shown])])
    chart["caption"] = (f"Mean days from first seen to fixed, over the {sum(fixed.values()):,} findings fixed in the "
                        f"last {window} days.")
    return chart


def sla_compliance_chart(days: list[dict[str, Any]], *, frame: Frame, window: int) -> dict[str, Any]:
    values = [(100 * (d["row"].sla_open - d["row"].sla_overdue) / d["row"].sla_open) if d["row"].sla_open else None
              for d in days]
    caption = ("SLA compliance: the share of open findings with a due date that are not past it, at each day's "
               f"last count (UTC), over the last {window} days. A fixed finding leaves the count.")
    if not any(v is not None for v in values):
        return {"empty": "No open finding has a due date yet.", "caption": caption}
    chart = line_chart(labels=[_day_label(d["day"]) for d in days], frame=frame, ymax=100, grid=(0, 25, 50, 75, 100),
                       fmt=lambda v: f"{v:.0f}%", titles=[f"{d['day']:%Y-%m-%d}" for d in days],
                       series=[Series("sla", "Within SLA", GOOD, values)], label="SLA compliance per day")
    chart["caption"] = caption
    return chart


def finding_charts(trends: dict[str, Any], *, frame: Frame = Frame()) -> dict[str, dict[str, Any]]:
    """The four charts by name: open_by_severity, new_vs_fixed, mean_time_to_fix, sla_compliance."""
    days = _filled_days(trends["days"], today=trends["today"])
    window = trends["window"]
    return {
        "open_by_severity": open_by_severity_chart(days, frame=frame, window=window),
        "new_vs_fixed": new_vs_fixed_chart(trends["sessions"], frame=frame),
        "mean_time_to_fix": mean_time_to_fix_chart(days, frame=frame, window=window),
        "sla_compliance": sla_compliance_chart(days, frame=frame, window=window),
    }
