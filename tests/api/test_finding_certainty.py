"""Certainty over the API: the finding's ``certainty``, the list's filter, confirm and dismiss actions."""

from __future__ import annotations

import pytest

from scans.models import Finding, FindingEvent
from tests.factories import FindingFactory, NodeFactory


@pytest.fixture
def potential(world):
    return FindingFactory(node=NodeFactory(org=world.org), severity="critical", match_confidence=0.3,
                          match_reason="only when running on debian_linux 9.0, which was not observed")


@pytest.fixture
def certain(world, potential):
    return FindingFactory(node=potential.node, severity="high", match_confidence=1.0)


def test_a_finding_says_whether_it_is_certain_or_potential(api, potential, certain):
    assert api("read").get(f"/api/v1/findings/{potential.pk}/").json()["certainty"] == "potential"
    assert api("read").get(f"/api/v1/findings/{certain.pk}/").json()["certainty"] == "certain"


def test_the_list_filters_by_certainty_and_writes_it_on_each_finding(api, potential, certain):
    rows = api("read").get("/api/v1/findings/", {"certainty": "potential"}).json()["results"]
    assert [(r["id"], r["certainty"]) for r in rows] == [(potential.pk, "potential")]
    rows = api("read").get("/api/v1/findings/", {"certainty": "certain"}).json()["results"]
    assert [(r["id"], r["certainty"]) for r in rows] == [(certain.pk, "certain")]
    assert api("read").get("/api/v1/findings/", {"certainty": "maybe"}).status_code == 400


def test_a_token_confirms_a_potential_finding(api, potential):
    response = api().post(f"/api/v1/findings/{potential.pk}/confirm/", {"version": potential.version}, format="json")

    assert response.status_code == 200
    assert response.json()["certainty"] == "certain" and response.json()["confirmed_at"]
    assert FindingEvent.objects.filter(finding=potential, kind=FindingEvent.Kind.CONFIRMED).exists()


def test_a_token_dismisses_a_potential_finding_with_a_reason(api, potential):
    response = api().post(f"/api/v1/findings/{potential.pk}/dismiss/", {"reason": "Backported by Debian"},
                          format="json")

    assert response.status_code == 200 and response.json()["status"] == "false_positive"
    assert api().post(f"/api/v1/findings/{potential.pk}/dismiss/", {}, format="json").status_code in (400, 409)


def test_dismiss_without_a_reason_is_400(api, potential):
    response = api().post(f"/api/v1/findings/{potential.pk}/dismiss/", {}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["errors"]
    assert Finding.objects.get(pk=potential.pk).status == "open"


def test_confirming_a_certain_finding_is_409(api, certain):
    response = api().post(f"/api/v1/findings/{certain.pk}/confirm/", {}, format="json")
    assert response.status_code == 409 and response.json()["type"].endswith("not_potential")


def test_a_stale_version_is_409_with_the_current_state_and_a_stale_if_match_412(api, potential):
    stale = api().post(f"/api/v1/findings/{potential.pk}/confirm/", {"version": potential.version + 1}, format="json")
    assert stale.status_code == 409 and stale.json()["current"]["certainty"] == "potential"
    stale = api().post(f"/api/v1/findings/{potential.pk}/confirm/", {}, format="json",
                       HTTP_IF_MATCH=f'"{potential.version + 1}"')
    assert stale.status_code == 412
    assert Finding.objects.get(pk=potential.pk).confirmed_at is None


def test_a_read_token_cannot_confirm(api, potential):
    assert api("read").post(f"/api/v1/findings/{potential.pk}/confirm/", {}, format="json").status_code == 403
    assert Finding.objects.get(pk=potential.pk).confirmed_at is None


def test_another_organizations_token_gets_404(api, potential):
    assert api("other").post(f"/api/v1/findings/{potential.pk}/confirm/", {}, format="json").status_code == 404
    assert api("other").post(f"/api/v1/findings/{potential.pk}/dismiss/", {"reason": "x"},
                             format="json").status_code == 404


def test_an_anonymous_caller_is_401(client, potential):
    assert client.post(f"/api/v1/findings/{potential.pk}/confirm/").status_code == 401


def test_the_organization_says_its_certainty_threshold(api, world):
    assert api("read").get("/api/v1/organization/").json()["potential_threshold"] == 0.6
