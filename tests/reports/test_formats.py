"""What each format says: PDF text extracted, CSV parsed, JSON and SARIF validated against their schemas."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest
from jsonschema import Draft202012Validator

from reports import schemas
from reports.models import Report
from reports.renderers import csv_export
from reports.services import report_generate
from scans.models import Finding


def generate(org, fmt, kind="organization", **subject) -> Report:
    report = Report.objects.create(org=org, kind=kind, format=fmt, trigger=Report.Trigger.CONSOLE, **subject)
    report = report_generate(report_id=report.pk)
    assert report.status == Report.Status.READY, report.error
    return report


def read(report) -> bytes:
    with report.file.open("rb") as fh:
        return fh.read()


def validate(document, schema_path):
    validator = Draft202012Validator(schemas.load(schema_path), format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def pdf_text(report, *, layout: bool = False) -> str:
    """The PDF's text (poppler's pdftotext); words of table cells joined by single spaces unless ``layout``."""
    text = subprocess.run(["pdftotext", *(["-layout"] if layout else []), report.file.path, "-"], check=True,
                          capture_output=True, text=True).stdout
    return text if layout else " ".join(text.split())


def test_the_pdf_opens_with_the_executive_summary_and_ends_with_every_open_finding(estate):
    report = generate(estate.org, "pdf")

    text = pdf_text(report)
    assert report.content_type == "application/pdf" and read(report).startswith(b"%PDF")
    assert report.pages >= 2
    assert text.index("Executive summary") < text.index("Top risks") < text.index("Technical appendix")
    assert "Contents" in text and "Page 1 of" in text
    assert "Critical risk on one node: Apache Log4j2 Remote Code Injection." in text
    assert "What to do: Upgrade Log4j to 2.17.1 or later." in text
    appendix = text[text.rindex("Technical appendix"):]
    # Worst node first (web-1 scores 35, db-1 70), and CVE data from the catalog beside the finding.
    assert appendix.index("127.0.60.1") < appendix.index("127.0.60.2")
    assert "CVE-2021-44228" in appendix and "(10.0)" in appendix and "JNDI" in appendix
    assert "Redis answers without a password" in appendix
    assert "This is the first organization report for Acme" in text


def test_the_pdf_contents_give_each_section_its_page_number(estate):
    report = generate(estate.org, "pdf")

    text = pdf_text(report, layout=True)
    toc_line = next(line for line in text.splitlines() if "Technical appendix" in line)  # the first: the contents
    # The page the appendix's heading is on, after the contents' page.
    page = next(n for n, words in enumerate(text.split("\f")[1:], start=2) if "Technical appendix" in words)
    assert toc_line.split()[-1] == str(page) and ". . ." in toc_line


def test_a_capped_pdf_says_where_the_full_list_is(estate, settings):
    settings.WATCHPOST_REPORT_PDF_MAX_FINDINGS = 2
    settings.WATCHPOST_REPORT_PDF_FINDINGS_PER_NODE = 1

    text = pdf_text(generate(estate.org, "pdf"))

    assert "This PDF details every node with open findings, at most 1 finding per node." in text
    assert "The full list of 3 open findings is in the CSV and JSON exports." in text
    assert "1 more open finding on this node: the full list is in the CSV and JSON exports." in text


def test_the_html_report_is_one_self_contained_document_with_print_css(estate):
    html = read(generate(estate.org, "html")).decode()

    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert "@page" in html and "counter(page)" in html and "target-counter" in html
    assert '<svg viewBox="0 0 640 180"' in html and "<polyline" in html  # the trend chart, drawn server-side
    assert 'font-weight="bold">52</text>' in html  # the latest score beside its point
    assert html.count('<section class="node"') == 2
    assert "<link" not in html and "<script" not in html


def test_the_csv_has_a_row_per_open_finding_worst_first(estate):
    Finding.objects.filter(pk=estate.headers.pk).update(status=Finding.Status.FIXED)

    report = generate(estate.org, "csv")
    rows = list(csv.DictReader(io.StringIO(read(report).decode())))

    assert report.content_type.startswith("text/csv")
    assert [r["title"] for r in rows] == ["Apache Log4j2 Remote Code Injection", "Redis answers without a password"]
    assert list(rows[0]) == csv_export.HEADER
    first = rows[0]
    assert first["node_address"] == "127.0.60.1" and first["severity"] == "critical" and first["cvss_score"] == "10.0"
    assert first["cve_ids"] == "CVE-2021-44228" and json.loads(first["evidence"])["payload"] == "${jndi:ldap}"


def test_the_json_report_validates_against_its_published_schema(estate):
    report = generate(estate.org, "json")
    document = json.loads(read(report))

    validate(document, schemas.REPORT_SCHEMA)
    assert document["schema_version"] == "1.1"
    assert document["summary"]["severity_counts"] == {"critical": 1, "high": 1, "medium": 1, "low": 0, "info": 0}
    assert [f["title"] for f in document["findings"]][0] == "Apache Log4j2 Remote Code Injection"
    assert document["findings"][0]["cves"][0]["cvss_score"] == 10.0
    assert document["changes"]["previous"] is None


def test_a_node_report_covers_that_node_only(estate):
    document = json.loads(read(generate(estate.org, "json", kind="node", node=estate.db)))

    validate(document, schemas.REPORT_SCHEMA)
    assert document["subject"] == {"type": "node", "id": estate.db.pk, "address": "127.0.60.2"}
    assert [f["title"] for f in document["findings"]] == ["Redis answers without a password"]
    assert document["summary"]["score"] == 70 and document["summary"]["grade"] == "C"


def test_a_session_report_says_what_ran_what_failed_and_why(estate):
    report = generate(estate.org, "json", kind="session", session=estate.session)
    document = json.loads(read(report))

    validate(document, schemas.REPORT_SCHEMA)
    session = document["session"]
    assert session["failed_jobs"] == [{"node": "127.0.60.2", "scanner": "exposure", "attempts": 3,
                                       "error": "connection refused"}]
    assert [f["title"] for f in session["new"]] == ["Apache Log4j2 Remote Code Injection"]
    assert [s["stage"] for s in session["stages"]][0] == "discovery"

    text = pdf_text(generate(estate.org, "pdf", kind="session", session=estate.session))
    assert "What failed and why" in text and "connection refused" in text and "Stage timings" in text


def test_the_sarif_export_validates_and_points_at_each_finding(estate):
    report = generate(estate.org, "sarif")
    document = json.loads(read(report))

    validate(document, schemas.SARIF_SCHEMA)
    assert report.content_type == "application/sarif+json" and report.file_name.endswith(".sarif")
    run = document["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len(run["results"]) == 3 and len(rules) == 3
    first = run["results"][0]
    assert first["level"] == "error" and rules[first["ruleIndex"]]["id"] == first["ruleId"] == "CVE-2021-44228"
    assert first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "tcp://127.0.60.1:8080"
    assert first["properties"]["cves"] == ["CVE-2021-44228"]


@pytest.mark.parametrize("broken", [{"version": "2.0.0", "runs": []}, {"version": "2.1.0", "runs": [{"results": []}]},
                                    {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}},
                                                                   "results": [{"ruleId": "r", "level": "fatal",
                                                                                "message": {"text": "m"}}]}]}])
def test_the_sarif_schema_rejects_what_sarif_forbids(broken):
    validator = Draft202012Validator(schemas.load(schemas.SARIF_SCHEMA))
    assert list(validator.iter_errors(broken))


def _trend_rows(org, days=20):
    from datetime import timedelta

    from django.utils import timezone

    from scans.models import FindingDailyStats, ScanSession

    today = timezone.now().date()
    FindingDailyStats.objects.bulk_create(
        FindingDailyStats(org=org, day=today - timedelta(days=i), open_critical=1 + i % 3, open_high=4, open_medium=9,
                          sla_open=10, sla_overdue=i % 4, fixed_high=2, fix_seconds_high=2 * 86400 * 3)
        for i in range(days))
    ScanSession.objects.bulk_create(
        ScanSession(org=org, trigger="schedule", status="succeeded", stage="done", correlation_id=f"trend-{i}",
                    findings_new=5 + i, findings_fixed=i, finished_at=timezone.now() - timedelta(days=i))
        for i in range(6))


def test_the_organization_report_draws_the_findings_trend_charts(estate):
    _trend_rows(estate.org)
    html = read(generate(estate.org, "html")).decode()

    section = html[html.index("Findings over time"):]
    for label in ("Open findings by severity, per day", "New and fixed findings per session",
                  "Mean time to fix per severity", "SLA compliance per day"):
        assert f'aria-label="{label}"' in section
    assert 'fill="#8b0000"' in section  # colours as presentation attributes: WeasyPrint reads no CSS in an SVG
    assert "3.0 d" in section  # high findings took three days to fix


def test_the_pdf_organization_report_prints_the_trend_charts(estate):
    _trend_rows(estate.org)
    text = pdf_text(generate(estate.org, "pdf"))

    assert "Findings over time" in text and "Mean time to fix" in text and "SLA compliance" in text
    assert "A fixed finding leaves the count." in text


def test_a_node_report_has_no_organization_trend_charts(estate):
    _trend_rows(estate.org)
    html = read(generate(estate.org, "html", kind="node", node=estate.headers.node)).decode()
    assert "Findings over time" not in html


def test_an_organization_without_history_gets_no_empty_trend_charts_in_its_report(world):
    html = read(generate(world.org, "html")).decode()
    assert "Findings over time" not in html
