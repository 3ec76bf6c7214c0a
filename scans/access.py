"""The one way views, partials and API endpoints reach sessions, jobs and findings (see orgs/access.py)."""

from __future__ import annotations

from django.http import Http404

from nodes.access import pk_or_404
from scans.models import Finding, ScanJob, ScanSession


def session_for(membership, session_id) -> ScanSession:
    session = ScanSession.objects.select_related("profile").filter(org=membership.org, pk=pk_or_404(session_id)).first()
    if session is None:
        raise Http404("No such session")
    return session


def job_for(membership, job_id) -> ScanJob:
    job = ScanJob.objects.select_related("session", "node").filter(session__org=membership.org, pk=pk_or_404(job_id)).first()
    if job is None:
        raise Http404("No such job")
    return job


def finding_for(membership, finding_id) -> Finding:
    finding = Finding.objects.select_related("node").filter(org=membership.org, pk=pk_or_404(finding_id)).first()
    if finding is None:
        raise Http404("No such finding")
    return finding
