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

Every finding that is new, reopened or fixed gets a ``FindingEvent`` (its history, and
a session's new/fixed/reopened lists), written with the batch: one more statement per
batch that has new or reopened findings, one per fixing UPDATE (the same statement).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from itertools import islice

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from config import prepared
from scans.candidates import Coverage, FindingCandidate
from scans.models import Finding, FindingEvent
from scans.normalization import CONTENT_FIELDS, json_bytes, candidate_hash, finding_fingerprint, finding_values

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
    statistics = _PlannerStatistics()
    for batch in _batches(items, batch_size):
        counts += _apply_batch(org=org, source=source, batch=batch, session=session, seen_at=seen_at)
        statistics.grown_by(counts.new)
    statistics.finished(counts.new)
    if complete and coverage:
        counts.fixed = _close_unreported(org=org, source=source, coverage=coverage, seen_at=seen_at, session=session)
    return counts


class _PlannerStatistics:
    """Keep PostgreSQL's row estimates true while one transaction grows the findings table.

    Statistics from before a large import say the table is small, so the planner answers each
    batch's lookup by hashing every finding of the organization: quadratic over the import.
    ANALYZE counts the transaction's own new rows, so refreshing it whenever the new rows
    double what was last analyzed (a handful of times per import) keeps every lookup an index probe.
    """

    FIRST = 5_000

    def __init__(self) -> None:
        self.next_at = self.FIRST
        self.analyzed_at = 0

    def grown_by(self, new_rows: int) -> None:
        if new_rows >= self.next_at:
            self._analyze(new_rows)

    def finished(self, new_rows: int) -> None:
        """Leave true statistics for the next import, too, after a large one."""
        if new_rows >= self.FIRST and new_rows > self.analyzed_at:
            self._analyze(new_rows)

    def _analyze(self, new_rows: int) -> None:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {Finding._meta.db_table}")
        self.analyzed_at, self.next_at = new_rows, new_rows * 2


def _apply_batch(*, org, source: str, batch: list[tuple[int, FindingCandidate]], session, seen_at) -> IngestCounts:
    counts = IngestCounts()
    # Key and hash each candidate, de-duplicating within the batch (a tool may repeat itself; the
    # last word wins). Full normalization waits until a row turns out new or changed: on a rescan
    # most rows are neither.
    incoming: dict[tuple[int, str], tuple[FindingCandidate, str]] = {}
    for node_id, candidate in batch:
        if candidate.source != source:
            raise ValueError(f"candidate from {candidate.source!r} given to an ingest of {source!r}")
        incoming[(node_id, finding_fingerprint(candidate))] = (candidate, candidate_hash(candidate))

    writer = _PostgresWriter if connection.vendor == "postgresql" else _PortableWriter
    existing = writer.existing(org=org, keys=list(incoming))

    new_rows: list[tuple[tuple[int, str], dict]] = []
    touched_ids: list[int] = []
    changed: list[dict] = []
    # (node id, fingerprint, kind, from status, to status, reason): a new finding the tool already
    # triaged starts in that status, and its first event says so (not "open").
    events: list[tuple[int, str, str, str, str, str]] = []
    for key, (candidate, digest) in incoming.items():
        row = existing.get(key)
        if row is None:
            triage = tool_triage(candidate, seen_at)
            new_rows.append((key, {**finding_values(candidate), "content_hash": digest, **triage}))
            events.append((*key, FindingEvent.Kind.NEW, "", triage.get("status", Finding.Status.OPEN),
                           triage.get("triage_reason", "")))
            counts.new += 1
            continue
        reopen = row["status"] == Finding.Status.FIXED
        if not reopen and row["content_hash"] == digest:
            touched_ids.append(row["id"])
            counts.unchanged += 1
            continue
        values = {**finding_values(candidate), "content_hash": digest}
        values.update(id=row["id"], times_seen=row["times_seen"] + 1, status=row["status"],
                      reopened_count=row["reopened_count"])
        if reopen:
            values["status"] = Finding.Status.OPEN
            values["reopened_count"] += 1
            events.append((*key, FindingEvent.Kind.REOPENED, Finding.Status.FIXED, Finding.Status.OPEN, ""))
            counts.reopened += 1
        else:
            counts.updated += 1
        changed.append(values)

    if new_rows:
        writer.insert(org=org, rows=new_rows, session=session, seen_at=seen_at)
    if touched_ids:
        writer.touch(ids=touched_ids, session=session, seen_at=seen_at)
    if changed:
        writer.update(rows=changed, session=session, seen_at=seen_at)
    if events:
        writer.events(org=org, events=events, session=session, seen_at=seen_at)
    return counts


def tool_triage(candidate: FindingCandidate, seen_at) -> dict:
    """A new finding's status when the tool already judged it (see ``FindingCandidate.triage``).

    Nobody triaged it (``triaged_by`` stays empty): the reason names the tool's statement."""
    if candidate.triage not in Finding.TRIAGED:
        return {}
    return {"status": candidate.triage, "triage_reason": candidate.triage_reason[:4000], "triaged_at": seen_at}


def _close_unreported(*, org, source: str, coverage: dict[int, Coverage], seen_at, session=None) -> int:
    """Fix open findings of ``source`` on covered nodes/ports that this run did not see."""
    writer = _PostgresWriter if connection.vendor == "postgresql" else _PortableWriter
    # Nodes covered the same way close in one UPDATE: a session usually covers all alike.
    groups: dict[tuple[bool, tuple[int, ...]], list[int]] = defaultdict(list)
    for node_id, cov in coverage.items():
        groups[(cov.whole_host, tuple(sorted(set(cov.ports))))].append(node_id)
    fixed = 0
    for (whole_host, ports), node_ids in groups.items():
        port_filter = Q() if whole_host else (Q(port__isnull=True) | Q(port__in=ports))
        for start in range(0, len(node_ids), NODE_CHUNK):
            fixing = Finding.objects.filter(
                port_filter,
                org=org,
                source=source,
                node_id__in=node_ids[start : start + NODE_CHUNK],
                status=Finding.Status.OPEN,
                last_seen__lt=seen_at,
            )
            fixed += writer.fix(findings=fixing, session=session, seen_at=seen_at)
    return fixed


UPDATED_FIELDS = (*CONTENT_FIELDS, "content_hash", "status", "reopened_count", "times_seen")
EXISTING_FIELDS = ("id", "node_id", "fingerprint", "status", "content_hash", "times_seen", "reopened_count")


class _PortableWriter:
    """Django's bulk operations: any database (SQLite in development and tests)."""

    @staticmethod
    def existing(*, org, keys: list[tuple[int, str]]) -> dict[tuple[int, str], dict]:
        rows = Finding.objects.filter(
            org=org, node_id__in={n for n, _ in keys}, fingerprint__in={fp for _, fp in keys}
        ).values(*EXISTING_FIELDS)
        return {(row["node_id"], row["fingerprint"]): row for row in rows}

    @staticmethod
    def touch(*, ids: list[int], session, seen_at) -> None:
        Finding.objects.filter(id__in=ids).update(last_seen=seen_at, last_session=session, times_seen=F("times_seen") + 1)

    @staticmethod
    def insert(*, org, rows, session, seen_at) -> None:
        Finding.objects.bulk_create(
            [Finding(org=org, node_id=node_id, fingerprint=fp, first_seen=seen_at, last_seen=seen_at,
                     first_session=session, last_session=session, **values) for (node_id, fp), values in rows],
            batch_size=len(rows),
        )

    @staticmethod
    def update(*, rows, session, seen_at) -> None:
        Finding.objects.bulk_update(
            [Finding(last_seen=seen_at, last_session=session, fixed_at=None, **row) for row in rows],
            fields=[*UPDATED_FIELDS, "fixed_at", "last_seen", "last_session"],
            batch_size=len(rows),
        )

    @staticmethod
    def events(*, org, events, session, seen_at) -> None:
        ids = {
            (node_id, fp): pk for pk, node_id, fp in Finding.objects.filter(
                org=org, node_id__in={e[0] for e in events}, fingerprint__in={e[1] for e in events}
            ).values_list("id", "node_id", "fingerprint")
        }
        FindingEvent.objects.bulk_create(
            [FindingEvent(finding_id=ids[(node_id, fp)], session=session, kind=kind, from_status=before,
                          to_status=after, reason=reason, at=seen_at)
             for node_id, fp, kind, before, after, reason in events],
            batch_size=len(events),
        )

    @staticmethod
    def fix(*, findings, session, seen_at) -> int:
        ids = list(findings.values_list("id", flat=True))
        if not ids:
            return 0
        Finding.objects.filter(id__in=ids).update(status=Finding.Status.FIXED, fixed_at=seen_at)
        FindingEvent.objects.bulk_create(
            [FindingEvent(finding_id=pk, session=session, kind=FindingEvent.Kind.FIXED,
                          from_status=Finding.Status.OPEN, to_status=Finding.Status.FIXED, at=seen_at) for pk in ids],
            batch_size=1000,
        )
        return len(ids)


def _json_text(value) -> str:
    return json_bytes(value).decode()


def _quoted(columns) -> str:
    # "references" is a reserved word in SQL.
    return ", ".join(f'"{c}"' for c in columns)


class _PostgresWriter:
    """COPY for new rows and for changes (then one UPDATE ... FROM): no per-row SQL to build or plan.

    Django's bulk_update writes a CASE expression per field and row, which PostgreSQL plans
    slowly (tens of seconds for 10,000 changed findings); COPY streams rows in the wire format.
    """

    INSERT_COLUMNS = (
        "org_id", "node_id", "fingerprint", "source", "rule_id", "port", "protocol", "location",
        *CONTENT_FIELDS, "content_hash", "status", "first_seen", "last_seen", "first_session_id",
        "last_session_id", "times_seen", "reopened_count", "triage_reason", "triaged_at",
    )
    JSON_FIELDS = frozenset(f.name for f in Finding._meta.fields if f.get_internal_type() == "JSONField")

    @classmethod
    def _rows(cls, columns, rows):
        """Rows as lists for COPY, with JSON columns wrapped so psycopg sends them as jsonb."""
        from psycopg.types.json import Jsonb

        dumps = _json_text
        json_at = [i for i, c in enumerate(columns) if c in cls.JSON_FIELDS]
        for row in rows:
            for i in json_at:
                row[i] = Jsonb(row[i], dumps=dumps)
            yield row

    @staticmethod
    def existing(*, org, keys: list[tuple[int, str]]) -> dict[tuple[int, str], dict]:
        # Two arrays instead of thousands of placeholders, and the (org, node, fingerprint) unique
        # index answers each pair exactly. Bound on the server in binary (%b): Django's cursor would
        # quote every fingerprint into the statement's text, ~20 ms per thousand in Python.
        rows = prepared.fetchall(
            f"SELECT {', '.join(f'f.{c}' for c in EXISTING_FIELDS)} FROM {Finding._meta.db_table} f "
            "JOIN unnest(%b::bigint[], %b::varchar[]) AS k(node_id, fingerprint) "
            "ON f.node_id = k.node_id AND f.fingerprint = k.fingerprint WHERE f.org_id = %b",
            [[n for n, _ in keys], [fp for _, fp in keys], org.pk],
        )
        return {(row[1], row[2]): dict(zip(EXISTING_FIELDS, row)) for row in rows}

    @staticmethod
    def touch(*, ids: list[int], session, seen_at) -> None:
        # A rescan's usual statement (most findings unchanged): the ids bound in binary, as in ``existing``.
        prepared.execute(
            f"UPDATE {Finding._meta.db_table} SET last_seen = %b, last_session_id = %b, times_seen = times_seen + 1 "
            "WHERE id = ANY(%b::bigint[])",
            [seen_at, session.pk if session is not None else None, ids],
        )

    @classmethod
    def insert(cls, *, org, rows, session, seen_at) -> None:
        session_id = session.pk if session is not None else None
        table = Finding._meta.db_table
        with connection.cursor() as cursor:
            lifecycle = {"org_id": org.pk, "status": "open", "first_seen": seen_at, "last_seen": seen_at,
                         "first_session_id": session_id, "last_session_id": session_id, "times_seen": 1,
                         "reopened_count": 0, "triage_reason": "", "triaged_at": None}
            plain = [(c, lifecycle.get(c)) for c in cls.INSERT_COLUMNS[3:]]
            with cursor.cursor.copy(f"COPY {table} ({_quoted(cls.INSERT_COLUMNS)}) FROM STDIN") as copy:
                lists = ([org.pk, node_id, fingerprint, *(values[c] if c in values else v for c, v in plain)]
                         for (node_id, fingerprint), values in rows)
                for row in cls._rows(cls.INSERT_COLUMNS, lists):
                    copy.write_row(row)

    @classmethod
    def update(cls, *, rows, session, seen_at) -> None:
        table = Finding._meta.db_table
        columns = ("id", *UPDATED_FIELDS)
        with connection.cursor() as cursor:
            # A temporary table with the changed columns (no constraints), dropped when the transaction ends.
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS finding_changes ON COMMIT DROP AS "
                f"SELECT {_quoted(columns)} FROM {table} WITH NO DATA;"
                "TRUNCATE finding_changes"
            )
            with cursor.cursor.copy(f"COPY finding_changes ({_quoted(columns)}) FROM STDIN") as copy:
                for row in cls._rows(columns, ([row[c] for c in columns] for row in rows)):
                    copy.write_row(row)
            assignments = ", ".join(f'"{c}" = c."{c}"' for c in UPDATED_FIELDS)
            cursor.execute(
                f"UPDATE {table} f SET {assignments}, fixed_at = NULL, last_seen = %s, last_session_id = %s "
                "FROM finding_changes c WHERE f.id = c.id",
                [seen_at, session.pk if session is not None else None],
            )

    @staticmethod
    def events(*, org, events, session, seen_at) -> None:
        """New and reopened findings' events in one INSERT ... SELECT: COPY gave the new rows no ids back.
        Arrays bound in binary on the server, as in ``existing``."""
        table, events_table = Finding._meta.db_table, FindingEvent._meta.db_table
        prepared.execute(
            f"INSERT INTO {events_table} (finding_id, session_id, kind, from_status, to_status, reason, at) "
            f"SELECT f.id, %b, k.kind, k.from_status, k.to_status, k.reason, %b FROM {table} f "
            "JOIN unnest(%b::bigint[], %b::varchar[], %b::varchar[], %b::varchar[], %b::varchar[], %b::text[]) "
            "AS k(node_id, fingerprint, kind, from_status, to_status, reason) "
            "ON f.node_id = k.node_id AND f.fingerprint = k.fingerprint WHERE f.org_id = %b",
            [session.pk if session is not None else None, seen_at, *([e[i] for e in events] for i in range(6)), org.pk],
        )

    @staticmethod
    def fix(*, findings, session, seen_at) -> int:
        """Fix and record in one statement: the UPDATE's RETURNING feeds the events' INSERT."""
        table, events_table = Finding._meta.db_table, FindingEvent._meta.db_table
        ids_sql, params = findings.values("id").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH fixed AS (UPDATE {table} SET status = %s, fixed_at = %s WHERE id IN ({ids_sql}) RETURNING id) "
                f"INSERT INTO {events_table} (finding_id, session_id, kind, from_status, to_status, reason, at) "
                "SELECT id, %s, %s, %s, %s, '', %s FROM fixed",
                [Finding.Status.FIXED, seen_at, *params, session.pk if session is not None else None,
                 FindingEvent.Kind.FIXED, Finding.Status.OPEN, Finding.Status.FIXED, seen_at],
            )
            return cursor.rowcount
