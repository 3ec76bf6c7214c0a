"""What a report says, independent of its format: reads only, scoped to the report's organization.

- :func:`findings_in_scope` — the subject's findings (organization, one node, or the nodes of a session).
- :func:`finding_state_changes` — one pass over the subject's findings that compares them with the
  previous comparable report's stored state and returns (changes, the new state to store).
- :func:`executive_summary` — score, grade, trend, grade distribution, top risks, open interventions,
  and for a session what ran, what failed and the stage timings.
- :func:`appendix` — every open finding grouped by node, worst node first, worst finding first,
  streamed from the database in chunks with the CVE records they name.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.db import connection
from django.db.models import Case, Count, F, FloatField, IntegerField, Max, Min, QuerySet, TextField, Value, When
from django.db.models.functions import Cast

from config.fields import Fields
from interventions.models import Intervention
from nodes.fields import NODE_REPORT
from nodes.models import GRADES, SEVERITIES, SEVERITY_RANK, Node, NodeScore, NodeSnapshot
from reports.models import Report
from scans.fields import FINDING_REPORT
from scans.models import CveRecord, Finding, FindingEvent, OrganizationScore, ScanJob, ScanSession
from scans.pipeline.sessions import session_summary

CHANGE_KINDS = ("new", "fixed", "reopened", "risk_accepted", "severity_changed")
CHANGE_EXAMPLES = 10  # findings named per kind of change; the counts are exact
TREND_POINTS = 30
TOP_RISKS = 5
POTENTIAL_LISTED = 20
INTERVENTIONS_LISTED = 20
SESSION_LISTED = 50
CHUNK = 2000

SEVERITY_ORDER = Case(
    *(When(severity=s, then=Value(rank)) for s, rank in SEVERITY_RANK.items()),
    default=Value(0), output_field=IntegerField(),
)


def session_node_ids(session: ScanSession) -> QuerySet:
    return ScanJob.objects.filter(session=session).values("node_id")


def findings_in_scope(report: Report) -> QuerySet:
    """Every finding of the report's subject, whatever its status."""
    qs = Finding.objects.filter(org_id=report.org_id)
    if report.kind == Report.Kind.NODE:
        qs = qs.filter(node_id=report.node_id)
    elif report.kind == Report.Kind.SESSION and report.session_id:
        qs = qs.filter(node_id__in=session_node_ids(report.session))
    return qs


def open_findings_in_scope(report: Report) -> QuerySet:
    return findings_in_scope(report).filter(status=Finding.Status.OPEN)


def previous_comparable(report: Report) -> Report | None:
    """The last ready report of the same kind and subject before this one (any format)."""
    qs = Report.objects.filter(org_id=report.org_id, kind=report.kind, status=Report.Status.READY,
                               created_at__lt=report.created_at).exclude(pk=report.pk)
    if report.kind == Report.Kind.NODE:
        qs = qs.filter(node_id=report.node_id)
    return qs.order_by("-created_at", "-pk").first()


# --- changes since the previous comparable report ----------------------------------------------


