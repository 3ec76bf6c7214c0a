"""Recording a message's outcomes, and admission when nothing waits: a constant number of
queries per message, and a job the watchdog took back is never overwritten by its late result."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from nodes.models import Node
from scans.models import ScanJob, ScanSession
from scans.pipeline.execution import DEFAULT_TIMEOUT, _claim, _hand_over, _record, _target, jobs_pump
from scans.pipeline.profiles import profile_timeout
from tests.factories import ScanJobFactory, ScanSessionFactory

TOKEN = "our-claim"


def running_session(world, count: int) -> ScanSession:
    return ScanSessionFactory(org=world.org, status="running", stage="execution", heartbeat_at=timezone.now(),
                              jobs_total=count, stage_pending=count)


def claimed_jobs(world, count: int, scanner: str = "tls") -> list[ScanJob]:
    session = running_session(world, count)
    for _ in range(count):
        ScanJobFactory(session=session, scanner=scanner, status="running", attempts=1, task_id=TOKEN,
                       heartbeat_at=timezone.now())
    return list(ScanJob.objects.filter(session=session).select_related("node", "session__profile", "session__org"))


def outcome(job: ScanJob, **data) -> dict:
    return {"scanner": job.scanner, "complete": True, "findings": [], "coverage": [], **data}


def queries_to_record(jobs: list[ScanJob]) -> int:
    with CaptureQueriesContext(connection) as captured:
        _record(jobs, {job.pk: outcome(job) for job in jobs}, TOKEN)
    return len(captured)


def test_a_message_of_successes_is_recorded_in_as_many_queries_whatever_its_size(world):
    few, many = claimed_jobs(world, 2), claimed_jobs(world, 20)

    assert queries_to_record(few) == queries_to_record(many)
    assert set(ScanJob.objects.filter(pk__in=[j.pk for j in many]).values_list("status", flat=True)) == {"succeeded"}
    assert ScanSession.objects.get(pk=many[0].session_id).jobs_succeeded == 20


def test_a_job_the_watchdog_took_back_keeps_its_new_state_and_the_others_are_recorded(world):
    jobs = claimed_jobs(world, 3)
    ScanJob.objects.filter(pk=jobs[1].pk).update(status="queued", task_id="")  # requeued by the watchdog

    counts = _record(jobs, {job.pk: outcome(job, duration=1.5) for job in jobs}, TOKEN)

    assert counts["succeeded"] == 2
    session = ScanSession.objects.get(pk=jobs[0].session_id)
    assert (session.jobs_succeeded, session.stage_pending) == (2, 1)  # the session counts only what was written
    taken_back = ScanJob.objects.get(pk=jobs[1].pk)
    assert taken_back.status == "queued" and not taken_back.raw_result
    recorded = ScanJob.objects.get(pk=jobs[0].pk)
    assert recorded.status == "succeeded" and recorded.raw_result["duration"] == 1.5 and recorded.finished_at


def test_discovery_results_are_written_onto_their_nodes_and_a_silent_node_is_down(world):
    up, down = claimed_jobs(world, 2, scanner="discovery")
    service = {"host": up.node.address, "port": 80, "service": "http", "confidence": 1.0}
    protocol = {"protocol": "http", "port": 80, "confidence": 0.9, "evidence": []}

    _record([up, down], {up.pk: outcome(up, open_ports=[80], services=[service], protocols=[protocol],
                                        portscan={"open": 1}),
                         down.pk: outcome(down, open_ports=[], services=[], protocols=[], portscan={"closed": 10})},
            TOKEN)

    up_node, down_node = Node.objects.get(pk=up.node_id), Node.objects.get(pk=down.node_id)
    assert (up_node.state, up_node.services, up_node.protocols, up_node.discovery_confidence) == (
        Node.State.UP, [service], ["http"], 0.9)
    assert up_node.discovery_evidence == {"protocols": [protocol], "portscan": {"open": 1}}
    assert down_node.state == Node.State.DOWN and down_node.last_discovered_at is not None
    assert down_node.interventions.filter(kind="node_unreachable").count() == 1


def test_a_discovery_job_the_watchdog_took_back_leaves_its_node_alone_and_discovery_counts_only_as_pending(world):
    kept, taken = claimed_jobs(world, 2, scanner="discovery")
    ScanJob.objects.filter(pk=taken.pk).update(status="queued", task_id="")  # requeued by the watchdog
    found = {"open_ports": [22], "services": [{"host": "x", "port": 22, "service": "ssh"}], "protocols": []}

    _record([kept, taken], {kept.pk: outcome(kept, **found), taken.pk: outcome(taken, **found)}, TOKEN)

    assert Node.objects.get(pk=kept.node_id).state == Node.State.UP
    untouched = Node.objects.get(pk=taken.node_id)
    assert (untouched.state, untouched.services, untouched.last_discovered_at) == (Node.State.UNKNOWN, [], None)
    session = ScanSession.objects.get(pk=kept.session_id)
    assert (session.jobs_succeeded, session.stage_pending) == (0, 1)  # discovery is not one of the session's jobs


def test_a_pump_with_nothing_waiting_admits_nothing_in_one_query(world, django_assert_num_queries):
    claimed_jobs(world, 3)  # running: nothing waits for admission

    with django_assert_num_queries(1):
        assert jobs_pump(org_id=world.org.pk) == 0


def queued_jobs(world, count: int, scanner: str) -> list[int]:
    session = running_session(world, count)
    return [ScanJobFactory(session=session, scanner=scanner, status="queued").pk for _ in range(count)]


def queries_to_claim_and_record(job_ids: list[int], token: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        claimed = _claim(job_ids, token)
        for job in claimed:
            _target(job)  # what a run reads of its job
        _record(claimed, {job.pk: outcome(job, open_ports=[22], services=[], protocols=[]) for job in claimed}, token)
    return len(captured)


def test_claiming_and_recording_a_message_reads_no_column_one_job_at_a_time(world):
    # A claim loads only the columns a run and its record use: a field left out and read anyway
    # would cost one query per job, and a message of twenty would show it.
    for scanner in ("tls", "discovery"):
        few, many = queued_jobs(world, 2, scanner), queued_jobs(world, 20, scanner)

        assert queries_to_claim_and_record(few, f"few-{scanner}") == queries_to_claim_and_record(many, f"many-{scanner}")
        assert set(ScanJob.objects.filter(pk__in=many).values_list("status", flat=True)) == {"succeeded"}


def test_a_message_is_claimed_in_two_statements_and_its_successes_recorded_in_one(world, statements):
    job_ids = queued_jobs(world, 20, "tls")
    statements.clear()

    claimed = _claim(job_ids, TOKEN)
    claim_statements = len(statements)
    _record(claimed, {job.pk: outcome(job, duration=0.5) for job in claimed}, TOKEN)

    assert claim_statements == 2  # the session with its profile, then the claim returning jobs and nodes
    assert len(statements) - claim_statements == 1
    assert [(job.pk, job.node.address) for job in claimed] == list(
        ScanJob.objects.filter(pk__in=job_ids).order_by("pk").values_list("pk", "node__address"))
    assert set(ScanJob.objects.filter(pk__in=job_ids).values_list("status", flat=True)) == {"succeeded"}
    session = ScanSession.objects.get(pk=claimed[0].session_id)
    assert (session.jobs_succeeded, session.stage_pending) == (20, 0)


def test_a_discovery_message_writes_its_jobs_and_nodes_in_one_statement(world, statements):
    jobs = claimed_jobs(world, 20, scanner="discovery")
    service = {"host": "x", "port": 443, "service": "https", "tls": True}
    statements.clear()

    _record(jobs, {job.pk: outcome(job, open_ports=[443], services=[service], protocols=[]) for job in jobs}, TOKEN)

    assert len(statements) == 1
    assert set(Node.objects.filter(jobs__in=jobs).values_list("state", flat=True)) == {Node.State.UP}
    assert all(node.services == [service] and node.last_discovered_at for node in Node.objects.filter(jobs__in=jobs))


def test_a_claim_gives_each_job_its_scanners_deadline_and_leaves_a_cancelled_sessions_jobs_queued(world):
    job_ids = queued_jobs(world, 2, "tls")
    cancelled = queued_jobs(world, 1, "tls")
    ScanSession.objects.filter(jobs__id__in=cancelled).update(cancel_requested=True)

    claimed = _claim(job_ids + cancelled, TOKEN)

    assert sorted(job.pk for job in claimed) == sorted(job_ids)
    profile = claimed[0].session.profile
    budget = profile_timeout(profile, "tls") if profile else DEFAULT_TIMEOUT
    for job in ScanJob.objects.filter(pk__in=job_ids):
        assert (job.status, job.attempts, job.task_id) == ("running", 1, TOKEN)
        assert (job.deadline_at - job.started_at).total_seconds() == pytest.approx(budget)
    assert ScanJob.objects.get(pk=cancelled[0]).status == "queued"


def test_after_a_message_with_jobs_still_outstanding_and_nothing_waiting_one_query_decides(
        world, django_assert_num_queries):
    jobs = claimed_jobs(world, 3)  # running: outstanding, and nothing waits for admission

    with django_assert_num_queries(1):
        _hand_over(jobs[0].session, {"execution"})
    assert ScanSession.objects.get(pk=jobs[0].session_id).stage == "execution"


def test_a_pump_of_an_organization_without_zones_or_held_sessions_asks_nothing_more_of_them(world, statements):
    job_ids = queued_jobs(world, 5, "tls")
    statements.clear()

    assert jobs_pump(org_id=world.org.pk) == 5

    # The lock of the organization says it has no zone and no session waiting for a window: no zone's
    # window, worker presence or session mark is read after it.
    zones = [s for s in statements if "orgs_zone" in s]
    assert len(zones) == 1 and "FOR UPDATE" in zones[0]
    assert not any("scans_workerheartbeat" in s or "window_waiting_until" in s for s in statements if s != zones[0])
    assert set(ScanJob.objects.filter(pk__in=job_ids).values_list("task_id", flat=True)) != {""}
