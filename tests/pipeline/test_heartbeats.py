"""Heartbeats outlive a database error: one failed update, and the next beat still lands."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError
from django.db.backends.signals import connection_created
from django.utils import timezone

from scans.models import ScanJob, ScanSession
from scans.pipeline.execution import job_heartbeat
from scans.pipeline.stages import session_heartbeat
from tests.factories import ScanJobFactory, ScanSessionFactory

AGO = timezone.now() - timezone.timedelta(hours=1)
# Committed rows (the heartbeat's own connection must see them). No profile: transactional tests run
# after others have flushed the built-in ones, and a heartbeat does not read it.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def first_update_fails():
    """The first UPDATE a heartbeat thread sends fails as a restarting database makes it fail.

    The failure is raised inside Django's query execution (``execute_wrappers``, the hook
    Django offers for this) on the thread's own connection; the main thread's is untouched.
    """
    failed: list[str] = []

    def fail_once(execute, sql, params, many, context):
        if not failed and sql.lstrip().upper().startswith("UPDATE"):
            failed.append(sql)
            raise OperationalError("terminating connection due to administrator command (injected)")
        return execute(sql, params, many, context)

    def install(sender, connection, **kwargs):
        if threading.current_thread().name.endswith("heartbeat"):
            connection.execute_wrappers.append(fail_once)

    connection_created.connect(install)
    yield failed
    connection_created.disconnect(install)


def wait_for(condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except OperationalError:  # SQLite: the heartbeat thread holds the table this instant
            pass
        time.sleep(0.05)
    return False


def test_a_job_heartbeat_keeps_beating_after_one_failed_update(world, first_update_fails):
    session = ScanSessionFactory(org=world.org, profile=None, status="running", stage="execution")
    job = ScanJobFactory(session=session, status="running", attempts=1, heartbeat_at=AGO, task_id="token-1")
    beat = job_heartbeat("token-1", 0.05)
    beat.start()
    try:
        landed = wait_for(lambda: ScanJob.objects.get(pk=job.pk).heartbeat_at > AGO)
    finally:
        beat.stop()
    assert first_update_fails, "the first beat was meant to fail"
    assert landed, "no beat landed after the failed one: the heartbeat thread died"


def test_a_stage_heartbeat_keeps_beating_after_one_failed_update(world, first_update_fails):
    session = ScanSessionFactory(org=world.org, profile=None, status="running", stage="analysis",
                                 heartbeat_at=AGO)
    beat = session_heartbeat(session.pk)
    beat.interval = 0.05
    beat.start()
    try:
        landed = wait_for(lambda: ScanSession.objects.get(pk=session.pk).heartbeat_at > AGO)
    finally:
        beat.stop()
    assert first_update_fails, "the first beat was meant to fail"
    assert landed, "no beat landed after the failed one: the heartbeat thread died"
