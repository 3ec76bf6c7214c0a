"""The stages' bodies. ``stage_run`` claims a stage, runs its body, and hands over.

Fan-out stages (discovery, execution) create their jobs and let the jobs' fan-in hand
over; one-piece stages (scan creation, analysis, normalization, scoring, reporting)
do their work and hand over themselves. Every body is idempotent: run again (duplicate
delivery, watchdog re-run) it creates nothing twice and counts nothing twice.
"""

from __future__ import annotations

import traceback
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Mod
from django.utils import timezone

from config.bulk import bulk_insert
from interventions.models import Intervention
from interventions.services import intervention_open
from nodes.models import Node
from orgs.scope import ScopeError, resolve_and_check
from scans.cve.analysis import cve_candidates_by_node, cve_coverage
from scans.cve.service_index import service_products_replace
from scans.findings import lifecycle
from scans.findings.candidates import Coverage, FindingCandidate, ServiceObservation
from scans.findings.priority import IngestPriorities, priority_refresh
from scans.findings.daily_stats import finding_daily_stats_refresh
from scans.findings.scoring import scoring_run
from scans.models import ScanJob, ScanSession
from scans.pipeline import conf, dispatch
from scans.pipeline.execution import (
    ANALYSIS,
    DISCOVERY,
    UNFINISHED,
    Heartbeat,
    jobs_of_stage,
    jobs_pump,
    scanner_jobs_plan,
    stage_check_complete,
)
from scans.pipeline.profiles import profile_max_attempts
from scans.pipeline.sessions import FAN_OUT, session_finish, session_outcome, stage_advance, stage_claim
from scans.pipeline.zones import this_worker

logger = structlog.get_logger(__name__)

Stage = ScanSession.Stage
NORMALIZE_BATCH = 500  # jobs per normalization transaction
ANALYSIS_CHUNK = 500  # nodes matched against the catalog per call


def stage_run(*, session_id: int, stage: str) -> bool:
    """Run ``stage`` of the session if it is that stage's turn and nobody has it; else do nothing."""
    session = stage_claim(session_id=session_id, stage=stage)
    if session is None:
        logger.info("stage.skipped", session_id=session_id, stage=stage, reason="not this stage's turn or claimed")
        return False
    logger.info("stage.started", session_id=session_id, stage=stage)
    return _guarded(session, stage, lambda: BODIES[stage](session), beat=stage not in FAN_OUT)


def _guarded(session: ScanSession, stage: str, work: Callable[[], Any], *, beat: bool) -> bool:
    """Run a stage's work with the session's heartbeat beating; a crash fails the stage, never silently."""
    heartbeat = session_heartbeat(session.pk) if beat else None
    if heartbeat:
        heartbeat.start()
    try:
        work()
    except Exception as exc:  # noqa: BLE001 - a crashed stage becomes an intervention, never silence
        logger.exception("stage.crashed", session_id=session.pk, stage=stage)
        stage_failed(session_id=session.pk, stage=stage, error=f"{type(exc).__name__}: {exc}",
                     trace=traceback.format_exc())
        return False
    finally:
        if heartbeat:
            heartbeat.stop()
    return True


def session_heartbeat(session_id: int) -> Heartbeat:
    """Touches the session's ``heartbeat_at`` while a one-piece stage runs, so the watchdog leaves it be."""
    def beat() -> None:
        ScanSession.objects.filter(pk=session_id).update(heartbeat_at=timezone.now())

    return Heartbeat("stage-heartbeat", conf.heartbeat_seconds(), beat, session_id=session_id)


def stage_failed(*, session_id: int, stage: str, error: str, trace: str = "") -> None:
    """A stage crashed: the session fails with the error and a person gets a stage_stuck intervention."""
    session = session_finish(session_id=session_id, error=f"{stage}: {error}")
    intervention_open(
        org=session.org, kind=Intervention.Kind.STAGE_STUCK, subject=f"session:{session.pk}:{stage}",
        title=f"Stage {stage} of session {session.pk} crashed", session=session,
        context={"stage": stage, "error": error, "trace": trace[-4000:], "correlation_id": session.correlation_id},
    )


# --- discovery (fan-out) --------------------------------------------------------------------


