"""The watchdog, run on beat: nothing stays stuck silently.

Each sweep looks at the rows only (never at Celery):

- a *running job* whose heartbeat is stale or that is past its deadline (its worker was
  killed, its pool child hung): retried once, then failed with a ``stage_stuck``
  intervention — the session goes on without it;
- a *dispatched job nobody claimed* for too long (its message was lost, e.g. the
  broker restarted without persistence): handed back to admission — no attempt was
  spent;
- *waiting jobs* of an organization with free slots: admitted (a pump that was missed);
- a *session* held by a closed scan window is left alone: the pumps above release it when
  the window opens;
- a *session* whose work waits for a zone with no worker alive is not stuck: its stage's deadline
  starts again, and a discovery stage with only such work left hands over (the waiting nodes
  follow when a worker of their zone comes);
- a *session* whose stage is past its deadline, or whose stage task went silent (stale
  heartbeat, or never claimed): the stage is re-run once, then a ``stage_stuck``
  intervention opens.
"""

from __future__ import annotations

from collections import Counter

import structlog
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from interventions.models import Intervention
from interventions.services import intervention_open
from scans.models import ScanJob, ScanSession
from scans.pipeline import conf, dispatch
from scans.pipeline.execution import (
    DISCOVERY,
    UNFINISHED,
    job_intervention_open,
    jobs_of_stage,
    jobs_pump,
    stage_check_complete,
    stage_of,
)
from scans.pipeline.sessions import FAN_OUT, stage_deadline_seconds, stage_task
from scans.pipeline.zones import sessions_waiting_for_zones, zones_alive, zones_unavailable_sweep

logger = structlog.get_logger(__name__)

Status = ScanJob.Status


def watchdog_sweep() -> dict[str, int]:
    now = timezone.now()
    counts: Counter = Counter()
    orgs_to_pump: set[int] = set()
    _stuck_jobs(now, counts, orgs_to_pump)
    _lost_jobs(now, counts, orgs_to_pump)
    orgs_to_pump |= set(
        ScanJob.objects.filter(status=Status.QUEUED, task_id="").exclude(session__status__in=ScanSession.FINISHED)
        .values_list("session__org_id", flat=True).distinct()
    )
    for org_id in orgs_to_pump:
        counts["admitted"] += jobs_pump(org_id=org_id)
    _stuck_sessions(now, counts)
    counts.update(zones_unavailable_sweep(now=now))
    if counts:
        logger.info("watchdog.swept", **counts)
    return dict(counts)


def _stuck_jobs(now, counts: Counter, orgs: set[int]) -> None:
    stale = now - timezone.timedelta(seconds=conf.stale_seconds())
    overdue = now - timezone.timedelta(seconds=2 * conf.job_grace_seconds() + conf.heartbeat_seconds())
    stuck = (ScanJob.objects.filter(status=Status.RUNNING)
             .filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True) | Q(deadline_at__lt=overdue))
             .select_related("session__org", "node"))
    for job in stuck:
        why = (f"heartbeat stale since {job.heartbeat_at:%H:%M:%S}" if job.heartbeat_at and job.heartbeat_at < stale
               else "past its deadline")
        mine = ScanJob.objects.filter(pk=job.pk, status=Status.RUNNING, task_id=job.task_id)
        if job.attempts < job.max_attempts and not job.session.cancel_requested:
            # Retried once by the watchdog: whatever attempts were left, it gets exactly one more.
            if mine.update(status=Status.QUEUED, task_id="", queued_at=now, max_attempts=job.attempts + 1,
                           error=f"watchdog: {why}; re-queued"):
                counts["jobs_requeued"] += 1
                orgs.add(job.session.org_id)
            continue
        with transaction.atomic():
            status = Status.CANCELLED if job.session.cancel_requested else Status.FAILED
            if not mine.update(status=status, finished_at=now, error=f"watchdog: {why}; attempts exhausted"):
                continue
            changes = {"stage_pending": F("stage_pending") - 1}
            if job.scanner != DISCOVERY:
                changes[f"jobs_{status}"] = F(f"jobs_{status}") + 1
            ScanSession.objects.filter(pk=job.session_id).update(**changes)
        counts["jobs_failed"] += 1
        if status == Status.FAILED:
            job.refresh_from_db()
            job_intervention_open(job=job, kind=Intervention.Kind.STAGE_STUCK, error=job.error)
        orgs.add(job.session.org_id)
        stage_check_complete(session_id=job.session_id, stage=stage_of(job.scanner))


