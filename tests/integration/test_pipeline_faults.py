"""Fault tests: the pipeline on real Celery workers, Redis and PostgreSQL survives what production does to it.

Timings are shrunk through the environment (heartbeat 0.5 s, stale after 3 s, lost after
4 s) so the watchdog recovers within seconds; the test plays beat by sweeping every second.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings

from config import embedded_db
from config.embedded_db import EmbeddedServer
from interventions.models import Intervention
from nodes.models import NodeSnapshot
from reports.models import Report
from scans.lab import Lab
from scans.lab.services import start_node
from scans.models import Finding, ScanJob, ScanProfile, ScanSession
from scans.pipeline.sessions import STAGES, session_start, stage_task
from scans.pipeline.watchdog import watchdog_sweep
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.integration

ALL_QUEUES = "orchestration,nodes,scans,scoring,reports"
FAST = {
    "WATCHPOST_HEARTBEAT_SECONDS": "0.5",
    "WATCHPOST_STALE_SECONDS": "3",
    "WATCHPOST_LOST_SECONDS": "4",
    "WATCHPOST_JOB_GRACE_SECONDS": "2",
    "WATCHPOST_RETRY_BACKOFF_SECONDS": "0.2",
    "WATCHPOST_JOB_BATCH": "2",
    "WATCHPOST_DISCOVERY_BATCH": "2",
}


@pytest.fixture
def fast_pipeline(monkeypatch):
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def lab():
    with Lab() as lab:
        yield lab


@pytest.fixture
def org(transactional_db):
    return OrganizationFactory(slug="faults", scope_networks=["127.0.0.0/8"], max_concurrent_jobs=8)


@pytest.fixture
def profile(transactional_db):
    return ScanProfile.objects.create(
        org=None, slug="fault-test", name="Fault test", scanners=["http", "exposure"], ports="80,6379,9999",
        time_budget_seconds=120, job_timeout_seconds=5,
        options={"context": {"connect_timeout": 0.5, "read_timeout": 1.0}, "max_attempts": 2,
                 "timeouts": {"discovery": 15, "http": 0.8}},
    )


def serve(lab, count: int, net: int) -> list[str]:
    addresses = [f"127.0.{net}.{i}" for i in range(1, count + 1)]
    for address in addresses:
        start_node(lab, address, ["http", "redis"])
    return addresses


def follow(session, *, timeout=60.0, sweep=True, until=None, supervise=None):
    """Play beat (a watchdog sweep a second) until the session finishes or ``until`` holds."""
    deadline = time.monotonic() + timeout
    next_sweep = 0.0
    while time.monotonic() < deadline:
        if supervise:
            supervise()
        session.refresh_from_db()
        if (until or (lambda s: s.is_finished))(session):
            return session
        if sweep and time.monotonic() >= next_sweep:
            watchdog_sweep()
            next_sweep = time.monotonic() + 1
        time.sleep(0.05)
    jobs = Counter(ScanJob.objects.filter(session=session).values_list("scanner", "status", "task_id"))
    raise AssertionError(f"session still {session.status}/{session.stage} after {timeout}s: {jobs}")


def assert_each_pair_once_and_same_findings_everywhere(session, addresses):
    pairs = Counter(ScanJob.objects.filter(session=session).values_list("node__address", "scanner"))
    assert set(pairs.values()) == {1}
    assert {address for address, _ in pairs} == set(addresses)
    assert {scanner for _, scanner in pairs} == {"discovery", "http", "exposure", "cve"}
    assert not ScanJob.objects.filter(session=session).exclude(status="succeeded").exists()
    # Identical nodes give identical findings: none duplicated, none missing.
    per_node = {}
    for address, source, rule in Finding.objects.filter(org=session.org).values_list("node__address", "source",
                                                                                      "rule_id"):
        per_node.setdefault(address, Counter())[(source, rule)] += 1
    assert set(per_node) == set(addresses)
    reference = per_node[addresses[0]]
    assert {"http", "exposure"} <= {source for source, _ in reference}
    assert all(counter == reference for counter in per_node.values())
    assert set(reference.values()) == {1}


def test_a_worker_killed_mid_execution_is_replaced_and_every_pair_is_scanned_exactly_once(
        fast_pipeline, start_worker, purge_queues, lab, org, profile):
    addresses = serve(lab, 50, net=70)
    worker = start_worker(queues=ALL_QUEUES, concurrency=2)
    session = session_start(org=org, trigger="cli", targets=addresses, profile=profile)

    follow(session, sweep=False, until=lambda s: s.stage == "execution" and s.jobs_succeeded >= 6)
    worker.kill()
    assert ScanJob.objects.filter(session=session, status__in=["queued", "running"]).exclude(
        scanner__in=["discovery", "cve"]).exists(), "the session finished before the kill; nothing was tested"
    start_worker(queues=ALL_QUEUES, concurrency=2)
    follow(session)

    assert session.status == ScanSession.Status.SUCCEEDED, session.summary
    assert session.jobs_succeeded == session.jobs_total == 100
    assert_each_pair_once_and_same_findings_everywhere(session, addresses)


def test_a_target_that_never_answers_times_out_opens_an_intervention_and_the_session_ends_partial(
        fast_pipeline, start_worker, purge_queues, lab, org, profile):
    healthy = serve(lab, 4, net=71)
    start_node(lab, "127.0.71.99", ["redis", "tarpit"], ports={"tarpit": 80})
    start_worker(queues=ALL_QUEUES, concurrency=2)
    session = session_start(org=org, trigger="cli", targets=[*healthy, "127.0.71.99"], profile=profile)

    follow(session)

    assert session.status == ScanSession.Status.PARTIAL, session.summary
    job = ScanJob.objects.get(session=session, node__address="127.0.71.99", scanner="http")
    assert job.status == "failed" and job.attempts == 2 and "JobTimeout" in job.error
    intervention = Intervention.objects.get(job=job)
    assert intervention.kind == "job_exhausted" and intervention.state == "open"
    for address in healthy:
        snapshot = NodeSnapshot.objects.get(node__org=org, node__address=address)
        assert snapshot.last_scan_status == "partial" and snapshot.updated_at >= session.started_at


def restart_redis():
    subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
                    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"], check=False)
    for _ in range(50):
        if subprocess.run(["redis-cli", "ping"], capture_output=True).stdout.strip() == b"PONG":
            return
        time.sleep(0.1)


def test_a_redis_restart_mid_session_loses_messages_and_the_session_still_completes(
        fast_pipeline, start_worker, purge_queues, lab, org, profile):
    addresses = serve(lab, 30, net=72)
    workers = [start_worker(queues=ALL_QUEUES, concurrency=2)]

    def supervise():
        # kombu 5.7 can exit the worker ("Unrecoverable error ... 'NoneType' object has no attribute
        # 'hostname'") while restoring unacked messages on a lost Redis connection. Production runs
        # workers under a supervisor that restarts them; so does this test. The pipeline must not care.
        if workers[-1].process.poll() is not None:
            workers.append(start_worker(queues=ALL_QUEUES, concurrency=2))

    session = session_start(org=org, trigger="cli", targets=addresses, profile=profile)
    follow(session, sweep=False, until=lambda s: s.stage in ("discovery", "execution") and s.stage_pending > 4)
    try:
        subprocess.run(["redis-cli", "shutdown", "nosave"], capture_output=True)
        time.sleep(1.5)
    finally:
        restart_redis()

    follow(session, supervise=supervise)

    assert session.status == ScanSession.Status.SUCCEEDED, session.summary
    assert_each_pair_once_and_same_findings_everywhere(session, addresses)


def test_every_stage_and_job_delivered_again_changes_nothing(fast_pipeline, start_worker, purge_queues, lab, org,
                                                             profile):
    from config.celery import app

    addresses = serve(lab, 3, net=73)
    worker = start_worker(queues=ALL_QUEUES, concurrency=2)
    session = follow(session_start(org=org, trigger="cli", targets=addresses, profile=profile))
    assert session.status == "succeeded"
    # The session report is rendered just after the session finishes: the baseline is taken once it is.
    # Rendered means its file is written: the reporting stage also writes the row (ready, no file yet)
    # before the session's status says finished, so "nothing pending" alone can come too early.
    deadline = time.monotonic() + 30
    while not (Report.objects.filter(session=session, status="ready").exclude(file="").exists()
               and not Report.objects.filter(session=session, status__in=["pending", "running"]).exists()):
        assert time.monotonic() < deadline, "the session report was not rendered"
        time.sleep(0.1)

    def state():
        return (ScanSession.objects.values().get(pk=session.pk), sorted(Finding.objects.values_list("pk", "status",
                "times_seen", "last_seen")), sorted(ScanJob.objects.values_list("pk", "status", "attempts",
                "finished_at")), list(Report.objects.values_list("pk", "finished_at")))

    before = state()
    for stage in STAGES:
        app.send_task(stage_task(stage), kwargs={"session_id": session.pk, "stage": stage})
    for job in ScanJob.objects.filter(session=session).exclude(scanner="cve"):
        name = "scans.tasks.discovery_jobs_run" if job.scanner == "discovery" else "scans.tasks.job_run"
        app.send_task(name, kwargs={"job_ids": [job.pk]})
    expected = len(STAGES) + ScanJob.objects.filter(session=session).exclude(scanner="cve").count()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        log = worker.log()
        if log.count('"stage.skipped"') + log.count('"jobs.nothing_to_claim"') >= expected:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the duplicates were not all delivered:\n{worker.log()[-3000:]}")

    assert state() == before


def _postgres_restart():
    """A fast restart (every client connection cut mid-transaction) of the server the tests run on:
    the embedded one, or else the local cluster on port 5432 (pg_lsclusters: its version and name)."""
    embedded = settings.DATABASES["default"].get("EMBEDDED_SERVER")
    if embedded:
        server = EmbeddedServer(Path(embedded))

        def restart_embedded():
            embedded_db.stop(server)  # pg_ctl stop -m fast
            embedded_db.start(server)

        return restart_embedded
    if not shutil.which("pg_lsclusters"):
        pytest.skip("no local PostgreSQL cluster to restart")
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        version, name, port, *_ = line.split()
        if port == "5432":
            def restart_cluster():
                subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart", "-m", "fast"],
                               check=True, capture_output=True)

            return restart_cluster
    pytest.skip("no local PostgreSQL cluster on port 5432 to restart")


def _follow_through_outage(session, **kwargs):
    """``follow`` that rides out the test's own connection dying while PostgreSQL restarts."""
    from django.db import InterfaceError, OperationalError, connection

    deadline = time.monotonic() + kwargs.pop("timeout", 90.0)
    while time.monotonic() < deadline:
        try:
            return follow(session, timeout=max(1.0, deadline - time.monotonic()), **kwargs)
        except (OperationalError, InterfaceError):
            connection.close()
            time.sleep(0.5)
    raise AssertionError("PostgreSQL did not come back")


def test_a_postgresql_restart_mid_session_is_ridden_out_and_every_pair_is_scanned_exactly_once(
        fast_pipeline, start_worker, purge_queues, lab, org, profile):
    restart = _postgres_restart()
    addresses = serve(lab, 30, net=74)
    workers = [start_worker(queues=ALL_QUEUES, concurrency=2)]

    def supervise():
        # As in production, a supervisor restarts a worker that exits; the pipeline must not care.
        if workers[-1].process.poll() is not None:
            workers.append(start_worker(queues=ALL_QUEUES, concurrency=2))

    session = session_start(org=org, trigger="cli", targets=addresses, profile=profile)
    follow(session, sweep=False, until=lambda s: s.stage == "execution" and s.jobs_succeeded >= 4)
    restart()  # every client connection (workers' and this test's) is cut mid-transaction

    session = _follow_through_outage(session, supervise=supervise)

    assert session.status == ScanSession.Status.SUCCEEDED, session.summary
    assert_each_pair_once_and_same_findings_everywhere(session, addresses)
