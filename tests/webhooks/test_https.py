"""HTTPS deliveries: the socket goes to the checked address, the certificate is verified for the URL's name."""

from __future__ import annotations

import random

import pytest

from reports.models import WebhookDelivery
from reports.webhooks import services as webhooks
from scans.lab.tls import CertFactory, modern_server_context
from scans.pipeline.sessions import session_finish
from tests.factories import ScanSessionFactory
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.django_db

Status = WebhookDelivery.Status
NAME = "hooks.acme.test"


@pytest.fixture(scope="module")
def certs():
    with CertFactory() as factory:
        yield factory


def https_receiver(certs, common_name):
    context = modern_server_context(certs.issue(common_name))
    return Receiver(host=f"127.0.95.{random.randint(2, 250)}", ssl_context=context).start()


def deliver_to(world, receiver):
    resolver = lambda name: [receiver.host]  # noqa: E731 - the name resolves to the receiver's loopback address
    endpoint, receiver.secret = webhooks.webhook_endpoint_create(org=world.org, url=receiver.url(host=NAME),
                                                                 events=["session.finished"], resolver=resolver)
    session_finish(session_id=ScanSessionFactory(org=world.org).pk)
    return webhooks.webhook_deliver(delivery_id=WebhookDelivery.objects.get(endpoint=endpoint).pk, resolver=resolver)


def test_an_https_receiver_with_a_certificate_for_the_name_gets_the_delivery(world, certs, settings):
    settings.WATCHPOST_WEBHOOK_CA_FILE = str(certs.ca.cert_path)
    receiver = https_receiver(certs, NAME)
    try:
        result = deliver_to(world, receiver)
    finally:
        receiver.stop()
    assert result.status == Status.SUCCEEDED
    assert receiver.verdicts == ["ok"] and receiver.received[0].headers["Host"] == f"{NAME}:{receiver.port}"


def test_a_certificate_for_another_name_is_refused_and_retried(world, certs, settings):
    settings.WATCHPOST_WEBHOOK_CA_FILE = str(certs.ca.cert_path)
    receiver = https_receiver(certs, "other.acme.test")
    try:
        result = deliver_to(world, receiver)
    finally:
        receiver.stop()
    assert result.status == Status.RETRYING and "certificate" in result.error.lower()
    assert receiver.received == []


def test_an_untrusted_certificate_is_refused(world, certs, settings):
    settings.WATCHPOST_WEBHOOK_CA_FILE = ""
    receiver = https_receiver(certs, NAME)
    try:
        result = deliver_to(world, receiver)
    finally:
        receiver.stop()
    assert result.status == Status.RETRYING and "CERTIFICATE_VERIFY_FAILED" in result.error
    assert receiver.received == []
