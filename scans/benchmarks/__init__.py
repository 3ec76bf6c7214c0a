"""Benchmarks behind ``python manage.py bench NAME``.

Each module here defines ``help``, ``add_arguments(parser)`` and
``run(options, out) -> dict``; the command prints a table, then the returned
summary as one JSON line, last, so scripts can read it. The command's
``BENCHMARKS`` table (reports/management/commands/bench.py) names them.
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


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)
