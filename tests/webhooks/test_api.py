"""``/api/v1/webhooks/``: the checklist, the secret once, policy refusals, pause/resume, the delivery log."""

from __future__ import annotations

import time
import uuid

import pytest

from interventions.models import Intervention
from orgs.models import AuditEvent
from orgs.proxy_auth import proxy_signature
from reports.models import WebhookDelivery, WebhookEndpoint
from reports.webhooks import services as webhooks
from tests.api.conftest import api, problem, session_api, tokens  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

Status = WebhookDelivery.Status
BODY = {"url": "http://127.0.95.1:8080/in", "events": ["finding.new"], "min_severity": "critical"}


@pytest.fixture(autouse=True)
def _no_throttle(settings):
    settings.WATCHPOST_API_THROTTLE_RATE = "off"


@pytest.fixture
def endpoints(world):
    ours = webhooks.webhook_endpoint_create(org=world.org, url="http://127.0.95.1:9000/", events=["session.finished"],
                                            by=world.owner)[0]
    theirs = webhooks.webhook_endpoint_create(org=world.other_org, url="http://127.0.95.2:9000/",
                                              events=["session.finished"])[0]
    failed = {}
    for name, endpoint in (("acme", ours), ("globex", theirs)):
        failed[name] = WebhookDelivery.objects.create(endpoint=endpoint, event_type="session.finished",
                                                      event_id=uuid.uuid4(), status=Status.FAILED).pk
    return {"acme": ours.pk, "globex": theirs.pk, "acme_delivery": failed["acme"], "globex_delivery": failed["globex"]}


def calls(ids, org):
    pk, delivery = ids[org], ids[f"{org}_delivery"]
    return [
        ("get", f"/api/v1/webhooks/{pk}/", None),
        ("get", f"/api/v1/webhooks/{pk}/deliveries/", None),
        ("patch", f"/api/v1/webhooks/{pk}/", {"description": "x"}),
        ("post", f"/api/v1/webhooks/{pk}/pause/", {}),
        ("post", f"/api/v1/webhooks/{pk}/resume/", {}),
        ("post", f"/api/v1/webhooks/{pk}/deliveries/{delivery}/redeliver/", {}),
        ("delete", f"/api/v1/webhooks/{pk}/", None),
    ]


def send(client, method, url, body):
    return getattr(client, method)(url, body, format="json") if body is not None else getattr(client, method)(url)


def test_another_organizations_endpoints_are_404(api, endpoints):
    for method, url, body in calls(endpoints, "globex"):
        problem(send(api("read_write"), method, url, body), 404)
    assert WebhookEndpoint.objects.filter(pk=endpoints["globex"]).exists()


def test_the_list_shows_only_the_callers_organization(api, endpoints):
    results = api("read").get("/api/v1/webhooks/").json()["results"]
    assert [r["id"] for r in results] == [endpoints["acme"]]
    assert "secret" not in results[0]


def test_a_read_token_reads_but_writing_is_403(api, endpoints):
    client = api("read")
    assert client.get(f"/api/v1/webhooks/{endpoints['acme']}/").status_code == 200
    for method, url, body in calls(endpoints, "acme"):
        if method != "get":
            problem(send(client, method, url, body), 403, "permission_denied")
    problem(client.post("/api/v1/webhooks/", BODY, format="json"), 403)
    assert WebhookEndpoint.objects.filter(org__slug="acme").count() == 1


@pytest.mark.parametrize("kind", ["revoked", "expired"])
def test_revoked_and_expired_tokens_are_401(api, endpoints, kind):
    client = api(kind)
    problem(client.get("/api/v1/webhooks/"), 401)
    for method, url, body in calls(endpoints, "acme"):
        problem(send(client, method, url, body), 401)


def test_anonymous_is_401(client, endpoints):
    assert client.get("/api/v1/webhooks/").status_code == 401


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_console_users_below_admin_are_403(world, session_api, endpoints, role):
    client = session_api(getattr(world, role))
    problem(client.get("/api/v1/webhooks/"), 403)
    problem(client.post("/api/v1/webhooks/", BODY, format="json"), 403)


def test_an_admins_session_manages_webhooks_with_csrf(world, session_api, endpoints):
    problem(session_api(world.admin, csrf=True).post("/api/v1/webhooks/", BODY, format="json"), 403)
    assert session_api(world.admin).post("/api/v1/webhooks/", BODY, format="json").status_code == 201


def test_a_read_write_token_adds_an_endpoint_and_gets_the_secret_once(world, api):
    response = api("read_write").post("/api/v1/webhooks/", BODY, format="json")
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    data = response.json()
    endpoint = WebhookEndpoint.objects.get(pk=data["id"])
    assert data["secret"] == endpoint.secret and data["pinned_address"] == "127.0.95.1"
    assert endpoint.events == ["finding.new"] and endpoint.min_severity == "critical"
    assert "secret" not in api("read").get(f"/api/v1/webhooks/{endpoint.pk}/").json()
    event = AuditEvent.objects.get(verb="webhook.created")
    assert event.token.name == "ci" and event.actor is None


def test_an_out_of_policy_url_is_a_400_with_the_reason(api):
    body = problem(api().post("/api/v1/webhooks/", {**BODY, "url": "http://10.0.0.1/"}, format="json"), 400)
    assert "outside the deployment's allowed networks" in body["errors"]["url"][0]
    assert not WebhookEndpoint.objects.exists()


