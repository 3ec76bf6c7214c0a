"""Every open finding of the report's subject as CSV, streamed row by row.

Rows come from a server-side cursor one chunk at a time (``content.stream_rows``) and go
straight into the output file, so memory stays flat whatever the number of findings. Cells go
through ``config.csv_cells`` (a title or a name that reads as a formula is written as text).
"""

from __future__ import annotations

import io
import json
from typing import Any, BinaryIO

from config.csv_cells import csv_writer
from reports import content
from reports.models import Report
from scans.fields import FINDING

EVIDENCE_CHARS = 2000

# (header, field of scans.fields.FINDING): the appendix's findings with their node's address and name.
COLUMNS = (
    ("finding_id", "id"),
    ("node_id", "node"),
    ("node_address", "node_address"),
    ("node_name", "node_name"),
    ("severity", "severity"),
    ("cvss_score", "cvss_score"),
    ("cvss_vector", "cvss_vector"),
    ("title", "title"),
    ("status", "status"),
    ("source", "source"),
    ("rule_id", "rule_id"),
    ("cve_ids", "cve_ids"),
    ("cwe", "cwe"),
    ("port", "port"),
    ("protocol", "protocol"),
    ("location", "location"),
    ("first_seen", "first_seen"),
    ("last_seen", "last_seen"),
    ("remediation", "remediation"),
    ("evidence", "evidence"),
    ("fingerprint", "fingerprint"),
)
FIELDS = FINDING.pick(*(name for _, name in COLUMNS))
HEADER = [name for name, _ in COLUMNS]
CVE_AT = HEADER.index("cve_ids")
EVIDENCE_AT = HEADER.index("evidence")
TIMES_AT = (HEADER.index("first_seen"), HEADER.index("last_seen"))


def render_csv(*, report: Report, changes: dict[str, Any], out: BinaryIO) -> dict[str, Any]:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
    writer = csv_writer(text)
    writer.writerow(HEADER)
    written = 0
    for row in content.stream_rows(content.appendix_queryset(report), content.appendix_columns(FIELDS)):
        writer.writerow(_cells(row))
        written += 1
    text.flush()
    text.detach()  # the service owns ``out``: leave it open
    return {"rows": written}


def _cells(row: tuple) -> list:
    cells = list(row)
    cves = cells[CVE_AT]
    cells[CVE_AT] = " ".join(content.json_value(cves)) if cves and cves != "[]" else ""
    evidence = cells[EVIDENCE_AT]
    if evidence and not isinstance(evidence, str):
        evidence = json.dumps(evidence, separators=(",", ":"))
    cells[EVIDENCE_AT] = content.shorten(evidence, EVIDENCE_CHARS) if evidence and evidence != "{}" else ""
    for at in TIMES_AT:
        cells[at] = content.iso(cells[at]) or ""
    return cells
