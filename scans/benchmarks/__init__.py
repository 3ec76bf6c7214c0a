"""Benchmarks behind ``python manage.py bench NAME``.

Each benchmark module here defines ``help``, ``add_arguments(parser)`` and
``run(options, out) -> dict``; the command prints a table, then the returned
summary as one JSON line, last, so scripts can read it. The command's
``BENCHMARKS`` table (reports/management/commands/bench.py) names them.

What they share is written once: the table, the JSON line and percentiles here;
``generate`` (an organization's rows, set-based) and ``processes`` (gunicorn and
Celery workers started beside a benchmark).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO


def print_table(out: TextIO, title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    out.write(f"\n{title}\n")
    for n, row in enumerate(cells):
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")


def print_summary(out: TextIO, summary: dict[str, Any]) -> None:
    out.write(json.dumps(summary, default=str) + "\n")  # in the order the benchmark gives its keys


def percentile(values: list[float], p: float) -> float:
    """The value ``p`` percent of the way up the sorted ``values`` (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)
