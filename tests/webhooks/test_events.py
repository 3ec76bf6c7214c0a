"""Which events become deliveries: finding.new batched per session and cut at each endpoint's severity."""

from __future__ import annotations

import pytest

from orgs import webhooks
from orgs.models import WebhookDelivery
from scans.models import ScanSession
from scans.pipeline.sessions import session_finish
from tests.factories import FindingFactory, NodeFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db


def endpoint(world, min_severity, events=("finding.new",)):
    return webhooks.webhook_endpoint_create(org=world.org, url="http://127.0.95.1:9/", events=events,
                                            min_severity=min_severity, by=world.owner)[0]


def session_with_new_findings(world, severities):
    session = ScanSessionFactory(org=world.org)
    node = NodeFactory(org=world.org)
    for severity in severities:
        FindingFactory(node=node, severity=severity, first_session=session, last_session=session)
    # Seen before: not new in this session.
    FindingFactory(node=node, severity="critical", first_session=ScanSessionFactory(org=world.org))
    ScanSession.objects.filter(pk=session.pk).update(findings_new=len(severities))
    return session


def test_new_findings_go_out_in_one_delivery_per_endpoint_cut_at_its_minimum_severity(world):
    critical_only, from_medium = endpoint(world, "critical"), endpoint(world, "medium")
    session = session_with_new_findings(world, ["critical", "high", "medium", "low", "info", "critical"])

    session_finish(session_id=session.pk)

    [to_critical] = WebhookDelivery.objects.filter(endpoint=critical_only)
    [to_medium] = WebhookDelivery.objects.filter(endpoint=from_medium)
    assert to_critical.event_type == "finding.new"
    data = to_critical.payload["data"]
    assert data["session_id"] == session.pk and data["count"] == 2 and not data["truncated"]
    assert [f["severity"] for f in data["findings"]] == ["critical", "critical"]
    assert [f["severity"] for f in to_medium.payload["data"]["findings"]] == ["critical", "critical", "high", "medium"]
    assert all(f["node"]["address"] for f in to_medium.payload["data"]["findings"])


def test_no_delivery_when_nothing_new_reaches_the_minimum_severity(world):
    endpoint(world, "high")
    session_finish(session_id=session_with_new_findings(world, ["low", "info"]).pk)
    assert not WebhookDelivery.objects.exists()


def test_a_session_without_new_findings_reads_no_findings(world, django_assert_max_num_queries):
    endpoint(world, "info")
    session = ScanSessionFactory(org=world.org)
    with django_assert_max_num_queries(1):
        assert webhooks.session_finished(session=session) == []


def test_a_large_batch_is_truncated_with_the_total(world, settings):
    settings.WATCHPOST_WEBHOOK_FINDINGS_MAX = 3
    endpoint(world, "info")
    session_finish(session_id=session_with_new_findings(world, ["high"] * 5).pk)
    data = WebhookDelivery.objects.get().payload["data"]
    assert data["count"] == 5 and data["truncated"] and len(data["findings"]) == 3


def test_an_import_emits_session_finished_and_its_new_findings(world, tmp_path):
    from scans.imports import findings_import

    both = endpoint(world, "low", events=("session.finished", "finding.new"))
    sample = tmp_path / "nuclei.jsonl"
    sample.write_text(
        '{"template-id":"exposed-redis","info":{"name":"Redis without auth","severity":"high"},'
        '"host":"127.0.0.5","ip":"127.0.0.5","port":"6379","matched-at":"127.0.0.5:6379","type":"tcp"}\n'
    )
    findings_import(org=world.org, path=sample, fmt="nuclei", by=world.analyst)
    events = sorted(WebhookDelivery.objects.filter(endpoint=both).values_list("event_type", flat=True))
    assert events == ["finding.new", "session.finished"]
    new = WebhookDelivery.objects.get(event_type="finding.new").payload["data"]
    assert new["trigger"] == "import" and new["findings"][0]["title"] == "Redis without auth"
