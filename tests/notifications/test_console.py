"""The notification pages: owners and admins manage channels; every member sets their own digest."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orgs.models import AuditEvent, Membership
from reports.models import WebhookEndpoint
from reports.webhooks import services as webhooks
from tests.factories import FindingFactory, NodeFactory

pytestmark = pytest.mark.django_db

SLACK = {"kind": "slack", "url": "http://127.0.96.1:8080/services/T0/B0/x", "description": "#secops",
         "events": ["finding.critical", "finding.sla_breached"], "min_severity": "high"}


def page(slug="acme"):
    return reverse("orgs:notifications", args=[slug])


def create(slug="acme"):
    return reverse("orgs:notification_channel_create", args=[slug])


def digest(slug="acme"):
    return reverse("orgs:notification_digest", args=[slug])


def test_an_owner_adds_a_slack_channel_and_sees_it_listed(world, login):
    client = login(world.owner)
    response = client.post(create(), SLACK)
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.kind, endpoint.url, endpoint.events, endpoint.secret) == (
        "slack", SLACK["url"], ["finding.critical", "finding.sla_breached"], "")
    assert AuditEvent.objects.filter(verb="webhook.created", changes__kind="slack").exists()
    listing = client.get(page()).content.decode()
    assert "#secops" in listing and "Slack incoming webhook" in listing and "finding.sla_breached" in listing


def test_an_admin_adds_an_email_channel_to_members_and_addresses(world, login):
    client = login(world.admin)
    response = client.post(create(), {"kind": "email", "description": "SOC mailbox", "events": ["session.failed"],
                                      "min_severity": "high", "email_addresses": "soc@example.test, cert@example.test",
                                      "email_members": [world.analyst.pk], "email_assignees": "on"})
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.kind == "email" and endpoint.url == "" and endpoint.email_assignees
    assert endpoint.email_addresses == ["soc@example.test", "cert@example.test"]
    assert list(endpoint.email_members.all()) == [world.analyst]


def test_a_signed_webhook_added_here_shows_its_secret_once(world, login):
    response = login(world.owner).post(create(), {**SLACK, "kind": "webhook"})
    assert response.status_code == 201 and "no-store" in response["Cache-Control"]
    assert WebhookEndpoint.objects.get().secret in response.content.decode()


def test_a_channel_url_outside_the_allowed_networks_is_refused_with_the_checks_message(world, login):
    response = login(world.owner).post(create(), {**SLACK, "url": "https://10.0.0.9/services/T0/B0/x"})
    assert response.status_code == 400
    assert "webhook URL refused 10.0.0.9: outside the deployment&#x27;s allowed networks" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("change, message", [
    ({"url": ""}, "A URL is needed for this kind of channel."),
    ({"kind": "email", "url": ""}, "an e-mail channel needs an address, a member, or the findings&#x27; assignees"),
    ({"kind": "email", "email_addresses": "not-an-address"}, "&#x27;not-an-address&#x27; is not an e-mail address"),
    ({"events": []}, "This field is required."),
    ({"kind": "pager"}, "Select a valid choice."),
])
def test_bad_input_gets_a_clear_error_and_changes_nothing(world, login, change, message):
    response = login(world.owner).post(create(), {**SLACK, **change})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_member_of_another_organization_cannot_be_a_recipient(world, login):
    response = login(world.owner).post(create(), {**SLACK, "kind": "email", "email_members": [world.outsider.pk]})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_an_email_channel_is_edited_on_its_page_and_keeps_its_kind(world, login):
    endpoint, _ = webhooks.webhook_endpoint_create(org=world.org, kind="email", events=["session.failed"],
                                                   email_addresses=["soc@example.test"], by=world.owner)
    client = login(world.owner)
    detail = client.get(reverse("orgs:webhook_detail", args=["acme", endpoint.pk])).content.decode()
    assert "E-mail recipients" in detail and "soc@example.test" in detail
    response = client.post(reverse("orgs:webhook_update", args=["acme", endpoint.pk]), {
        "description": "SOC", "events": ["session.failed", "finding.reopened"], "min_severity": "high",
        "email_addresses": "", "email_members": [world.viewer.pk]})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.kind == "email" and endpoint.email_addresses == []
    assert list(endpoint.email_members.all()) == [world.viewer]
    assert endpoint.events == ["session.failed", "finding.reopened"]


def test_a_slack_channel_moved_outside_the_allowed_networks_is_refused_and_kept(world, login):
    endpoint, _ = webhooks.webhook_endpoint_create(org=world.org, kind="slack", url=SLACK["url"],
                                                   events=["session.failed"], by=world.owner)
    response = login(world.owner).post(reverse("orgs:webhook_update", args=["acme", endpoint.pk]),
                                       {**SLACK, "url": "http://192.168.1.5/hook"})
    assert response.status_code == 400 and "allowed networks" in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.url == SLACK["url"]


def test_analysts_and_viewers_are_refused_the_channels_pages(world, login):
    for user in (world.analyst, world.viewer):
        client = login(user)
        assert client.get(page()).status_code == 403
        assert client.post(create(), SLACK).status_code == 403
    assert not WebhookEndpoint.objects.exists()


def test_another_organizations_pages_are_404(world, login):
    client = login(world.outsider)
    assert client.get(page()).status_code == 404
    assert client.post(create(), SLACK).status_code == 404
    assert client.get(digest()).status_code == 404
    assert client.post(digest(), {}).status_code == 404
    assert not WebhookEndpoint.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(world):
    client = Client()
    for method, url in (("get", page()), ("post", create()), ("get", digest()), ("post", digest())):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_the_pages_answer_only_their_methods(world, login):
    client = login(world.owner)
    assert client.post(page()).status_code == 405
    assert client.get(create()).status_code == 405


def test_a_viewer_turns_their_own_digest_off_and_on(world, login):
    client = login(world.viewer)
    response = client.post(digest(), {})
    assert response.status_code == 302
    assert not Membership.objects.get(user=world.viewer, org=world.org).digest_enabled
    assert Membership.objects.get(user=world.analyst, org=world.org).digest_enabled  # only their own
    assert AuditEvent.objects.filter(verb="membership.digest_changed", actor=world.viewer).count() == 1
    client.post(digest(), {"enabled": "on"})
    assert Membership.objects.get(user=world.viewer, org=world.org).digest_enabled


def test_the_digest_page_previews_what_is_due_overdue_first(world, login):
    node = NodeFactory(org=world.org, address="127.0.61.2")
    FindingFactory(node=node, title="Due tomorrow", assignee=world.analyst, due_at=timezone.now() + timedelta(days=1))
    FindingFactory(node=node, title="Overdue one", assignee=world.analyst, due_at=timezone.now() - timedelta(days=3))
    html = login(world.analyst).get(digest()).content.decode()
    assert html.index("Overdue (1)") < html.index("Overdue one") < html.index("Due tomorrow")
    empty = login(world.viewer).get(digest()).content.decode()
    assert "Nothing assigned to you is overdue" in empty
