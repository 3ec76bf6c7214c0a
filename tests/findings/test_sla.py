"""The SLA: due dates from the organization's policy (set-based), paused by a triage, the periodic sweep."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from orgs.events import RISK_ACCEPTANCE_EXPIRED, SLA_BREACHED, _subscribers, event_subscribe
from orgs.models import Organization
from orgs.schedules import SLA_SWEEP_NAME, SLA_SWEEP_TASK, periodic_tasks_setup
from orgs.services import organization_update_settings
from scans.findings.candidates import Coverage, FindingCandidate
from scans.findings.lifecycle import findings_ingest
from scans.findings.priority import IngestPriorities, priority_refresh
from scans.findings.sla import due_dates_refresh, ingest_due_at
from scans.findings.sla_sweep import EXPIRED_REASON, sla_sweep
from scans.findings.triage import finding_triage, findings_triage_bulk
from scans.models import Finding, FindingEvent, KevEntry
from tests.factories import FindingFactory, NodeFactory

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


@pytest.fixture
def node(world):
    return NodeFactory(org=world.org)


@pytest.fixture
def heard():
    """What the SLA events told their subscribers, as (kind, org, finding_ids)."""
    told = []
    handlers = {kind: (lambda kind=kind, **subject: told.append((kind, subject["org"], subject["finding_ids"])))
                for kind in (RISK_ACCEPTANCE_EXPIRED, SLA_BREACHED)}
    for kind, handler in handlers.items():
        event_subscribe(kind, handler)
    yield told
    for kind, handler in handlers.items():
        _subscribers[kind].remove(handler)


def fresh(finding):
    return Finding.objects.get(pk=finding.pk)


def test_an_open_findings_due_date_follows_its_priority_and_without_one_its_severity(world, node):
    seen = timezone.now() - 3 * DAY
    p1 = FindingFactory(node=node, severity="low", priority=1, first_seen=seen)
    critical = FindingFactory(node=node, severity="critical", first_seen=seen)
    info = FindingFactory(node=node, severity="info", first_seen=seen)
    fixed = FindingFactory(node=node, severity="critical", status=Finding.Status.FIXED, first_seen=seen)
    assert due_dates_refresh(org=world.org) == 3
    assert fresh(p1).due_at == seen + 7 * DAY
    assert fresh(critical).due_at == seen + 7 * DAY
    assert fresh(info).due_at == seen + 180 * DAY
    assert fresh(fixed).due_at is None
    assert due_dates_refresh(org=world.org) == 0  # nothing changed: nothing written


def test_a_kev_due_date_wins_when_it_is_earlier(world, node):
    KevEntry.objects.create(cve_id="CVE-2024-0001", date_added=date(2024, 1, 2), due_date=date(2024, 1, 23))
    listed = FindingFactory(node=node, severity="low", cve_ids=["cve-2024-0001"], kev_added=date(2024, 1, 2))
    due_dates_refresh(org=world.org)
    assert fresh(listed).due_at.isoformat() == "2024-01-24T00:00:00+00:00"  # the end of the due day, UTC


def test_a_new_finding_is_written_with_the_due_date_the_sql_gives_it(world, node):
    KevEntry.objects.create(cve_id="CVE-2024-0002", date_added=date(2024, 1, 2), due_date=date(2024, 2, 1))
    candidates = [FindingCandidate(source="exposure", rule_id=f"r{n}", title="t", port=6379 + n, severity=severity,
                                   cve_ids=cves)
                  for n, (severity, cves) in enumerate([("high", []), ("info", []), ("low", ["CVE-2024-0002"])])]
    priorities = IngestPriorities(org=world.org, node_ids=[node.pk], cve_id_sets=[c.cve_ids for c in candidates])
    findings_ingest(org=world.org, source="exposure", items=[(node.pk, c) for c in candidates],
                    coverage={node.pk: Coverage(host=node.address, ports=(), whole_host=True)}, complete=True,
                    priorities=priorities)
    written = dict(Finding.objects.filter(org=world.org).values_list("pk", "due_at"))
    assert all(written.values())
    assert due_dates_refresh(org=world.org) == 0  # the SQL agrees with every one
    kev = Finding.objects.get(org=world.org, rule_id="r2")
    assert kev.due_at.isoformat() == "2024-02-02T00:00:00+00:00"


def test_ingest_due_at_without_an_organization_uses_the_default_policy():
    now = timezone.now()
    assert ingest_due_at(None, priority=None, severity="high", started=now) == now + 30 * DAY


def test_a_priority_change_moves_the_due_date(world, node):
    finding = FindingFactory(node=node, severity="high", cvss_score=7.5, port=443)
    priority_refresh(org=world.org, finding_ids=[finding.pk])
    before = fresh(finding)
    node.criticality = "critical"
    node.save(update_fields=["criticality"])
    Finding.objects.filter(pk=finding.pk).update(kev_added=date(2024, 1, 2))
    priority_refresh(org=world.org, finding_ids=[finding.pk])
    after = fresh(finding)
    assert after.priority < before.priority and after.due_at < before.due_at


def test_fixing_clears_the_due_date_and_reopening_starts_a_new_clock(world, node):
    first = timezone.now() - 40 * DAY
    candidate = FindingCandidate(source="exposure", rule_id="redis", title="Redis", port=6379, severity="high")
    cover = {node.pk: Coverage(host=node.address, ports=(6379,), whole_host=False)}
    findings_ingest(org=world.org, source="exposure", items=[(node.pk, candidate)], coverage=cover, complete=True,
                    seen_at=first)
    finding = Finding.objects.get(org=world.org)
    assert finding.due_at == first + 30 * DAY
    findings_ingest(org=world.org, source="exposure", items=[], coverage=cover, complete=True,
                    seen_at=first + 5 * DAY)
    assert fresh(finding).status == Finding.Status.FIXED and fresh(finding).due_at is None
    back = timezone.now()
    counts = findings_ingest(org=world.org, source="exposure", items=[(node.pk, candidate)], coverage=cover,
                             complete=True, seen_at=back)
    priority_refresh(org=world.org, finding_ids=counts.rewritten)
    reopened = fresh(finding)
    assert reopened.status == Finding.Status.OPEN and reopened.sla_started_at == back
    assert reopened.due_at > back  # not overdue from the first clock


def test_an_accepted_risk_pauses_the_clock_and_reopening_gives_back_the_time_left(world, node):
    started = timezone.now() - 10 * DAY
    finding = FindingFactory(node=node, severity="high", first_seen=started)
    priority_refresh(org=world.org, finding_ids=[finding.pk])
    due = fresh(finding).due_at
    assert due == started + {1: 7, 2: 30, 3: 90, 4: 180}[fresh(finding).priority] * DAY
    finding_triage(finding=finding, status="risk_accepted", reason="lab", until=timezone.now() + 5 * DAY,
                   by=world.analyst)
    paused = fresh(finding)
    assert paused.due_at is None and paused.sla_paused_at is not None
    # Paused four days ago (the time then left), it opens again now: that time is left.
    pause_began = paused.sla_paused_at - 4 * DAY
    Finding.objects.filter(pk=finding.pk).update(sla_paused_at=pause_began)
    finding_triage(finding=finding, status="open", reason="", by=world.analyst)
    resumed = fresh(finding)
    assert abs((resumed.due_at - timezone.now()) - (due - pause_began)) < timedelta(seconds=5)


def test_bulk_triage_pauses_and_resumes_the_clock_alike(world, node):
    started = timezone.now() - 10 * DAY
    findings = [FindingFactory(node=node, severity="high", first_seen=started) for _ in range(3)]
    due_dates_refresh(org=world.org)
    ids = [f.pk for f in findings]
    findings_triage_bulk(org=world.org, finding_ids=ids, status="false_positive", reason="noise", by=world.analyst)
    assert set(Finding.objects.filter(pk__in=ids).values_list("due_at", flat=True)) == {None}
    Finding.objects.filter(pk__in=ids).update(sla_paused_at=timezone.now() - 2 * DAY)
    findings_triage_bulk(org=world.org, finding_ids=ids, status="open", reason="", by=world.analyst)
    for finding in Finding.objects.filter(pk__in=ids):
        assert finding.sla_started_at == started + 2 * DAY or abs(
            (finding.sla_started_at - (started + 2 * DAY)).total_seconds()) < 5
        assert finding.due_at is not None and finding.sla_paused_at is None


def test_a_new_sla_policy_moves_every_open_due_date(world, node):
    started = timezone.now() - DAY
    finding = FindingFactory(node=node, severity="critical", first_seen=started)
    due_dates_refresh(org=world.org)
    organization_update_settings(org=world.org, by=world.owner, sla_p1_days=3)
    assert fresh(finding).due_at == started + 3 * DAY


@pytest.mark.parametrize("days", [-1, 0, 100_000, "7", 3651])
def test_an_sla_outside_one_to_3650_days_is_refused_and_changes_nothing(world, days):
    with pytest.raises(ValidationError, match="1 to 3,650"):
        organization_update_settings(org=world.org, by=world.owner, sla_p2_days=days)
    assert Organization.objects.get(pk=world.org.pk).sla_p2_days == 30


def test_the_sweep_reopens_expired_acceptances_with_their_history_and_tells_once(world, node, heard):
    finding = FindingFactory(node=node, severity="high", first_seen=timezone.now() - 10 * DAY)
    due_dates_refresh(org=world.org)
    finding_triage(finding=finding, status="risk_accepted", reason="lab", until=timezone.now() + DAY,
                   by=world.analyst)
    kept = FindingFactory(node=node, status=Finding.Status.RISK_ACCEPTED, risk_accepted_until=timezone.now() + DAY)
    Finding.objects.filter(pk=finding.pk).update(risk_accepted_until=timezone.now() - timedelta(minutes=1))
    assert sla_sweep()["reopened"] == 1
    reopened = fresh(finding)
    assert reopened.status == Finding.Status.OPEN and reopened.due_at is not None and reopened.priority
    assert reopened.risk_accepted_until is None and reopened.version == finding.version + 2
    event = FindingEvent.objects.filter(finding=finding).order_by("-id").first()
    assert (event.kind, event.from_status, event.to_status, event.reason) == (
        "reopened", "risk_accepted", "open", EXPIRED_REASON)
    assert fresh(kept).status == Finding.Status.RISK_ACCEPTED
    assert (RISK_ACCEPTANCE_EXPIRED, world.org, [finding.pk]) in heard
    assert sla_sweep()["reopened"] == 0


def test_the_sweep_announces_each_breach_once(world, node, heard):
    late = FindingFactory(node=node, severity="critical", first_seen=timezone.now() - 30 * DAY)
    FindingFactory(node=node, severity="low")
    due_dates_refresh(org=world.org)
    assert sla_sweep()["breached"] == 1
    assert fresh(late).sla_breached_at is not None
    assert heard == [(SLA_BREACHED, world.org, [late.pk])]
    assert sla_sweep()["breached"] == 0 and len(heard) == 1
    # A longer SLA puts the due date back into the future: a later breach is told again.
    organization_update_settings(org=world.org, by=world.owner, sla_p1_days=60)
    assert fresh(late).sla_breached_at is None


def test_the_sweep_has_its_beat_row(world):
    periodic_tasks_setup(watchdog_seconds=30)
    from django_celery_beat.models import PeriodicTask

    row = PeriodicTask.objects.get(name=SLA_SWEEP_NAME)
    assert row.task == SLA_SWEEP_TASK and row.interval.every == 900 and row.enabled
