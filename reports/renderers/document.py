"""The report as a document: HTML with print CSS, and the same HTML turned into a PDF by WeasyPrint.

The document is written in pieces so that memory holds one chunk of findings at a time:
the head (title, contents, executive summary, changes, session details), then one
appendix section per node, then the tail — the same templates for both formats. The PDF
shortens evidence further and may cap the findings printed per node
(``WATCHPOST_REPORT_PDF_FINDINGS_PER_NODE``); when it does, each capped node says how
many it left out and that the full list is in the CSV and JSON exports.
"""

from __future__ import annotations

import logging
import tempfile
from typing import Any, BinaryIO

from django.conf import settings
from django.db.models import Count
from django.template.loader import get_template
from django.utils import timezone

from orgs.templatetags.console import score_chart
from reports import content
from reports.models import Report

# WeasyPrint logs every CSS property it does not draw and every layout step; only its errors matter here.
logging.getLogger("weasyprint").setLevel(logging.ERROR)

HTML_EVIDENCE_CHARS = 600
PDF_EVIDENCE_CHARS = 160
HTML_CVE_CHARS = 400
PDF_CVE_CHARS = 160


def render_html(*, report: Report, changes: dict[str, Any], out: BinaryIO) -> dict[str, Any]:
    return write_document(report=report, changes=changes, out=out, pdf=False)


def render_pdf(*, report: Report, changes: dict[str, Any], out: BinaryIO) -> dict[str, Any]:
    from weasyprint import HTML  # heavy: loaded only by the worker that prints

    with tempfile.NamedTemporaryFile(suffix=".html") as html_file:
        info = write_document(report=report, changes=changes, out=html_file, pdf=True)
        html_file.flush()
        document = HTML(filename=html_file.name, base_url=str(settings.BASE_DIR)).render()
        document.write_pdf(out)
    return {**info, "pages": len(document.pages)}


def write_document(*, report: Report, changes: dict[str, Any], out: BinaryIO, pdf: bool) -> dict[str, Any]:
    per_node = pdf_findings_per_node() if pdf else None
    summary = content.executive_summary(report)
    nodes = appendix_nodes(report)
    context = {
        "report": report,
        "org": report.org,
        "title": document_title(report),
        "generated_at": timezone.now(),
        "summary": summary,
        "chart": score_chart(summary["trend"], label="Score over time"),
        "changes": changes,
        "change_rows": change_rows(changes),
        "appendix_nodes": nodes,
        "appendix_total": sum(n["open"] for n in nodes),
        "per_node": per_node,
        "pdf": pdf,
    }
    out.write(get_template("reports/document_head.html").render(context).encode())
    section_template = get_template("reports/partials/appendix_node.html")
    omitted = 0
    for index, section in enumerate(content.appendix(
        report, per_node=per_node,
        evidence_chars=PDF_EVIDENCE_CHARS if pdf else HTML_EVIDENCE_CHARS,
        cve_chars=PDF_CVE_CHARS if pdf else HTML_CVE_CHARS,
    ), start=1):
        omitted += section.omitted
        out.write(section_template.render({"section": section, "index": index, "pdf": pdf}).encode())
    out.write(get_template("reports/document_tail.html").render(context).encode())
    return {"open_findings": summary["open_findings"], "score": summary["score"], "grade": summary["grade"],
            "omitted_from_pdf": omitted if pdf else 0}


def pdf_findings_per_node() -> int | None:
    cap = getattr(settings, "WATCHPOST_REPORT_PDF_FINDINGS_PER_NODE", 0)
    return cap or None


def document_title(report: Report) -> str:
    if report.kind == Report.Kind.NODE and report.node_id:
        return f"Node report: {report.node}"
    if report.kind == Report.Kind.SESSION and report.session_id:
        return f"Session report: session #{report.session_id} of {report.org}"
    return f"Organization report: {report.org}"


def appendix_nodes(report: Report) -> list[dict[str, Any]]:
    """The appendix's nodes in its order (for the table of contents), with their open findings."""
    rows = (
        content.open_findings_in_scope(report).order_by()
        .values("node_id", "node__address", "node__name", "node__snapshot__score", "node__snapshot__grade")
        .annotate(open=Count("pk"))
    )
    nodes = [
        {"id": r["node_id"], "address": r["node__address"], "name": r["node__name"],
         "score": r["node__snapshot__score"], "grade": r["node__snapshot__grade"] or "", "open": r["open"]}
        for r in rows
    ]
    nodes.sort(key=lambda n: (n["score"] is None, n["score"] if n["score"] is not None else 0, n["address"], n["id"]))
    return nodes


CHANGE_LABELS = {
    "new": "New findings",
    "fixed": "Fixed",
    "reopened": "Reopened",
    "risk_accepted": "Risk accepted",
    "severity_changed": "Severity changed",
}


def change_rows(changes: dict[str, Any]) -> list[dict[str, Any]]:
    counts = changes.get("counts") or {}
    examples = changes.get("examples") or {}
    return [{"kind": kind, "label": label, "count": counts.get(kind, 0), "examples": examples.get(kind, [])}
            for kind, label in CHANGE_LABELS.items()]
