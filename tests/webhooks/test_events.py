"""Which events become deliveries: finding.new batched per session and cut at each endpoint's severity."""

from __future__ import annotations

import json

import pytest

from reports.models import WebhookDelivery
from reports.webhooks import services as webhooks
from scans.models import ScanSession
from scans.pipeline.sessions import session_finish
from tests.factories import FindingFactory, NodeFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(world, receiver):
    def make(min_severity, events=("finding.new",)):
        return webhooks.webhook_endpoint_create(org=world.org, url=receiver.url(), events=events,
                                                min_severity=min_severity, by=world.owner)[0]

    return make


def sent(delivery, receiver):
    """Deliver it to the receiver; the body it got (the list is read at the first attempt)."""
    assert webhooks.webhook_deliver(delivery_id=delivery.pk).status == WebhookDelivery.Status.SUCCEEDED
    return json.loads(receiver.received[-1].body)


def session_with_new_findings(world, severities):
    session = ScanSessionFactory(org=world.org)
    node = NodeFactory(org=world.org)
    for severity in severities:
        FindingFactory(node=node, severity=severity, first_session=session, last_session=session)
    # Seen before: not new in this session.
    FindingFactory(node=node, severity="critical", first_session=ScanSessionFactory(org=world.org))
    ScanSession.objects.filter(pk=session.pk).update(findings_new=len(severities))
    return session


def test_new_findings_go_out_in_one_delivery_per_endpoint_cut_at_its_minimum_severity(world, endpoint, receiver):
    critical_only, from_medium = endpoint("critical"), endpoint("medium")
    session = session_with_new_findings(world, ["critical", "high", "medium", "low", "info", "critical"])

    session_finish(session_id=session.pk)

    [to_critical] = WebhookDelivery.objects.filter(endpoint=critical_only)
    [to_medium] = WebhookDelivery.objects.filter(endpoint=from_medium)
    assert to_critical.event_type == "finding.new"
    receiver.secret = critical_only.secret
    data = sent(to_critical, receiver)["data"]
    assert data["session_id"] == session.pk and data["count"] == 2 and not data["truncated"]
    assert [f["severity"] for f in data["findings"]] == ["critical", "critical"]
    receiver.secret = from_medium.secret
    findings = sent(to_medium, receiver)["data"]["findings"]
    assert [f["severity"] for f in findings] == ["critical", "critical", "high", "medium"]
    assert all(f["node"]["address"] for f in findings)
    assert receiver.verdicts == ["ok", "ok"]


def test_the_list_is_kept_so_a_retry_sends_the_same_body(world, endpoint, receiver):
    receiver.secret = endpoint("high").secret
    session_finish(session_id=session_with_new_findings(world, ["high"]).pk)
    delivery = WebhookDelivery.objects.get()
    receiver.answers.append(500)
    assert webhooks.webhook_deliver(delivery_id=delivery.pk).status == WebhookDelivery.Status.RETRYING
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=None)
    assert webhooks.webhook_deliver(delivery_id=delivery.pk).status == WebhookDelivery.Status.SUCCEEDED
    first, second = receiver.received
    assert first.body == second.body and b'"findings"' in first.body


def test_no_delivery_when_nothing_new_reaches_the_minimum_severity(world, endpoint, receiver):
    endpoint("high")
    session_finish(session_id=session_with_new_findings(world, ["low", "info"]).pk)
    delivery = WebhookDelivery.objects.get()
    assert webhooks.webhook_deliver(delivery_id=delivery.pk) is None
    assert not WebhookDelivery.objects.exists() and receiver.received == []


def test_finishing_reads_no_findings(world, endpoint, django_assert_max_num_queries):
    endpoint("info")
    session = session_with_new_findings(world, ["high"] * 3)
    session.refresh_from_db()
    # The endpoints, the organization, the delivery rows: the list is read later, by the worker.
    with django_assert_max_num_queries(3):
        assert len(webhooks.session_finished(session=session)) == 1


def test_a_session_without_new_findings_sends_no_finding_event(world, endpoint, django_assert_max_num_queries):
    endpoint("info")
    session = ScanSessionFactory(org=world.org)
    with django_assert_max_num_queries(1):
        assert webhooks.session_finished(session=session) == []


def test_a_large_batch_is_truncated_with_the_total(world, settings, endpoint, receiver):
    settings.WATCHPOST_WEBHOOK_FINDINGS_MAX = 3
    receiver.secret = endpoint("info").secret
    session_finish(session_id=session_with_new_findings(world, ["high"] * 5).pk)
    data = sent(WebhookDelivery.objects.get(), receiver)["data"]
    assert data["count"] == 5 and data["truncated"] and len(data["findings"]) == 3


def test_an_import_emits_session_finished_and_its_new_findings(world, tmp_path, endpoint, receiver):
    from scans.findings.imports import findings_import

    both = endpoint("low", events=("session.finished", "finding.new"))
    receiver.secret = both.secret
    sample = tmp_path / "nuclei.jsonl"
    sample.write_text(
        '{"template-id":"exposed-redis","info":{"name":"Redis without auth","severity":"high"},'
        '"host":"127.0.0.5","ip":"127.0.0.5","port":"6379","matched-at":"127.0.0.5:6379","type":"tcp"}\n'
    )
    findings_import(org=world.org, path=sample, fmt="nuclei", by=world.analyst)
    events = sorted(WebhookDelivery.objects.filter(endpoint=both).values_list("event_type", flat=True))
    assert events == ["finding.new", "session.finished"]
    new = sent(WebhookDelivery.objects.get(event_type="finding.new"), receiver)["data"]
    assert new["trigger"] == "import" and new["findings"][0]["title"] == "Redis without auth"