def finding_state_changes(report: Report, previous: Report | None) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Compare the subject's findings now with ``previous``'s stored state, in one streamed pass.

    Returns the changes summary (counts of new, fixed, reopened, risk-accepted and
    severity-changed findings, with a few named examples of each) and the state to store
    on this report, ``{finding id: [status, severity]}``. Without a previous report there
    are no changes to speak of: ``changes["previous"]`` is None.
    """
    before: dict[str, list[str]] = previous.finding_state if previous is not None else {}
    now: dict[str, list[str]] = {}
    counts = dict.fromkeys(CHANGE_KINDS, 0)
    examples: dict[str, list[int]] = {k: [] for k in CHANGE_KINDS}
    old_severity: dict[int, str] = {}
    open_, fixed, accepted = Finding.Status.OPEN, Finding.Status.FIXED, Finding.Status.RISK_ACCEPTED
    for pk, status, severity in stream_rows(findings_in_scope(report).order_by(), ("id", "status", "severity")):
        key = str(pk)
        now[key] = [status, severity]
        if previous is None:
            continue
        was = before.get(key)
        found = []
        if was is None:
            if status == open_:
                found.append("new")
        else:
            was_status, was_severity = was
            if status == fixed and was_status != fixed:
                found.append("fixed")
            elif status == open_ and was_status == fixed:
                found.append("reopened")
            if status == accepted and was_status != accepted:
                found.append("risk_accepted")
            if status != fixed and was_severity != severity:
                found.append("severity_changed")
                old_severity[pk] = was_severity
        for kind in found:
            counts[kind] += 1
            if len(examples[kind]) < CHANGE_EXAMPLES:
                examples[kind].append(pk)
    if report.kind == Report.Kind.SESSION and report.session_id:
        return session_changes(report.session), now
    if previous is None:
        return {"previous": None, "counts": counts, "examples": {k: [] for k in CHANGE_KINDS}}, now
    return _named_changes(counts, examples, old_severity, {
        "id": previous.pk, "format": previous.format, "created_at": previous.created_at.isoformat()}), now


# What a session changed is in its findings' history, whatever report came before it: a report
# compares with the previous one, but a session's report speaks of that session.
SESSION_CHANGES = {"new": FindingEvent.Kind.NEW, "fixed": FindingEvent.Kind.FIXED,
                   "reopened": FindingEvent.Kind.REOPENED}


def session_changes(session: ScanSession) -> dict[str, Any]:
    """The findings ``session`` made new, fixed or reopened, from their events (a few named per kind)."""
    events = FindingEvent.objects.filter(session=session, kind__in=SESSION_CHANGES.values())
    by_kind = dict(events.values_list("kind").annotate(n=Count("id")).order_by())
    counts = {name: by_kind.get(kind, 0) for name, kind in SESSION_CHANGES.items()}
    examples = {name: list(events.filter(kind=kind).order_by("finding_id").values_list("finding_id", flat=True)
                           [:CHANGE_EXAMPLES]) if counts[name] else []
                for name, kind in SESSION_CHANGES.items()}
    return _named_changes(counts, examples, {}, None, session=session.pk)


def _named_changes(counts: dict[str, int], examples: dict[str, list[int]], old_severity: dict[int, str],
                   previous: dict[str, Any] | None, session: int | None = None) -> dict[str, Any]:
    wanted = {pk for ids in examples.values() for pk in ids}
    details = {
        f["id"]: f for f in Finding.objects.filter(pk__in=wanted).values("id", "title", "severity", "node__address")
    }
    named = {
        kind: [
            {"id": pk, "title": details[pk]["title"], "severity": details[pk]["severity"],
             "node": details[pk]["node__address"], **({"was": old_severity[pk]} if pk in old_severity else {})}
            for pk in ids if pk in details
        ]
        for kind, ids in examples.items()
    }
    return {"previous": previous, "session": session, "counts": counts, "examples": named}


# --- executive summary ---------------------------------------------------------------------------


def executive_summary(report: Report) -> dict[str, Any]:
    """The first pages: how the subject stands and what to do first. A fixed number of queries.

    Potential findings (too uncertain, unconfirmed: ``Finding.objects.potential``) count in no
    figure and are never a top risk: they have their own list, each with how sure and why.
    """
    org = report.org
    every_open = open_findings_in_scope(report)
    open_qs = every_open.certain(org.potential_threshold)
    severity_counts = {s: 0 for s in SEVERITIES}
    for severity, n in open_qs.order_by().values_list("severity").annotate(n=Count("pk")):
        severity_counts[severity] = n
    snapshots = NodeSnapshot.objects.filter(org=org)
    if report.kind == Report.Kind.NODE:
        snapshots = snapshots.filter(node_id=report.node_id)
    elif report.kind == Report.Kind.SESSION and report.session_id:
        snapshots = snapshots.filter(node_id__in=session_node_ids(report.session))
    grades = {g: 0 for g in GRADES}
    for grade, n in snapshots.exclude(grade="").order_by().values_list("grade").annotate(n=Count("pk")):
        grades[grade] = n

    if report.kind == Report.Kind.NODE:
        snapshot = snapshots.first()
        score, grade = (snapshot.score, snapshot.grade) if snapshot else (None, "")
        history = NodeScore.objects.filter(node_id=report.node_id).order_by("-created_at")[:TREND_POINTS]
    else:
        latest = None
        if report.kind == Report.Kind.SESSION and report.session_id:
            latest = OrganizationScore.objects.filter(org=org, session_id=report.session_id).first()
        latest = latest or OrganizationScore.objects.filter(org=org).first()
        score, grade = (latest.score, latest.grade) if latest else (None, "")
        history = OrganizationScore.objects.filter(org=org).order_by("-created_at")[:TREND_POINTS]
    trend = [(row.created_at, row.score) for row in reversed(list(history))]

    interventions = Intervention.objects.unresolved().filter(org=org)
    if report.kind == Report.Kind.NODE:
        interventions = interventions.filter(node_id=report.node_id)
    elif report.kind == Report.Kind.SESSION and report.session_id:
        interventions = interventions.filter(session_id=report.session_id)
    interventions_total = interventions.count()
    listed = list(interventions.select_related("node").order_by("-opened_at")[:INTERVENTIONS_LISTED])

    nodes_total = snapshots.count() if report.kind != Report.Kind.NODE else 1
    summary = {
        "score": score,
        "grade": grade,
        "trend": trend,
        "grades": grades,
        "severity_counts": severity_counts,
        "open_findings": sum(severity_counts.values()),
        "nodes": nodes_total,
        "top_risks": top_risks(open_qs),
        **potential_findings(every_open.potential(org.potential_threshold)),
        "interventions": listed,
        "interventions_total": interventions_total,
    }
    if report.kind == Report.Kind.SESSION and report.session_id:
        summary["session"] = session_details(report.session)
    return summary


def top_risks(open_qs: QuerySet) -> list[dict[str, Any]]:
    """The worst problems in plain words: the same issue on many nodes counts once, with its reach."""
    rows = (
        open_qs.order_by().values("rule_id", "title", "severity")
        .annotate(nodes=Count("node_id", distinct=True), findings=Count("pk"), rank=Max(SEVERITY_ORDER),
                  remediation=Max("remediation"), cvss=Max("cvss_score"), priority=Min("priority"))
        # The most urgent first (the priority policy's P1), then severity, reach and CVSS.
        .order_by(F("priority").asc(nulls_last=True), "-rank", "-nodes", "-cvss", "title")[:TOP_RISKS]
    )
    risks = []
    for row in rows:
        nodes = row["nodes"]
        where = "one node" if nodes == 1 else f"{nodes} nodes"
        advice = first_sentence(row["remediation"]) or "Investigate and fix the affected service."
        risks.append({
            "title": row["title"], "severity": row["severity"], "priority": row["priority"], "nodes": nodes,
            "findings": row["findings"],
            "sentence": f"{row['severity'].capitalize()} risk on {where}: {row['title']}.",
            "advice": advice,
        })
    return risks


def potential_findings(potential_qs: QuerySet) -> dict[str, Any]:
    """The open findings too uncertain to count, most severe first, each with its confidence and reason."""
    rows = list(
        potential_qs.annotate(rank=SEVERITY_ORDER)
        .order_by("-rank", F("match_confidence").desc(), "id")
        .values("id", "title", "severity", "node__address", "match_confidence", "match_reason")[:POTENTIAL_LISTED]
    )
    total = len(rows) if len(rows) < POTENTIAL_LISTED else potential_qs.count()
    return {
        "potential": [{"id": r["id"], "title": r["title"], "severity": r["severity"], "node": r["node__address"],
                       "confidence": r["match_confidence"], "reason": r["match_reason"]} for r in rows],
        "potential_total": total,
    }


def first_sentence(text: str, limit: int = 240) -> str:
    text = " ".join((text or "").split())
    if not text:
        return ""
    end = text.find(". ")
    sentence = text if end == -1 else text[: end + 1]
    return shorten(sentence, limit)


def shorten(text: str, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def session_details(session: ScanSession) -> dict[str, Any]:
    """What ran, what failed and why, new / fixed / reopened findings, the stage timings."""
    failed_jobs = list(
        ScanJob.objects.filter(session=session, status=ScanJob.Status.FAILED).select_related("node")
        .order_by("node__address", "scanner")[:SESSION_LISTED]
    )
    listed = ("id", "title", "severity", "node__address")
    new = Finding.objects.filter(org_id=session.org_id, first_session=session)
    fixed = Finding.objects.filter(org_id=session.org_id, status=Finding.Status.FIXED,
                                   node_id__in=session_node_ids(session), fixed_at__gte=session.started_at or session.created_at)
    if session.finished_at:
        fixed = fixed.filter(fixed_at__lte=session.finished_at)
    reopened = Finding.objects.filter(org_id=session.org_id, last_session=session, status=Finding.Status.OPEN,
                                      reopened_count__gt=0).exclude(first_session=session)
    order = (F("cvss_score").desc(nulls_last=True), "id")
    return {
        "session": session,
        "summary": session_summary(session=session),
        "failed_jobs": failed_jobs,
        "new": list(new.order_by(*order).values(*listed)[:SESSION_LISTED]),
        "fixed": list(fixed.order_by(*order).values(*listed)[:SESSION_LISTED]),
        "reopened": list(reopened.order_by(*order).values(*listed)[:SESSION_LISTED]),
    }


# --- technical appendix --------------------------------------------------------------------------

# Fields the appendix reads cast in SQL, cheaper than converting tens of thousands of values in
# Python: CVSS scores as floats, times as text (``iso`` spells them).
APPENDIX_CASTS = {"cvss_score": FloatField(), "first_seen": TextField(), "last_seen": TextField()}


@dataclass
class NodeSection:
    node: dict[str, Any]
    findings: list[dict[str, Any]] = field(default_factory=list)
    omitted: int = 0  # open findings left out by a per-node cap


def appendix_queryset(report: Report) -> QuerySet:
    """Open findings, worst node first (lowest score, unscored last), worst finding first."""
    return (
        open_findings_in_scope(report)
        .annotate(rank=SEVERITY_ORDER, **{f"{name}_cast": Cast(name, cast) for name, cast in APPENDIX_CASTS.items()})
        .order_by(F("node__snapshot__score").asc(nulls_last=True), "node__address", "node_id", "-rank",
                  F("cvss_score").desc(nulls_last=True), "id")
    )


def appendix_columns(fields: Fields) -> tuple[str, ...]:
    """The columns of ``appendix_queryset`` that read ``fields`` (of ``scans.fields.FINDING``), in their order."""
    return tuple(f"{f.name}_cast" if f.name in APPENDIX_CASTS else f.source for f in fields)


def stream_rows(queryset: QuerySet, fields: tuple[str, ...]) -> Iterator[tuple]:
    """The rows of ``queryset.values_list(*fields)`` from a server-side cursor, one chunk in memory at a time.

    Raw database values, without Django's per-value converters (a large export would spend much
    of its time in them): JSON columns arrive as their JSON text, CVSS scores as floats (cast
    in SQL), times as datetimes.
    """
    sql, params = queryset.values_list(*fields).query.sql_with_params()
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK):
            yield from rows


def iso(value: datetime | str | None) -> str | None:
    """A database time as ISO 8601 with its offset: a datetime, or PostgreSQL's text of one
    (``2026-11-30 21:00:00+00``), which the appendix casts its times to."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.replace(" ", "T", 1)
        return text + ":00" if text[-3] in "+-" else text  # a whole-hour offset is written +00
    return value.isoformat()


