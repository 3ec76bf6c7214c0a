"""The report as a document: HTML with print CSS, and the same HTML turned into a PDF by WeasyPrint.

The document is written in pieces so that memory holds one chunk of findings at a time:
the head (title, contents, executive summary, changes, session details), then one
appendix section per node, then the tail — the same code and templates for both formats.
The PDF shortens evidence further and details at most ``WATCHPOST_REPORT_PDF_MAX_FINDINGS``
findings (see :func:`pdf_limits`); when it caps, it says so, each capped node says how many
it left out, and the full list is in the CSV and JSON exports.
"""

from __future__ import annotations

import html
import logging
import tempfile
from typing import Any, BinaryIO

from django.conf import settings
from django.db.models import Count
from django.template.loader import get_template
from django.utils import timezone

from orgs.templatetags.console import score_chart
from reports import content
from scans.findings.charts import finding_charts
from scans.selectors import finding_trends_for_org
from reports.models import Report

# WeasyPrint logs every CSS property it does not draw and every layout step; only its errors matter here.
logging.getLogger("weasyprint").setLevel(logging.ERROR)

HTML_EVIDENCE_CHARS = 600
PDF_EVIDENCE_CHARS = 120
HTML_CVE_CHARS = 400
PDF_CVE_CHARS = 100
PDF_REMEDIATION_CHARS = 140


def render_html(*, report: Report, changes: dict[str, Any], out: BinaryIO) -> dict[str, Any]:
    return write_document(report=report, changes=changes, out=out, pdf=False)


def render_pdf(*, report: Report, changes: dict[str, Any], out: BinaryIO) -> dict[str, Any]:
    # Heavy: loaded only by the worker that prints.
    from weasyprint import HTML

    from reports.renderers.pdf_fetcher import StaticOnlyFetcher

    with tempfile.NamedTemporaryFile(suffix=".html") as html_file:
        info = write_document(report=report, changes=changes, out=html_file, pdf=True)
        html_file.flush()
        document = HTML(filename=html_file.name, base_url=str(settings.BASE_DIR),
                        url_fetcher=StaticOnlyFetcher()).render()
        document.write_pdf(out)
    return {**info, "pages": len(document.pages)}


def write_document(*, report: Report, changes: dict[str, Any], out: BinaryIO, pdf: bool) -> dict[str, Any]:
    summary = content.executive_summary(report)
    nodes = appendix_nodes(report)
    per_node, max_nodes = pdf_limits(nodes) if pdf else (None, None)
    detailed = nodes[:max_nodes] if max_nodes is not None else nodes
    context = {
        "report": report,
        "org": report.org,
        "title": document_title(report),
        "generated_at": timezone.now(),
        "summary": summary,
        # The console's chart geometry (orgs/templatetags/console.py), drawn by our own partial.
        "chart": score_chart(summary["trend"], width=640, height=180, label="Score over time"),
        "finding_charts": organization_charts(report),
        "changes": changes,
        "change_rows": change_rows(changes),
        "appendix_nodes": nodes,
        "detailed_nodes": detailed,
        "summarized_nodes": nodes[len(detailed):],
        "appendix_total": sum(n["open"] for n in nodes),
        "per_node": per_node,
        "max_nodes": max_nodes if max_nodes is not None and len(nodes) > max_nodes else None,
        "pdf": pdf,
    }
    out.write(get_template("reports/document_head.html").render(context).encode())
    printed = 0
    for section in content.appendix(
        report, per_node=per_node, max_nodes=max_nodes,
        evidence_chars=PDF_EVIDENCE_CHARS if pdf else HTML_EVIDENCE_CHARS,
        cve_chars=PDF_CVE_CHARS if pdf else HTML_CVE_CHARS,
    ):
        printed += len(section.findings)
        out.write(section_html(section, pdf=pdf).encode())
    out.write(get_template("reports/document_tail.html").render(context).encode())
    return {"open_findings": summary["open_findings"], "score": summary["score"], "grade": summary["grade"],
            "printed_findings": printed}


def organization_charts(report: Report) -> dict[str, Any] | None:
    """The dashboard's trend charts (scans.findings.charts), for an organization report with a history to draw."""
    if report.kind != Report.Kind.ORGANIZATION:
        return None
    charts = finding_charts(finding_trends_for_org(org=report.org))
    return charts if any(not chart.get("empty") for chart in charts.values()) else None


