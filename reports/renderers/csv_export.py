"""Every open finding of the report's subject as CSV, streamed row by row.

Rows come from the database in chunks (``values_list(...).iterator(chunk_size=...)``) and
go straight into the output file, so memory stays flat whatever the number of findings.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, BinaryIO

from reports import content
from reports.models import Report

CHUNK = 2000
EVIDENCE_CHARS = 2000

COLUMNS = (
    ("finding_id", "id"),
    ("node_id", "node_id"),
    ("node_address", "node__address"),
    ("node_name", "node__name"),
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
HEADER = [name for name, _ in COLUMNS]


def render_csv(*, report: Report, changes: dict[str, Any], out: BinaryIO) -> dict[str, Any]:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(HEADER)
    rows = content.appendix_queryset(report).values_list(*(field for _, field in COLUMNS)).iterator(chunk_size=CHUNK)
    written = 0
    for row in rows:
        writer.writerow(_cells(row))
        written += 1
    text.flush()
    text.detach()  # the service owns ``out``: leave it open
    return {"rows": written}


CVE_AT = HEADER.index("cve_ids")
EVIDENCE_AT = HEADER.index("evidence")
TIMES_AT = (HEADER.index("first_seen"), HEADER.index("last_seen"))


def _cells(row: tuple) -> list:
    cells = list(row)
    cells[CVE_AT] = " ".join(cells[CVE_AT] or [])
    evidence = cells[EVIDENCE_AT]
    cells[EVIDENCE_AT] = content.shorten(json.dumps(evidence, default=str, separators=(",", ":")), EVIDENCE_CHARS) \
        if evidence else ""
    for at in TIMES_AT:
        cells[at] = cells[at].isoformat() if cells[at] else ""
    return ["" if c is None else c for c in cells]
