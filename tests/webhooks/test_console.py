"""Console pages for webhooks: owners and admins manage endpoints, see the delivery log, pause and resume."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from interventions.models import Intervention
from orgs.models import AuditEvent
from reports.models import WebhookDelivery, WebhookEndpoint
from reports.webhooks import services as webhooks

pytestmark = pytest.mark.django_db

Status = WebhookDelivery.Status
FORM = {"url": "http://127.0.95.1:8080/in", "description": "SOAR intake", "events": ["session.finished", "finding.new"],
        "min_severity": "high"}


@pytest.fixture
def endpoint(world):
    return webhooks.webhook_endpoint_create(org=world.org, url="http://127.0.95.1:9000/hook",
                                            events=["session.finished"], by=world.owner)[0]


def pages(endpoint):
    """Every webhook view: (method, url, data)."""
    slug, pk = "acme", endpoint.pk
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event_type="session.finished", event_id=uuid.uuid4(),
                                              status=Status.FAILED)
    return [
        ("get", reverse("orgs:webhooks", args=[slug]), None),
        ("post", reverse("orgs:webhook_create", args=[slug]), FORM),
        ("get", reverse("orgs:webhook_detail", args=[slug, pk]), None),
        ("post", reverse("orgs:webhook_update", args=[slug, pk]), FORM),
        ("post", reverse("orgs:webhook_pause", args=[slug, pk]), {"reason": "x"}),
        ("post", reverse("orgs:webhook_resume", args=[slug, pk]), {}),
        ("post", reverse("orgs:webhook_delete", args=[slug, pk]), {}),
        ("post", reverse("orgs:webhook_redeliver", args=[slug, pk, delivery.pk]), {}),
    ]


def test_every_page_is_404_for_another_organization(world, login, endpoint):
    client = login(world.outsider)
    for method, url, data in pages(endpoint):
        assert getattr(client, method)(url, data).status_code == 404, url


def test_another_organizations_endpoint_is_404_even_for_an_owner(world, login):
    theirs, _ = webhooks.webhook_endpoint_create(org=world.other_org, url="http://127.0.95.1/", events=["finding.new"])
    client = login(world.owner)
    assert client.get(reverse("orgs:webhook_detail", args=["acme", theirs.pk])).status_code == 404
    assert client.post(reverse("orgs:webhook_delete", args=["acme", theirs.pk])).status_code == 404
    assert WebhookEndpoint.objects.filter(pk=theirs.pk).exists()


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_every_page_is_403_below_admin(world, login, endpoint, role):
    client = login(getattr(world, role))
    for method, url, data in pages(endpoint):
        assert getattr(client, method)(url, data).status_code == 403, url
    assert WebhookEndpoint.objects.get().url == endpoint.url


def test_anonymous_visitors_are_sent_to_login(world, client, endpoint):
    for method, url, data in pages(endpoint):
        response = getattr(client, method)(url, data)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url


def test_wrong_methods_are_405(world, login, endpoint):
    client = login(world.owner)
    for method, url, _ in pages(endpoint):
        wrong = client.post(url) if method == "get" else client.get(url)
        assert wrong.status_code == 405, url


def test_posts_need_the_csrf_token(world, endpoint):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner)
    for method, url, data in pages(endpoint):
        if method == "post":
            assert client.post(url, data).status_code == 403, url
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk, state="enabled").exists()


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(world, login):
    client = login(world.admin)
    response = client.post(reverse("orgs:webhook_create", args=["acme"]), FORM)
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.encode() in response.content
    assert endpoint.events == ["session.finished", "finding.new"] and endpoint.created_by == world.admin
    assert AuditEvent.objects.filter(verb="webhook.created", actor=world.admin).exists()
    # Never again.
    assert endpoint.secret.encode() not in client.get(reverse("orgs:webhooks", args=["acme"])).content
    assert endpoint.secret.encode() not in client.get(reverse("orgs:webhook_detail", args=["acme", endpoint.pk])).content


def test_an_out_of_policy_url_is_refused_with_the_reason(world, login):
    response = login(world.owner).post(reverse("orgs:webhook_create", args=["acme"]),
                                       {**FORM, "url": "http://10.0.0.1/hook"})
    assert response.status_code == 400
    assert b"outside the deployment&#x27;s allowed networks" in response.content
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_needs_an_event(world, login):
    response = login(world.owner).post(reverse("orgs:webhook_create", args=["acme"]), {**FORM, "events": []})
    assert response.status_code == 400 and not WebhookEndpoint.objects.exists()


def test_the_list_shows_endpoints_with_their_delivery_counts(world, login, endpoint):
    WebhookDelivery.objects.bulk_create([
        WebhookDelivery(endpoint=endpoint, event_type="session.finished", event_id=uuid.uuid4(), status=status)
        for status in [Status.SUCCEEDED] * 3 + [Status.FAILED] + [Status.HELD] * 2])
    content = login(world.owner).get(reverse("orgs:webhooks", args=["acme"])).content.decode()
    row = content[content.index(f'id="webhook-{endpoint.pk}"'):]
    row = row[: row.index("</tr>")]
    assert '<td class="num">3</td><td class="num">1</td><td class="num">2</td>' in row


def test_the_empty_list_says_what_to_do(world, login):
    assert b"No webhook endpoint yet" in login(world.owner).get(reverse("orgs:webhooks", args=["acme"])).content


def test_an_admin_edits_an_endpoint(world, login, endpoint):
    response = login(world.admin).post(reverse("orgs:webhook_update", args=["acme", endpoint.pk]),
                                       {**FORM, "min_severity": "critical"})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.url == FORM["url"] and endpoint.min_severity == "critical"


def test_an_edit_to_an_out_of_policy_url_is_refused(world, login, endpoint):
    response = login(world.admin).post(reverse("orgs:webhook_update", args=["acme", endpoint.pk]),
                                       {**FORM, "url": "http://192.168.0.1/"})
    assert response.status_code == 400 and b"allowed networks" in response.content
    endpoint.refresh_from_db()
    assert endpoint.url == "http://127.0.95.1:9000/hook"


def make_deliveries(endpoint, n):
    WebhookDelivery.objects.bulk_create([
        WebhookDelivery(endpoint=endpoint, event_type="session.finished", event_id=uuid.uuid4(),
                        payload={"big": "x" * 100}, status=Status.SUCCEEDED, attempts=1, response_code=200,
                        duration_ms=12) for _ in range(n)])


def test_the_delivery_log_reads_the_same_queries_with_10_and_1000_deliveries(world, login, endpoint,
                                                                             django_assert_num_queries):
    client = login(world.owner)
    url = reverse("orgs:webhook_detail", args=["acme", endpoint.pk])
    make_deliveries(endpoint, 10)
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    make_deliveries(endpoint, 990)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(url)
    assert b"Page 1 of 40 \xc2\xb7 1000 deliveries" in response.content


def test_the_delivery_log_filters_by_status_and_htmx_gets_the_fragment(world, login, endpoint):
    make_deliveries(endpoint, 3)
    WebhookDelivery.objects.create(endpoint=endpoint, event_type="session.finished", event_id=uuid.uuid4(),
                                   status=Status.FAILED, last_error="HTTP 500")
    url = reverse("orgs:webhook_detail", args=["acme", endpoint.pk]) + "?status=failed"
    response = login(world.owner).get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="webhook-deliveries")
    content = response.content.decode()
    assert response.status_code == 200 and "<html" not in content and 'id="webhook-deliveries"' in content
    assert "1 deliveries" in content and "HTTP 500" in content and "Send again" in content


def test_pausing_holds_and_resuming_releases_and_resolves_the_intervention(world, login, endpoint,
                                                                          django_capture_on_commit_callbacks):
    client = login(world.admin)
    assert client.post(reverse("orgs:webhook_pause", args=["acme", endpoint.pk]), {"reason": "maintenance"}).status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.is_paused and endpoint.paused_reason == "maintenance"
    page = client.get(reverse("orgs:webhook_detail", args=["acme", endpoint.pk])).content
    assert b'id="webhook-paused"' in page and b"Resume and send held deliveries" in page
    held = WebhookDelivery.objects.create(endpoint=endpoint, event_type="session.finished", event_id=uuid.uuid4(),
                                          status=Status.HELD)
    intervention = Intervention.objects.create(org=world.org, kind=Intervention.Kind.WEBHOOK_FAILING,
                                               subject=f"webhook:{endpoint.pk}", title="failing")

    with django_capture_on_commit_callbacks(execute=False) as published:
        response = client.post(reverse("orgs:webhook_resume", args=["acme", endpoint.pk]), follow=True)

    assert b"1 held deliveries are on their way" in response.content
    assert len(published) == 1
    held.refresh_from_db()
    intervention.refresh_from_db()
    assert held.status == Status.PENDING and intervention.state == Intervention.State.RESOLVED


def test_a_failed_delivery_is_sent_again_from_the_log(world, login, endpoint, django_capture_on_commit_callbacks):
    failed = WebhookDelivery.objects.create(endpoint=endpoint, event_type="session.finished", event_id=uuid.uuid4(),
                                            status=Status.FAILED, attempts=6)
    with django_capture_on_commit_callbacks(execute=False) as published:
        response = login(world.owner).post(reverse("orgs:webhook_redeliver", args=["acme", endpoint.pk, failed.pk]))
    assert response.status_code == 302 and len(published) == 1
    failed.refresh_from_db()
    assert failed.status == Status.PENDING and failed.attempts == 0


def test_deleting_an_endpoint_removes_it_and_its_log(world, login, endpoint):
    make_deliveries(endpoint, 2)
    response = login(world.owner).post(reverse("orgs:webhook_delete", args=["acme", endpoint.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("orgs:webhooks", args=["acme"])
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()
    assert AuditEvent.objects.filter(verb="webhook.deleted", actor=world.owner).exists()


def test_the_settings_page_links_to_webhooks(world, login):
    content = login(world.owner).get(reverse("orgs:settings", args=["acme"])).content
    assert reverse("orgs:webhooks", args=["acme"]).encode() in content


def test_the_endpoint_list_reads_the_same_queries_with_1_and_30_endpoints(world, login, endpoint):
    client = login(world.owner)
    url = reverse("orgs:webhooks", args=["acme"])
    make_deliveries(endpoint, 5)
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    WebhookEndpoint.objects.bulk_create([
        WebhookEndpoint(org=world.org, url=f"http://127.0.95.1/{i}", secret="s", events=["finding.new"])
        for i in range(29)])
    with CaptureQueriesContext(connection) as large:
        assert client.get(url).content.count(b'id="webhook-') == 30
    assert len(large.captured_queries) == len(small.captured_queries)
