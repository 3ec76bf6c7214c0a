"""Deliveries to a real receiver on loopback: signed, retried, paused when failing, resumed by a person."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from django.utils import timezone

from interventions.models import Intervention
from interventions.services import intervention_open
from orgs.models import AuditEvent
from reports.models import WebhookDelivery, WebhookEndpoint
from reports.webhooks import services as webhooks
from scans.pipeline.sessions import session_finish
from tests.factories import ScanSessionFactory

pytestmark = pytest.mark.django_db

Status = WebhookDelivery.Status


@pytest.fixture
def settings_fast(settings):
    settings.WATCHPOST_WEBHOOK_MAX_ATTEMPTS = 3
    settings.WATCHPOST_WEBHOOK_FAILURE_THRESHOLD = 2
    settings.WATCHPOST_WEBHOOK_TIMEOUT_SECONDS = 2
    return settings


def endpoint_for(world, receiver, events=("session.finished",), **kwargs):
    endpoint, secret = webhooks.webhook_endpoint_create(org=world.org, url=receiver.url(), events=events,
                                                        by=world.owner, **kwargs)
    receiver.secret = secret
    return endpoint


def finish_a_session(world):
    return session_finish(session_id=ScanSessionFactory(org=world.org).pk)


def deliver(delivery, **kwargs):
    """Make the next attempt now, as the retry's countdown would when it elapses."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=None)
    return webhooks.webhook_deliver(delivery_id=delivery.pk, **kwargs)


def test_a_finished_session_is_delivered_signed_and_the_receiver_verifies_it(world, receiver):
    endpoint = endpoint_for(world, receiver)
    session = finish_a_session(world)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == Status.PENDING and delivery.event_type == "session.finished"

    result = webhooks.webhook_deliver(delivery_id=delivery.pk)

    assert result.status == Status.SUCCEEDED
    [received] = receiver.received
    assert received.verdict == "ok"
    assert received.headers["Watchpost-Event"] == "session.finished"
    assert received.headers["Watchpost-Delivery"] == str(delivery.event_id)
    body = json.loads(received.body)
    assert body["type"] == "session.finished" and body["data"]["session"]["id"] == session.pk
    assert body["org"]["slug"] == "acme"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (Status.SUCCEEDED, 1, 200)
    assert delivery.duration_ms is not None and delivery.delivered_at is not None


def replay(receiver, received, body=None):
    request = urllib.request.Request(receiver.url(), data=body if body is not None else received.body,
                                     headers=received.headers, method="POST")
    try:
        return urllib.request.urlopen(request, timeout=5).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_receiver_refuses_a_replayed_delivery(world, receiver):
    endpoint_for(world, receiver)
    finish_a_session(world)
    webhooks.webhook_deliver(delivery_id=WebhookDelivery.objects.get().pk)

    assert replay(receiver, receiver.received[0]) == 400
    assert receiver.verdicts == ["ok", "replay"]


def test_the_receiver_refuses_a_tampered_delivery(world, receiver):
    endpoint_for(world, receiver)
    finish_a_session(world)
    webhooks.webhook_deliver(delivery_id=WebhookDelivery.objects.get().pk)
    original = receiver.received[0]
    receiver.seen.clear()  # so only the signature can refuse it

    tampered = original.body.replace(b'"acme"', b'"evil"')
    assert tampered != original.body
    assert replay(receiver, original, body=tampered) == 400
    assert receiver.verdicts == ["ok", "bad signature"]


def test_a_500_answer_is_retried_later_with_the_same_delivery_id(world, receiver, settings_fast):
    endpoint_for(world, receiver)
    finish_a_session(world)
    delivery = WebhookDelivery.objects.get()
    receiver.answers.extend([500])

    first = webhooks.webhook_deliver(delivery_id=delivery.pk)
    assert first.status == Status.RETRYING and first.retry_in > 0
    delivery.refresh_from_db()
    assert delivery.status == Status.RETRYING and delivery.response_code == 500
    assert delivery.next_attempt_at > timezone.now()
    # A duplicate message before the backoff elapsed does not send it again.
    assert webhooks.webhook_deliver(delivery_id=delivery.pk) is None

    second = deliver(delivery)

    assert second.status == Status.SUCCEEDED
    assert [r.answered for r in receiver.received] == [500, 200]
    assert len({r.headers["Watchpost-Delivery"] for r in receiver.received}) == 1
    assert receiver.verdicts == ["ok", "ok"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.SUCCEEDED, 2)


