"""Interventions over the API: the queue, detail with ETag, actions with versions and transitions."""

from __future__ import annotations

import pytest

from interventions.models import Intervention
from orgs.models import AuditEvent
from tests.api.conftest import problem


@pytest.fixture
def intervention(world):
    return Intervention.objects.create(org=world.org, kind=Intervention.Kind.STAGE_STUCK, subject="session:1:x",
                                       title="stuck")


def test_the_queue_filters_by_state(api, world, intervention):
    Intervention.objects.create(org=world.org, kind=Intervention.Kind.STAGE_STUCK, subject="s2", title="done",
                                state=Intervention.State.RESOLVED)

    body = api("read").get("/api/v1/interventions/?state=open").json()

    assert [i["id"] for i in body["results"]] == [intervention.pk]


def test_acknowledge_then_resolve_with_versions(api, intervention):
    client = api()
    assert client.get(f"/api/v1/interventions/{intervention.pk}/")["ETag"] == '"1"'

    acked = client.post(f"/api/v1/interventions/{intervention.pk}/acknowledge/", {"note": "on it"}, format="json",
                        HTTP_IF_MATCH='"1"')
    resolved = client.post(f"/api/v1/interventions/{intervention.pk}/resolve/", {"version": 2}, format="json")

    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged" and acked["ETag"] == '"2"'
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
    assert AuditEvent.objects.filter(verb="intervention.acknowledged", token__name="ci").exists()


def test_a_stale_if_match_is_412_and_changes_nothing(api, intervention):
    body = problem(api().post(f"/api/v1/interventions/{intervention.pk}/dismiss/", {}, format="json",
                              HTTP_IF_MATCH='"7"'), 412, "precondition_failed")
    assert body["current"]["state"] == "open"
    intervention.refresh_from_db()
    assert intervention.state == "open"


def test_a_stale_body_version_is_409(api, intervention):
    body = problem(api().post(f"/api/v1/interventions/{intervention.pk}/dismiss/", {"version": 9}, format="json"),
                   409, "stale_version")
    assert body["current"]["version"] == 1


def test_a_transition_the_state_machine_refuses_is_409_with_the_reason(api, intervention):
    api().post(f"/api/v1/interventions/{intervention.pk}/dismiss/", {}, format="json")

    body = problem(api().post(f"/api/v1/interventions/{intervention.pk}/acknowledge/", {}, format="json"),
                   409, "invalid_transition")

    assert "dismissed" in body["detail"]
    assert body["current"]["state"] == "dismissed"


def test_a_rejected_import_cannot_be_retried(api, world):
    rejected = Intervention.objects.create(org=world.org, kind=Intervention.Kind.IMPORT_REJECTED, subject="import:x",
                                           title="bad file")
    body = problem(api().post(f"/api/v1/interventions/{rejected.pk}/retry/", {}, format="json"), 409,
                   "invalid_transition")
    assert "upload a corrected file" in body["detail"]
