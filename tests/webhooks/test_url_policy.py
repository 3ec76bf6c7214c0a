"""Webhook URLs pass the scan-target policy when saved and again at every delivery, DNS pinned."""

from __future__ import annotations

import pytest

from reports.models import WebhookDelivery, WebhookEndpoint
from reports.webhooks import services as webhooks
from scans.pipeline.sessions import session_finish
from tests.factories import ScanSessionFactory

pytestmark = pytest.mark.django_db

Status = WebhookDelivery.Status


def no_dns(name):
    raise AssertionError(f"an IP literal must not be resolved ({name})")


def create(world, url, resolver=no_dns):
    return webhooks.webhook_endpoint_create(org=world.org, url=url, events=["session.finished"], by=world.owner,
                                            resolver=resolver)


def test_an_address_outside_the_allowed_networks_is_refused_when_saved(world):
    with pytest.raises(webhooks.WebhookError, match="outside the deployment's allowed networks"):
        create(world, "http://10.0.0.1/")
    assert not WebhookEndpoint.objects.exists()


def test_a_cloud_metadata_address_is_refused(world, settings):
    settings.SCAN_ALLOWED_NETWORKS = ["0.0.0.0/0"]
    world.org.scope_networks = ["0.0.0.0/0"]
    with pytest.raises(webhooks.WebhookError, match="link-local"):
        create(world, "http://169.254.169.254/latest/meta-data/")


def test_an_address_outside_the_organizations_scope_is_refused(world):
    world.org.scope_networks = ["127.0.10.0/24"]
    with pytest.raises(webhooks.WebhookError, match="outside the organization's scope"):
        create(world, "http://127.0.99.1:8080/hook")


def test_a_name_that_resolves_outside_policy_is_refused_when_saved(world):
    with pytest.raises(webhooks.WebhookError, match="outside the deployment's allowed networks"):
        create(world, "https://hooks.example.test/in", resolver=lambda name: ["127.0.95.1", "10.1.2.3"])


def test_a_name_that_does_not_resolve_is_refused(world):
    def nxdomain(name):
        raise OSError("Name or service not known")

    with pytest.raises(webhooks.WebhookError, match="does not resolve"):
        create(world, "https://nowhere.example.test/in", resolver=nxdomain)


@pytest.mark.parametrize("url, reason", [
    ("ftp://127.0.0.1/", "http:// or https://"),
    ("http://user:pw@127.0.0.1/", "user name or password"),
    ("http:///path", "names no host"),
    ("http://127.0.0.1:99999/", "not a valid URL"),
    ("http://127.0.0.1/#frag", "fragment"),
])
def test_malformed_urls_are_refused_with_the_reason(world, url, reason):
    with pytest.raises(webhooks.WebhookError, match=reason):
        create(world, url)


def test_the_pinned_address_is_kept_for_people_to_see(world):
    endpoint, _ = create(world, "http://hooks.acme.test:9000/in", resolver=lambda name: ["127.0.95.7"])
    assert endpoint.pinned_address == "127.0.95.7"


def test_a_name_that_moves_outside_policy_is_refused_at_delivery_before_any_connection(world, receiver):
    answers = {"now": [receiver.host]}
    endpoint, secret = create(world, receiver.url(host="hooks.acme.test"), resolver=lambda name: answers["now"])
    session_finish(session_id=ScanSessionFactory(org=world.org).pk)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    answers["now"] = ["10.0.0.1"]  # DNS rebinding: the name now points outside the allowed networks

    result = webhooks.webhook_deliver(delivery_id=delivery.pk, resolver=lambda name: answers["now"])

    assert result.status == Status.FAILED and "refused before sending" in result.error
    assert receiver.received == []
    delivery.refresh_from_db()
    assert delivery.response_code is None and "10.0.0.1" in delivery.last_error


def test_a_policy_narrowed_after_saving_refuses_the_delivery(world, receiver, settings):
    endpoint, _ = create(world, receiver.url())
    session_finish(session_id=ScanSessionFactory(org=world.org).pk)
    settings.SCAN_ALLOWED_NETWORKS = ["127.0.1.0/24"]
    result = webhooks.webhook_deliver(delivery_id=WebhookDelivery.objects.get().pk)
    assert result.status == Status.FAILED and "outside the deployment's allowed networks" in result.error
    assert receiver.received == []


def test_the_name_is_resolved_once_per_delivery_and_the_connection_pinned_to_that_address(world, receiver):
    lookups = []

    def resolver(name):
        lookups.append(name)
        return [receiver.host]

    endpoint, secret = create(world, receiver.url(host="hooks.acme.test"), resolver=resolver)
    receiver.secret = secret
    session_finish(session_id=ScanSessionFactory(org=world.org).pk)
    lookups.clear()

    result = webhooks.webhook_deliver(delivery_id=WebhookDelivery.objects.get().pk, resolver=resolver)

    assert result.status == Status.SUCCEEDED
    assert lookups == ["hooks.acme.test"]
    # The name resolves nowhere real: the request arrived because the socket went to the checked address,
    # and the Host header still names the URL's host.
    assert receiver.received[0].headers["Host"] == f"hooks.acme.test:{receiver.port}"
    assert receiver.verdicts == ["ok"]


def test_a_name_that_does_not_resolve_at_delivery_is_retried(world, receiver):
    endpoint, _ = create(world, receiver.url(host="hooks.acme.test"), resolver=lambda name: [receiver.host])
    session_finish(session_id=ScanSessionFactory(org=world.org).pk)

    def nxdomain(name):
        raise OSError("temporary failure in name resolution")

    result = webhooks.webhook_deliver(delivery_id=WebhookDelivery.objects.get().pk, resolver=nxdomain)
    assert result.status == Status.RETRYING and "does not resolve" in result.error


def test_changing_the_url_checks_it_again(world, receiver):
    endpoint, _ = create(world, receiver.url())
    with pytest.raises(webhooks.WebhookError):
        webhooks.webhook_endpoint_update(endpoint=endpoint, url="http://192.168.1.10/hook", by=world.owner)
    endpoint.refresh_from_db()
    assert endpoint.url == receiver.url()
