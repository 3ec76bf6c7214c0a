"""Findings lifecycle in bulk: new, still open, updated, reopened, fixed.

``findings_ingest`` takes what one run of one source said about a set of nodes and
applies it with a constant number of statements per batch of candidates, whatever the size
of the batch or of the table:

1. one statement looks every candidate up by (node, fingerprint), touches the findings seen
   unchanged (last seen, last session, times seen) and returns the others: new (with the id
   each will have, drawn from the table's sequence), or changed, or fixed before;
2. new findings stream in by COPY, and their "new" events by a second COPY (the ids are known);
3. changed and returning findings are rewritten by one UPDATE, which records the reopenings.

Each lookup probes the unique index once per candidate, whatever the planner's statistics say
about an organization whose findings this very transaction is adding: no ANALYZE mid-import.

Only a candidate that turns out new or changed is written out in full: on a rescan most are
neither. Candidates that say the same thing (one rule reported on many hosts) share their
normalized content (``normalization.Contents``).

Closing is the dangerous part: a finding becomes *fixed* only when a run of the same
source that *completed* covered its node (and port) and did not report it. A failed or
partial run closes nothing. Triage by a person (false positive, risk accepted) is kept
across rescans and imports: those findings are touched (last seen) but never reopened
or closed by a scanner.

Every finding that is new, reopened or fixed gets a ``FindingEvent`` (its history, and
a session's new/fixed/reopened lists), written with the statement that made it so, or
right after it.

A re-match after a CVE catalog update (``scans.cve.rematch``) is no scan: with ``catalog``
its events are of kind CATALOG and say what the update did (found, found again, revalued,
no longer matched), and ``rules`` keeps its closing to the CVEs the update named.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from itertools import islice

import orjson
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from psycopg.types.json import Jsonb

from config import prepared
from nodes.models import Node
from scans.findings.candidates import Coverage, FindingCandidate
from scans.findings.priority import IngestPriorities
from scans.findings.sla import ingest_due_at
from scans.models import Finding, FindingEvent
from scans.findings.normalization import (
    MAX_LOCATION,
    Content,
    Contents,
    clean_port,
    clean_protocol,
    finding_fingerprint,
    json_bytes,
    match_values,
    stored_evidence,
)

BATCH_SIZE = 1000
NODE_CHUNK = 1000  # nodes per fixing UPDATE, to keep IN lists a sane size

# What a catalog update did to a finding, as its CATALOG event says it.
CATALOG_FOUND = "found by a catalog update"
CATALOG_FOUND_AGAIN = "found again by a catalog update"
CATALOG_REVALUED = "revalued by a catalog update"
CATALOG_UNMATCHED = "no longer matched after a catalog update"

FINDINGS = Finding._meta.db_table
EVENTS = FindingEvent._meta.db_table


@dataclass
class IngestCounts:
    new: int = 0
    updated: int = 0
    reopened: int = 0
    fixed: int = 0
    unchanged: int = 0
    # The findings the run changed or reopened: their priority is recomputed after the run (a new
    # one is written with its own, a fixed one loses it as it is fixed).
    rewritten: list[int] = field(default_factory=list, repr=False, compare=False)

    def __add__(self, other: IngestCounts) -> IngestCounts:
        return IngestCounts(**{k.name: getattr(self, k.name) + getattr(other, k.name) for k in fields(self)})

    def as_dict(self) -> dict[str, int]:
        return {k.name: getattr(self, k.name) for k in fields(self) if k.name != "rewritten"}

    @property
    def seen(self) -> int:
        return self.new + self.updated + self.reopened + self.unchanged

    @property
    def changed(self) -> bool:
        """Did the run add, change, reopen or fix any finding (or only see known ones again)?"""
        return bool(self.new or self.updated or self.reopened or self.fixed)


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
    catalog: bool = False,
    rules: Collection[str] | None = None,
    priorities: IngestPriorities | None = None,
) -> IngestCounts:
    """Apply one run of ``source``: ``items`` are (node id, candidate) pairs.

    ``coverage`` says, per node id, what the run examined; with ``complete`` true, open
    findings of ``source`` on covered nodes and ports that the run did not report are fixed.
    ``rules`` narrows that to findings of those rule ids (a run that judged only some rules).
    ``catalog`` marks the run as a re-match after a catalog update: every finding it makes
    new, reopens, changes or fixes gets a CATALOG event saying so. With ``priorities``, a new open
    finding is written with its priority and its CVEs' KEV and EPSS values (``IngestPriorities``).
    """
    seen_at = seen_at or timezone.now()
    counts = IngestCounts()
    run = _Run(org=org, source=source, session=session, seen_at=seen_at, catalog=catalog, priorities=priorities)
    # Keying a batch is Python's work alone and writing one mostly the server's: the next batch is
    # keyed on a thread while this one is written, so each waits less on the other. Batches are
    # taken from ``items`` here, in the caller's thread (an iterator may read the database), and
    # written in order, each after the one before has finished.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-keying") as keying:
        keyed = None
        for batch in _batches(items, batch_size):
            upcoming = keying.submit(run.keyed, batch)
            if keyed is not None:
                counts += run.apply(keyed.result())
            keyed = upcoming
        if keyed is not None:
            counts += run.apply(keyed.result())
    if complete and coverage:
        counts.fixed = _close_unreported(org=org, source=source, coverage=coverage, seen_at=seen_at, session=session,
                                         rules=rules, matched=run.matched if catalog else None)
    return counts


def tool_triage(candidate: FindingCandidate) -> tuple[str, str] | None:
    """A new finding's status and triage reason when the tool already judged it (see
    ``FindingCandidate.triage``); None when it did not, and the finding starts open.

    Nobody triaged it (``triaged_by`` stays empty): the reason names the tool's statement."""
    if candidate.triage not in Finding.TRIAGED:
        return None
    return candidate.triage, candidate.triage_reason[:4000]


