"""The local CVE catalog: NVD CVE API 2.0 files into CveRecord and CveProduct rows.

Imports are incremental and idempotent: a record whose ``lastModified`` is not newer
than the stored one is left alone, so re-importing a feed (or an older one) changes
nothing. Work goes in batches of records with a constant number of queries per batch
(read the stored timestamps, write the new and the changed with one COPY, rewrite their
product index with another), whatever the size of the feed.

``CveProduct`` holds the ``(vendor, product)`` of every *vulnerable* criterion: a
product that is only the platform of someone else's bug never makes a CVE a candidate
(``scans.cve`` reports hits from vulnerable criteria only). A criterion whose vendor or
product is a wildcard is indexed under ``("*", "*")``, which fingerprinting always
looks up. A CVE NVD has rejected keeps its record (``vuln_status`` says "Rejected") but loses its index rows, so it is
never matched again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from decimal import Decimal
from itertools import islice
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from config.bulk import bulk_insert
from scans.cve.cpe import Configuration
from scans.cve.nvd import CveEntry, iter_cve_entries
from scans.findings.normalization import severity_from_cvss
from scans.models import CveProduct, CveRecord

BATCH_SIZE = 500
CVE_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cves" / "nvd_products.json"
WILDCARD_PRODUCT = ("*", "*")
# Severities NVD writes that are not ours: a CVSS v3 "none" is an informational record.
_SEVERITY = {"critical": "critical", "high": "high", "medium": "medium", "low": "low", "none": "info"}
_RECORD_FIELDS = (
    "published", "last_modified", "description", "cvss_score", "cvss_vector", "cvss_version", "severity",
    "cwe_ids", "references", "configurations", "vuln_status", "imported_at",
)


@dataclass
class CatalogCounts:
    """What an import did, and to which CVEs: the ids are what a re-match of findings starts from."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0  # records NVD marks rejected (stored, never matched); also counted above
    changed_ids: set[str] = field(default_factory=set)  # created or updated, rejected ones included
    rejected_ids: set[str] = field(default_factory=set)

    def __add__(self, other: CatalogCounts) -> CatalogCounts:
        return CatalogCounts(created=self.created + other.created, updated=self.updated + other.updated,
                             unchanged=self.unchanged + other.unchanged, rejected=self.rejected + other.rejected,
                             changed_ids=self.changed_ids | other.changed_ids,
                             rejected_ids=self.rejected_ids | other.rejected_ids)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.endswith("_ids")}


def cve_catalog_import(*, paths: Iterable[str | os.PathLike[str]], batch_size: int = BATCH_SIZE) -> CatalogCounts:
    """Upsert every CVE of the NVD files at ``paths`` (plain or gzip JSON).

    Each file is one transaction: a file that turns out broken halfway (``NvdFormatError``,
    raised by the streaming reader) leaves the catalog as it was before that file.
    """
    counts = CatalogCounts()
    for path in paths:
        with transaction.atomic():
            counts += cve_catalog_apply(entries=iter_cve_entries(path), batch_size=batch_size)
    return counts


def cve_catalog_apply(*, entries: Iterable[CveEntry], batch_size: int = BATCH_SIZE) -> CatalogCounts:
    """Upsert ``entries`` in batches, inside the caller's transaction (a file, an API page)."""
    counts = CatalogCounts()
    for batch in _batches(entries, batch_size):
        counts += _apply_batch(batch)
    return counts


def _batches(entries: Iterable[CveEntry], size: int) -> Iterator[list[CveEntry]]:
    iterator = iter(entries)
    while batch := list(islice(iterator, size)):
        yield batch