def discovery_fan_out(session: ScanSession) -> None:
    """One discovery job per node: declared targets, else every enabled node; scope and cooldown first."""
    org = session.org
    skipped: dict[str, list[str]] = defaultdict(list)
    chosen: list[Node] = []
    if not session.cancel_requested and not jobs_of_stage(session.pk, Stage.DISCOVERY).exists():
        nodes = Node.objects.for_org(org).enabled()
        if session.targets:
            nodes = nodes.filter(address__in=session.targets)
        cooldown = timezone.now() - timezone.timedelta(minutes=org.node_cooldown_minutes)
        scope = [*org.scope_networks, *org.scope_hostnames]
        # Only what choosing reads: a scanned node's evidence and services are large JSON, not needed here.
        for node in nodes.order_by("pk").only("pk", "address", "last_scanned_at"):
            try:
                resolve_and_check(node.address, scope=scope, allowed_networks=settings.SCAN_ALLOWED_NETWORKS)
            except ScopeError as exc:
                skipped["out_of_scope"].append(f"{node.address}: {exc}")
                continue
            if org.node_cooldown_minutes and node.last_scanned_at and node.last_scanned_at > cooldown:
                skipped["cooldown"].append(node.address)
                continue
            chosen.append(node)
    attempts = profile_max_attempts(session.profile)
    with transaction.atomic():
        bulk_insert([ScanJob(session=session, node_id=node.pk, scanner=DISCOVERY, max_attempts=attempts)
                     for node in chosen], ignore_conflicts=True)
        Node.objects.filter(pk__in=[n.pk for n in chosen]).update(last_scanned_at=timezone.now())
        jobs = jobs_of_stage(session.pk, Stage.DISCOVERY)
        changes: dict[str, Any] = {"nodes_total": jobs.count(), "stage_pending": jobs.filter(status__in=UNFINISHED).count(),
                                   "heartbeat_at": timezone.now()}
        if skipped:
            changes["summary"] = {**(session.summary or {}), "skipped": {k: v for k, v in skipped.items()}}
        ScanSession.objects.filter(pk=session.pk).update(**changes)
    jobs_pump(org_id=org.pk)
    stage_check_complete(session_id=session.pk, stage=Stage.DISCOVERY)


# --- scan creation (one piece) --------------------------------------------------------------


def scan_creation(session: ScanSession) -> None:
    """One job per (node that answered, scanner of the profile). Unique per (session, node, scanner).

    A node whose discovery still waits for its zone's worker gets its jobs when that discovery
    finishes (``execution.stage_check_complete``), by the same planning."""
    node_ids = [] if session.cancel_requested else list(
        ScanJob.objects.filter(session=session, scanner=DISCOVERY, status=ScanJob.Status.SUCCEEDED,
                               node__state=Node.State.UP).values_list("node_id", flat=True)
    )
    scanner_jobs_plan(session, node_ids)
    stage_advance(session_id=session.pk, from_stage=Stage.SCAN_CREATION)


# --- execution (fan-out) --------------------------------------------------------------------


def execution_fan_out(session: ScanSession) -> None:
    # A discovery still waiting for its zone's worker is pending here too: the stage waits for it.
    pending = ScanJob.objects.filter(session=session, status__in=UNFINISHED).exclude(scanner=ANALYSIS)
    ScanSession.objects.filter(pk=session.pk).update(stage_pending=pending.count(), heartbeat_at=timezone.now())
    jobs_pump(org_id=session.org_id)
    stage_check_complete(session_id=session.pk, stage=Stage.EXECUTION)


# --- analysis (one piece) -------------------------------------------------------------------