def _joined(values: Iterable) -> str:
    """Values for one ``string_to_array`` parameter: a thousand keys as one text, split on the
    server, instead of an array that the driver would build element by element in Python.
    Fingerprints and digests are hex and node ids digits, so a comma never occurs in one."""
    return ",".join(map(str, values))


def _rows_json(rows: list[dict]) -> bytes:
    return orjson.dumps(rows, default=str)  # CVSS scores are Decimals: as text, which numeric reads exactly


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    """``value`` as a field of COPY's text format (most values have nothing to escape)."""
    return value.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(value) else value


def _copy_json(encoded: bytes) -> str:
    """JSON as a field of COPY's text format: JSON text holds no raw tab or line break (they are
    escaped inside strings), so only its backslashes need doubling."""
    text = encoded.decode()
    return text.replace("\\", "\\\\") if "\\" in text else text


def _copy_field(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _copy_text(value)
    if isinstance(value, (list, dict)):
        return _copy_text(json_bytes(value).decode())
    return str(value)


# Per batch: the candidates' keys and digests in, the findings seen unchanged touched, and for
# each other candidate its position, its finding's id (a fresh one from the sequence when it is
# new) and the known finding's status (none when new).
# Planned for any statistics: those from before a large import know nothing of the organization's
# rows this very transaction adds, and take the organization for one of a handful of rows; a plan
# that reads every finding of it per batch (a hash join, or an index on the organization alone)
# makes the import quadratic. So the lateral probe with its LIMIT stays a nested loop; the
# organization comes as a sub-select, a value the planner cannot see, which leaves the unique
# index as the only one that narrows a probe to one row; the touched findings are reached through
# their primary keys.
_SEE_KNOWN = (
    "WITH k AS (SELECT * FROM unnest(string_to_array(%(nodes)s, ',')::bigint[], string_to_array(%(fingerprints)s, ','), "
    "string_to_array(%(digests)s, ',')) WITH ORDINALITY AS k(node_id, fingerprint, content_hash, i)), "
    "known AS MATERIALIZED (SELECT k.i, f.id, f.status, f.content_hash = k.content_hash AND f.status <> %(fixed)s "
    f"AS unchanged FROM k LEFT JOIN LATERAL (SELECT f.id, f.status, f.content_hash FROM {FINDINGS} f "
    "WHERE f.org_id = (SELECT %(org)s::bigint) AND f.node_id = k.node_id AND f.fingerprint = k.fingerprint "
    "LIMIT 1) f ON true), "
)
_SEE_TOUCH = (
    f"touched AS (UPDATE {FINDINGS} f SET last_seen = %(seen_at)s, last_session_id = %(session)s, "
    "times_seen = f.times_seen + 1 WHERE f.id = ANY(ARRAY(SELECT id FROM known WHERE unchanged))), "
)
_SEE_OTHERS = (
    f"sequence AS (SELECT pg_get_serial_sequence('{FINDINGS}', 'id')::regclass AS name) "
    "SELECT i, coalesce(id, nextval((SELECT name FROM sequence))), status FROM known WHERE unchanged IS NOT TRUE"
)
_SEE = _SEE_KNOWN + _SEE_TOUCH + _SEE_OTHERS
_HOLD_NODES = (f"SELECT id FROM {Node._meta.db_table} WHERE id = ANY(string_to_array(%(nodes)s, ',')::bigint[]) "
               "FOR KEY SHARE")
# A catalog update observed nothing: a finding it matches keeps when, how often and in which
# session it was last seen (its closing tells what it matched by the keys, not by last_seen).
_SEE_BY_CATALOG = _SEE_KNOWN + _SEE_OTHERS

_CHANGED_COLUMNS = (
    ("id", "bigint"), ("title", "text"), ("severity", "text"), ("cvss_score", "numeric"), ("cvss_vector", "text"),
    ("cve_ids", "jsonb"), ("cwe", "integer"), ("description", "text"), ("remediation", "text"),
    ("references", "jsonb"), ("evidence", "jsonb"), ("match_confidence", "double precision"),
    ("match_reason", "text"), ("content_hash", "text"), ("reopen", "boolean"),
)
_REWRITTEN = [name for name, _ in _CHANGED_COLUMNS if name not in ("id", "reopen")]

# Changed findings take their new content; those fixed before open again, and their reopening is
# recorded in the same statement (by a catalog update: every change, see _CHANGE_BY_CATALOG).
def _changed(*, seen: bool) -> str:
    return (
        f"WITH changed AS (UPDATE {FINDINGS} f SET "
        + ", ".join(f'"{name}" = c."{name}"' for name in _REWRITTEN)
        + ", status = CASE WHEN c.reopen THEN %(open)s ELSE f.status END, "
        "reopened_count = f.reopened_count + c.reopen::int, fixed_at = NULL, "
        # A reopened finding starts a new SLA clock (its due date follows with its priority).
        "sla_started_at = CASE WHEN c.reopen THEN %(seen_at)s ELSE f.sla_started_at END, "
        "sla_breached_at = CASE WHEN c.reopen THEN NULL ELSE f.sla_breached_at END"
        + (", times_seen = f.times_seen + 1, last_seen = %(seen_at)s, last_session_id = %(session)s" if seen else "")
        + " FROM jsonb_to_recordset(%(rows)s) AS c("
        + ", ".join(f'"{name}" {kind}' for name, kind in _CHANGED_COLUMNS)
        + ") WHERE f.id = c.id RETURNING f.id, c.reopen, f.status) "
        f"INSERT INTO {EVENTS} (finding_id, session_id, kind, from_status, to_status, reason, at) "
    )


_CHANGE = _changed(seen=True) + (
    "SELECT id, %(session)s::bigint, %(kind)s, %(fixed)s, %(open)s, '', %(seen_at)s::timestamptz FROM changed WHERE reopen"
)
_CHANGE_BY_CATALOG = _changed(seen=False) + (
    "SELECT id, %(session)s::bigint, %(kind)s, CASE WHEN reopen THEN %(fixed)s ELSE status END, status, "
    "CASE WHEN reopen THEN %(found_again)s ELSE %(revalued)s END, %(seen_at)s::timestamptz FROM changed"
)

# Of a new finding, COPY takes these columns first (its own), then its content's, then the run's.
_OWN_COLUMNS = ("org_id", "node_id", "fingerprint", "source", "port", "protocol", "location", "evidence",
                "match_confidence", "match_reason", "content_hash", "status", "triage_reason", "triaged_at",
                "priority", "priority_reasons", "kev_added", "kev_ransomware", "epss_score", "epss_percentile", "due_at")
# A new finding written without a priority (and no KEV or EPSS values yet), before its due date.
_NO_PRIORITY = "\\N\t\\N\t\\N\tf\t\\N\t\\N"
_CONTENT_COLUMNS = ("rule_id", "title", "severity", "cvss_score", "cvss_vector", "cve_ids", "cwe", "description",
                    "remediation", "references")
_RUN_COLUMNS = ("first_seen", "last_seen", "first_session_id", "last_session_id", "times_seen", "reopened_count")
_COPY_NEW = (f"COPY {FINDINGS} ("
             + ", ".join(f'"{c}"' for c in ("id", *_OWN_COLUMNS, *_CONTENT_COLUMNS, *_RUN_COLUMNS)) + ") FROM STDIN")
# New findings sent to the server per write: a few dozen rows, some tens of kilobytes.
_COPY_CHUNK = 48
_COPY_NEW_EVENTS = f"COPY {EVENTS} (finding_id, session_id, kind, from_status, to_status, reason, at) FROM STDIN"


# A batch's candidates by finding key (node id, fingerprint): the candidate, its shared content,
# its evidence as JSON and its content digest.
_Keyed = dict[tuple[int, str], tuple[FindingCandidate, Content, bytes, str]]


class _Run:
    """One ingest: its constants, and the contents its candidates share."""

    def __init__(self, *, org, source: str, session, seen_at, catalog: bool = False,
                 priorities: IngestPriorities | None = None) -> None:
        self.priorities = priorities
        self.priority_copied: dict[int, str] = {}
        self.severity_copied: dict[str, str] = {}
        self.org, self.source, self.seen_at, self.catalog = org, source, seen_at, catalog
        self.matched: set[tuple[int, str]] = set()  # a catalog run's finding keys, for its closing
        self.held: set[int] = set()  # nodes locked against deletion (_hold_nodes)
        session_id = session.pk if session is not None else None
        self.params = {"org": org.pk if org is not None else None, "session": session_id, "seen_at": seen_at}
        self.contents = Contents()
        self.copied: dict[Content, str] = {}  # each content's COPY fields, written out once
        self.org_field = _copy_field(self.params["org"])
        self.source_field = _copy_text(source)
        self.run_fields = "\t".join(_copy_field(v) for v in (seen_at.isoformat(), seen_at.isoformat(), session_id,
                                                              session_id, 1, 0))
        self.at_field = _copy_field(seen_at.isoformat())  # the events' time, and a tool's triage
        # A new finding's event: its session, kind and (empty) former status; its reason when it has
        # no triage of its own to give.
        new_kind = FindingEvent.Kind.CATALOG if catalog else FindingEvent.Kind.NEW
        self.event_fields = "\t".join((_copy_field(session_id), _copy_text(new_kind), ""))
        self.new_reason = _copy_text(CATALOG_FOUND) if catalog else ""

    def keyed(self, batch: list[tuple[int, FindingCandidate]]) -> _Keyed:
        """Each candidate by its finding's key, with its content, evidence and digest; de-duplicated
        within the batch (a tool may repeat itself; the last word wins). Touches no database."""
        incoming: _Keyed = {}
        contents, source = self.contents, self.source
        for node_id, candidate in batch:
            if candidate.source != source:
                raise ValueError(f"candidate from {candidate.source!r} given to an ingest of {source!r}")
            content = contents.of(candidate)
            evidence = json_bytes(candidate.evidence or {})
            incoming[(node_id, finding_fingerprint(candidate))] = (candidate, content, evidence,
                                                                   content.digest(evidence))
        return incoming

    def apply(self, incoming: _Keyed) -> IngestCounts:
        keys = list(incoming)
        entries = list(incoming.values())
        if self.catalog:
            self.matched.update(keys)
        others = prepared.fetchall(_SEE_BY_CATALOG if self.catalog else _SEE, {
            **self.params, "fixed": Finding.Status.FIXED, "nodes": _joined(node_id for node_id, _ in keys),
            "fingerprints": _joined(fingerprint for _, fingerprint in keys),
            "digests": _joined(entry[3] for entry in entries),
        })
        counts = IngestCounts(unchanged=len(keys) - len(others))
        new: list[tuple[int, int]] = []
        changed: list[dict] = []
        for position, finding_id, status in others:
            index = position - 1
            if status is None:
                new.append((index, finding_id))
                continue
            reopen = status == Finding.Status.FIXED
            if reopen:
                counts.reopened += 1
            else:
                counts.updated += 1
            changed.append(self._change(finding_id, reopen, *entries[index]))
            counts.rewritten.append(finding_id)
        if new:
            counts.new = len(new)
            self._hold_nodes({keys[index][0] for index, _ in new})
            self._insert([(finding_id, keys[index], entries[index]) for index, finding_id in new])
        if changed and self.catalog:
            prepared.execute(_CHANGE_BY_CATALOG, {
                **self.params, "rows": Jsonb(changed, dumps=_rows_json), "kind": FindingEvent.Kind.CATALOG,
                "fixed": Finding.Status.FIXED, "open": Finding.Status.OPEN, "found_again": CATALOG_FOUND_AGAIN,
                "revalued": CATALOG_REVALUED})
        elif changed:
            prepared.execute(_CHANGE, {**self.params, "rows": Jsonb(changed, dumps=_rows_json),
                                       "kind": FindingEvent.Kind.REOPENED, "fixed": Finding.Status.FIXED,
                                       "open": Finding.Status.OPEN})
        return counts

    def _hold_nodes(self, node_ids: set[int]) -> None:
        """Lock the nodes that new findings go to against deletion until the ingest commits, once
        each. The findings' node column has no foreign key (checking it at commit costs a lookup per
        new row); this lock gives the same guarantee: no finding is written for a node that is gone,
        and no node is deleted from under the findings being written."""
        wanted = node_ids - self.held
        if not wanted:
            return
        found = {row[0] for row in prepared.fetchall(_HOLD_NODES, {"nodes": _joined(sorted(wanted))})}
        if missing := wanted - found:
            raise IntegrityError(f"findings for nodes that no longer exist: {sorted(missing)[:10]}")
        self.held |= wanted

    def _insert(self, new: list[tuple[int, tuple[int, str], tuple]]) -> None:
        """New findings by COPY (rows written out as COPY's text here, each content's fields once),
        then their "new" events, which carry the status and reason the finding starts with.

        The rows go to the server a few dozen at a time while the rest are written out: the server
        stores each part (heap, indexes) while Python prepares the next, instead of the two taking
        turns over the whole batch."""
        events = []
        head = f"\t{self.org_field}\t"
        tail = f"\t{self.run_fields}\n"
        event_head = f"\t{self.event_fields}\t"
        source_field, at_field, opened = self.source_field, self.at_field, Finding.Status.OPEN
        new_reason, copied_of, priority_fields = self.new_reason, self.copied, self._priority_fields
        with connection.cursor() as cursor:
            with cursor.cursor.copy(_COPY_NEW) as copy:
                rows: list[str] = []
                for finding_id, (node_id, fingerprint), (candidate, content, evidence, digest) in new:
                    copied = copied_of.get(content)
                    if copied is None:
                        copied = copied_of[content] = "\t".join(_copy_field(content.values[c])
                                                                for c in _CONTENT_COLUMNS)
                    confidence, reason = match_values(candidate)
                    triage = tool_triage(candidate)
                    if triage is None:
                        status, triage_reason, triaged_at = opened, "", "\\N"
                    else:
                        status, triage_reason, triaged_at = triage[0], _copy_text(triage[1]), at_field
                    port, protocol = clean_port(candidate.port), clean_protocol(candidate.protocol)
                    rows.append("\t".join((
                        str(finding_id) + head + str(node_id), fingerprint, source_field,
                        "\\N" if port is None else str(port), _copy_text(protocol),
                        _copy_text(candidate.location[:MAX_LOCATION]),
                        _copy_json(stored_evidence(candidate, evidence)), _copy_field(confidence),
                        _copy_text(reason) if reason else "", digest, status, triage_reason, triaged_at,
                        priority_fields(node_id, port, protocol, content, confidence, status), copied)) + tail)
                    events.append(f"{finding_id}{event_head}{status}\t{triage_reason or new_reason}\t{at_field}\n")
                    if len(rows) == _COPY_CHUNK:
                        copy.write("".join(rows).encode("utf-8", "surrogatepass"))
                        rows.clear()
                if rows:
                    copy.write("".join(rows).encode("utf-8", "surrogatepass"))
            with cursor.cursor.copy(_COPY_NEW_EVENTS) as copy:
                copy.write("".join(events).encode("utf-8", "surrogatepass"))

    def _priority_fields(self, node_id: int, port: int | None, protocol: str, content: Content, confidence,
                         status: str) -> str:
        """A new finding's priority, reasons and KEV/EPSS values as COPY fields (none for a closed one,
        or without ``priorities``)."""
        if status != Finding.Status.OPEN:
            return _NO_PRIORITY + "\t\\N"
        severity = content.values["severity"]
        if self.priorities is None:
            # No priority yet: due by the severity's SLA, from now.
            fields = self.severity_copied.get(severity)
            if fields is None:
                due = ingest_due_at(self.org, priority=None, severity=severity, started=self.seen_at)
                fields = self.severity_copied[severity] = f"{_NO_PRIORITY}\t{due.isoformat()}"
            return fields
        values = self.priorities.of(node_id, content.values, port=port, protocol=protocol, confidence=confidence)
        # Answers are shared by the findings with the same inputs: each is written out once.
        fields = self.priority_copied.get(id(values))
        if fields is None:
            kev_due = self.priorities.kev_due_of(content.values["cve_ids"]) if values[2] is not None else None
            due = ingest_due_at(self.org, priority=values[0], severity=severity, started=self.seen_at,
                                kev_due=kev_due)
            fields = self.priority_copied[id(values)] = "\t".join(
                _copy_field(v if not isinstance(v, date) else v.isoformat()) for v in (*values, due.isoformat()))
        return fields

    def _change(self, finding_id: int, reopen: bool, candidate: FindingCandidate, content: Content, evidence: bytes,
                digest: str) -> dict:
        confidence, reason = match_values(candidate)
        return {**content.values, "id": finding_id, "reopen": reopen, "content_hash": digest,
                "evidence": orjson.Fragment(stored_evidence(candidate, evidence)),
                "match_confidence": confidence, "match_reason": reason}


def _close_unreported(*, org, source: str, coverage: dict[int, Coverage], seen_at, session=None,
                      rules: Collection[str] | None = None, matched: set[tuple[int, str]] | None = None) -> int:
    """Fix open findings of ``source`` (of ``rules`` only, when given) on covered nodes/ports that
    this run did not see: those it did not touch (``last_seen``), or for a catalog run, which
    touches nothing, those not among the finding keys it ``matched``."""
    # Nodes covered the same way close in one UPDATE: a session usually covers all alike.
    groups: dict[tuple[bool, tuple[int, ...]], list[int]] = defaultdict(list)
    for node_id, cov in coverage.items():
        groups[(cov.whole_host, tuple(sorted(set(cov.ports))))].append(node_id)
    fixed = 0
    for (whole_host, ports), node_ids in groups.items():
        port_filter = Q() if whole_host else (Q(port__isnull=True) | Q(port__in=ports))
        if rules is not None:
            port_filter &= Q(rule_id__in=list(rules))
        for start in range(0, len(node_ids), NODE_CHUNK):
            fixing = Finding.objects.filter(
                port_filter,
                org=org,
                source=source,
                node_id__in=node_ids[start : start + NODE_CHUNK],
                status=Finding.Status.OPEN,
            ).order_by()  # the model's ordering would sort the ids for nothing
            if matched is None:
                fixing = fixing.filter(last_seen__lt=seen_at)
            else:
                unmatched = [pk for pk, node_id, fingerprint in fixing.values_list("pk", "node_id", "fingerprint")
                             if (node_id, fingerprint) not in matched]
                if not unmatched:
                    continue
                fixing = Finding.objects.filter(pk__in=unmatched)
            fixed += _fix(findings=fixing, session=session, seen_at=seen_at, catalog=matched is not None)
    return fixed


def _fix(*, findings, session, seen_at, catalog: bool = False) -> int:
    """Fix and record in one statement: the UPDATE's RETURNING feeds the events' INSERT."""
    kind, reason = (FindingEvent.Kind.CATALOG, CATALOG_UNMATCHED) if catalog else (FindingEvent.Kind.FIXED, "")
    ids_sql, params = findings.values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            # The ids as an array computed once, not a join: planned for any statistics (see _SEE), the
            # self-join of "id IN (...)" can turn into a nested loop over every row of both sides.
            f"WITH fixed AS (UPDATE {FINDINGS} SET status = %s, fixed_at = %s, priority = NULL, priority_reasons = NULL, "
            "due_at = NULL "
            f"WHERE id = ANY(ARRAY({ids_sql})) "
            "RETURNING id) "
            f"INSERT INTO {EVENTS} (finding_id, session_id, kind, from_status, to_status, reason, at) "
            "SELECT id, %s, %s, %s, %s, %s, %s FROM fixed",
            [Finding.Status.FIXED, seen_at, *params, session.pk if session is not None else None,
             kind, Finding.Status.OPEN, Finding.Status.FIXED, reason, seen_at],
        )
        return cursor.rowcount


