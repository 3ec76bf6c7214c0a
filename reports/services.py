"""Writes about reports. For now a session report is its JSON summary; renderers come later."""

from __future__ import annotations

from django.utils import timezone

from reports.models import Report


def session_report_write(*, session) -> Report:
    """The session's JSON report, written once and rewritten in place (reporting may run twice)."""
    from scans.pipeline.sessions import session_summary

    report, _ = Report.objects.update_or_create(
        session=session, kind=Report.Kind.SESSION, format=Report.Format.JSON,
        defaults={"org": session.org, "status": Report.Status.READY, "summary": session_summary(session=session),
                  "finished_at": timezone.now(), "error": ""},
    )
    return report