def analysis(session: ScanSession) -> None:
    """Service and version evidence → CVE candidates, kept as a succeeded ``cve`` job per node.

    Exposure rules (datastores, container APIs, admin RPC, TLS, HTTP) already ran as the
    profile's scanners; what is left is matching what discovery named against the
    local CVE catalog. Keeping the matches as jobs lets normalization treat them like any
    scanner's output, and makes a second run create nothing.
    """
    done = set(ScanJob.objects.filter(session=session, scanner=ANALYSIS).values_list("node_id", flat=True))
    # Only the node's services are read: discovery's raw output and evidence stay undecoded.
    rows = (ScanJob.objects.filter(session=session, scanner=DISCOVERY, status=ScanJob.Status.SUCCEEDED,
                                   node__state=Node.State.UP)
            .exclude(node_id__in=done).select_related("node").only("id", "node_id", "node__address", "node__services"))
    now = timezone.now()
    new_jobs = []
    jobs = list(rows)
    for start in range(0, len(jobs), ANALYSIS_CHUNK):
        chunk = jobs[start : start + ANALYSIS_CHUNK]
        services = {job.node_id: [ServiceObservation.from_dict(s) for s in job.node.services or ()] for job in chunk}
        matches = cve_candidates_by_node(services)
        service_products_replace(org_id=session.org_id, services=services)
        for job in chunk:
            host = job.node.address
            new_jobs.append(ScanJob(
                session=session, node=job.node, scanner=ANALYSIS, status=ScanJob.Status.SUCCEEDED, attempts=1,
                started_at=now, finished_at=now, worker=this_worker().hostname,
                raw_result={"scanner": ANALYSIS, "version": "1.0", "target": host, "address": host, "complete": True,
                            "findings": [c.to_dict() for c in matches.get(job.node_id, ())],
                            "coverage": [{"host": host, "ports": list(cve_coverage(services[job.node_id])),
                                          "whole_host": False}]},
            ))
    bulk_insert(new_jobs, ignore_conflicts=True)
    stage_advance(session_id=session.pk, from_stage=Stage.ANALYSIS)


# --- normalization (one piece) --------------------------------------------------------------


