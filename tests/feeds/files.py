"""Feed files in each feed's real format, written by the tests: a KEV catalog (JSON) and an EPSS day (CSV)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path


def kev_entry(cve_id: str, *, added: str = "2024-05-02", due: str = "2024-05-23", ransomware: str = "Unknown",
              **changes) -> dict:
    entry = {
        "cveID": cve_id, "vendorProject": "Apache", "product": "HTTP Server",
        "vulnerabilityName": "Apache HTTP Server Path Traversal Vulnerability", "dateAdded": added,
        "shortDescription": "Apache HTTP Server contains a path traversal vulnerability.",
        "requiredAction": "Apply updates per vendor instructions.", "dueDate": due,
        "knownRansomwareCampaignUse": ransomware, "notes": f"https://nvd.nist.gov/vuln/detail/{cve_id}",
        "cwes": ["CWE-22"],
    }
    entry.update(changes)
    return entry


def kev_document(entries: list[dict], **changes) -> dict:
    document = {"title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2026.12.06",
                "dateReleased": "2026-12-06T17:01:48.1234Z", "count": len(entries), "vulnerabilities": entries}
    document.update(changes)
    return document


def kev_bytes(entries: list[dict], **changes) -> bytes:
    return json.dumps(kev_document(entries, **changes)).encode()


def epss_text(rows: list[tuple[str, str, str]], *, score_date: str = "2026-12-06",
              header: str = "cve,epss,percentile") -> str:
    lines = [f"#model_version:v2025.03.14,score_date:{score_date}T00:00:00+0000", header]
    lines += [",".join(row) for row in rows]
    return "\n".join(lines) + "\n"


def epss_gzip(rows: list[tuple[str, str, str]], **kwargs) -> bytes:
    return gzip.compress(epss_text(rows, **kwargs).encode())


def write(folder: Path, name: str, content: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path