@pytest.mark.parametrize("code", [408, 429, 502])
def test_timeouts_throttling_and_server_errors_are_retried(world, receiver, code):
    endpoint_for(world, receiver)
    finish_a_session(world)
    receiver.answers.append(code)
    assert webhooks.webhook_deliver(delivery_id=WebhookDelivery.objects.get().pk).status == Status.RETRYING


@pytest.mark.parametrize("code", [301, 400, 404, 410])
def test_other_answers_fail_at_once_and_redirects_are_not_followed(world, receiver, code):
    endpoint_for(world, receiver)
    finish_a_session(world)
    receiver.answers.append(code)
    result = webhooks.webhook_deliver(delivery_id=WebhookDelivery.objects.get().pk)
    assert result.status == Status.FAILED and result.response_code == code
    assert len(receiver.received) == 1


def test_a_refused_connection_is_retried(world, receiver):
    endpoint = endpoint_for(world, receiver)
    finish_a_session(world)
    receiver.stop()
    result = webhooks.webhook_deliver(delivery_id=WebhookDelivery.objects.get(endpoint=endpoint).pk)
    assert result.status == Status.RETRYING and "Connection" in result.error
    receiver.start()  # the fixture stops it again


def test_the_backoff_grows_exponentially_with_jitter(settings):
    settings.WATCHPOST_WEBHOOK_RETRY_BASE_SECONDS = 10
    settings.WATCHPOST_WEBHOOK_RETRY_MAX_SECONDS = 3600
    for attempt, bound in ((1, 10), (2, 20), (3, 40), (8, 1280), (20, 3600)):
        delays = {webhooks.retry_delay(attempt) for _ in range(20)}
        assert all(bound / 2 <= d <= bound for d in delays)
        assert len(delays) > 1  # jittered
    assert webhooks.retry_delay(1, retry_after="120") == 120


def test_a_delivery_that_exhausts_its_attempts_fails(world, receiver, settings_fast):
    endpoint = endpoint_for(world, receiver)
    finish_a_session(world)
    delivery = WebhookDelivery.objects.get()
    receiver.answers.extend([500, 500, 500])
    statuses = [deliver(delivery).status for _ in range(3)]
    assert statuses == [Status.RETRYING, Status.RETRYING, Status.FAILED]
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1 and not endpoint.is_paused


def fail_for_good(delivery, receiver):
    receiver.answers.extend([500] * 3)
    while deliver(delivery).status == Status.RETRYING:
        pass


def test_an_endpoint_that_keeps_failing_pauses_opens_an_intervention_and_resumes_when_a_person_resumes_it(
        world, receiver, settings_fast):
    endpoint = endpoint_for(world, receiver, events=("session.finished", "intervention.opened"))
    for _ in range(2):  # the threshold (2 here, 5 by default)
        finish_a_session(world)
        fail_for_good(WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.PENDING).get(), receiver)

    endpoint.refresh_from_db()
    assert endpoint.is_paused and "2 deliveries in a row failed" in endpoint.paused_reason
    intervention = Intervention.objects.get(kind=Intervention.Kind.WEBHOOK_FAILING)
    assert intervention.is_unresolved and intervention.org == world.org
    assert intervention.context["endpoint_id"] == endpoint.pk
    # The intervention's own event and the next session are held, not sent.
    finish_a_session(world)
    held = WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.HELD)
    assert sorted(held.values_list("event_type", flat=True)) == ["intervention.opened", "session.finished"]
    sent_before = len(receiver.received)
    assert webhooks.webhook_deliver(delivery_id=held.first().pk) is None
    assert len(receiver.received) == sent_before

    released = webhooks.webhook_endpoint_resume(endpoint=endpoint, by=world.admin)

    assert released == 2
    endpoint.refresh_from_db()
    assert not endpoint.is_paused and endpoint.consecutive_failures == 0
    intervention.refresh_from_db()
    assert intervention.state == Intervention.State.RESOLVED and intervention.closed_by == world.admin
    for delivery in WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.PENDING):
        assert webhooks.webhook_deliver(delivery_id=delivery.pk).status == Status.SUCCEEDED
    assert receiver.verdicts[sent_before:] == ["ok", "ok"]
    assert AuditEvent.objects.filter(verb="webhook.resumed", actor=world.admin).exists()


