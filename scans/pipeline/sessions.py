"""Sessions: start, cancel, hand a stage over to the next, finish, summarize."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.request_id import current_request_id
from interventions.models import Intervention
from interventions.services import interventions_resolve_after_retry
from nodes.services import node_get_or_create
from orgs.audit import audit_record
from orgs.events import SESSION_FINISHED, event_publish
from orgs.models import Organization
from orgs.schedules import organization_schedule_forget
from orgs.scope import ScopeError, resolve_and_check
from scans.models import ScanJob, ScanSession
from scans.pipeline import conf, dispatch
from scans.pipeline.profiles import ProfileError, profile_resolve

logger = structlog.get_logger(__name__)

Stage = ScanSession.Stage
Status = ScanSession.Status

# The stages in the order a session runs them: the order ScanSession.Stage declares them, DONE aside.
STAGES = tuple(stage for stage in Stage if stage != Stage.DONE)
FAN_OUT = (Stage.DISCOVERY, Stage.EXECUTION)
# Each stage's task, hence its queue (config.celery routes by name).
STAGE_TASKS = {
    Stage.SCORING: "scans.tasks.scoring_stage_run",
    Stage.REPORTING: "scans.tasks.reporting_stage_run",
}


def stage_task(stage: str) -> str:
    return STAGE_TASKS.get(stage, "scans.tasks.stage_run")


def next_stage(stage: str) -> str:
    index = STAGES.index(stage)
    return STAGES[index + 1] if index + 1 < len(STAGES) else Stage.DONE


class SessionError(ValueError):
    """A session that cannot start as asked (out-of-scope target, unknown profile...)."""


def session_start(
    *,
    org: Organization,
    trigger: str,
    requested_by=None,
    requested_by_token=None,
    targets: list[str] | None = None,
    profile=None,
    correlation_id: str = "",
) -> ScanSession:
    """Create a session and queue its first stage.

    Explicit targets are checked against the organization's scope and the deployment's
    allowed networks *before anything else*, and become nodes when new; one refused
    target refuses the whole request with the guard's message.
    """
    try:
        profile = profile_resolve(org=org, profile=profile)
    except ProfileError as exc:
        raise SessionError(str(exc)) from None
    addresses: list[str] = []
    checked = []
    for raw in targets or ():
        try:
            checked.append((raw.strip(), resolve_and_check(raw, scope=[*org.scope_networks, *org.scope_hostnames],
                                                          allowed_networks=settings.SCAN_ALLOWED_NETWORKS)))
        except ScopeError as exc:
            raise SessionError(str(exc)) from None
    with transaction.atomic():
        for raw, target in checked:
            address = target.address if not target.hostname else target.hostname
            node = node_get_or_create(org=org, address=address)
            if target.hostname and node.resolved_ip != target.address:
                node.resolved_ip, node.hostname = target.address, target.hostname
                node.save(update_fields=["resolved_ip", "hostname", "updated_at"])
            if not node.enabled:
                raise SessionError(f"node {node} is disabled; enable it before scanning it")
            addresses.append(node.address)
        now = timezone.now()
        session = ScanSession.objects.create(
            org=org, profile=profile, trigger=trigger, targets=list(dict.fromkeys(addresses)),
            correlation_id=correlation_id or current_request_id() or uuid.uuid4().hex,
            requested_by=requested_by if getattr(requested_by, "is_authenticated", False) else None,
            requested_by_token=requested_by_token, heartbeat_at=now,
            stage_timings={Stage.DISCOVERY: {"queued_at": now.isoformat()}},
        )
        if requested_by is not None or requested_by_token is not None:
            audit_record(org=org, verb="session.started", target=session, actor=requested_by,
                         token=requested_by_token, changes={"profile": profile.slug, "targets": session.targets})
        dispatch.enqueue(stage_task(Stage.DISCOVERY), kwargs={"session_id": session.pk, "stage": Stage.DISCOVERY},
                         correlation_id=session.correlation_id)
    logger.info("session.started", session_id=session.pk, org=org.slug, profile=profile.slug, trigger=trigger)
    return session


def session_start_scheduled(*, org_id: int) -> ScanSession | None:
    """The beat entry: start the organization's scheduled session unless one is still running.

    A schedule faster than the scans must not pile sessions up behind each other.
    """
    org = Organization.objects.filter(pk=org_id).first()
    if org is None:
        organization_schedule_forget(org_id=org_id)
        return None
    if not org.schedule_crontab:
        return None
    if ScanSession.objects.filter(org=org).exclude(status__in=ScanSession.FINISHED).exists():
        logger.info("session.schedule_skipped", org=org.slug, reason="a session is still running")
        return None
    return session_start(org=org, trigger=ScanSession.Trigger.SCHEDULE,
                         correlation_id=f"schedule-{org.slug}-{uuid.uuid4().hex[:12]}")


def session_cancel(*, session: ScanSession, by=None, token=None) -> ScanSession:
    """Stop queued work; running jobs end on their own; the session then finishes as cancelled."""
    from scans.pipeline.execution import stage_check_complete

    with transaction.atomic():
        changed = ScanSession.objects.filter(pk=session.pk, cancel_requested=False).exclude(
            status__in=ScanSession.FINISHED).update(cancel_requested=True)
        if not changed:
            session.refresh_from_db()
            if session.is_finished:
                raise SessionError(f"session {session.pk} already finished ({session.status}); nothing to cancel")
            return session  # cancelled already: cancelling twice is not an error
        queued = ScanJob.objects.filter(session=session, status__in=(ScanJob.Status.QUEUED, ScanJob.Status.RETRYING))
        execution = queued.exclude(scanner__in=("discovery", "cve")).count()
        n = queued.update(status=ScanJob.Status.CANCELLED, finished_at=timezone.now(), error="cancelled")
        ScanSession.objects.filter(pk=session.pk).update(jobs_cancelled=F("jobs_cancelled") + execution,
                                                        stage_pending=F("stage_pending") - n)
        if by is not None or token is not None:
            audit_record(org=session.org, verb="session.cancelled", target=session, actor=by, token=token,
                         changes={"cancelled_jobs": n})
    session.refresh_from_db()
    if session.stage in FAN_OUT and session.stage_deadline_at is not None:
        stage_check_complete(session_id=session.pk, stage=session.stage)
    logger.info("session.cancel_requested", session_id=session.pk, cancelled_jobs=n)
    session.refresh_from_db()
    return session


def stage_claim(*, session_id: int, stage: str) -> ScanSession | None:
    """Take the stage for this run, or None when it is not (or no longer) this stage's turn.

    ``stage_deadline_at`` doubles as the claim: set when a run takes the stage, cleared
    when the stage hands over or the watchdog re-runs it.
    """
    now = timezone.now()
    with transaction.atomic():
        session = ScanSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None or session.stage != stage or session.is_finished or session.stage_deadline_at is not None:
            return None
        deadline = stage_deadline_seconds(session, stage)
        timings = dict(session.stage_timings or {})
        entry = dict(timings.get(stage) or {})
        entry.setdefault("started_at", now.isoformat())
        timings[stage] = entry
        session.stage_timings = timings
        session.stage_deadline_at = now + timezone.timedelta(seconds=deadline)
        session.heartbeat_at = now
        fields = ["stage_timings", "stage_deadline_at", "heartbeat_at"]
        if session.status == Status.QUEUED:
            session.status, session.started_at = Status.RUNNING, now
            fields += ["status", "started_at"]
        session.save(update_fields=fields)
    return session


def stage_deadline_seconds(session: ScanSession, stage: str) -> float:
    if stage == Stage.EXECUTION:
        return float(session.profile.time_budget_seconds if session.profile_id else 900)
    if stage == Stage.DISCOVERY:
        return conf.discovery_seconds()
    return conf.stage_seconds()


def stage_advance(*, session_id: int, from_stage: str) -> bool:
    """Hand the session to the next stage; only one caller wins, whoever calls it."""
    now = timezone.now()
    with transaction.atomic():
        session = ScanSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None or session.stage != from_stage or session.is_finished:
            return False
        to = next_stage(from_stage)
        timings = dict(session.stage_timings or {})
        entry = dict(timings.get(from_stage) or {})
        entry.setdefault("started_at", now.isoformat())
        entry["finished_at"] = now.isoformat()
        entry["seconds"] = round((now - timezone.datetime.fromisoformat(entry["started_at"])).total_seconds(), 3)
        timings[from_stage] = entry
        if to != Stage.DONE:
            timings[to] = {"queued_at": now.isoformat()}
        session.stage_timings = timings
        session.stage, session.stage_deadline_at, session.stage_attempts, session.heartbeat_at = to, None, 0, now
        session.stage_pending = 0
        session.save(update_fields=["stage_timings", "stage", "stage_deadline_at", "stage_attempts", "heartbeat_at",
                                    "stage_pending"])
        if to != Stage.DONE:
            dispatch.enqueue(stage_task(to), kwargs={"session_id": session.pk, "stage": to},
                             correlation_id=session.correlation_id)
    interventions_resolve_after_retry(session=session)
    logger.info("session.stage_advanced", session_id=session_id, stage=to)
    return True


def session_outcome(session: ScanSession) -> str:
    """succeeded | partial | failed | cancelled, from the rows (a failed job never hides)."""
    return session_outcome_and_reason(session)[0]


def session_outcome_and_reason(session: ScanSession) -> tuple[str, str]:
    """The outcome, and why in words when the session did not simply succeed."""
    if session.cancel_requested:
        return Status.CANCELLED, "cancelled on request"
    if session.error:
        return Status.FAILED, session.error.splitlines()[0][:300]
    discovery = Counter(ScanJob.objects.filter(session=session, scanner="discovery").values_list("status", flat=True))
    if session.nodes_total == 0:
        if (session.summary or {}).get("skipped", {}).get("cooldown"):
            return Status.SUCCEEDED, ""
        return Status.FAILED, "no enabled node to scan"
    if session.jobs_total == 0:
        unreachable = _plural(session.nodes_total, "target")
        return Status.FAILED, (f"all {unreachable} unreachable" if session.nodes_total > 1
                               else f"the {unreachable} was unreachable")
    if session.jobs_succeeded == 0:
        return Status.FAILED, f"all {_plural(session.jobs_total, 'scanner job')} failed"
    failed_discovery = discovery.get(ScanJob.Status.FAILED, 0)
    if session.jobs_failed or failed_discovery:
        parts = []
        if session.jobs_failed:
            parts.append(f"{session.jobs_failed} of {_plural(session.jobs_total, 'scanner job')} failed")
        if failed_discovery:
            parts.append(f"discovery failed on {_plural(failed_discovery, 'node')}")
        return Status.PARTIAL, "; ".join(parts)
    return Status.SUCCEEDED, ""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def session_finish(*, session_id: int, error: str = "") -> ScanSession:
    now = timezone.now()
    with transaction.atomic():
        session = ScanSession.objects.select_for_update().get(pk=session_id)
        if session.is_finished:
            return session
        if error:
            session.error = error[:5000]
        status, session.reason = session_outcome_and_reason(session)
        session.status, session.finished_at = status, now
        if not error:
            session.stage = Stage.DONE
        session.stage_deadline_at = None
        session.summary = {**(session.summary or {}), **session_summary(session=session)}
        session.save(update_fields=["status", "finished_at", "stage", "stage_deadline_at", "summary", "error",
                                     "reason"])
        event_publish(SESSION_FINISHED, session=session)  # subscribers write in this transaction
    logger.info("session.finished", session_id=session_id, status=status)
    return session


def session_summary(*, session: ScanSession) -> dict[str, Any]:
    """What a person (or --json) wants to know: stages with timings, jobs by status, findings, interventions."""
    jobs: dict[str, Counter] = {"discovery": Counter(), "execution": Counter(), "analysis": Counter()}
    by_scanner: dict[str, Counter] = {}
    for scanner, status in ScanJob.objects.filter(session=session).values_list("scanner", "status"):
        group = "discovery" if scanner == "discovery" else "analysis" if scanner == "cve" else "execution"
        jobs[group][status] += 1
        by_scanner.setdefault(scanner, Counter())[status] += 1
    stages = []
    for stage in STAGES:
        entry = (session.stage_timings or {}).get(stage) or {}
        stages.append({"stage": stage, "started_at": entry.get("started_at"), "finished_at": entry.get("finished_at"),
                       "seconds": entry.get("seconds")})
    interventions = [
        {"id": i.pk, "kind": i.kind, "state": i.state, "subject": i.subject, "title": i.title}
        for i in Intervention.objects.filter(session=session).order_by("pk")
    ]
    end = session.finished_at or timezone.now()
    return {
        "session": session.pk,
        "org": session.org.slug,
        "profile": session.profile.slug if session.profile_id else None,
        "trigger": session.trigger,
        "status": session.status,
        "stage": session.stage,
        "correlation_id": session.correlation_id,
        "nodes": session.nodes_total,
        "stages": stages,
        "jobs": {group: dict(counter) for group, counter in jobs.items()},
        "jobs_by_scanner": {scanner: dict(counter) for scanner, counter in sorted(by_scanner.items())},
        "findings": {"new": session.findings_new, "updated": session.findings_updated,
                     "reopened": session.findings_reopened, "fixed": session.findings_fixed},
        "interventions_opened": interventions,
        "skipped": (session.summary or {}).get("skipped", {}),
        "error": session.error,
        "reason": session.reason,
        "seconds": round((end - session.started_at).total_seconds(), 3) if session.started_at else None,
    }
