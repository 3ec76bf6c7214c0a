"""The caller's organization, and who may read the audit log."""

from __future__ import annotations

from tests.api.conftest import problem


def test_the_organization_names_the_token_and_its_role(api, world):
    body = api("read").get("/api/v1/organization/").json()

    assert body["slug"] == "acme"
    assert body["role"] == "viewer"
    assert body["token"]["name"] == "reader"
    assert api().get("/api/v1/organization/").json()["role"] == "analyst"


def test_a_console_user_names_the_organization_with_a_header(session_api, world):
    body = session_api(world.analyst).get("/api/v1/organization/").json()
    assert (body["slug"], body["role"], body["token"]) == ("acme", "analyst", None)


def test_a_console_user_in_several_organizations_must_name_one(world):
    from rest_framework.test import APIClient

    from tests.factories import MembershipFactory

    MembershipFactory(user=world.analyst, org=world.other_org)
    client = APIClient()
    client.force_login(world.analyst)

    body = problem(client.get("/api/v1/organization/"), 400, "invalid")
    assert "X-Watchpost-Org" in body["detail"]
    assert client.get("/api/v1/organization/?org=globex").json()["slug"] == "globex"


def test_a_console_user_naming_an_organization_they_are_not_in_gets_404(world):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(world.analyst)
    problem(client.get("/api/v1/organization/", HTTP_X_WATCHPOST_ORG="globex"), 404, "not_found")


def test_owners_admins_and_read_write_tokens_read_the_audit_log(api, session_api, world):
    api().post("/api/v1/nodes/", {"address": "127.0.50.9"}, format="json")

    events = api().get("/api/v1/audit/?verb=node.created").json()["results"]

    assert events[0]["token"]["name"] == "ci"
    assert session_api(world.owner).get("/api/v1/audit/").status_code == 200
    assert session_api(world.admin).get("/api/v1/audit/").status_code == 200


def test_analysts_viewers_and_read_tokens_do_not(api, session_api, world):
    problem(api("read").get("/api/v1/audit/"), 403, "permission_denied")
    problem(session_api(world.analyst).get("/api/v1/audit/"), 403, "permission_denied")
    problem(session_api(world.viewer).get("/api/v1/audit/"), 403, "permission_denied")


def test_the_audit_log_never_shows_another_organizations_events(api, world):
    api("other").post("/api/v1/nodes/", {"address": "127.0.50.9"}, format="json")
    assert api().get("/api/v1/audit/?verb=node.created").json()["results"] == []


def test_an_instant_with_an_unusual_offset_is_compared_in_utc(api, world):
    # PostgreSQL refuses an offset beyond +15:59 in a literal; the filter sends UTC.
    response = api().get("/api/v1/audit/?created_from=2645-10-27T07:10:06%2B21:47")
    assert response.status_code == 200 and response.json()["results"] == []


def test_an_instant_out_of_the_calendar_is_a_field_error(api, world):
    body = problem(api().get("/api/v1/audit/?created_to=9999-12-31T23:00:00-10:00"), 400, "invalid")
    assert "created_at" in body["errors"]
