"""The worker that runs a message ingests its jobs' findings right away; the normalization stage
ingests what is left (analysis's cve jobs, and any job whose early turn failed)."""

from __future__ import annotations

from scans.models import Finding, ScanJob, ScanSession
from scans.pipeline import dispatch, stages
from scans.pipeline.sessions import session_start

EXECUTION = ("http", "exposure")


def run_recording(world, addresses, profile):
    """Run a session inline; note, after each step, which execution jobs were normalized by then."""
    seen: list[tuple[str, int, int]] = []

    def after(name, kwargs):
        if "job_ids" in kwargs:
            jobs = ScanJob.objects.filter(pk__in=kwargs["job_ids"], scanner__in=EXECUTION)
            seen.append((name, jobs.count(), jobs.filter(normalized=True).count()))

    with dispatch.inline():
        session = session_start(org=world.org, trigger=ScanSession.Trigger.CLI, targets=addresses, profile=profile)
        dispatch.drain(on_step=after)
    session.refresh_from_db()
    return session, seen


def test_a_message_of_jobs_is_normalized_by_the_worker_that_ran_it(world, lab_nodes, quick_profile, settings):
    settings.WATCHPOST_RETRY_BACKOFF_SECONDS = 0
    session, seen = run_recording(world, lab_nodes(2), quick_profile)

    execution_messages = [(ran, normalized) for name, ran, normalized in seen if name == "scans.tasks.job_run"]
    assert execution_messages and all(ran == normalized > 0 for ran, normalized in execution_messages)
    assert session.status == ScanSession.Status.SUCCEEDED
    assert session.findings_new == Finding.objects.filter(org=world.org).count() > 0
    assert not ScanJob.objects.filter(session=session, status="succeeded", normalized=False).exclude(
        scanner="discovery").exists()


def test_jobs_whose_early_normalization_failed_are_ingested_by_the_stage(world, lab_nodes, quick_profile, settings,
                                                                        monkeypatch):
    settings.WATCHPOST_RETRY_BACKOFF_SECONDS = 0
    real = stages.jobs_normalize

    def failing_for_messages(*, session, job_ids=None):
        if job_ids is not None:
            raise RuntimeError("database hiccup")
        return real(session=session, job_ids=job_ids)

    monkeypatch.setattr(stages, "jobs_normalize", failing_for_messages)
    session, seen = run_recording(world, lab_nodes(2), quick_profile)

    assert all(normalized == 0 for name, _, normalized in seen if name == "scans.tasks.job_run")
    assert session.status == ScanSession.Status.SUCCEEDED
    assert session.findings_new == Finding.objects.filter(org=world.org).count() > 0
    assert set(ScanJob.objects.filter(session=session, scanner__in=EXECUTION).values_list("normalized", flat=True)) \
        == {True}