def test_unknown_events_are_a_400(api):
    body = problem(api().post("/api/v1/webhooks/", {**BODY, "events": ["node.deleted"]}, format="json"), 400)
    assert body["errors"] == {"events.0": ['"node.deleted" is not a valid choice.']}


def test_a_patch_changes_the_endpoint_and_checks_a_new_url(api, endpoints):
    url = f"/api/v1/webhooks/{endpoints['acme']}/"
    assert api().patch(url, {"min_severity": "medium"}, format="json").json()["min_severity"] == "medium"
    problem(api().patch(url, {"url": "http://172.16.0.1/"}, format="json"), 400)
    assert WebhookEndpoint.objects.get(pk=endpoints["acme"]).url == "http://127.0.95.1:9000/"


def test_pause_then_resume_releases_held_deliveries_and_resolves_the_intervention(world, api, endpoints,
                                                                                  django_capture_on_commit_callbacks):
    pk = endpoints["acme"]
    paused = api().post(f"/api/v1/webhooks/{pk}/pause/", {"reason": "maintenance"}, format="json").json()
    assert paused["state"] == "paused" and paused["paused_reason"] == "maintenance"
    WebhookDelivery.objects.create(endpoint_id=pk, event_type="session.finished", event_id=uuid.uuid4(),
                                   status=Status.HELD)
    intervention = Intervention.objects.create(org=world.org, kind=Intervention.Kind.WEBHOOK_FAILING,
                                               subject=f"webhook:{pk}", title="failing")
    with django_capture_on_commit_callbacks(execute=False) as published:
        resumed = api().post(f"/api/v1/webhooks/{pk}/resume/").json()
    assert resumed["state"] == "enabled" and resumed["released"] == 1 and len(published) == 1
    intervention.refresh_from_db()
    assert intervention.state == Intervention.State.RESOLVED
    assert AuditEvent.objects.filter(verb="webhook.resumed", token__name="ci").exists()


def test_the_delivery_log_is_newest_first_and_filters_by_status(api, endpoints):
    pk = endpoints["acme"]
    for status in (Status.SUCCEEDED, Status.RETRYING):
        WebhookDelivery.objects.create(endpoint_id=pk, event_type="session.finished", event_id=uuid.uuid4(),
                                       status=status)
    results = api("read").get(f"/api/v1/webhooks/{pk}/deliveries/").json()["results"]
    assert [r["status"] for r in results] == ["retrying", "succeeded", "failed"]
    failed = api("read").get(f"/api/v1/webhooks/{pk}/deliveries/?status=failed").json()["results"]
    assert [r["id"] for r in failed] == [endpoints["acme_delivery"]]
    problem(api("read").get(f"/api/v1/webhooks/{pk}/deliveries/?status=lost"), 400)


def test_a_failed_delivery_is_sent_again_and_anything_else_is_a_409(api, endpoints, django_capture_on_commit_callbacks):
    url = f"/api/v1/webhooks/{endpoints['acme']}/deliveries/{endpoints['acme_delivery']}/redeliver/"
    with django_capture_on_commit_callbacks(execute=False):
        assert api().post(url).json()["status"] == "pending"
    problem(api().post(url), 409, "invalid_transition")


def test_deleting_an_endpoint_is_a_204(api, endpoints):
    assert api().delete(f"/api/v1/webhooks/{endpoints['acme']}/").status_code == 204
    assert not WebhookEndpoint.objects.filter(pk=endpoints["acme"]).exists()


def test_a_gateway_signed_user_uses_the_api_session_style(world, client, settings, endpoints):
    settings.WATCHPOST_PROXY_AUTH_SECRET = "gw"
    timestamp = f"{time.time():.6f}"
    headers = {"HTTP_X_WATCHPOST_USER": world.admin.username, "HTTP_X_WATCHPOST_TIMESTAMP": timestamp,
               "HTTP_X_WATCHPOST_SIGNATURE": proxy_signature(secret="gw", user=world.admin.username,
                                                            timestamp=timestamp),
               "HTTP_X_WATCHPOST_ORG": "acme"}
    response = client.get("/api/v1/webhooks/", **headers)
    assert response.status_code == 200 and response.json()["count"] == 1
    replayed = client.get("/api/v1/webhooks/", **headers)
    assert replayed.status_code == 403 and replayed["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("pk", ["0", "abc", str(2**70)])
def test_ids_that_name_no_row_are_404(api, endpoints, pk):
    problem(api("read").get(f"/api/v1/webhooks/{pk}/"), 404)
    problem(api().post(f"/api/v1/webhooks/{endpoints['acme']}/deliveries/{2**70}/redeliver/"), 404)


def test_the_delivery_log_reads_the_same_queries_with_10_and_1000_deliveries(api, endpoints):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    pk, client = endpoints["acme"], api("read")

    def add(n):
        WebhookDelivery.objects.bulk_create([
            WebhookDelivery(endpoint_id=pk, event_type="finding.new", event_id=uuid.uuid4(), status=Status.SUCCEEDED,
                            payload={"data": {"findings": [{"id": i}]}}) for i in range(n)])

    add(10)
    client.get("/api/v1/webhooks/")  # the token's first use records last_used_at: not part of the page
    with CaptureQueriesContext(connection) as small:
        assert len(client.get(f"/api/v1/webhooks/{pk}/deliveries/?page_size=100").json()["results"]) == 11
    add(990)
    with CaptureQueriesContext(connection) as large:
        assert len(client.get(f"/api/v1/webhooks/{pk}/deliveries/?page_size=100").json()["results"]) == 100
    assert len(large.captured_queries) == len(small.captured_queries)
