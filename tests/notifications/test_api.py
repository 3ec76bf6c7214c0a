"""Notification channels over ``/api/v1/webhooks/``: every kind, its recipients, and refusals."""

from __future__ import annotations

import pytest

from reports.models import WebhookEndpoint
from reports.webhooks import services as webhooks
from tests.api.conftest import api, problem, session_api, tokens  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

TEAMS = {"kind": "teams", "url": "http://127.0.96.1:8080/workflows/x/triggers/manual/paths/invoke",
         "events": ["finding.critical", "finding.risk_expired"]}


@pytest.fixture(autouse=True)
def _no_throttle(settings):
    settings.WATCHPOST_API_THROTTLE_RATE = "off"


def test_a_read_write_token_adds_a_teams_channel_without_a_secret(api):
    response = api("read_write").post("/api/v1/webhooks/", TEAMS, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "teams" and body["events"] == TEAMS["events"] and "secret" not in body
    assert WebhookEndpoint.objects.get().kind == "teams"


def test_an_email_channel_names_members_by_id(api, world):
    response = api("read_write").post("/api/v1/webhooks/", {
        "kind": "email", "events": ["session.failed"], "email_addresses": ["soc@example.test"],
        "email_members": [world.analyst.pk], "email_assignees": True}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["url"], body["email_addresses"], body["email_members"], body["email_assignees"]) == (
        "", ["soc@example.test"], [world.analyst.pk], True)


@pytest.mark.parametrize("change, field, words", [
    ({"url": "http://10.1.2.3/hook"}, "url", "outside the deployment's allowed networks"),
    ({"url": ""}, "url", "must start with http:// or https://"),
    ({"kind": "email", "url": ""}, "email_addresses", "an e-mail channel needs an address"),
    ({"kind": "email", "email_addresses": ["nope"]}, "email_addresses.0", "valid email address"),
    ({"events": ["finding.everything"]}, "events.0", "is not a valid choice"),
    ({"kind": "pager"}, "kind", "is not a valid choice"),
])
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(api, change, field, words):
    body = problem(api("read_write").post("/api/v1/webhooks/", {**TEAMS, **change}, format="json"), 400)
    assert words in " ".join(body["errors"][field])
    assert not WebhookEndpoint.objects.exists()


def test_a_member_of_another_organization_is_refused_as_a_recipient(api, world):
    body = problem(api("read_write").post("/api/v1/webhooks/", {
        "kind": "email", "events": ["session.failed"], "email_members": [world.outsider.pk]}, format="json"), 400)
    assert "must be members of this organization" in str(body)
    assert not WebhookEndpoint.objects.exists()


def test_a_channel_keeps_its_kind(api, world):
    endpoint, _ = webhooks.webhook_endpoint_create(org=world.org, kind="slack", url="http://127.0.96.1/x",
                                                   events=["session.failed"])
    body = problem(api("read_write").patch(f"/api/v1/webhooks/{endpoint.pk}/", {"kind": "teams"}, format="json"), 400)
    assert "keeps its kind" in str(body)
    endpoint.refresh_from_db()
    assert endpoint.kind == "slack"


def test_a_read_token_reads_channels_but_cannot_add_one(api, world):
    webhooks.webhook_endpoint_create(org=world.org, kind="email", events=["session.failed"],
                                     email_addresses=["soc@example.test"])
    assert [c["kind"] for c in api("read").get("/api/v1/webhooks/").json()["results"]] == ["email"]
    problem(api("read").post("/api/v1/webhooks/", TEAMS, format="json"), 403)
    assert WebhookEndpoint.objects.count() == 1


def test_another_organizations_channel_is_404(api, world):
    theirs, _ = webhooks.webhook_endpoint_create(org=world.other_org, kind="slack", url="http://127.0.96.2/x",
                                                 events=["session.failed"])
    problem(api("read_write").get(f"/api/v1/webhooks/{theirs.pk}/"), 404)
    problem(api("read_write").patch(f"/api/v1/webhooks/{theirs.pk}/", {"events": ["finding.new"]}, format="json"), 404)


def test_analysts_and_viewers_are_403_and_anonymous_callers_401(session_api, world):
    from rest_framework.test import APIClient

    for user in (world.analyst, world.viewer):
        problem(session_api(user).post("/api/v1/webhooks/", TEAMS, format="json"), 403)
    assert APIClient().post("/api/v1/webhooks/", TEAMS, format="json").status_code in (401, 403)
    assert not WebhookEndpoint.objects.exists()
