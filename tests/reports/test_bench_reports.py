"""``bench reports``: the organization report in every format, and the findings list's export."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db(transaction=True)


def test_bench_reports_times_every_format_and_the_export_and_ends_on_one_json_line():
    out = io.StringIO()
    call_command("bench", "reports", "--nodes", "20", "--findings", "200", "--export-nodes", "10",
                 "--export-findings", "100", stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["benchmark"] == "reports" and summary["findings"] == 200
    assert summary["export_findings"] == 100
    assert summary["export_s"] >= 0 and summary["export_rss_growth_mb"] is not None
    assert {"html_s", "pdf_s", "csv_s", "json_s"} <= set(summary)
