"""Celery adapters for the pipeline: take ids, call one service.

Rules live in ``scans.pipeline``; here only the delivery contract: acknowledge after
the work (a killed worker's message is delivered again, and the claim makes the second
delivery harmless), retry on a database hiccup with backoff and jitter. A job's own
soft and hard time limits come with each message (they depend on the profile).
"""

from __future__ import annotations

import structlog
from celery import shared_task
from django.db import IntegrityError, InterfaceError, OperationalError

from nodes.models import Node, NodeSnapshot
from orgs.models import Organization
from scans.cve.feed_staleness import feeds_staleness_check
from scans.cve.feed_sync import FEED_ERRORS, epss_sync, kev_sync
from scans.cve.rematch import catalog_rematch
from scans.cve.nvd_sync import NvdSyncError, nvd_sync
from scans.findings.daily_stats import finding_daily_stats_refresh
from scans.findings.import_requests import import_request_process
from scans.findings.priority import priority_refresh
from scans.findings.scoring import scoring_run
from scans.findings.sla_sweep import sla_sweep
from scans.pipeline.execution import jobs_run
from scans.pipeline.retention import retention_prune_all
from scans.pipeline.sessions import session_start_scheduled
from scans.pipeline.stages import normalization_part_run, stage_run
from scans.pipeline.watchdog import watchdog_sweep

logger = structlog.get_logger(__name__)

# Transient infrastructure errors only; a stage's own failure becomes an intervention in the service.
RETRY_OPTIONS = {"autoretry_for": (OperationalError, InterfaceError), "retry_backoff": 2, "retry_backoff_max": 60,
                 "retry_jitter": True, "max_retries": 5}
STAGE_TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True,
                      "soft_time_limit": 900, "time_limit": 960, **RETRY_OPTIONS}
JOB_TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True, **RETRY_OPTIONS}


@shared_task(name="scans.tasks.stage_run", **STAGE_TASK_OPTIONS)
def stage_run_task(session_id: int, stage: str) -> None:
    stage_run(session_id=session_id, stage=stage)


@shared_task(name="scans.tasks.scoring_stage_run", **STAGE_TASK_OPTIONS)
def scoring_stage_run_task(session_id: int, stage: str) -> None:
    stage_run(session_id=session_id, stage=stage)


@shared_task(name="scans.tasks.reporting_stage_run", **STAGE_TASK_OPTIONS)
def reporting_stage_run_task(session_id: int, stage: str) -> None:
    stage_run(session_id=session_id, stage=stage)


@shared_task(name="scans.tasks.normalization_part_run", **STAGE_TASK_OPTIONS)
def normalization_part_run_task(session_id: int, part: int, parts: int) -> None:
    normalization_part_run(session_id=session_id, part=part, parts=parts)


