"""Certainty: a finding below its organization's threshold is potential until an analyst confirms it."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.utils import timezone

from nodes.models import NodeSnapshot
from orgs.models import Organization
from reports.content import executive_summary
from reports.models import Report
from scans.findings.scoring import scoring_run
from scans.management.commands.demo_lab import DEMO_SERVICES
from scans.models import Finding, ScanProfile, ScanSession
from scans.pipeline.sessions import session_start
from tests import inline
from tests.factories import FindingFactory, NodeFactory


def finding(node, **values) -> Finding:
    return FindingFactory(node=node, org=node.org, **values)


def test_a_finding_below_the_threshold_and_unconfirmed_is_potential(world):
    node = NodeFactory(org=world.org)
    guess = finding(node, match_confidence=0.3)
    sure = finding(node, match_confidence=0.9)
    confirmed = finding(node, match_confidence=0.3, confirmed_at=timezone.now())
    silent = finding(node)  # an imported tool's word: no confidence stated

    potential = Finding.objects.potential(world.org.potential_threshold)
    certain = Finding.objects.certain(world.org.potential_threshold)

    assert set(potential) == {guess}
    assert set(certain) == {sure, confirmed, silent}
    assert [f.is_potential for f in (guess, sure, confirmed, silent)] == [True, False, False, False]
    assert guess.certainty == "potential" and sure.certainty == "certain"


def test_the_threshold_is_the_organizations_own(world):
    world.org.potential_threshold = 0.25
    world.org.save()
    node = NodeFactory(org=world.org)
    low = finding(node, match_confidence=0.3)

    assert not Finding.objects.filter(pk=low.pk).potential(0.25).exists()
    assert not Finding.objects.get(pk=low.pk).is_potential


def test_a_potential_critical_counts_neither_in_the_grade_nor_in_the_severity_counts(world):
    node = NodeFactory(org=world.org)
    finding(node, severity="critical", match_confidence=0.3)

    scoring_run(org=world.org, node_ids=[node.pk])

    snapshot = NodeSnapshot.objects.get(node=node)
    assert (snapshot.score, snapshot.grade, snapshot.critical) == (100, "A", 0)


def test_a_confirmed_potential_critical_counts_again(world):
    node = NodeFactory(org=world.org)
    finding(node, severity="critical", match_confidence=0.3, confirmed_at=timezone.now())

    scoring_run(org=world.org, node_ids=[node.pk])

    snapshot = NodeSnapshot.objects.get(node=node)
    assert snapshot.critical == 1 and snapshot.grade != "A"


def test_scoring_keeps_its_constant_queries_with_potential_findings(world, django_assert_max_num_queries):
    nodes = [NodeFactory(org=world.org, address=f"127.0.70.{i}") for i in range(1, 30)]
    for node in nodes:
        finding(node, severity="high", match_confidence=0.3)
        finding(node, severity="high")

    with django_assert_max_num_queries(12):
        scoring_run(org=world.org, node_ids=[n.pk for n in nodes])

    assert set(NodeSnapshot.objects.filter(node__in=nodes).values_list("high", flat=True)) == {1}


def test_a_report_lists_potential_findings_under_their_own_heading_never_among_the_top_risks(world):
    node = NodeFactory(org=world.org)
    finding(node, severity="critical", title="CVE-2022-0543 in Redis 5.0.7", match_confidence=0.3,
            match_reason="redis is listed without a version; only when running on debian_linux 9.0, which was "
                         "not observed")
    finding(node, severity="medium", title="Missing HSTS")
    report = Report.objects.create(org=world.org, kind=Report.Kind.ORGANIZATION, format=Report.Format.JSON)

    summary = executive_summary(report)

    assert [r["title"] for r in summary["top_risks"]] == ["Missing HSTS"]
    assert summary["severity_counts"]["critical"] == 0 and summary["open_findings"] == 1
    assert [p["title"] for p in summary["potential"]] == ["CVE-2022-0543 in Redis 5.0.7"]
    assert summary["potential"][0]["confidence"] == 0.3 and "not observed" in summary["potential"][0]["reason"]


@pytest.fixture
def demo_cache(db, lab, catalog, settings):
    """The demo organization with its cache node's services, as ``demo_lab`` serves them (Redis 5.0.7), on an
    address of the test's own: a demo lab may be serving 127.0.10.2 on this machine."""
    settings.WATCHPOST_RETRY_BACKOFF_SECONDS = 0
    call_command("seed_demo")
    org = Organization.objects.get(slug="demo")
    org.scope_networks = [*org.scope_networks, "127.0.113.0/24"]
    org.save(update_fields=["scope_networks"])
    _, name, services = next(s for s in DEMO_SERVICES if s[1] == "cache")
    for port, factory, _ in services:
        lab.serve("127.0.113.2", port, factory(), name=f"{name}:{port}")
    return "127.0.113.2"


def test_the_demo_shows_redis_cve_2022_0543_as_potential_not_as_a_top_risk_nor_a_critical(demo_cache):
    profile = ScanProfile.objects.create(
        org=None, slug="demo-cache", name="Demo cache", scanners=["exposure"], ports="6379,11211",
        time_budget_seconds=60, job_timeout_seconds=5,
        options={"context": {"connect_timeout": 0.5, "read_timeout": 0.5}, "max_attempts": 1})
    org = Organization.objects.get(slug="demo")

    session = inline.run_inline(session_start, org=org, trigger=ScanSession.Trigger.CLI, targets=[demo_cache],
                                profile=profile.slug)

    cve = Finding.objects.get(org=org, rule_id="CVE-2022-0543")
    assert cve.severity == "critical" and cve.is_potential
    assert "which was not observed" in cve.match_reason
    assert NodeSnapshot.objects.get(node=cve.node).critical == 0
    report = Report.objects.create(org=org, kind=Report.Kind.SESSION, session=session, format=Report.Format.PDF)
    summary = executive_summary(report)
    assert all("CVE-2022-0543" not in risk["title"] for risk in summary["top_risks"])
    assert any("CVE-2022-0543" in p["title"] for p in summary["potential"])


def test_the_dashboard_does_not_count_a_potential_critical_as_a_critical(world):
    from scans.selectors import dashboard_for_org

    node = NodeFactory(org=world.org)
    finding(node, severity="critical", match_confidence=0.3)
    finding(node, severity="critical", match_confidence=1.0)
    scoring_run(org=world.org)

    counts = {row["severity"]: row["count"] for row in dashboard_for_org(org=world.org)["severity_counts"]}
    assert counts["critical"] == 1
