"""The exploitation feeds' import speed, for ``bench cves``: a KEV catalog and an EPSS day, generated and imported.

Each function writes a file in the feed's real format to a temporary folder (the KEV JSON as
CISA publishes it, the EPSS CSV gzip-compressed with its model comment line) and times the
import through the service every path takes (``scans.cve.feed_sync.kev_import`` /
``epss_import``: parse, COPY, the snapshot's DELETE and upsert, the findings' refresh).

What is timed is a day's run: the previous day's file (1% of its CVEs gone the next day, as
many new) is imported first, untimed, and the timed import replaces it, so every stored row
is updated or deleted as in production. Both run inside a transaction that is rolled back
once timed, so the database keeps the feeds it had: a run against a deployment's database
replaces nothing.
"""

from __future__ import annotations

import gzip
import json
import random
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from django.db import transaction

from scans.cve.feed_sync import epss_import, kev_import

_VENDORS = ("Microsoft", "Apache", "Cisco", "Fortinet", "Ivanti", "Citrix", "Oracle", "VMware", "Google", "Adobe")


def kev_catalog_write(path: Path, *, entries: int, seed: int = 1, first_id: int = 0) -> Path:
    """A KEV catalog of ``entries`` listings in CISA's JSON format."""
    rng = random.Random(seed)
    first = date(2021, 11, 3)
    vulnerabilities = []
    for n in range(first_id, first_id + entries):
        added = first + timedelta(days=rng.randrange(1800))
        vendor = rng.choice(_VENDORS)
        vulnerabilities.append({
            "cveID": f"CVE-{2000 + n % 26}-{10000 + n}", "vendorProject": vendor, "product": f"Product {n % 97}",
            "vulnerabilityName": f"{vendor} Product {n % 97} Remote Code Execution Vulnerability",
            "dateAdded": added.isoformat(),
            "shortDescription": "Contains a vulnerability that allows a remote attacker to execute code.",
            "requiredAction": "Apply mitigations per vendor instructions or discontinue use of the product.",
            "dueDate": (added + timedelta(days=21)).isoformat(),
            "knownRansomwareCampaignUse": "Known" if rng.random() < 0.15 else "Unknown",
            "notes": f"https://nvd.nist.gov/vuln/detail/CVE-{2000 + n % 26}-{10000 + n}", "cwes": ["CWE-78"],
        })
    catalog = {"title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2026.12.06",
               "dateReleased": "2026-12-06T17:01:48.1234Z", "count": entries, "vulnerabilities": vulnerabilities}
    path.write_text(json.dumps(catalog, indent=2))
    return path


def epss_scores_write(path: Path, *, rows: int, seed: int = 1, score_date: str = "2026-12-06",
                      first_id: int = 0) -> Path:
    """An EPSS day of ``rows`` scores, gzip-compressed CSV as FIRST publishes it."""
    rng = random.Random(seed)
    scores = sorted(rng.random() ** 6 for _ in range(rows))
    lines = [f"#model_version:v2025.03.14,score_date:{score_date}T00:00:00+0000\n", "cve,epss,percentile\n"]
    for n in range(rows):
        # Percentile is the score's rank: the rows' order is the CVE ids', the rank the score's.
        cve = first_id + n
        lines.append(f"CVE-{1999 + cve % 28}-{10000 + cve},{scores[n]:.5f},{n / rows:.5f}\n")
    with gzip.open(path, "wt", compresslevel=6) as handle:
        handle.writelines(lines)
    return path


def kev_import_seconds(entries: int = 1500) -> float:
    """Seconds to import a generated KEV catalog of ``entries`` listings through the service."""
    with tempfile.TemporaryDirectory(prefix="watchpost-kev-") as folder:
        before = kev_catalog_write(Path(folder) / "kev-before.json", entries=entries, seed=2)
        path = kev_catalog_write(Path(folder) / "known_exploited_vulnerabilities.json", entries=entries,
                                 first_id=entries // 100)
        return _timed_import(kev_import, before, path)


def epss_import_seconds(rows: int = 250_000) -> float:
    """Seconds to import a generated EPSS day of ``rows`` scores (gzip CSV) through the service."""
    with tempfile.TemporaryDirectory(prefix="watchpost-epss-") as folder:
        before = epss_scores_write(Path(folder) / "epss_scores-2026-12-05.csv.gz", rows=rows, seed=2,
                                   score_date="2026-12-05")
        path = epss_scores_write(Path(folder) / "epss_scores-2026-12-06.csv.gz", rows=rows, first_id=rows // 100)
        return _timed_import(epss_import, before, path)


def _timed_import(importer, before: Path, path: Path) -> float:
    with transaction.atomic():
        importer(source=before)
        started = time.perf_counter()
        importer(source=path)
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed
