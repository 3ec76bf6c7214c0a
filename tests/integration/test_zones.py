"""Zones on real Celery workers, Redis and PostgreSQL: two zones on their own loopback /24s, one worker
each beside the central one. Each zone's jobs run on its own worker only; a zone without a worker
waits (and says so) instead of failing the session; a zone worker refuses another zone's target
without a connection to it."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

import pytest

from config.celery import app
from interventions.models import Intervention
from nodes.models import Node
from orgs.zones import zone_create
from scans.lab.services import start_node
from scans.models import ScanJob, ScanProfile, ScanSession, WorkerHeartbeat
from scans.pipeline.sessions import session_start
from scans.pipeline.watchdog import watchdog_sweep
from tests.factories import OrganizationFactory
from tests.integration.test_pipeline_faults import (
    FAST,
    assert_each_pair_once_and_same_findings_everywhere,
    follow,
)

pytestmark = pytest.mark.integration

CENTRAL_QUEUES = "orchestration,nodes,scans,scoring,reports"
NODES_PER_ZONE = 3


@pytest.fixture
def zoned(monkeypatch):
    for name, value in {**FAST, "WATCHPOST_ZONE_GRACE_SECONDS": "1", "WATCHPOST_WORKER_PRESENCE_SECONDS": "1"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def org(transactional_db):
    return OrganizationFactory(slug="zoned", scope_networks=["127.0.0.0/8"], max_concurrent_jobs=8)


@pytest.fixture
def zones(org):
    return (zone_create(org=org, name="Branch A", networks=["127.0.1.0/24"]),
            zone_create(org=org, name="Branch B", networks=["127.0.2.0/24"]))


@pytest.fixture
def profile(transactional_db):
    return ScanProfile.objects.create(
        org=None, slug="zone-test", name="Zone test", scanners=["http", "exposure"], ports="80,6379",
        time_budget_seconds=120, job_timeout_seconds=5,
        options={"context": {"connect_timeout": 0.5, "read_timeout": 1.0}, "max_attempts": 2,
                 "timeouts": {"discovery": 15, "http": 2}},
    )


def serve(lab, net: int) -> list[str]:
    addresses = [f"127.0.{net}.{i}" for i in range(1, NODES_PER_ZONE + 1)]
    for address in addresses:
        start_node(lab, address, ["http", "redis"])
    return addresses


def zone_worker(start_worker, zone, concurrency: int = 1):
    return start_worker(queues=zone.queue, concurrency=concurrency, extra_env={"WATCHPOST_ZONE": str(zone.pk)})


def worker_of(worker) -> str:
    return worker.command[worker.command.index("-n") + 1].split("@")[0]


def assert_each_pair_once(session, addresses):
    pairs = Counter(ScanJob.objects.filter(session=session).values_list("node__address", "scanner"))
    assert set(pairs.values()) == {1}, pairs
    assert {address for address, _ in pairs} == set(addresses)
    assert {scanner for _, scanner in pairs} == {"discovery", "http", "exposure", "cve"}
    assert not ScanJob.objects.filter(session=session).exclude(status="succeeded").exists()


def workers_by_zone(session) -> dict[tuple[int | None, str], set[str]]:
    """(node's zone, scanner kind) -> the workers (their node name's prefix) that ran those jobs."""
    out: dict = {}
    for zone_id, scanner, worker in ScanJob.objects.filter(session=session).values_list("node__zone_id", "scanner",
                                                                                        "worker"):
        kind = "analysis" if scanner == "cve" else "network"
        out.setdefault((zone_id, kind), set()).add(worker.split("@")[0])
    return out


def test_each_zone_s_jobs_run_on_a_worker_of_that_zone_and_the_session_succeeds(
        zoned, start_worker, purge_queues, lab, org, zones, profile):
    zone_a, zone_b = zones
    addresses = serve(lab, 1) + serve(lab, 2)
    central = start_worker(queues=CENTRAL_QUEUES, concurrency=2)
    worker_a, worker_b = zone_worker(start_worker, zone_a), zone_worker(start_worker, zone_b)
    session = session_start(org=org, trigger="cli", targets=addresses, profile=profile)

    session = follow(session, timeout=120)

    assert session.status == ScanSession.Status.SUCCEEDED, session.summary
    assert_each_pair_once(session, addresses)
    assert set(Node.objects.filter(org=org).values_list("address", "zone_id")) == (
        {(a, zone_a.pk) for a in addresses[:NODES_PER_ZONE]} | {(a, zone_b.pk) for a in addresses[NODES_PER_ZONE:]})
    assert workers_by_zone(session) == {
        (zone_a.pk, "network"): {worker_of(worker_a)},
        (zone_b.pk, "network"): {worker_of(worker_b)},
        (zone_a.pk, "analysis"): {worker_of(central)},
        (zone_b.pk, "analysis"): {worker_of(central)},
    }
    assert WorkerHeartbeat.objects.filter(zone=zone_a, hostname__startswith=worker_of(worker_a) + "@").exists()


def test_a_zone_without_a_worker_waits_while_the_other_zone_is_scanned_and_finishes_when_its_worker_comes(
        zoned, start_worker, purge_queues, lab, org, zones, profile):
    zone_a, zone_b = zones
    addresses = serve(lab, 1) + serve(lab, 2)
    start_worker(queues=CENTRAL_QUEUES, concurrency=2)
    worker_a = zone_worker(start_worker, zone_a)
    gone = zone_worker(start_worker, zone_b)
    gone.stop()  # B's only worker leaves: its presence goes with it
    assert not WorkerHeartbeat.objects.filter(zone=zone_b).exists()
    session = session_start(org=org, trigger="cli", targets=addresses, profile=profile)

    def a_scanned_b_waiting(s):
        a_scans = ScanJob.objects.filter(session=s, node__zone=zone_a).exclude(scanner="discovery")
        return (a_scans.filter(status="succeeded").count() == 2 * NODES_PER_ZONE
                and Intervention.objects.filter(kind="zone_unavailable").exists())

    session = follow(session, timeout=90, until=a_scanned_b_waiting)
    for _ in range(3):  # more sweeps, past the lost-message delay: nothing re-queued, no second intervention
        time.sleep(1.5)
        watchdog_sweep()
    session.refresh_from_db()
    # A's nodes went through discovery and both scanners, and what the scanners found is kept on their jobs
    # (findings are made once, over every zone, after execution); B's discovery has not been sent anywhere.
    assert session.status == ScanSession.Status.RUNNING and session.stage == "execution"
    a_jobs = ScanJob.objects.filter(session=session, node__zone=zone_a)
    assert Counter(a_jobs.values_list("scanner", "status")) == {
        (scanner, "succeeded"): NODES_PER_ZONE for scanner in ("discovery", "http", "exposure")}
    assert all(raw["findings"] for raw in a_jobs.filter(scanner="exposure").values_list("raw_result", flat=True))
    b_jobs = ScanJob.objects.filter(session=session, node__zone=zone_b)
    assert set(b_jobs.values_list("scanner", "status", "task_id", "attempts")) == {("discovery", "queued", "", 0)}
    unavailable = Intervention.objects.get(kind="zone_unavailable")
    assert unavailable.subject == f"zone:{zone_b.pk}" and unavailable.occurrences == 1
    assert not Intervention.objects.exclude(kind="zone_unavailable").exists()

    worker_b = zone_worker(start_worker, zone_b)
    session = follow(session, timeout=120)

    assert session.status == ScanSession.Status.SUCCEEDED, session.summary
    assert_each_pair_once_and_same_findings_everywhere(session, addresses)
    assert (session.jobs_total, session.jobs_succeeded) == (4 * NODES_PER_ZONE, 4 * NODES_PER_ZONE)
    by_zone = workers_by_zone(session)
    assert by_zone[(zone_a.pk, "network")] == {worker_of(worker_a)}
    assert by_zone[(zone_b.pk, "network")] == {worker_of(worker_b)}
    unavailable.refresh_from_db()
    assert unavailable.state == Intervention.State.RESOLVED


class CountingListener:
    """A TCP listener on a loopback address that counts the connections it accepts."""

    def __init__(self, address: str) -> None:
        self.sock = socket.create_server((address, 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.sock.settimeout(0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(2)
        self.sock.close()


def test_a_zone_b_job_sent_by_hand_to_zone_a_s_queue_is_refused_without_a_connection(
        zoned, start_worker, purge_queues, org, zones, profile):
    zone_a, zone_b = zones
    listener = CountingListener("127.0.2.50")
    try:
        profile.ports = str(listener.port)
        profile.save(update_fields=["ports"])
        node = Node.objects.create(org=org, address="127.0.2.50", resolved_ip="127.0.2.50", zone=zone_b)
        session = ScanSession.objects.create(org=org, profile=profile, trigger="cli", correlation_id="by-hand",
                                             status="running", stage="discovery")
        job = ScanJob.objects.create(session=session, node=node, scanner="discovery", task_id="by-hand")
        # The listener answers: a connection to it would be counted.
        socket.create_connection(("127.0.2.50", listener.port), timeout=2).close()
        assert wait(lambda: listener.accepted == 1)
        worker_a = zone_worker(start_worker, zone_a)

        app.send_task("scans.tasks.discovery_jobs_run", kwargs={"job_ids": [job.pk]}, queue=zone_a.queue)

        assert wait(lambda: ScanJob.objects.get(pk=job.pk).status == "failed"), worker_a.log()
        job.refresh_from_db()
        assert "outside zone 'Branch A'" in job.error and job.worker.startswith("w1@")
        refused = Intervention.objects.get(job=job)
        assert refused.kind == Intervention.Kind.OUT_OF_ZONE
        time.sleep(1)
        assert listener.accepted == 1  # only the test's own connection
    finally:
        listener.close()


def test_a_worker_started_with_a_zone_that_does_not_exist_exits_with_the_reason(zoned, start_worker, org):
    with pytest.raises(RuntimeError) as exited:
        start_worker(queues="zone-999999", extra_env={"WATCHPOST_ZONE": "999999"})
    assert "WATCHPOST_ZONE=999999 names no zone" in str(exited.value)


def wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_bench_pipeline_with_zones_adds_the_zoned_session_beside_the_one_without(transactional_db, purge_queues):
    import json
    from io import StringIO

    from django.core.management import call_command

    ScanProfile.objects.create(org=None, slug="bench-zones", name="Bench zones", scanners=["http"], ports="top1000",
                               time_budget_seconds=900, job_timeout_seconds=120)
    out = StringIO()
    call_command("bench", "pipeline", "--nodes", "4", "--zones", "2", "--rounds", "1", "--warmup", "0",
                 "--profile", "bench-zones", "--timeout", "120", stdout=out)

    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["status"] == ScanSession.Status.SUCCEEDED and summary["same_work"] is True  # the keys it had
    zones = summary["zones"]
    assert (zones["zones"], zones["status"], zones["jobs_off_zone"], zones["same_work"]) == (2, "succeeded", 0, True)
    assert zones["jobs"] == summary["jobs"]
    assert zones["ratio_to_unzoned"] == pytest.approx(zones["total_seconds"] / summary["total_seconds"], rel=0.01)
