"""``bench console``: a small run generates its organization once and prints one JSON line last."""

import io
import json

import pytest
from django.core.management import call_command

from nodes.models import Node
from scans.models import Finding, FindingEvent

PAGES = ["dashboard", "nodes", "node_detail", "findings", "findings_filtered", "findings_grouped", "findings_overdue",
         "findings_assigned", "finding_detail", "sessions",
         "session_detail", "interventions"]


@pytest.mark.django_db(transaction=True)
def test_bench_console_measures_every_page():
    out = io.StringIO()
    args = ["bench", "console", "--nodes", "20", "--findings", "400", "--requests", "1", "--warmup", "0"]
    call_command(*args, stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert list(summary) == ["benchmark", "nodes", "findings", "pages"]
    assert (summary["benchmark"], summary["nodes"], summary["findings"]) == ("console", 20, 400)
    assert list(summary["pages"]) == PAGES
    assert all(list(page) == ["queries", "median_ms", "p95_ms"] for page in summary["pages"].values())
    assert Node.objects.filter(org__slug="bench-console").count() == 20
    assert Finding.objects.filter(org__slug="bench-console").count() == 400
    assert FindingEvent.objects.filter(finding__org__slug="bench-console").exists()

    again = io.StringIO()
    call_command(*args, stdout=again)
    assert "reused" in again.getvalue()
