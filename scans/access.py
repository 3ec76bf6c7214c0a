"""The one way views, partials and API endpoints reach sessions and findings (see orgs/access.py)."""

from __future__ import annotations

from orgs.access import one_or_404, pk_or_404
from scans.models import Finding, ImportRequest, ScanSession


def session_for(membership, session_id) -> ScanSession:
    return one_or_404(ScanSession.objects.select_related("profile").filter(org=membership.org, pk=pk_or_404(session_id)),
                      "session")


def finding_for(membership, finding_id) -> Finding:
    return one_or_404(Finding.objects.select_related("node", "org").filter(org=membership.org, pk=pk_or_404(finding_id)),
                      "finding")


def import_request_for(membership, import_id) -> ImportRequest:
    return one_or_404(ImportRequest.objects.filter(org=membership.org, pk=pk_or_404(import_id)), "import")
