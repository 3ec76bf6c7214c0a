"""Re-queueing failed work: a person's retry (from an intervention) and the watchdog's.

Only the failed piece goes back: one job, or one stage. When the session had already
finished, it is re-opened at that piece's stage; every later stage is idempotent, so
the tail (analysis, normalization, scoring, reporting) processes only what is new and
the session finishes again with an outcome that reflects the retry.
"""

from __future__ import annotations

import structlog
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from interventions.models import Intervention
from interventions.services import JOB_KINDS, InterventionTransitionError, retry_handler_register
from scans.models import ScanJob, ScanSession
from scans.pipeline import dispatch
from scans.pipeline.execution import DISCOVERY, jobs_pump, stage_of
from scans.pipeline.profiles import profile_max_attempts
from scans.pipeline.sessions import STAGES, stage_task

logger = structlog.get_logger(__name__)

Stage = ScanSession.Stage


class RetryError(ValueError):
    """The work cannot be retried now; the message says why."""


def _reopen(session: ScanSession, stage: str, now) -> None:
    """Put a finished session back to ``stage`` (claimed for fan-out, so the jobs' fan-in advances it)."""
    later = STAGES[STAGES.index(stage) + 1:]
    timings = {k: v for k, v in (session.stage_timings or {}).items() if k not in later}
    timings[stage] = {**(timings.get(stage) or {}), "started_at": now.isoformat()}
    timings[stage].pop("finished_at", None)
    reopened = list((session.summary or {}).get("reopened") or [])
    reopened.append({"at": now.isoformat(), "stage": stage, "previous_status": session.status})
    session.summary = {**(session.summary or {}), "reopened": reopened}
    session.status, session.stage, session.finished_at, session.error = ScanSession.Status.RUNNING, stage, None, ""
    session.stage_timings, session.heartbeat_at, session.stage_attempts = timings, now, 0
    session.stage_deadline_at = now + timezone.timedelta(seconds=session.profile.time_budget_seconds)
    session.save(update_fields=["status", "stage", "finished_at", "error", "stage_timings", "heartbeat_at",
                                "stage_attempts", "stage_deadline_at", "summary"])


def job_retry(*, job_id: int) -> ScanJob:
    """Re-queue one failed (or cancelled) job with a fresh budget of attempts."""
    now = timezone.now()
    with transaction.atomic():
        job = ScanJob.objects.select_for_update(of=("self",)).select_related("session__profile").get(pk=job_id)
        session = ScanSession.objects.select_for_update().get(pk=job.session_id)
        if job.status not in (ScanJob.Status.FAILED, ScanJob.Status.CANCELLED):
            raise RetryError(f"job {job.pk} is {job.status}; only a failed or cancelled job can be retried")
        stage = stage_of(job.scanner)
        if not session.is_finished and session.stage != stage:
            raise RetryError(f"session {session.pk} is in its {session.stage} stage; retry the job once it finishes")
        if session.is_finished:
            session.cancel_requested = False
            session.save(update_fields=["cancel_requested"])
            _reopen(session, stage, now)
        previous = job.status
        ScanJob.objects.filter(pk=job.pk).update(
            status=ScanJob.Status.QUEUED, task_id="", queued_at=now, finished_at=None, error="", normalized=False,
            max_attempts=job.attempts + profile_max_attempts(session.profile),
        )
        counters = {"stage_pending": F("stage_pending") + 1}
        if job.scanner != DISCOVERY:
            counters[f"jobs_{previous}"] = F(f"jobs_{previous}") - 1
        ScanSession.objects.filter(pk=session.pk).update(**counters)
    jobs_pump(org_id=session.org_id)
    logger.info("job.retry_queued", job_id=job.pk, session_id=session.pk)
    job.refresh_from_db()
    return job


def stage_retry(*, session_id: int) -> ScanSession:
    """Run the session's current stage again (it is stuck, or it crashed and failed the session)."""
    now = timezone.now()
    with transaction.atomic():
        session = ScanSession.objects.select_for_update().get(pk=session_id)
        if session.stage == Stage.DONE:
            raise RetryError(f"session {session.pk} completed every stage; there is no stage to retry")
        if session.is_finished:
            if not session.error:
                raise RetryError(f"session {session.pk} finished {session.status}; retry its failed jobs instead")
            reopened = list((session.summary or {}).get("reopened") or [])
            reopened.append({"at": now.isoformat(), "stage": session.stage, "previous_status": session.status,
                             "error": session.error})
            session.summary = {**(session.summary or {}), "reopened": reopened}
            session.status, session.finished_at, session.error = ScanSession.Status.RUNNING, None, ""
        session.stage_deadline_at, session.heartbeat_at = None, now
        session.save(update_fields=["status", "finished_at", "error", "summary", "stage_deadline_at", "heartbeat_at"])
        dispatch.enqueue(stage_task(session.stage), kwargs={"session_id": session.pk, "stage": session.stage},
                         correlation_id=session.correlation_id)
    logger.info("stage.retry_queued", session_id=session.pk, stage=session.stage)
    return session


def intervention_retry_work(*, intervention: Intervention, by=None, token=None) -> None:
    """The pipeline's retry for its interventions (registered in ``ScansConfig.ready``).

    A job intervention re-queues its job (the session re-opens that job's stage for it); a
    stuck stage re-runs that stage. Runs inside ``intervention_retry``'s transaction.
    """
    try:
        if intervention.kind in JOB_KINDS or (intervention.kind == Intervention.Kind.STAGE_STUCK and intervention.job_id):
            if intervention.job_id is None:
                raise InterventionTransitionError(f"Intervention #{intervention.pk} names no job to retry.")
            job_retry(job_id=intervention.job_id)
        else:
            if intervention.session_id is None:
                raise InterventionTransitionError(f"Intervention #{intervention.pk} names no session to retry.")
            stage_retry(session_id=intervention.session_id)
    except RetryError as exc:
        raise InterventionTransitionError(str(exc)) from None


RETRIED_KINDS = (*JOB_KINDS, Intervention.Kind.STAGE_STUCK)


def retry_handlers_register() -> None:
    """Called once by ``ScansConfig.ready``: interventions of these kinds are retried here."""
    retry_handler_register(kinds=RETRIED_KINDS, handler=intervention_retry_work)
