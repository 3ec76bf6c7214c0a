"""The one way views and API endpoints reach a report (see orgs/access.py)."""

from __future__ import annotations

from orgs.access import one_or_404, pk_or_404
from reports.models import Report


def report_for(membership, report_id) -> Report:
    return one_or_404(Report.objects.filter(org=membership.org, pk=pk_or_404(report_id)), "report")
