"""The one way views and API endpoints reach a report (see orgs/access.py)."""

from __future__ import annotations

from django.http import Http404

from nodes.access import pk_or_404
from reports.models import Report


def report_for(membership, report_id) -> Report:
    report = Report.objects.filter(org=membership.org, pk=pk_or_404(report_id)).first()
    if report is None:
        raise Http404("No such report")
    return report