def json_value(value: Any) -> Any:
    """A JSON column's value from its text (orjson: an export parses one per row)."""
    if not isinstance(value, str):
        return value
    if value == "[]":
        return []
    return orjson.loads(value)


def appendix(report: Report, *, per_node: int | None = None, max_nodes: int | None = None,
             evidence_chars: int = 600, cve_chars: int = 400) -> Iterator[NodeSection]:
    """Every open finding grouped by node, streamed: memory holds one chunk of rows at a time.

    ``per_node`` caps the findings shown per node (the rest are counted in ``omitted``) and
    ``max_nodes`` the nodes (worst first); evidence and CVE descriptions are shortened to keep
    a printed appendix readable. Each finding carries the ``scans.fields.FINDING_REPORT`` fields
    (CVSS as a float, times as the database's text), ``evidence`` as parsed JSON, ``evidence_json``
    as stored, ``evidence_text`` as one readable line and ``cves``, the CVE records it names.
    """
    names = FINDING_REPORT.names
    rows = (dict(zip(names, row)) for row in stream_rows(appendix_queryset(report), appendix_columns(FINDING_REPORT)))
    nodes: dict[int, dict[str, Any]] = {}
    done = 0
    for batch in _batches(itertools.groupby(rows, key=lambda r: r["node"]), rows_per_batch=CHUNK,
                          per_node=per_node):
        node_ids = [node_id for node_id, _, _ in batch if node_id not in nodes]
        for node in NODE_REPORT.rows(Node.objects.filter(pk__in=node_ids)):
            nodes[node["id"]] = node
        cve_ids = set()
        for _, findings, _ in batch:
            for f in findings:
                f["cve_ids"] = json_value(f["cve_ids"]) or []
                cve_ids.update(f["cve_ids"])
        cves = {
            c["cve_id"]: {"id": c["cve_id"], "cvss_score": float(c["cvss_score"]) if c["cvss_score"] is not None else None,
                          "severity": c["severity"], "description": shorten(c["description"], cve_chars)}
            for c in CveRecord.objects.filter(cve_id__in=cve_ids).values("cve_id", "cvss_score", "severity", "description")
        } if cve_ids else {}
        for node_id, findings, omitted in batch:
            section = NodeSection(node=nodes.pop(node_id, {"id": node_id, "address": f"node {node_id}"}), omitted=omitted)
            for f in findings:
                raw = f["evidence"]
                f["evidence_json"] = raw if isinstance(raw, str) else json.dumps(raw)
                f["evidence"] = evidence = json_value(raw)
                f["evidence_text"] = evidence_text(evidence, evidence_chars)
                f["cves"] = [cves.get(cve) or {"id": cve, "cvss_score": None, "severity": "", "description": ""}
                             for cve in f["cve_ids"]]
                section.findings.append(f)
            yield section
            done += 1
            if max_nodes is not None and done >= max_nodes:
                return


def _batches(groups, *, rows_per_batch: int, per_node: int | None):
    """Node groups in batches of about ``rows_per_batch`` rows (a node is never split), capped per node."""
    batch, size = [], 0
    for node_id, findings in groups:
        kept = list(itertools.islice(findings, per_node)) if per_node is not None else list(findings)
        omitted = sum(1 for _ in findings)
        batch.append((node_id, kept, omitted))
        size += len(kept)
        if size >= rows_per_batch:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def evidence_text(evidence: Any, limit: int) -> str:
    """Evidence as one readable line: ``key: value; key: value``, shortened."""
    if not evidence:
        return ""
    if isinstance(evidence, dict):
        parts, length = [], 0
        for key, value in evidence.items():
            if not isinstance(value, str):
                value = str(value) if isinstance(value, (int, float, bool)) or value is None else \
                    json.dumps(value, default=str, separators=(",", ":"))
            part = f"{key}: {value}"
            parts.append(part)
            length += len(part) + 2
            if length > limit:
                break
        return shorten("; ".join(parts), limit)
    return shorten(evidence if isinstance(evidence, str) else json.dumps(evidence, default=str), limit)