def section_html(section: content.NodeSection, *, pdf: bool) -> str:
    """One node of the appendix: a heading and a table of its findings, worst first.

    Built with plain string formatting and ``html.escape`` rather than a Django template: the
    appendix of a large organization has tens of thousands of rows, and the template engine
    takes ten times as long per row. Every value from the database is escaped here.
    """
    node = section.node
    heading = e(node["address"])
    if node.get("name"):
        heading += f" · {e(node['name'])}"
    if node.get("grade"):
        grade = e(node["grade"])
        heading += f' · score {node["score"]} <span class="grade grade-{grade}">{grade}</span>'
    rows = [pdf_row(f) if pdf else html_row(f) for f in section.findings]
    omitted = ""
    if section.omitted:
        omitted = (f'<p class="note">{section.omitted} more open finding{"s" if section.omitted != 1 else ""} on this '
                   "node: the full list is in the CSV and JSON exports.</p>\n")
    return (
        f'<section class="node" id="node-{node["id"]}">\n<h3>{heading}</h3>\n'
        + (PDF_TABLE_HEAD if pdf else HTML_TABLE_HEAD) + "".join(rows) + "</tbody>\n</table></div>\n" + omitted + "</section>\n"
    )


HTML_TABLE_HEAD = ('<div class="table-wrap"><table class="findings">\n<thead><tr><th>Sev.</th><th class="num">CVSS</th>'
                   "<th>Finding</th><th>CVE</th><th>Evidence</th><th>Remediation</th></tr></thead>\n<tbody>\n")
# The PDF's rows have fewer cells and less text: WeasyPrint's time grows with boxes and lines.
PDF_TABLE_HEAD = ('<div class="table-wrap"><table class="findings pdf">\n<thead><tr><th>Severity</th>'
                  "<th>Finding and CVE data</th><th>Evidence</th><th>Remediation</th></tr></thead>\n<tbody>\n")


def html_row(f: dict[str, Any]) -> str:
    severity = e(f["severity"])
    finding = f'<strong>{e(f["title"])}</strong><br><span class="muted">{meta(f)}</span>'
    if f["cvss_vector"]:
        finding += f'<br><span class="muted">{e(f["cvss_vector"])}</span>'
    cves = "".join(cve_html(c) for c in f["cves"]) or "–"
    cvss = f"{f['cvss_score']:.1f}" if f["cvss_score"] is not None else "–"
    return (f'<tr><td><span class="sev sev-{severity}">{severity}</span></td><td class="num">{cvss}</td>'
            f'<td>{finding}</td><td>{cves}</td><td class="evidence">{e(f["evidence_text"])}</td>'
            f'<td>{e(f["remediation"])}</td></tr>\n')


def pdf_row(f: dict[str, Any]) -> str:
    severity = e(f["severity"])
    cvss = f" {f['cvss_score']:.1f}" if f["cvss_score"] is not None else ""
    cves = "".join(f"<br>{cve_html(c, tag='b')}" for c in f["cves"])
    return (f'<tr><td class="sev-{severity}-text">{severity}{cvss}</td>'
            f'<td><b>{e(f["title"])}</b> <span class="muted">{meta(f)}</span>{cves}</td>'
            f'<td class="evidence">{e(f["evidence_text"])}</td>'
            f'<td>{e(content.shorten(f["remediation"], PDF_REMEDIATION_CHARS))}</td></tr>\n')


def meta(f: dict[str, Any]) -> str:
    text = f"{e(f['source'])} · {e(f['rule_id'])}"
    if f["port"]:
        text += f" · {f['port']}/{e(f['protocol'])}"
    if f["cwe"]:
        text += f" · CWE-{f['cwe']}"
    return text


def cve_html(cve: dict[str, Any], tag: str = "span") -> str:
    score = f" ({cve['cvss_score']:.1f})" if cve["cvss_score"] is not None else ""
    if tag != "span":
        return f'<{tag}>{e(cve["id"])}</{tag}>{score} {e(cve["description"])}'
    return f'<span class="cve"><strong>{e(cve["id"])}</strong>{score} {e(cve["description"])}</span>'


def e(value: Any) -> str:
    return html.escape(str(value) if value is not None else "", quote=True)


def pdf_limits(nodes: list[dict[str, Any]]) -> tuple[int | None, int | None]:
    """(findings per node, nodes) a PDF appendix details, or (None, None) for everything.

    WeasyPrint lays out about a page a second on a busy machine, so a PDF details at most
    ``WATCHPOST_REPORT_PDF_MAX_FINDINGS`` findings: over that, each node keeps its worst
    ``max(WATCHPOST_REPORT_PDF_FINDINGS_PER_NODE, budget / nodes)`` and the worst nodes fill
    the budget; the rest are listed one line each. The CSV and JSON always hold every finding.
    """
    budget = getattr(settings, "WATCHPOST_REPORT_PDF_MAX_FINDINGS", 0)
    total = sum(n["open"] for n in nodes)
    if not budget or total <= budget:
        return None, None
    per_node = max(getattr(settings, "WATCHPOST_REPORT_PDF_FINDINGS_PER_NODE", 5) or 1, budget // max(1, len(nodes)))
    return per_node, max(1, budget // per_node)


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
            for kind, label in CHANGE_LABELS.items() if kind in counts]
