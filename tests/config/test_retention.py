"""Retention: old raw output and old sessions go; findings, their history and score history stay."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from nodes.models import NodeScore
from orgs.models import AuditEvent
from orgs.schedules import RETENTION_NAME, periodic_tasks_setup
from scans.models import Finding, ScanJob, ScanSession
from tests.factories import FindingFactory, NodeFactory, ScanJobFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db


def _finished_session(org, node, days_ago, raw=True):
    at = timezone.now() - timedelta(days=days_ago)
    session = ScanSessionFactory(org=org, status=ScanSession.Status.SUCCEEDED, finished_at=at, created_at=at)
    ScanJobFactory(session=session, node=node, status=ScanJob.Status.SUCCEEDED, finished_at=at,
                   raw_result={"ports": [22]} if raw else None)
    return session


@pytest.fixture
def history(world):
    world.org.retention_raw_output_days = 30
    world.org.retention_sessions_days = 90
    world.org.save()
    node = NodeFactory(org=world.org)
    ancient = _finished_session(world.org, node, 400)
    old = _finished_session(world.org, node, 60)
    recent = _finished_session(world.org, node, 1)
    finding = FindingFactory(org=world.org, node=node, first_session=ancient, last_session=recent)
    NodeScore.objects.create(node=node, session=ancient, score=70, grade="C")
    return {"ancient": ancient, "old": old, "recent": recent, "finding": finding, "node": node}


def test_a_dry_run_prints_what_would_go_and_deletes_nothing(history, capsys):
    call_command("prune", "--dry-run", "--org", "acme")
    out = capsys.readouterr().out
    assert "acme: would delete the raw output of 1 job(s)" in out
    assert "would delete 1 session(s) (1 job(s))" in out
    assert ScanSession.objects.filter(org__slug="acme").count() == 3
    assert ScanJob.objects.filter(raw_result__isnull=False).count() == 3


def test_pruning_clears_old_raw_output_and_deletes_old_sessions_but_keeps_findings_and_scores(history):
    call_command("prune", "--org", "acme")
    assert not ScanSession.objects.filter(pk=history["ancient"].pk).exists()
    old_job = ScanJob.objects.get(session=history["old"])
    assert old_job.raw_result is None
    assert ScanJob.objects.get(session=history["recent"]).raw_result == {"ports": [22]}
    finding = Finding.objects.get(pk=history["finding"].pk)
    assert finding.first_session is None and finding.last_session == history["recent"]
    assert NodeScore.objects.filter(node=history["node"], score=70).exists()
    event = AuditEvent.objects.get(verb="retention.pruned")
    assert event.changes["sessions"] == 1 and event.changes["raw_output_jobs"] == 1


def test_the_latest_finished_session_is_never_pruned(world):
    world.org.retention_sessions_days = 1
    world.org.save()
    only = _finished_session(world.org, NodeFactory(org=world.org), 500)
    call_command("prune")
    assert ScanSession.objects.filter(pk=only.pk).exists()


def test_zero_days_keeps_everything_forever(history, world):
    world.org.retention_raw_output_days = 0
    world.org.retention_sessions_days = 0
    world.org.save()
    call_command("prune")
    assert ScanSession.objects.filter(org=world.org).count() == 3
    assert ScanJob.objects.filter(raw_result__isnull=False).count() == 3


def test_an_unknown_organization_is_a_clear_error(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No organization"):
        call_command("prune", "--org", "nope")


def test_beat_runs_retention_daily(db):
    periodic_tasks_setup(watchdog_seconds=30)
    periodic_tasks_setup(watchdog_seconds=30)
    task = PeriodicTask.objects.get(name=RETENTION_NAME)
    assert task.task == "scans.tasks.retention_prune" and task.crontab.hour == "3" and task.enabled
