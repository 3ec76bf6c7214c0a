"""Retention: prune old raw scanner output and old sessions, per organization's policy.

Kept whatever their age: findings (with their history and triage), node and organization
score history, audit events, reports. Pruned: the raw output of jobs finished more than
``retention_raw_output_days`` ago (the job row stays, its findings are already normalized),
and whole finished sessions older than ``retention_sessions_days`` (their jobs go with
them; findings, scores and interventions that named them keep their rows with the link
cleared). The latest finished session of an organization is never pruned: the dashboard's
"since the last session" reads it. Deletes go in batches so no transaction holds a large lock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

import structlog
from django.db import transaction
from django.utils import timezone

from orgs.audit import audit_record
from orgs.models import Organization
from scans.models import ScanJob, ScanSession

logger = structlog.get_logger(__name__)

BATCH = 500


@dataclass
class PruneResult:
    org: str
    raw_output_jobs: int
    sessions: int
    session_jobs: int
    raw_output_before: str | None
    sessions_before: str | None


def _raw_output_jobs(org, now):
    days = org.retention_raw_output_days
    if not days:
        return ScanJob.objects.none(), None
    cutoff = now - timedelta(days=days)
    jobs = ScanJob.objects.filter(session__org=org, finished_at__lt=cutoff, raw_result__isnull=False)
    return jobs, cutoff


def _old_sessions(org, now):
    days = org.retention_sessions_days
    if not days:
        return ScanSession.objects.none(), None
    cutoff = now - timedelta(days=days)
    latest = (ScanSession.objects.filter(org=org, status__in=ScanSession.FINISHED).order_by("-finished_at")
              .values_list("pk", flat=True).first())
    sessions = ScanSession.objects.filter(org=org, status__in=ScanSession.FINISHED, finished_at__lt=cutoff)
    if latest is not None:
        sessions = sessions.exclude(pk=latest)
    return sessions, cutoff


def retention_prune(*, org: Organization, dry_run: bool = False, now=None) -> PruneResult:
    """Prune one organization per its policy; with ``dry_run``, count what would go and change nothing."""
    now = now or timezone.now()
    jobs, raw_cutoff = _raw_output_jobs(org, now)
    sessions, session_cutoff = _old_sessions(org, now)
    # Jobs of sessions about to be deleted lose their output with them: count them once.
    session_ids = list(sessions.values_list("pk", flat=True))
    result = PruneResult(
        org=org.slug,
        raw_output_jobs=jobs.exclude(session_id__in=session_ids).count(),
        sessions=len(session_ids),
        session_jobs=ScanJob.objects.filter(session_id__in=session_ids).count(),
        raw_output_before=raw_cutoff.isoformat() if raw_cutoff else None,
        sessions_before=session_cutoff.isoformat() if session_cutoff else None,
    )
    if dry_run or not (result.raw_output_jobs or result.sessions):
        return result
    while True:
        ids = list(jobs.exclude(session_id__in=session_ids).values_list("pk", flat=True)[:BATCH])
        if not ids:
            break
        ScanJob.objects.filter(pk__in=ids).update(raw_result=None)
    for start in range(0, len(session_ids), 20):
        with transaction.atomic():
            ScanSession.objects.filter(pk__in=session_ids[start:start + 20]).delete()
    audit_record(org=org, verb="retention.pruned", changes=asdict(result))
    logger.info("retention.pruned", **asdict(result))
    return result


def retention_prune_all(*, dry_run: bool = False, org_slug: str | None = None) -> list[PruneResult]:
    orgs = Organization.objects.all() if org_slug is None else Organization.objects.filter(slug=org_slug)
    return [retention_prune(org=org, dry_run=dry_run) for org in orgs.order_by("slug")]
