"""Deliveries through the real thing: published on commit to Redis, sent by a Celery worker on the
``reports`` queue, retried after a 500 with backoff, paused after failures, released on resume.

Needs Redis (REDIS_URL), like tests/integration; skipped otherwise.
"""

from __future__ import annotations

import os
import time

import pytest
from django.db import connection

from interventions.models import Intervention
from reports.models import WebhookDelivery
from reports.webhooks import services as webhooks
from scans.pipeline.sessions import session_finish
from tests.factories import ScanSessionFactory
from tests.integration.conftest import Worker

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs real services: REDIS_URL is not set"),
]

Status = WebhookDelivery.Status
# The worker's retries come quickly; two attempts per delivery, one delivery failing for good pauses.
WORKER_ENV = {"WATCHPOST_WEBHOOK_RETRY_BASE_SECONDS": "0.2", "WATCHPOST_WEBHOOK_RETRY_MAX_SECONDS": "1",
              "WATCHPOST_WEBHOOK_MAX_ATTEMPTS": "2", "WATCHPOST_WEBHOOK_FAILURE_THRESHOLD": "1"}


def wait_for(predicate, timeout=30.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.fixture
def reports_worker(tmp_path, transactional_db):
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("reports")
    connection.close()  # the worker must not inherit a half-used connection state
    worker = Worker(tmp_path, queues="reports", concurrency=1, extra_env=WORKER_ENV).start()
    yield worker
    worker.stop()


def test_a_worker_retries_after_a_500_and_the_receiver_verifies_both_attempts(world, receiver, reports_worker):
    endpoint, receiver.secret = webhooks.webhook_endpoint_create(org=world.org, url=receiver.url(),
                                                                 events=["session.finished"], by=world.owner)
    receiver.answers.append(500)

    session_finish(session_id=ScanSessionFactory(org=world.org, profile=None).pk)  # commits: published

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert wait_for(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == Status.SUCCEEDED), \
        reports_worker.log()
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.response_code == 200
    assert [r.answered for r in receiver.received] == [500, 200]
    assert receiver.verdicts == ["ok", "ok"]
    assert {r.headers["Watchpost-Delivery"] for r in receiver.received} == {str(delivery.event_id)}


def test_a_worker_pauses_a_failing_endpoint_and_sends_the_held_deliveries_once_resumed(world, receiver,
                                                                                      reports_worker):
    endpoint, receiver.secret = webhooks.webhook_endpoint_create(org=world.org, url=receiver.url(),
                                                                 events=["session.finished"], by=world.owner)
    receiver.answers.extend([503, 503])
    session_finish(session_id=ScanSessionFactory(org=world.org, profile=None).pk)

    assert wait_for(lambda: Intervention.objects.filter(kind=Intervention.Kind.WEBHOOK_FAILING,
                                                        state=Intervention.State.OPEN).exists()), reports_worker.log()
    endpoint.refresh_from_db()
    assert endpoint.is_paused
    session_finish(session_id=ScanSessionFactory(org=world.org, profile=None).pk)
    held = WebhookDelivery.objects.get(endpoint=endpoint, status=Status.HELD)
    received_while_paused = len(receiver.received)

    assert webhooks.webhook_endpoint_resume(endpoint=endpoint, by=world.admin) == 1

    assert wait_for(lambda: WebhookDelivery.objects.get(pk=held.pk).status == Status.SUCCEEDED), reports_worker.log()
    assert received_while_paused == 2 and receiver.verdicts[-1] == "ok"
    assert Intervention.objects.get(kind=Intervention.Kind.WEBHOOK_FAILING).state == Intervention.State.RESOLVED