def _lost_jobs(now, counts: Counter, orgs: set[int]) -> None:
    lost = now - timezone.timedelta(seconds=conf.lost_seconds())
    rows = list(ScanJob.objects.filter(status__in=(Status.QUEUED, Status.RETRYING), queued_at__lt=lost)
                .exclude(task_id="").values("id", "task_id", "session__org_id", "node__zone_id"))
    zones = {row["node__zone_id"] for row in rows} - {None}
    alive = zones_alive(zones, now=now) if zones else set()
    for row in rows:
        if row["node__zone_id"] is not None and row["node__zone_id"] not in alive:
            # Waiting in its zone's queue for a worker of the zone, not lost: the worker takes it when it comes.
            counts["jobs_waiting_for_zone"] += 1
            continue
        # Conditional on the task id: a message delivered meanwhile has claimed it, nothing to do.
        if ScanJob.objects.filter(pk=row["id"], task_id=row["task_id"],
                                  status__in=(Status.QUEUED, Status.RETRYING)).update(
                status=Status.QUEUED, task_id="", queued_at=now):
            counts["jobs_redispatched"] += 1
            orgs.add(row["session__org_id"])


def _stuck_sessions(now, counts: Counter) -> None:
    stale = now - timezone.timedelta(seconds=conf.stale_seconds())
    lost = now - timezone.timedelta(seconds=conf.lost_seconds())
    waiting_for_zones = sessions_waiting_for_zones(now=now)
    for session in ScanSession.objects.exclude(status__in=ScanSession.FINISHED).select_related("org", "profile"):
        if session.stage == ScanSession.Stage.DONE or session.window_waiting_until is not None:
            continue  # a session held by a closed scan window is waiting, not stuck (admission renews its deadline)
        if session.pk in waiting_for_zones and session.stage in FAN_OUT and session.stage_deadline_at is not None:
            if session.stage == ScanSession.Stage.DISCOVERY and stage_check_complete(session_id=session.pk,
                                                                                     stage=session.stage):
                # Only the waiting zones' discovery was left (their worker went after the others had
                # finished, so no job's end handed over): the other zones' nodes go on to be scanned.
                counts["stages_handed_over"] += 1
                continue
            # Waiting for a zone's worker is not being stuck (the zone_unavailable intervention says so):
            # the stage's clock starts again, so the work gets its whole deadline once the worker comes.
            ScanSession.objects.filter(pk=session.pk, stage=session.stage).update(
                stage_deadline_at=now + timezone.timedelta(seconds=stage_deadline_seconds(session, session.stage)),
                heartbeat_at=now)
            counts["sessions_waiting_for_zone"] += 1
            continue
        beat = session.heartbeat_at or session.created_at
        why = ""
        if session.stage_deadline_at is None:
            if beat < lost:
                why = "its stage was never taken up (message lost?)"
        elif session.stage_deadline_at < now:
            why = f"past its {session.stage} deadline"
        elif session.stage in FAN_OUT:
            if beat < stale and not jobs_of_stage(session.pk, session.stage).filter(status__in=UNFINISHED).exists():
                # Every job finished but nobody handed over (the last one's worker died after recording).
                if stage_check_complete(session_id=session.pk, stage=session.stage):
                    counts["stages_handed_over"] += 1
                continue
        elif beat < stale:
            why = f"its {session.stage} stage went silent (heartbeat stale)"
        if not why:
            continue
        if session.stage_attempts < 1:
            changed = ScanSession.objects.filter(pk=session.pk, stage=session.stage, stage_attempts=session.stage_attempts
                                                 ).update(stage_attempts=F("stage_attempts") + 1, stage_deadline_at=None,
                                                          heartbeat_at=now)
            if changed:
                dispatch.enqueue(stage_task(session.stage), kwargs={"session_id": session.pk, "stage": session.stage},
                                 correlation_id=session.correlation_id)
                counts["stages_rerun"] += 1
                logger.warning("watchdog.stage_rerun", session_id=session.pk, stage=session.stage, reason=why)
            continue
        subject = f"session:{session.pk}:{session.stage}"
        if Intervention.objects.unresolved().filter(subject=subject, kind=Intervention.Kind.STAGE_STUCK).exists():
            continue  # already in a person's hands; do not bump it every sweep
        intervention_open(
            org=session.org, kind=Intervention.Kind.STAGE_STUCK, subject=subject,
            title=f"Session {session.pk} stuck in {session.stage}: {why}", session=session,
            context={"stage": session.stage, "reason": why, "stage_attempts": session.stage_attempts,
                     "correlation_id": session.correlation_id,
                     "stage_deadline_at": session.stage_deadline_at.isoformat() if session.stage_deadline_at else None,
                     "heartbeat_at": beat.isoformat()},
        )
        counts["stages_stuck"] += 1
