"""Session outcomes: partial when a job fails (and it closes nothing), cancelled, cooldown, concurrency."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from interventions.models import Intervention
from nodes.models import Node, NodeSnapshot
from scans.models import Finding, ScanJob, ScanSession
from scans.pipeline import dispatch
from scans.pipeline.sessions import session_cancel, session_start
from tests.factories import FindingFactory


def test_a_target_that_never_answers_fails_alone_and_the_session_ends_partial(world, lab, lab_nodes,
                                                                              impatient_profile, run_inline):
    from scans.lab.services import start_node

    healthy = lab_nodes(1)
    start_node(lab, "127.0.60.9", ["redis", "tarpit"], ports={"tarpit": 80})
    session = run_inline(org=world.org, trigger=ScanSession.Trigger.CLI, targets=[*healthy, "127.0.60.9"],
                         profile=impatient_profile)

    assert session.status == ScanSession.Status.PARTIAL, session.summary
    assert session.reason == "1 of 4 scanner jobs failed", session.summary
    stuck = ScanJob.objects.get(session=session, node__address="127.0.60.9", scanner="http")
    assert stuck.status == ScanJob.Status.FAILED and stuck.attempts == 2 and "JobTimeout" in stuck.error
    intervention = Intervention.objects.get(job=stuck)
    assert intervention.kind == Intervention.Kind.JOB_EXHAUSTED and intervention.state == "open"
    assert intervention.context["attempts"] == 2 and intervention.context["correlation_id"] == session.correlation_id
    assert NodeSnapshot.objects.get(node__address=healthy[0]).last_scan_status == "partial"


def test_a_session_whose_targets_all_are_unreachable_fails_and_says_so_in_the_console_and_the_api(
        world, impatient_profile, run_inline, client):
    from orgs.models import ApiToken
    from orgs.services import api_token_create

    session = run_inline(org=world.org, trigger=ScanSession.Trigger.CLI, targets=["127.0.61.1", "127.0.61.2"],
                         profile=impatient_profile)
    client.force_login(world.viewer)
    page = client.get(f"/o/{world.org.slug}/sessions/").content.decode()
    detail = client.get(f"/o/{world.org.slug}/sessions/{session.pk}/").content.decode()
    _, secret = api_token_create(org=world.org, name="t", access=ApiToken.Access.READ, by=None)
    api = client.get(f"/api/v1/sessions/{session.pk}/", HTTP_AUTHORIZATION=f"Bearer {secret}").json()

    assert session.status == ScanSession.Status.FAILED and session.error == ""
    assert session.reason == "all 2 targets unreachable"
    assert "all 2 targets unreachable" in page and "all 2 targets unreachable" in detail
    assert api["reason"] == "all 2 targets unreachable"


def test_a_failed_job_never_closes_findings(world, lab, impatient_profile, run_inline):
    from scans.lab.services import start_node

    start_node(lab, "127.0.60.9", ["redis", "tarpit"], ports={"tarpit": 80})
    node = Node.objects.create(org=world.org, address="127.0.60.9", resolved_ip="127.0.60.9")
    earlier = FindingFactory(node=node, org=world.org, source="http", port=80, rule_id="http-missing-csp")

    session = run_inline(org=world.org, trigger=ScanSession.Trigger.CLI, targets=["127.0.60.9"],
                         profile=impatient_profile)

    assert ScanJob.objects.get(session=session, scanner="http").status == ScanJob.Status.FAILED
    earlier.refresh_from_db()
    assert earlier.status == Finding.Status.OPEN


def test_cancel_stops_queued_jobs_and_the_session_ends_cancelled(world, lab_nodes, quick_profile, settings):
    world.org.max_concurrent_jobs = 1
    world.org.save()
    addresses = lab_nodes(3)
    with dispatch.inline() as queue:
        session = session_start(org=world.org, trigger=ScanSession.Trigger.CLI, targets=addresses, profile=quick_profile)
        while queue and ScanSession.objects.get(pk=session.pk).jobs_succeeded < 1:
            name, kwargs = queue.popleft()
            dispatch.service_for(name)(**kwargs)
        session_cancel(session=session, by=world.analyst)
        dispatch.drain()
    session.refresh_from_db()

    assert session.status == ScanSession.Status.CANCELLED
    jobs = ScanJob.objects.filter(session=session).exclude(scanner__in=["discovery", "cve"])
    assert jobs.filter(status=ScanJob.Status.CANCELLED).count() == session.jobs_cancelled > 0
    assert not jobs.filter(status__in=["queued", "running", "retrying"]).exists()
    assert session.jobs_succeeded + session.jobs_cancelled == jobs.count()


def test_nodes_scanned_within_the_cooldown_are_skipped(world, lab_nodes, quick_profile, run_inline):
    world.org.node_cooldown_minutes = 60
    world.org.save()
    addresses = lab_nodes(2)
    Node.objects.create(org=world.org, address=addresses[0], resolved_ip=addresses[0],
                        last_scanned_at=timezone.now() - timezone.timedelta(minutes=5))

    session = run_inline(org=world.org, trigger=ScanSession.Trigger.CLI, targets=addresses, profile=quick_profile)

    assert session.nodes_total == 1
    assert session.summary["skipped"]["cooldown"] == [addresses[0]]
    assert not ScanJob.objects.filter(session=session, node__address=addresses[0]).exists()


def test_an_organization_never_has_more_jobs_out_than_its_limit_and_others_are_not_starved(
        world, lab_nodes, quick_profile, settings):
    world.org.max_concurrent_jobs = 2
    world.org.save()
    world.other_org.scope_networks = ["127.0.0.0/8"]
    world.other_org.save()
    busy_peak = 0

    def out(org):
        return ScanJob.objects.filter(session__org=org).filter(
            Q(status="running") | Q(status__in=["queued", "retrying"], task_id__gt="")).count()

    with dispatch.inline() as queue:
        big = session_start(org=world.org, trigger="cli", targets=lab_nodes(4), profile=quick_profile)
        small = session_start(org=world.other_org, trigger="cli", targets=lab_nodes(1, first=20), profile=quick_profile)
        while queue:
            name, kwargs = queue.popleft()
            dispatch.service_for(name)(**kwargs)
            busy_peak = max(busy_peak, out(world.org))
            if ScanSession.objects.get(pk=small.pk).is_finished:
                small_done_while_big_runs = not ScanSession.objects.get(pk=big.pk).is_finished
                break
        dispatch.drain()

    assert busy_peak == 2
    assert small_done_while_big_runs
    assert ScanSession.objects.get(pk=big.pk).status == ScanSession.Status.SUCCEEDED
