"""The normalization stage reads jobs in batches: its queries do not grow with the number of jobs."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from interventions.models import Intervention
from scans.findings import lifecycle
from scans.models import Finding, ScanJob, ScanSession
from scans.pipeline import dispatch, stages


def replay_normalization(session) -> int:
    """Forget the session's findings and normalize its jobs again; the number of queries it took."""
    Finding.objects.filter(org=session.org).delete()
    ScanJob.objects.filter(session=session).update(normalized=False)
    ScanSession.objects.filter(pk=session.pk).update(stage=ScanSession.Stage.NORMALIZATION,
                                                     status=ScanSession.Status.RUNNING)
    session.refresh_from_db()
    with CaptureQueriesContext(connection) as queries:
        stages.normalization(session)
    return len(queries)


def test_normalizing_three_times_the_jobs_takes_the_same_queries(world, lab_nodes, quick_profile, run_inline):
    small = run_inline(org=world.org, trigger=ScanSession.Trigger.CLI, targets=lab_nodes(1), profile=quick_profile)
    large = run_inline(org=world.other_org, trigger=ScanSession.Trigger.CLI, targets=lab_nodes(3, first=10),
                       profile=quick_profile)
    assert ScanJob.objects.filter(session=large).count() == 3 * ScanJob.objects.filter(session=small).count()

    assert replay_normalization(large) == replay_normalization(small)
    assert Finding.objects.filter(org=world.other_org).count() == large.findings_new > 0


# --- a large session's normalization, split by node into parts run side by side ----------------


def findings_of(org) -> set[tuple]:
    return set(Finding.objects.filter(org=org).values_list("node_id", "fingerprint", "source", "severity", "status"))


@pytest.fixture
def normalizing_session(world, lab_nodes, quick_profile, run_inline):
    """A finished three-node session, rewound to the start of its normalization stage."""
    session = run_inline(org=world.org, trigger=ScanSession.Trigger.CLI, targets=lab_nodes(3), profile=quick_profile)
    assert session.findings_new > 0
    Finding.objects.filter(org=session.org).delete()
    ScanJob.objects.filter(session=session).update(normalized=False)
    ScanSession.objects.filter(pk=session.pk).update(stage=ScanSession.Stage.NORMALIZATION,
                                                     status=ScanSession.Status.RUNNING, finished_at=None)
    session.refresh_from_db()
    return session


@pytest.fixture
def split_in_three(settings):
    settings.WATCHPOST_NORMALIZATION_PART_JOBS = 1
    settings.WATCHPOST_NORMALIZATION_PARTS = 3


def test_a_session_normalized_in_parts_finds_what_one_piece_finds(normalizing_session, split_in_three, settings):
    session = normalizing_session
    steps = []
    with dispatch.inline():
        stages.normalization(session)
        dispatch.drain(on_step=lambda name, kwargs: steps.append((name, kwargs)))
    parts = sorted(kwargs["part"] for name, kwargs in steps if name == stages.NORMALIZATION_PART_TASK)
    in_parts = findings_of(session.org)

    settings.WATCHPOST_NORMALIZATION_PARTS = 1
    replay_normalization(session)

    assert parts == [1, 2]  # the first part runs in the stage's own task
    assert in_parts == findings_of(session.org) and in_parts
    assert not ScanJob.objects.filter(session=session, status=ScanJob.Status.SUCCEEDED, normalized=False
                                      ).exclude(scanner="discovery").exists()


def test_the_stage_hands_over_only_when_its_last_part_is_done(normalizing_session, settings):
    settings.WATCHPOST_NORMALIZATION_PART_JOBS = 1
    settings.WATCHPOST_NORMALIZATION_PARTS = 2
    session = normalizing_session
    with dispatch.inline() as queue:
        stages.normalization(session)
        session.refresh_from_db()
        assert session.stage == ScanSession.Stage.NORMALIZATION  # part 1 is still queued
        [(name, kwargs)] = list(queue)
        queue.clear()

        assert stages.normalization_part_run(**kwargs)

        session.refresh_from_db()
        assert session.stage == ScanSession.Stage.SCORING
        assert [name for name, _ in queue] == ["scans.tasks.scoring_stage_run"]  # handed over once


def test_a_part_delivered_after_the_stage_is_over_does_nothing(normalizing_session, run_inline):
    session = normalizing_session
    ScanSession.objects.filter(pk=session.pk).update(stage=ScanSession.Stage.SCORING)

    assert stages.normalization_part_run(session_id=session.pk, part=1, parts=2) is False
    assert not Finding.objects.filter(org=session.org).exists()


def test_a_crashing_part_fails_the_session_and_asks_a_person(normalizing_session, monkeypatch):
    session = normalizing_session

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(lifecycle, "findings_ingest", broken)

    assert stages.normalization_part_run(session_id=session.pk, part=1, parts=2) is False
    session.refresh_from_db()
    assert session.status == ScanSession.Status.FAILED and "disk full" in session.error
    assert Intervention.objects.filter(session=session, kind=Intervention.Kind.STAGE_STUCK).exists()


def test_normalized_findings_carry_the_priority_and_due_date_a_refresh_would_give_them(normalizing_session):
    from scans.findings.priority import priority_refresh

    session = normalizing_session
    with dispatch.inline():
        stages.normalization(session)  # the stage alone: scoring, queued after it, is not run
    columns = ("id", "priority", "priority_reasons", "due_at")
    written = sorted(Finding.objects.filter(org=session.org).values_list(*columns))

    assert priority_refresh(org=session.org) == 0  # nothing to correct
    assert sorted(Finding.objects.filter(org=session.org).values_list(*columns)) == written
    assert {row[1] for row in written if row[1] is not None}
