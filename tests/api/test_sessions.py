"""Scan requests over the API: 202 with Location, per-stage progress, jobs by cursor, cancel."""

from __future__ import annotations

from orgs.models import AuditEvent
from scans.models import ScanJob, ScanSession
from tests.api.conftest import problem
from tests.factories import NodeFactory, ScanJobFactory, ScanSessionFactory


def test_requesting_a_scan_of_the_organization_answers_202_with_a_location(api, world, django_capture_on_commit_callbacks):
    NodeFactory(org=world.org)
    with django_capture_on_commit_callbacks() as callbacks:
        response = api().post("/api/v1/sessions/", {}, format="json")

    assert response.status_code == 202, response.content
    session = ScanSession.objects.get(org=world.org)
    assert response["Location"] == f"/api/v1/sessions/{session.pk}/"
    body = response.json()
    assert (body["status"], body["trigger"], body["targets"]) == ("queued", "api", [])
    assert [s["stage"] for s in body["stages"]][0] == "discovery"
    assert len(callbacks) == 1  # the first stage is queued after commit
    assert session.requested_by_token.name == "ci"
    assert AuditEvent.objects.get(verb="session.started").token.name == "ci"


def test_a_scan_of_a_tag_targets_its_enabled_nodes(api, world):
    NodeFactory(org=world.org, address="127.0.50.1", tags=["prod"])
    NodeFactory(org=world.org, address="127.0.50.2", tags=["prod"], enabled=False)
    NodeFactory(org=world.org, address="127.0.50.3", tags=["dev"])

    body = api().post("/api/v1/sessions/", {"tag": "prod", "profile": "light"}, format="json").json()

    assert body["targets"] == ["127.0.50.1"]
    assert body["profile"] == "light"


def test_a_tag_no_node_carries_is_refused(api, world):
    body = problem(api().post("/api/v1/sessions/", {"tag": "nothing"}, format="json"), 400, "invalid")
    assert "nothing" in body["errors"]["tag"][0]


def test_a_scan_of_chosen_nodes(api, world):
    a = NodeFactory(org=world.org, address="127.0.50.1")
    NodeFactory(org=world.org, address="127.0.50.2")

    body = api().post("/api/v1/sessions/", {"nodes": [a.pk]}, format="json").json()

    assert body["targets"] == ["127.0.50.1"]


def test_another_organizations_node_cannot_be_chosen(api, world):
    theirs = NodeFactory(org=world.other_org)
    body = problem(api().post("/api/v1/sessions/", {"nodes": [theirs.pk]}, format="json"), 400, "invalid")
    assert body["errors"]["nodes"] == [f"No node with id {theirs.pk} in this organization."]
    assert not ScanSession.objects.exists()


def test_an_unknown_node_among_known_ones_refuses_the_whole_request(api, world):
    ours = NodeFactory(org=world.org)
    gone = NodeFactory(org=world.org)
    gone_id = gone.pk
    gone.delete()
    body = problem(api().post("/api/v1/sessions/", {"nodes": [ours.pk, gone_id]}, format="json"), 400, "invalid")
    assert body["errors"]["nodes"] == [f"No node with id {gone_id} in this organization."]
    assert not ScanSession.objects.exists()


def test_an_unknown_profile_is_refused(api, world):
    problem(api().post("/api/v1/sessions/", {"profile": "nope"}, format="json"), 400, "invalid")


def test_the_session_shows_per_stage_progress_and_counts(api, world):
    session = ScanSessionFactory(org=world.org, status=ScanSession.Status.RUNNING, stage=ScanSession.Stage.EXECUTION,
                                 jobs_total=4, jobs_succeeded=1, jobs_failed=1,
                                 stage_timings={"discovery": {"started_at": "2026-11-30T21:00:00+00:00",
                                                              "finished_at": "2026-11-30T21:00:04+00:00",
                                                              "seconds": 4.0}})

    body = api("read").get(f"/api/v1/sessions/{session.pk}/").json()

    states = {s["stage"]: s["state"] for s in body["stages"]}
    assert states["discovery"] == "done"
    assert states["execution"] == "current"
    assert states["reporting"] == "pending"
    assert body["counts"]["jobs_pending"] == 2


def test_jobs_page_by_cursor(api, world):
    session = ScanSessionFactory(org=world.org)
    node = NodeFactory(org=world.org)
    for scanner in ("a", "b", "c"):
        ScanJobFactory(session=session, node=node, scanner=scanner)

    first = api("read").get(f"/api/v1/sessions/{session.pk}/jobs/?page_size=2").json()
    second = api("read").get(first["next"]).json()

    assert [j["scanner"] for j in first["results"]] == ["a", "b"]
    assert [j["scanner"] for j in second["results"]] == ["c"] and second["next"] is None


def test_cancelling_a_session(api, world):
    session = ScanSessionFactory(org=world.org, status=ScanSession.Status.RUNNING)
    job = ScanJobFactory(session=session)

    response = api().post(f"/api/v1/sessions/{session.pk}/cancel/")

    assert response.status_code == 202, response.content
    assert response.json()["cancel_requested"] is True
    job.refresh_from_db()
    assert job.status == ScanJob.Status.CANCELLED


def test_cancelling_a_finished_session_is_a_conflict(api, world):
    session = ScanSessionFactory(org=world.org, status=ScanSession.Status.SUCCEEDED)
    problem(api().post(f"/api/v1/sessions/{session.pk}/cancel/"), 409, "session_finished")
