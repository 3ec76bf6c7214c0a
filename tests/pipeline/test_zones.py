"""Zones in the pipeline, without a broker: where a zone's jobs go, when they wait, what a zone worker refuses."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from interventions.models import Intervention
from nodes.models import Node
from nodes.placement import nodes_place
from orgs.zones import zone_create
from scans.models import ScanJob, ScanSession, WorkerHeartbeat
from scans.pipeline import execution, zones
from scans.pipeline.execution import (
    _claim,
    _hand_over,
    _record,
    jobs_pump,
    jobs_run,
    stage_check_complete,
    stage_of,
)
from scans.pipeline.stages import stage_run
from scans.pipeline.watchdog import watchdog_sweep
from scans.pipeline.zones import THIS_WORKER, session_zones_waiting, zones_dispatchable
from tests.factories import NodeFactory, ScanJobFactory, ScanSessionFactory


@pytest.fixture
def two_zones(world):
    return (zone_create(org=world.org, name="Branch A", networks=["127.0.1.0/24"]),
            zone_create(org=world.org, name="Branch B", networks=["127.0.2.0/24"]))


@pytest.fixture
def published(monkeypatch):
    """What admission hands to Celery, by task name and queue (the broker itself is the integration tests')."""
    sent: list[tuple[str, str | None, list[int]]] = []

    def record(name, *, kwargs, queue=None, **options):
        if "job_ids" in kwargs:
            sent.append((name, queue, kwargs["job_ids"]))
        return "task-id"

    monkeypatch.setattr(execution.dispatch, "enqueue", record)
    return sent


@pytest.fixture
def as_zone_worker():
    def _become(zone):
        THIS_WORKER.hostname, THIS_WORKER.zone_id = f"zone-{zone.pk}@test", zone.pk

    yield _become
    THIS_WORKER.hostname, THIS_WORKER.zone_id = "", None


def alive(zone, name="zw"):
    return WorkerHeartbeat.objects.create(hostname=f"{name}@{zone.pk}", zone=zone, queues=[zone.queue])


def queued_discovery(world, addresses):
    session = ScanSessionFactory(org=world.org, status="running", stage="discovery")
    jobs = [ScanJobFactory(session=session, node=NodeFactory(org=world.org, address=a, resolved_ip=a),
                           scanner="discovery", status="queued") for a in addresses]
    nodes_place(org=world.org)  # the factory writes rows directly, past the services that place nodes
    return session, jobs


def test_the_jobs_of_a_zone_with_a_worker_go_to_its_queue_and_the_others_to_the_central_one(
        world, two_zones, published):
    zone_a, _ = two_zones
    alive(zone_a)
    session, jobs = queued_discovery(world, ["127.0.1.1", "127.0.1.2", "127.0.9.1"])

    assert jobs_pump(org_id=world.org.pk) == 3

    queues = {queue for _, queue, _ in published}
    assert queues == {zone_a.queue, None}
    assert sorted(i for _, q, ids in published if q == zone_a.queue for i in ids) == [jobs[0].pk, jobs[1].pk]


def test_a_zone_without_a_worker_keeps_its_jobs_waiting_and_takes_no_slot(world, two_zones, published):
    world.org.max_concurrent_jobs = 1
    world.org.save(update_fields=["max_concurrent_jobs"])
    session, jobs = queued_discovery(world, ["127.0.2.1", "127.0.2.2", "127.0.9.1"])

    assert jobs_pump(org_id=world.org.pk) == 1

    assert published == [("scans.tasks.discovery_jobs_run", None, [jobs[2].pk])]
    assert set(ScanJob.objects.filter(pk__in=[jobs[0].pk, jobs[1].pk]).values_list("task_id", flat=True)) == {""}


def test_the_default_zone_may_always_dispatch_and_a_zone_only_with_a_worker_alive(world, two_zones):
    zone_a, zone_b = two_zones
    stale = alive(zone_b)
    WorkerHeartbeat.objects.filter(pk=stale.pk).update(seen_at=timezone.now() - timedelta(hours=1))
    alive(zone_a)

    assert zones_dispatchable({None, zone_a.pk, zone_b.pk}) == {None, zone_a.pk}


def test_a_zone_worker_refuses_a_target_of_another_zone_before_any_connection(world, two_zones, as_zone_worker):
    zone_a, zone_b = two_zones
    session, (job,) = queued_discovery(world, ["127.0.2.9"])
    as_zone_worker(zone_a)

    assert jobs_run(job_ids=[job.pk]) == {"succeeded": 0, "failed": 1, "retrying": 0, "cancelled": 0}

    job.refresh_from_db()
    assert job.status == "failed" and job.attempts == 1
    assert "refused 127.0.2.9: outside zone 'Branch A'" in job.error
    assert job.worker == f"zone-{zone_a.pk}@test"
    refused = Intervention.objects.get(job=job)
    assert refused.kind == Intervention.Kind.OUT_OF_ZONE
    assert refused.context["refused_by"] == f"zone-{zone_a.pk}@test"


def test_a_zone_worker_runs_a_target_of_its_own_zone(world, two_zones, as_zone_worker, lab, quick_profile):
    from scans.lab.services import start_node

    zone_a, _ = two_zones
    start_node(lab, "127.0.1.7", ["http"])
    session, (job,) = queued_discovery(world, ["127.0.1.7"])
    ScanSession.objects.filter(pk=session.pk).update(profile=quick_profile)
    as_zone_worker(zone_a)

    assert jobs_run(job_ids=[job.pk])["succeeded"] == 1
    job.refresh_from_db()
    assert job.worker == f"zone-{zone_a.pk}@test"


def test_waiting_for_a_zone_past_the_grace_opens_one_intervention_and_never_re_queues_the_work(
        world, two_zones, settings, published):
    _, zone_b = two_zones
    settings.WATCHPOST_ZONE_GRACE_SECONDS = 60
    session, jobs = queued_discovery(world, ["127.0.2.1", "127.0.2.2"])
    # A discovery of the default zone still running: the stage cannot hand over, it waits.
    ScanJobFactory(session=session, node=NodeFactory(org=world.org, address="127.0.9.1"), scanner="discovery",
                   status="running", attempts=1, task_id="running", heartbeat_at=timezone.now())
    ScanSession.objects.filter(pk=session.pk).update(stage_deadline_at=timezone.now() - timedelta(seconds=1))
    long_ago = timezone.now() - timedelta(minutes=5)
    ScanJob.objects.filter(pk=jobs[0].pk).update(queued_at=long_ago)
    ScanJob.objects.filter(pk=jobs[1].pk).update(queued_at=long_ago, task_id="sent-before-the-worker-died")

    for _ in range(3):
        watchdog_sweep()

    intervention = Intervention.objects.get(kind=Intervention.Kind.ZONE_UNAVAILABLE)
    assert intervention.subject == f"zone:{zone_b.pk}" and intervention.occurrences == 1
    assert "Branch B" in intervention.title
    assert ScanJob.objects.get(pk=jobs[1].pk).task_id == "sent-before-the-worker-died"  # not taken for lost
    assert published == []
    session.refresh_from_db()
    assert session.stage_deadline_at > timezone.now()  # waiting is not being stuck
    assert not Intervention.objects.filter(kind=Intervention.Kind.STAGE_STUCK).exists()
    (wait,) = session_zones_waiting(session)
    assert (wait.zone, wait.since, wait.jobs) == (zone_b, long_ago, 2)


def test_a_zone_s_intervention_resolves_itself_once_a_worker_of_the_zone_is_back(world, two_zones, settings, published):
    _, zone_b = two_zones
    settings.WATCHPOST_ZONE_GRACE_SECONDS = 0
    queued_discovery(world, ["127.0.2.1"])
    watchdog_sweep()
    alive(zone_b)

    watchdog_sweep()

    assert Intervention.objects.get(kind=Intervention.Kind.ZONE_UNAVAILABLE).state == Intervention.State.RESOLVED
    assert [queue for _, queue, _ in published] == [zone_b.queue]


def test_a_session_waiting_for_a_zone_can_be_cancelled(world, two_zones):
    from scans.pipeline.sessions import session_cancel

    session, jobs = queued_discovery(world, ["127.0.2.1"])
    ScanSession.objects.filter(pk=session.pk).update(stage_deadline_at=timezone.now() + timedelta(minutes=5))

    session = session_cancel(session=session)

    assert session.cancel_requested
    assert ScanJob.objects.get(pk=jobs[0].pk).status == "cancelled"
    assert session_zones_waiting(session) == []


def test_a_node_placed_in_a_zone_is_scanned_inline_all_the_same(world, two_zones, run_inline, lab_nodes, quick_profile):
    zone = zone_create(org=world.org, name="Lab", networks=["127.0.60.0/24"])
    addresses = lab_nodes(2)

    session = run_inline(org=world.org, trigger="cli", targets=addresses, profile=quick_profile)

    assert session.status == ScanSession.Status.SUCCEEDED
    assert set(Node.objects.filter(address__in=addresses).values_list("zone_id", flat=True)) == {zone.pk}


def test_a_worker_with_a_zone_id_naming_no_zone_exits_with_the_reason(monkeypatch, db, capsys):
    monkeypatch.setenv("WATCHPOST_ZONE", "424242")

    with pytest.raises(SystemExit) as exited:
        zones.worker_zone_check(sender="w@test")

    assert exited.value.code == 2
    assert "WATCHPOST_ZONE=424242 names no zone" in capsys.readouterr().err


def worker_ran(job_ids, outcome=None):
    """What a worker does with a message, short of the network: claim the jobs, record the outcomes,
    hand over. A discovery finds port 80 open; a scanner finds nothing."""
    token = uuid.uuid4().hex
    claimed = _claim(job_ids, token)
    assert [job.pk for job in claimed] == sorted(job_ids)
    _record(claimed, {job.pk: outcome or ({"open_ports": [80], "services": [], "protocols": []}
                                          if job.scanner == "discovery" else
                                          {"scanner": job.scanner, "complete": True, "findings": [], "coverage": []})
                      for job in claimed}, token)
    _hand_over(claimed[0].session, {stage_of(job.scanner) for job in claimed})


def scanner_jobs(session, zone):
    return list(ScanJob.objects.filter(session=session, node__zone=zone).exclude(scanner="discovery")
                .values_list("pk", flat=True).order_by("pk"))


def published_to(published, queue):
    return sorted(i for _, q, ids in published if q == queue for i in ids)


@pytest.fixture
def zoned_session(world, two_zones, quick_profile):
    """A session in discovery over two nodes of zone A and one of zone B, its stage taken."""
    session, jobs = queued_discovery(world, ["127.0.1.1", "127.0.1.2", "127.0.2.1"])
    ScanSession.objects.filter(pk=session.pk).update(
        profile=quick_profile, stage_deadline_at=timezone.now() + timedelta(minutes=5), heartbeat_at=timezone.now(),
        nodes_total=3, stage_pending=3)
    session.refresh_from_db()
    return session, jobs


def test_a_zone_s_scanner_jobs_run_while_another_zone_s_discovery_waits_for_its_worker_and_that_zone_follows(
        world, two_zones, zoned_session, published):
    zone_a, zone_b = two_zones
    session, (a1, a2, b1) = zoned_session
    alive(zone_a)
    assert jobs_pump(org_id=world.org.pk) == 2

    worker_ran([a1.pk, a2.pk])  # the last discovery that could run hands over: B's waits for a worker

    session.refresh_from_db()
    assert session.stage == "scan_creation"
    stage_run(session_id=session.pk, stage="scan_creation")
    stage_run(session_id=session.pk, stage="execution")
    session.refresh_from_db()
    a_scans = scanner_jobs(session, zone_a)
    assert (session.stage, session.jobs_total, len(a_scans)) == ("execution", 4, 4)
    assert session.stage_pending == 5  # A's four scanner jobs and B's discovery
    assert published_to(published, zone_a.queue) == sorted([a1.pk, a2.pk, *a_scans])

    worker_ran(a_scans)

    session.refresh_from_db()
    assert (session.stage, session.jobs_succeeded) == ("execution", 4)  # execution waits for B's node
    assert ScanJob.objects.filter(pk=b1.pk).values_list("status", "task_id", "attempts").get() == ("queued", "", 0)
    assert published_to(published, zone_b.queue) == []

    alive(zone_b)
    jobs_pump(org_id=world.org.pk)
    worker_ran([b1.pk])  # B's discovery, once its worker came: its node's scanner jobs are planned then

    session.refresh_from_db()
    b_scans = scanner_jobs(session, zone_b)
    assert (session.stage, session.jobs_total, len(b_scans)) == ("execution", 6, 2)
    assert published_to(published, zone_b.queue) == sorted([b1.pk, *b_scans])

    worker_ran(b_scans)

    session.refresh_from_db()
    assert (session.stage, session.jobs_succeeded, session.jobs_total) == ("analysis", 6, 6)
    pairs = Counter(ScanJob.objects.filter(session=session).values_list("node__address", "scanner"))
    assert set(pairs.values()) == {1} and len(pairs) == 9  # three nodes: discovery, http, exposure each once


def test_discovery_waits_for_a_zone_with_a_worker_alive_and_not_for_one_without(world, two_zones, zoned_session):
    zone_a, zone_b = two_zones
    session, (a1, a2, b1) = zoned_session
    ScanJob.objects.filter(pk__in=[a1.pk, a2.pk]).update(status="succeeded", finished_at=timezone.now())
    worker = alive(zone_b)

    assert not stage_check_complete(session_id=session.pk, stage="discovery")

    WorkerHeartbeat.objects.filter(pk=worker.pk).update(seen_at=timezone.now() - timedelta(hours=1))
    assert stage_check_complete(session_id=session.pk, stage="discovery")
    session.refresh_from_db()
    assert session.stage == "scan_creation"


def test_the_watchdog_hands_discovery_over_when_the_only_work_left_waits_for_a_zone_whose_worker_left(
        world, two_zones, zoned_session, published):
    _, zone_b = two_zones
    session, (a1, a2, b1) = zoned_session
    ScanJob.objects.filter(pk__in=[a1.pk, a2.pk]).update(status="succeeded", finished_at=timezone.now())
    # B's discovery was re-queued after its worker died: no job's end is left to hand the stage over.

    counts = watchdog_sweep()

    session.refresh_from_db()
    assert session.stage == "scan_creation" and counts["stages_handed_over"] == 1
    assert ScanJob.objects.get(pk=b1.pk).status == "queued"
    assert not Intervention.objects.filter(kind=Intervention.Kind.STAGE_STUCK).exists()


def test_a_session_past_discovery_with_a_zone_s_discovery_waiting_can_be_cancelled(world, two_zones, zoned_session):
    from scans.pipeline.sessions import session_cancel

    session, (a1, a2, b1) = zoned_session
    ScanJob.objects.filter(pk__in=[a1.pk, a2.pk]).update(status="cancelled", finished_at=timezone.now())
    ScanSession.objects.filter(pk=session.pk).update(stage="execution", stage_pending=1)

    session = session_cancel(session=session)

    assert ScanJob.objects.get(pk=b1.pk).status == "cancelled"
    assert session.stage == "analysis"  # on to its end, as a cancelled session goes
    assert not ScanJob.objects.filter(session=session).exclude(scanner="discovery").exists()


def test_nodes_discovered_after_the_session_moved_on_get_their_scanner_jobs_while_another_discovery_still_runs(
        world, two_zones, zoned_session, published):
    zone_a, zone_b = two_zones
    session, (a1, a2, b1) = zoned_session
    ScanSession.objects.filter(pk=session.pk).update(stage="execution")  # every zone had waited for a worker
    alive(zone_a), alive(zone_b)
    jobs_pump(org_id=world.org.pk)
    assert _claim([b1.pk], "b-worker")  # B's discovery runs on

    worker_ran([a1.pk, a2.pk])

    session.refresh_from_db()
    a_scans = scanner_jobs(session, zone_a)
    assert (session.stage, session.jobs_total, len(a_scans)) == ("execution", 4, 4)
    assert published_to(published, zone_a.queue) == sorted([a1.pk, a2.pk, *a_scans])
    assert session.stage_pending == 5  # A's scanner jobs and B's discovery
