"""CSV that a spreadsheet opens as data, never as formulas (CSV injection, OWASP).

Every CSV the product writes goes through :func:`csv_writer`: a ``csv.writer`` whose rows pass
through :func:`csv_cell` first. A text cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is what Excel, LibreOffice and Google Sheets evaluate as a formula; it gets a
leading single quote, which those programs show as text (OWASP's advice). Anyone reading the file
back with a CSV library sees the quote and can strip it.

Only text is inspected. Numbers the code itself writes (``int``, ``float``, ``Decimal``: a port, a
CVSS score, a count) are values, not something a person typed, and a negative one stays a number
(``-1`` and not ``'-1``). Text that merely looks like a number (``"-1"`` from a name or a title)
is text from outside and is neutralized like any other.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value`` as it may go into a CSV cell: text a spreadsheet would evaluate is prefixed with ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class SafeCsvWriter:
    """``csv.writer``'s ``writerow``/``writerows``, every cell through :func:`csv_cell`."""

    def __init__(self, out, **fmtparams):
        self._writer = csv.writer(out, **fmtparams)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(out, **fmtparams) -> SafeCsvWriter:
    """The one way the product writes CSV: ``csv_writer(file).writerow([...])``."""
    return SafeCsvWriter(out, **fmtparams)