def test_resuming_publishes_the_held_deliveries_after_commit(world, receiver, django_capture_on_commit_callbacks):
    endpoint = endpoint_for(world, receiver)
    webhooks.webhook_endpoint_pause(endpoint=endpoint, reason="maintenance", by=world.owner)
    finish_a_session(world)
    # Not executed: executing would publish to the broker; the callback is what matters here.
    with django_capture_on_commit_callbacks(execute=False) as published:
        webhooks.webhook_endpoint_resume(endpoint=endpoint, by=world.owner)
    assert len(published) == 1
    assert WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.PENDING).count() == 1


def test_a_failed_delivery_can_be_sent_again(world, receiver):
    endpoint_for(world, receiver)
    finish_a_session(world)
    delivery = WebhookDelivery.objects.get()
    receiver.answers.append(400)
    assert webhooks.webhook_deliver(delivery_id=delivery.pk).status == Status.FAILED

    assert webhooks.webhook_delivery_redeliver(delivery=delivery, by=world.owner)
    assert webhooks.webhook_deliver(delivery_id=delivery.pk).status == Status.SUCCEEDED
    assert receiver.verdicts == ["ok", "ok"]


def test_an_opened_intervention_is_sent_but_a_bumped_one_is_not(world, receiver):
    endpoint = endpoint_for(world, receiver, events=("intervention.opened",))
    for _ in range(2):
        intervention_open(org=world.org, kind=Intervention.Kind.NODE_UNREACHABLE, subject="node:1", title="Down")
    [delivery] = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert delivery.event_type == "intervention.opened"
    assert delivery.payload["data"]["intervention"]["kind"] == "node_unreachable"
    assert webhooks.webhook_deliver(delivery_id=delivery.pk).status == Status.SUCCEEDED


def test_an_endpoint_receives_only_the_events_it_subscribed_to(world, receiver):
    endpoint_for(world, receiver, events=("intervention.opened",))
    finish_a_session(world)
    assert not WebhookDelivery.objects.exists()


def test_another_organizations_events_are_not_sent(world, receiver):
    endpoint_for(world, receiver)
    session_finish(session_id=ScanSessionFactory(org=world.other_org).pk)
    assert not WebhookDelivery.objects.exists()


def test_an_event_with_no_endpoint_configured_costs_one_query(world, django_assert_num_queries):
    session = ScanSessionFactory(org=world.org)
    intervention = Intervention.objects.create(org=world.org, kind="node_unreachable", subject="node:9", title="x")
    with django_assert_num_queries(1):
        webhooks.session_finished(session=session)
    with django_assert_num_queries(1):
        webhooks.intervention_opened(intervention=intervention)


def test_a_paused_endpoint_can_be_paused_by_a_person_and_its_queue_is_held(world, receiver):
    endpoint = endpoint_for(world, receiver)
    finish_a_session(world)
    assert webhooks.webhook_endpoint_pause(endpoint=endpoint, reason="receiver down for maintenance", by=world.owner)
    assert WebhookDelivery.objects.get().status == Status.HELD
    assert not webhooks.webhook_endpoint_pause(endpoint=endpoint, reason="again", by=world.owner)
    assert WebhookEndpoint.objects.get().paused_reason == "receiver down for maintenance"


def test_retrying_the_intervention_resumes_the_endpoint_and_sends_the_held_deliveries(world, receiver, settings_fast):
    from interventions.services import intervention_retry

    endpoint = endpoint_for(world, receiver)
    for _ in range(2):
        finish_a_session(world)
        fail_for_good(WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.PENDING).get(), receiver)
    finish_a_session(world)
    intervention = Intervention.objects.get(kind=Intervention.Kind.WEBHOOK_FAILING)

    intervention_retry(intervention=intervention, by=world.owner)

    intervention.refresh_from_db()
    endpoint.refresh_from_db()
    assert intervention.state == Intervention.State.RESOLVED and not endpoint.is_paused
    [released] = WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.PENDING)
    assert webhooks.webhook_deliver(delivery_id=released.pk).status == Status.SUCCEEDED


def test_overdue_deliveries_are_published_again_by_the_sweep_on_beat(world, receiver, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django_celery_beat.models import PeriodicTask

    from orgs.schedules import periodic_tasks_setup

    periodic_tasks_setup(watchdog_seconds=30)
    sweep = PeriodicTask.objects.get(task="orgs.tasks.webhook_deliveries_sweep")
    assert sweep.enabled and sweep.queue == "reports"
    endpoint_for(world, receiver)
    finish_a_session(world)
    finish_a_session(world)
    old, recent = WebhookDelivery.objects.order_by("id")
    WebhookDelivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=10))

    with django_capture_on_commit_callbacks(execute=False) as published:
        assert webhooks.webhook_deliveries_sweep() == 1
    assert len(published) == 1
