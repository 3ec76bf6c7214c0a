"""Reads about reports, always scoped to an organization."""

from __future__ import annotations

from django.db.models import QuerySet

from reports.models import Report, ReportSchedule


def report_list_for_org(*, org) -> QuerySet:
    """The reports page's rows: constant queries per page (subjects joined, the per-finding state left out)."""
    return (
        Report.objects.filter(org=org)
        .select_related("org", "requested_by", "requested_by_token", "node")
        .defer("finding_state", "summary")
        .order_by("-created_at", "-pk")
    )


def report_schedule_for_org(*, org) -> ReportSchedule | None:
    return ReportSchedule.objects.filter(org=org).prefetch_related("recipients").first()
