"""Every stage and every job message, delivered twice, changes nothing the second time."""

from __future__ import annotations

from collections import deque

from reports.models import Report
from scans.models import Finding, ScanJob, ScanSession
from scans.pipeline import dispatch
from scans.pipeline.execution import jobs_run
from scans.pipeline.sessions import STAGES, session_start
from scans.pipeline.stages import stage_run
from tests import inline


class TwiceDelivered(deque):
    """An inline queue that delivers every message twice, back to back (at-least-once delivery)."""

    def append(self, item):
        super().append(item)
        super().append(item)


def test_every_message_delivered_twice_gives_the_same_session(world, lab_nodes, quick_profile, settings):
    settings.WATCHPOST_RETRY_BACKOFF_SECONDS = 0
    addresses = lab_nodes(2)
    token = dispatch._inline_queue.set(TwiceDelivered())
    try:
        session = session_start(org=world.org, trigger=ScanSession.Trigger.CLI, targets=addresses, profile=quick_profile)
        dispatch.drain()
    finally:
        dispatch._inline_queue.reset(token)
    session.refresh_from_db()

    assert session.status == ScanSession.Status.SUCCEEDED
    assert ScanJob.objects.filter(session=session).exclude(scanner__in=["discovery", "cve"]).count() == 4
    assert session.jobs_succeeded == 4 and session.jobs_failed == 0
    findings = Finding.objects.filter(org=world.org)
    assert session.findings_new == findings.count() > 0
    assert set(findings.values_list("times_seen", flat=True)) == {1}
    assert Report.objects.filter(session=session).count() == 1


def test_running_each_stage_again_after_the_session_changes_nothing(world, lab_nodes, quick_profile, run_inline):
    session = run_inline(org=world.org, trigger=ScanSession.Trigger.CLI, targets=lab_nodes(1), profile=quick_profile)
    before = (ScanSession.objects.values().get(pk=session.pk), list(Finding.objects.values()),
              list(ScanJob.objects.values()))

    for stage in STAGES:
        assert inline.run_inline(stage_run, session_id=session.pk, stage=stage) is False
    assert inline.run_inline(jobs_run, job_ids=list(ScanJob.objects.values_list("pk", flat=True))) == {"claimed": 0}

    after = (ScanSession.objects.values().get(pk=session.pk), list(Finding.objects.values()),
             list(ScanJob.objects.values()))
    assert after == before