def normalization(session: ScanSession) -> None:
    """Succeeded jobs' findings → Findings, per source, with coverage so fixed ones close.

    A job is normalized in the same transaction that ingests it, so a re-run (crash,
    duplicate) ingests only what is left. Failed jobs give neither findings nor coverage:
    a failed job never closes a finding.

    A large session is split by node into parts normalized side by side: this task takes the
    first, each other part is a task of its own for another worker process. No two parts touch
    the same node, hence never the same finding. Whichever part finds nothing left hands over.
    """
    parts = min(conf.normalization_parts(), -(-_unnormalized(session).count() // conf.normalization_part_jobs()))
    for part in range(1, parts):
        dispatch.enqueue(NORMALIZATION_PART_TASK, kwargs={"session_id": session.pk, "part": part, "parts": parts},
                         correlation_id=session.correlation_id)
    _normalize(session, part=0, parts=max(parts, 1))
    _normalization_hand_over(session)


NORMALIZATION_PART_TASK = "scans.tasks.normalization_part_run"


def normalization_part_run(*, session_id: int, part: int, parts: int) -> bool:
    """One part of a split normalization: the jobs of nodes with ``node_id % parts == part``.

    A part delivered after the stage is over (a duplicate, or the stage failed) does nothing.
    """
    session = ScanSession.objects.select_related("org").filter(pk=session_id).first()
    if session is None or session.stage != Stage.NORMALIZATION or session.is_finished:
        logger.info("stage.part_skipped", session_id=session_id, stage=Stage.NORMALIZATION, part=part,
                    reason="the stage is over")
        return False
    if not _guarded(session, Stage.NORMALIZATION, lambda: _normalize(session, part=part, parts=parts), beat=True):
        return False
    _normalization_hand_over(session)
    return True


def _unnormalized(session: ScanSession):
    return (ScanJob.objects.filter(session=session, status=ScanJob.Status.SUCCEEDED, normalized=False)
            .exclude(scanner=DISCOVERY))


def _normalization_hand_over(session: ScanSession) -> None:
    # Each part looks after committing its own last batch: the last part to finish sees none left.
    if not _unnormalized(session).exists():
        stage_advance(session_id=session.pk, from_stage=Stage.NORMALIZATION)


def _normalize(session: ScanSession, *, part: int, parts: int) -> None:
    pending = _unnormalized(session).order_by("scanner", "id")
    if parts > 1:
        pending = pending.alias(part=Mod("node_id", parts)).filter(part=part)
    # order_by() first: the queryset's ordering by id would otherwise make DISTINCT one row per job.
    scanners = list(pending.order_by().values_list("scanner", flat=True).distinct())
    for scanner in scanners:
        while True:
            with transaction.atomic():
                # Of the raw output, only the three keys read here (not the attempts and data a person
                # reads on the job's page); of the node, what coverage needs (its address, its services).
                # Rows, not model instances: building thousands of jobs and nodes would cost more than the work.
                batch = list(pending.filter(scanner=scanner).select_for_update(of=("self",))
                             .annotate(found=KeyTransform("findings", "raw_result"),
                                       covered=KeyTransform("coverage", "raw_result"),
                                       complete=KeyTransform("complete", "raw_result"))
                             .values_list("id", "node_id", "node__address", "node__services",
                                          "found", "covered", "complete")[:NORMALIZE_BATCH])
                if not batch:
                    break
                items, coverage = [], {}
                for _, node_id, address, services, found, covered, complete in batch:
                    for data in found or ():
                        items.append((node_id, FindingCandidate.from_dict(data)))
                    if complete is None or complete:  # a scanner that does not say ran to completion
                        coverage[node_id] = _merged_coverage(address, services,
                                                             [Coverage.from_dict(c) for c in covered or ()])
                # New findings are written with their priority, as an import writes them: scoring's
                # refresh then rewrites only the findings whose priority changed.
                priorities = IngestPriorities(org=session.org, node_ids={node_id for node_id, _ in items},
                                              cve_id_sets={tuple(c.cve_ids) for _, c in items if c.cve_ids})
                counts = lifecycle.findings_ingest(org=session.org, source=scanner, items=items, coverage=coverage,
                                                   complete=True, session=session, priorities=priorities)
                ScanJob.objects.filter(pk__in=[row[0] for row in batch]).update(normalized=True)
                ScanSession.objects.filter(pk=session.pk).update(
                    findings_new=F("findings_new") + counts.new, findings_updated=F("findings_updated") + counts.updated,
                    findings_reopened=F("findings_reopened") + counts.reopened,
                    findings_fixed=F("findings_fixed") + counts.fixed, heartbeat_at=timezone.now(),
                )
            if len(batch) < NORMALIZE_BATCH:
                break  # that was the last of this scanner's jobs in this part: no transaction to find none


def _merged_coverage(address: str, services: list[dict] | None, covered: list[Coverage]) -> Coverage:
    if not covered:
        # A scanner that does not say what it covered covered the ports it was pointed at.
        return Coverage(host=address, ports=tuple(Node.ports_of(services)))
    if any(c.whole_host for c in covered):
        return Coverage(host=address, whole_host=True)
    return Coverage(host=address, ports=tuple(sorted({p for c in covered for p in c.ports})))


# --- scoring (one piece) --------------------------------------------------------------------


def scoring(session: ScanSession) -> None:
    node_ids = list(ScanJob.objects.filter(session=session, scanner=DISCOVERY).values_list("node_id", flat=True))
    status = session_outcome(session)
    # Before scoring: a node's score counts its P1 and P2 findings.
    priority_refresh(org=session.org, node_ids=node_ids)
    scoring_run(org=session.org, node_ids=node_ids, session=session, scan_status=status)
    # The charts' row for today, from the snapshots just written and the session's events.
    finding_daily_stats_refresh(org=session.org)
    stage_advance(session_id=session.pk, from_stage=Stage.SCORING)


# --- reporting (one piece) ------------------------------------------------------------------


# Who writes a session's report: the reports app, a layer above the pipeline, registers its writer
# in ReportsConfig.ready(), so the pipeline never imports it. A writer takes ``session=`` and is
# called twice: before the hand-over, then with the finished session.
SESSION_REPORT_WRITERS: list[Callable[..., Any]] = []


def session_report_writer_register(*, writer: Callable[..., Any]) -> None:
    if writer not in SESSION_REPORT_WRITERS:
        SESSION_REPORT_WRITERS.append(writer)


def reporting(session: ScanSession) -> None:
    for write in SESSION_REPORT_WRITERS:
        write(session=session)
    if stage_advance(session_id=session.pk, from_stage=Stage.REPORTING):
        finished = session_finish(session_id=session.pk)
        for write in SESSION_REPORT_WRITERS:
            write(session=finished)  # the report carries the final outcome


BODIES = {
    Stage.DISCOVERY: discovery_fan_out,
    Stage.SCAN_CREATION: scan_creation,
    Stage.EXECUTION: execution_fan_out,
    Stage.ANALYSIS: analysis,
    Stage.NORMALIZATION: normalization,
    Stage.SCORING: scoring,
    Stage.REPORTING: reporting,
}