@shared_task(name="scans.tasks.discovery_jobs_run", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def discovery_jobs_run_task(job_ids: list[int]) -> None:
    """Discovery jobs of a session (the pipeline's first stage); time limits come with the message."""
    jobs_run(job_ids=job_ids)


@shared_task(name="scans.tasks.job_run", **JOB_TASK_OPTIONS)
def job_run_task(job_ids: list[int]) -> None:
    jobs_run(job_ids=job_ids)


@shared_task(name="scans.tasks.session_start_scheduled", acks_late=True, ignore_result=True, **RETRY_OPTIONS)
def session_start_scheduled_task(org_id: int) -> None:
    session_start_scheduled(org_id=org_id)


@shared_task(name="scans.tasks.import_request_process", acks_late=True, reject_on_worker_lost=True,
             ignore_result=True, soft_time_limit=3600, time_limit=3660, **RETRY_OPTIONS)
def import_request_process_task(import_request_id: int) -> None:
    # An API upload (scans.findings.import_requests); the claim makes a second delivery harmless.
    import_request_process(import_request_id=import_request_id)


@shared_task(name="scans.tasks.retention_prune", acks_late=True, ignore_result=True, **RETRY_OPTIONS)
def retention_prune_task() -> None:
    """Daily on beat (setup_periodic_tasks): every organization's retention policy."""
    retention_prune_all()


@shared_task(name="scans.tasks.watchdog_sweep", acks_late=True, ignore_result=True, soft_time_limit=120,
             time_limit=180)
def watchdog_sweep_task() -> dict:
    """On beat (setup_periodic_tasks): nothing of the pipeline stays stuck silently."""
    return watchdog_sweep()


@shared_task(name="scans.tasks.nvd_sync", acks_late=True, ignore_result=True, soft_time_limit=6 * 3600,
             time_limit=6 * 3600 + 60)
def nvd_sync_task() -> dict:
    """Daily on beat (setup_periodic_tasks): the CVE catalog from NVD, resumed at its checkpoint.

    A refused page or exhausted retries is already in ``FeedState.last_error``; the next
    day's run resumes where this one stopped, so the task does not retry on its own.
    """
    try:
        result = nvd_sync()
    except NvdSyncError as error:
        logger.warning("nvd_sync.task_failed", error=str(error), pages=error.result.pages)
        return {"error": str(error), "pages": error.result.pages}
    return {**result.counts.as_dict(), "pages": result.pages, "changed": len(result.changed_ids)}


@shared_task(name="scans.tasks.node_rescore", acks_late=True, ignore_result=True)
def node_rescore_task(node_id: int) -> None:
    """Re-score one node and rewrite its snapshot (after a change outside a session)."""
    node = Node.objects.select_related("org").filter(pk=node_id).first()
    if node is None:
        logger.info("node_rescore.skipped", node_id=node_id, reason="node deleted")
        return
    priority_refresh(org=node.org, node_ids=[node.pk])
    scoring_run(org=node.org, node_ids=[node.pk])
    snapshot = NodeSnapshot.objects.get(node=node)
    logger.info("node_rescore.done", node_id=node_id, score=snapshot.score, open_findings=snapshot.open_findings)


@shared_task(name="scans.tasks.finding_daily_stats_refresh", acks_late=True, ignore_result=True, soft_time_limit=600,
             time_limit=660, **RETRY_OPTIONS)
def finding_daily_stats_refresh_task(org_id: int | None = None) -> int:
    """Today's trend row of one organization (after triage), or of every one (the hourly beat row)."""
    orgs = Organization.objects.all() if org_id is None else Organization.objects.filter(pk=org_id)
    refreshed = 0
    for org in orgs.order_by("pk").iterator():
        finding_daily_stats_refresh(org=org)
        refreshed += 1
    return refreshed


# The feeds: their own retries (429, 5xx) live in the download; a failed run is recorded on the
# feed's row and, once it lasts, becomes a feed_stale intervention (feeds_staleness_check).
FEED_TASK_OPTIONS = {"acks_late": True, "ignore_result": True, "soft_time_limit": 1800, "time_limit": 1860,
                     **RETRY_OPTIONS}


def _feed_sync(name: str, sync) -> None:
    try:
        sync()
    except FEED_ERRORS as error:
        logger.warning(f"{name}.failed", error=str(error)[:500])


@shared_task(name="scans.tasks.kev_sync", **FEED_TASK_OPTIONS)
def kev_sync_task() -> None:
    """Daily on beat (setup_periodic_tasks): the CISA KEV catalog, and the findings it lists."""
    _feed_sync("kev_sync", kev_sync)


@shared_task(name="scans.tasks.epss_sync", **FEED_TASK_OPTIONS)
def epss_sync_task() -> None:
    """Daily on beat (setup_periodic_tasks): the day's EPSS scores, and the findings they score."""
    _feed_sync("epss_sync", epss_sync)


@shared_task(name="scans.tasks.feeds_staleness_check", acks_late=True, ignore_result=True, **RETRY_OPTIONS)
def feeds_staleness_check_task() -> dict:
    """Hourly on beat: a feed without a success for three days opens feed_stale interventions."""
    return feeds_staleness_check()


@shared_task(name="scans.tasks.sla_sweep", acks_late=True, ignore_result=True, soft_time_limit=600, time_limit=660,
             **RETRY_OPTIONS)
def sla_sweep_task() -> dict:
    """On beat: expired risk acceptances open again; findings newly past their due date are announced."""
    return sla_sweep()


# A session normalizing the same node at the same moment may insert a finding first (a unique
# key conflict): the re-match is idempotent, so it simply runs again.
REMATCH_OPTIONS = {**RETRY_OPTIONS, "autoretry_for": (OperationalError, InterfaceError, IntegrityError)}


@shared_task(name="scans.tasks.catalog_rematch", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=3600, time_limit=3660, **REMATCH_OPTIONS)
def catalog_rematch_task(cve_ids: list[str] | None) -> dict:
    """After a catalog update (enqueued on its commit, with the CVE ids it changed; None for the whole
    catalog): the stored services matched again. A second delivery changes nothing."""
    return catalog_rematch(cve_ids=cve_ids).as_dict()
