"""The watchdog: stuck jobs and stages are retried once, then handed to a person as stage_stuck."""

from __future__ import annotations

from django.utils import timezone

from interventions.models import Intervention
from scans.models import ScanJob, ScanSession
from scans.pipeline import dispatch
from scans.pipeline.watchdog import watchdog_sweep
from tests.factories import ScanJobFactory, ScanSessionFactory

AGO = timezone.now() - timezone.timedelta(hours=1)


def running_job(world, **fields):
    session = ScanSessionFactory(org=world.org, status="running", stage="execution", heartbeat_at=timezone.now(),
                                 stage_deadline_at=timezone.now() + timezone.timedelta(hours=1), jobs_total=1)
    return ScanJobFactory(session=session, status="running", attempts=1, max_attempts=3, heartbeat_at=AGO,
                          task_id="dead-worker", **fields)


def test_a_job_with_a_stale_heartbeat_is_requeued_once_then_fails_with_an_intervention(world):
    job = running_job(world)
    with dispatch.inline() as queue:
        assert watchdog_sweep()["jobs_requeued"] == 1
        job.refresh_from_db()
        assert (job.status, job.max_attempts, job.task_id != "") == ("queued", 2, True)  # admitted again
        assert queue and queue[0][0] == "scans.tasks.job_run"

        # The retry dies too.
        ScanJob.objects.filter(pk=job.pk).update(status="running", attempts=2, heartbeat_at=AGO, task_id="dead-again")
        assert watchdog_sweep()["jobs_failed"] == 1

    job.refresh_from_db()
    assert job.status == "failed" and "heartbeat stale" in job.error
    intervention = Intervention.objects.get(job=job)
    assert intervention.kind == Intervention.Kind.STAGE_STUCK and intervention.subject == f"job:{job.pk}"
    assert ScanSession.objects.get(pk=job.session_id).jobs_failed == 1


def test_a_dispatched_job_nobody_claimed_is_dispatched_again(world):
    job = running_job(world)
    ScanJob.objects.filter(pk=job.pk).update(status="queued", queued_at=AGO, heartbeat_at=None, task_id="lost-message")
    with dispatch.inline() as queue:
        counts = watchdog_sweep()
    job.refresh_from_db()
    assert counts["jobs_redispatched"] == 1 and job.task_id not in ("", "lost-message")
    assert [item[1]["job_ids"] for item in queue] == [[job.pk]]


def test_a_stage_past_its_deadline_is_rerun_once_then_opens_one_stage_stuck_intervention(world):
    session = ScanSessionFactory(org=world.org, status="running", stage="normalization", heartbeat_at=timezone.now(),
                                 stage_deadline_at=AGO)
    with dispatch.inline() as queue:
        assert watchdog_sweep()["stages_rerun"] == 1
        assert list(queue) == [("scans.tasks.stage_run", {"session_id": session.pk, "stage": "normalization"})]
    ScanSession.objects.filter(pk=session.pk).update(stage_deadline_at=AGO)

    assert watchdog_sweep()["stages_stuck"] == 1
    assert watchdog_sweep() == {}  # the intervention is not bumped on every sweep
    intervention = Intervention.objects.get(session=session)
    assert (intervention.kind, intervention.subject) == ("stage_stuck", f"session:{session.pk}:normalization")
    assert "past its normalization deadline" in intervention.title


def test_a_stage_whose_message_was_lost_is_taken_up_again(world):
    session = ScanSessionFactory(org=world.org, status="queued", stage="discovery", heartbeat_at=AGO)
    with dispatch.inline() as queue:
        assert watchdog_sweep()["stages_rerun"] == 1
    assert queue[0] == ("scans.tasks.stage_run", {"session_id": session.pk, "stage": "discovery"})