@transaction.atomic
def findings_withdraw(
    *, source: str, rule_ids: Collection[str], reason: str, at: datetime | None = None
) -> list[tuple[int, int]]:
    """Open findings of ``source`` for ``rule_ids``, in every organization, become false positives
    with ``reason`` and a CATALOG event: what they reported was withdrawn where it came from (a
    CVE that NVD rejected was never a vulnerability, so neither "fixed" nor "open" is true).

    Nobody triaged them (``triaged_by`` stays empty): the reason says who withdrew them. Findings
    a person triaged, and those already fixed, keep their status. Returns the organization and
    node ids of every finding withdrawn, for scoring.
    """
    if not rule_ids:
        return []
    at = at or timezone.now()
    withdrawing = Finding.objects.filter(source=source, rule_id__in=list(rule_ids), status=Finding.Status.OPEN)
    ids_sql, params = withdrawing.order_by().values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH withdrawn AS (UPDATE {FINDINGS} SET status = %s, triage_reason = %s, triaged_at = %s, "
            f"triaged_by_id = NULL WHERE id = ANY(ARRAY({ids_sql})) RETURNING id, org_id, node_id), "
            f"events AS (INSERT INTO {EVENTS} (finding_id, session_id, kind, from_status, to_status, reason, at) "
            "SELECT id, NULL, %s, %s, %s, %s, %s FROM withdrawn) "
            "SELECT org_id, node_id FROM withdrawn",
            [Finding.Status.FALSE_POSITIVE, reason, at, *params, FindingEvent.Kind.CATALOG, Finding.Status.OPEN,
             Finding.Status.FALSE_POSITIVE, reason, at],
        )
        return cursor.fetchall()
