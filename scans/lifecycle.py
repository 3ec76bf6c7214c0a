"""Findings lifecycle in bulk: new, still open, updated, reopened, fixed.

``findings_ingest`` takes what one run of one source said about a set of nodes and
applies it with a constant number of queries per batch of candidates (one SELECT, one
INSERT, one UPDATE for findings seen unchanged, one for findings whose content changed),
whatever the size of the batch or of the table.

Closing is the dangerous part: a finding becomes *fixed* only when a run of the same
source that *completed* covered its node (and port) and did not report it. A failed or
partial run closes nothing. Triage by a person (false positive, risk accepted) is kept
across rescans and imports: those findings are touched (last seen) but never reopened
or closed by a scanner.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from itertools import islice

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from scans.candidates import Coverage, FindingCandidate
from scans.models import Finding
from scans.normalization import CONTENT_FIELDS, content_hash, finding_fingerprint, finding_values

BATCH_SIZE = 1000
NODE_CHUNK = 1000  # nodes per fixing UPDATE, to keep IN lists a sane size


@dataclass
class IngestCounts:
    new: int = 0
    updated: int = 0
    reopened: int = 0
    fixed: int = 0
    unchanged: int = 0

    def __add__(self, other: IngestCounts) -> IngestCounts:
        return IngestCounts(**{k: getattr(self, k) + getattr(other, k) for k in asdict(self)})

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def seen(self) -> int:
        return self.new + self.updated + self.reopened + self.unchanged


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


@transaction.atomic
def findings_ingest(
    *,
    org,
    source: str,
    items: Iterable[tuple[int, FindingCandidate]],
    coverage: dict[int, Coverage] | None = None,
    complete: bool,
    session=None,
    seen_at: datetime | None = None,
    batch_size: int = BATCH_SIZE,
) -> IngestCounts:
    """Apply one run of ``source``: ``items`` are (node id, candidate) pairs.

    ``coverage`` says, per node id, what the run examined; with ``complete`` true, open
    findings of ``source`` on covered nodes and ports that the run did not report are fixed.
    """
    seen_at = seen_at or timezone.now()
    counts = IngestCounts()
    for batch in _batches(items, batch_size):
        counts += _apply_batch(org=org, source=source, batch=batch, session=session, seen_at=seen_at)
    if complete and coverage:
        counts.fixed = _close_unreported(org=org, source=source, coverage=coverage, seen_at=seen_at)
    return counts


def _apply_batch(*, org, source: str, batch: list[tuple[int, FindingCandidate]], session, seen_at) -> IngestCounts:
    counts = IngestCounts()
    # Normalize, de-duplicating within the batch (a tool may repeat itself; the last word wins).
    incoming: dict[tuple[int, str], dict] = {}
    for node_id, candidate in batch:
        if candidate.source != source:
            raise ValueError(f"candidate from {candidate.source!r} given to an ingest of {source!r}")
        values = finding_values(candidate)
        values["content_hash"] = content_hash(values)
        incoming[(node_id, finding_fingerprint(candidate))] = values

    node_ids = {node_id for node_id, _ in incoming}
    fingerprints = {fp for _, fp in incoming}
    existing = {
        (row["node_id"], row["fingerprint"]): row
        for row in Finding.objects.filter(org=org, node_id__in=node_ids, fingerprint__in=fingerprints).values(
            "id", "node_id", "fingerprint", "status", "content_hash", "times_seen", "reopened_count"
        )
    }

    to_create: list[Finding] = []
    touched_ids: list[int] = []
    to_update: list[Finding] = []
    for key, values in incoming.items():
        row = existing.get(key)
        if row is None:
            to_create.append(
                Finding(org=org, node_id=key[0], fingerprint=key[1], first_seen=seen_at, last_seen=seen_at,
                        first_session=session, last_session=session, **values)
            )
            counts.new += 1
            continue
        reopen = row["status"] == Finding.Status.FIXED
        changed = row["content_hash"] != values["content_hash"]
        if not reopen and not changed:
            touched_ids.append(row["id"])
            counts.unchanged += 1
            continue
        finding = Finding(id=row["id"], last_seen=seen_at, last_session=session, times_seen=row["times_seen"] + 1,
                          status=row["status"], reopened_count=row["reopened_count"], fixed_at=None,
                          **{f: values[f] for f in (*CONTENT_FIELDS, "content_hash")})
        if reopen:
            finding.status = Finding.Status.OPEN
            finding.reopened_count += 1
            counts.reopened += 1
        else:
            counts.updated += 1
        to_update.append(finding)

    if to_create:
        Finding.objects.bulk_create(to_create, batch_size=len(to_create))
    if touched_ids:
        Finding.objects.filter(id__in=touched_ids).update(
            last_seen=seen_at, last_session=session, times_seen=F("times_seen") + 1
        )
    if to_update:
        Finding.objects.bulk_update(
            to_update,
            fields=[*CONTENT_FIELDS, "content_hash", "status", "reopened_count", "fixed_at",
                    "last_seen", "last_session", "times_seen"],
            batch_size=len(to_update),
        )
    return counts


def _close_unreported(*, org, source: str, coverage: dict[int, Coverage], seen_at) -> int:
    """Fix open findings of ``source`` on covered nodes/ports that this run did not see."""
    # Nodes covered the same way close in one UPDATE: a session usually covers all alike.
    groups: dict[tuple[bool, tuple[int, ...]], list[int]] = defaultdict(list)
    for node_id, cov in coverage.items():
        groups[(cov.whole_host, tuple(sorted(set(cov.ports))))].append(node_id)
    fixed = 0
    for (whole_host, ports), node_ids in groups.items():
        port_filter = Q() if whole_host else (Q(port__isnull=True) | Q(port__in=ports))
        for start in range(0, len(node_ids), NODE_CHUNK):
            fixed += Finding.objects.filter(
                port_filter,
                org=org,
                source=source,
                node_id__in=node_ids[start : start + NODE_CHUNK],
                status=Finding.Status.OPEN,
                last_seen__lt=seen_at,
            ).update(status=Finding.Status.FIXED, fixed_at=seen_at)
    return fixed