def _apply_batch(batch: list[CveEntry]) -> CatalogCounts:
    counts = CatalogCounts()
    # A feed may list one CVE twice (overlapping API pages): the newest wins.
    newest: dict[str, CveEntry] = {}
    for entry in batch:
        held = newest.get(entry.cve_id)
        if held is None or _is_newer(entry.last_modified, held.last_modified):
            newest[entry.cve_id] = entry
    stored = dict(CveRecord.objects.filter(cve_id__in=newest).values_list("cve_id", "last_modified"))
    now = timezone.now()
    to_create: list[CveRecord] = []
    to_update: list[CveRecord] = []
    for cve_id, entry in newest.items():
        if cve_id in stored and not _is_newer(entry.last_modified, stored[cve_id]):
            counts.unchanged += 1
            continue
        record = CveRecord(cve_id=cve_id, imported_at=now, **_record_values(entry))
        (to_update if cve_id in stored else to_create).append(record)
        counts.changed_ids.add(cve_id)
        if entry.is_rejected:
            counts.rejected += 1
            counts.rejected_ids.add(cve_id)
    if not to_create and not to_update:
        return counts
    written = {r.cve_id: newest[r.cve_id] for r in (*to_create, *to_update)}
    # COPY, in one statement for new and changed records alike: an UPDATE per changed
    # record (bulk_update's CASE per field) costs seconds for a day's thousand changes.
    bulk_insert([*to_create, *to_update], update_conflicts=bool(to_update), unique_fields=["cve_id"],
                update_fields=_RECORD_FIELDS)
    counts.created, counts.updated = len(to_create), len(to_update)
    # One read gives the ids of the inserted rows (COPY returns none) and of the updated ones.
    ids = dict(CveRecord.objects.filter(cve_id__in=written).values_list("cve_id", "pk"))
    if to_update:
        CveProduct.objects.filter(cve_id__in=[ids[r.cve_id] for r in to_update]).delete()
    products = [
        CveProduct(cve_id=ids[cve_id], vendor=vendor, product=product)
        for cve_id, entry in written.items()
        if not entry.is_rejected
        for vendor, product in vulnerable_products(entry.configurations)
    ]
    bulk_insert(products)
    return counts


def _is_newer(candidate, held) -> bool:
    """Is ``candidate`` a later revision than ``held``? Unknown dates count as newer (re-read)."""
    if candidate is None or held is None:
        return True
    return candidate > held


def _record_values(entry: CveEntry) -> dict:
    return {
        "published": entry.published,
        "last_modified": entry.last_modified,
        "description": entry.description,
        "cvss_score": None if entry.cvss_score is None else Decimal(str(entry.cvss_score)).quantize(Decimal("0.1")),
        "cvss_vector": entry.cvss_vector[:200],
        "cvss_version": entry.cvss_version[:8],
        # Our bands over the chosen score (NVD's v2 bands have no "critical"); NVD's word without one.
        "severity": severity_from_cvss(entry.cvss_score) or _SEVERITY.get(entry.severity, ""),
        "cwe_ids": list(entry.cwe_ids),
        "references": list(entry.references),
        "configurations": [c.to_nvd() for c in entry.configurations],
        "vuln_status": entry.vuln_status[:32],
    }


def vulnerable_products(configurations: Iterable[Configuration]) -> list[tuple[str, str]]:
    """The distinct ``(vendor, product)`` keys a CVE is looked up by (see the module docstring)."""
    keys: dict[tuple[str, str], None] = {}
    for configuration in configurations:
        for criterion in configuration.criteria():
            if criterion.vulnerable:
                key = criterion.criteria.vendor_product or WILDCARD_PRODUCT
                keys[(key[0][:128], key[1][:128])] = None
    return list(keys)


def cve_entry_from_record(record: CveRecord) -> CveEntry:
    """The matcher's view of a stored record (the inverse of the import)."""
    return CveEntry(
        cve_id=record.cve_id,
        published=record.published,
        last_modified=record.last_modified,
        description=record.description,
        cvss_score=None if record.cvss_score is None else float(record.cvss_score),
        cvss_vector=record.cvss_vector,
        cvss_version=record.cvss_version,
        severity=record.severity,
        cwe_ids=tuple(record.cwe_ids or ()),
        references=tuple(record.references or ()),
        configurations=tuple(Configuration.from_nvd(c) for c in record.configurations or ()),
        vuln_status=record.vuln_status,
    )
