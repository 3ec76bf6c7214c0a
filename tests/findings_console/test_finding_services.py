"""The findings selector, bulk triage and the history the lifecycle and triage write."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orgs.models import AuditEvent
from scans.findings.candidates import Coverage, FindingCandidate
from scans.findings.lifecycle import findings_ingest
from scans.findings.triage import finding_triage, findings_triage_bulk
from scans.models import Finding, FindingEvent
from scans.selectors import (
    finding_filters_from,
    finding_list_for_org,
    finding_page,
    finding_severity_counts,
    node_addresses_for_tag,
)
from tests.factories import FindingFactory, NodeFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db


def candidate(rule, port=6379):
    return FindingCandidate(source="exposure", rule_id=rule, title=f"Rule {rule}", port=port)


def test_the_lifecycle_records_new_fixed_and_reopened_findings_with_their_session(world):
    node = NodeFactory(org=world.org)
    first, second, third = (ScanSessionFactory(org=world.org) for _ in range(3))
    coverage = {node.pk: Coverage(host=node.address, ports=(6379,))}
    now = timezone.now()

    def run(session, rules, minutes):
        return findings_ingest(org=world.org, source="exposure", items=[(node.pk, candidate(r)) for r in rules],
                               coverage=coverage, complete=True, session=session,
                               seen_at=now + timedelta(minutes=minutes))

    run(first, ["a", "b"], 1)
    run(second, ["a"], 2)
    run(third, ["a", "b"], 3)
    b = Finding.objects.get(rule_id="b")
    history = list(FindingEvent.objects.filter(finding=b).order_by("at").values_list("kind", "session_id",
                                                                                    "from_status", "to_status"))
    assert history == [("new", first.pk, "", "open"), ("fixed", second.pk, "open", "fixed"),
                       ("reopened", third.pk, "fixed", "open")]
    assert FindingEvent.objects.filter(session=first, kind="new").count() == 2


def test_triage_writes_a_history_event_with_who_and_why(world):
    finding = FindingFactory(node=NodeFactory(org=world.org))
    finding_triage(finding=finding, status="false_positive", by=world.analyst, reason="decoy")
    event = FindingEvent.objects.get(finding=finding)
    assert (event.kind, event.from_status, event.to_status, event.by, event.reason) == (
        "triaged", "open", "false_positive", world.analyst, "decoy")


def test_the_filter_reads_a_query_string_and_drops_what_it_does_not_understand():
    filters = finding_filters_from(QueryDict("severity=high&severity=bogus&status=open&port=x&node=7&sort=nope"
                                             "&first_seen_from=2026-01-02&cve=cve-2021-44228&change=new"))
    assert filters.severity == ("high",) and filters.status == ("open",)
    assert filters.port is None and filters.node == 7 and filters.sort == "severity"
    assert filters.first_seen_from.isoformat() == "2026-01-02" and filters.cve == "CVE-2021-44228"
    assert not filters.is_empty and finding_filters_from({}).is_empty


def test_the_filter_narrows_by_every_field(world):
    node, other = NodeFactory(org=world.org), NodeFactory(org=world.org)
    log4j = FindingFactory(node=node, severity="critical", cve_ids=["CVE-2021-44228"], port=443, source="nuclei",
                           title="Log4Shell")
    FindingFactory(node=other, severity="low", port=80, status="fixed")
    FindingFactory(node=NodeFactory(org=world.other_org), severity="critical", cve_ids=["CVE-2021-44228"])

    def ids(query):
        return list(finding_list_for_org(org=world.org, filters=finding_filters_from(QueryDict(query)))
                    .values_list("id", flat=True))

    assert ids("cve=CVE-2021-44228") == [log4j.pk]
    assert ids("severity=critical") == [log4j.pk]
    assert ids(f"node={node.pk}") == [log4j.pk]
    assert ids("port=443&source=nuclei") == [log4j.pk]
    assert ids("q=log4") == [log4j.pk]
    assert ids("status=open") == [log4j.pk]
    today = timezone.localdate().isoformat()
    assert len(ids(f"first_seen_from={today}&last_seen_to={today}")) == 2
    assert ids("first_seen_to=2000-01-01") == []


def test_the_session_filter_lists_that_sessions_changes(world):
    node = NodeFactory(org=world.org)
    session = ScanSessionFactory(org=world.org)
    findings_ingest(org=world.org, source="exposure", items=[(node.pk, candidate("a"))], complete=False,
                    session=session)
    FindingFactory(node=node)
    filters = finding_filters_from({"session": str(session.pk), "change": "new"})
    assert [f.rule_id for f in finding_list_for_org(org=world.org, filters=filters)] == ["a"]
    assert not finding_list_for_org(org=world.org, filters=finding_filters_from({"session": session.pk,
                                                                                 "change": "fixed"})).exists()


def test_pages_sorted_by_severity_cross_from_one_severity_to_the_next(world):
    node = NodeFactory(org=world.org)
    for severity, n in (("critical", 3), ("high", 2), ("low", 4)):
        for _ in range(n):
            FindingFactory(node=node, severity=severity)
    filters = finding_filters_from({})
    counts = finding_severity_counts(org=world.org, filters=filters)
    assert counts == {"critical": 3, "high": 2, "medium": 0, "low": 4, "info": 0}
    pages = [finding_page(org=world.org, filters=filters, counts=counts, offset=o, limit=4) for o in (0, 4, 8)]
    severities = [[row["severity"] for row in page] for page in pages]
    assert severities == [["critical"] * 3 + ["high"], ["high"] + ["low"] * 3, ["low"]]
    every_id = [row["id"] for page in pages for row in page]
    assert len(set(every_id)) == 9


def test_bulk_triage_by_ids_audits_each_finding_and_rescores_once(world):
    node = NodeFactory(org=world.org)
    findings = [FindingFactory(node=node, severity="high") for _ in range(5)]
    until = timezone.now() + timedelta(days=30)
    changed = findings_triage_bulk(org=world.org, finding_ids=[f.pk for f in findings[:3]], status="risk_accepted",
                                   reason="compensating control", until=until, by=world.analyst)
    assert changed == 3
    assert Finding.objects.filter(status="risk_accepted", triaged_by=world.analyst).count() == 3
    assert set(Finding.objects.filter(status="risk_accepted").values_list("version", flat=True)) == {2}
    assert AuditEvent.objects.filter(verb="finding.triaged", changes__bulk=True).count() == 3
    assert FindingEvent.objects.filter(kind="triaged", to_status="risk_accepted").count() == 3
    node.snapshot.refresh_from_db()
    assert node.snapshot.high == 2


def test_bulk_triage_by_filter_touches_only_the_matching_findings_of_the_organization(world):
    node = NodeFactory(org=world.org)
    FindingFactory(node=node, severity="low")
    FindingFactory(node=node, severity="critical")
    foreign = FindingFactory(node=NodeFactory(org=world.other_org), severity="low")
    changed = findings_triage_bulk(org=world.org, filters=finding_filters_from({"severity": "low"}),
                                   status="false_positive", reason="scanner noise", by=world.admin)
    assert changed == 1
    foreign.refresh_from_db()
    assert foreign.status == "open"
    assert Finding.objects.get(org=world.org, severity="critical").status == "open"


def test_bulk_reopen_skips_findings_that_are_not_triaged(world):
    node = NodeFactory(org=world.org)
    triaged = FindingFactory(node=node, status="false_positive", triage_reason="x")
    FindingFactory(node=node, status="open")
    assert findings_triage_bulk(org=world.org, filters=finding_filters_from({}), status="open", reason="",
                                by=world.analyst) == 1
    triaged.refresh_from_db()
    assert triaged.status == "open"


def test_bulk_triage_queries_do_not_grow_with_the_findings_in_a_batch(world):
    node = NodeFactory(org=world.org)

    def queries(n):
        Finding.objects.all().delete()
        Finding.objects.bulk_create([Finding(org=world.org, node=node, source="x", rule_id=f"r{i}", title="t",
                                             severity="low", fingerprint=f"{n}-{i}") for i in range(n)])
        with CaptureQueriesContext(connection) as ctx:
            findings_triage_bulk(org=world.org, filters=finding_filters_from({}), status="false_positive",
                                 reason="noise", by=world.analyst)
        return [q["sql"].split()[0] for q in ctx.captured_queries]

    assert queries(5) == queries(400)


def test_bulk_triage_refuses_more_than_the_limit_with_a_clear_message(world):
    node = NodeFactory(org=world.org)
    for _ in range(3):
        FindingFactory(node=node)
    with pytest.raises(ValidationError, match="at most 2 at once"):
        findings_triage_bulk(org=world.org, filters=finding_filters_from({}), status="false_positive",
                             reason="noise", by=world.analyst, limit=2)
    assert not Finding.objects.exclude(status="open").exists()


def test_bulk_triage_keeps_the_single_triage_rules(world):
    with pytest.raises(ValidationError, match="reason is required"):
        findings_triage_bulk(org=world.org, finding_ids=[1], status="false_positive", reason=" ", by=world.analyst)
    with pytest.raises(ValidationError, match="expiry"):
        findings_triage_bulk(org=world.org, finding_ids=[1], status="risk_accepted", reason="x", by=world.analyst)


def test_a_tag_selects_the_enabled_nodes_that_carry_it(world):
    NodeFactory(org=world.org, address="127.0.9.1", tags=["edge", "eu"])
    NodeFactory(org=world.org, address="127.0.9.2", tags=["edge"], enabled=False)
    NodeFactory(org=world.org, address="127.0.9.3", tags=["core"])
    NodeFactory(org=world.other_org, address="127.0.9.4", tags=["edge"])
    assert node_addresses_for_tag(org=world.org, tag="edge") == ["127.0.9.1"]


def test_a_tag_selects_its_nodes_whatever_the_case_it_is_written_in(world):
    NodeFactory(org=world.org, address="127.0.9.1", tags=["Edge"])
    NodeFactory(org=world.org, address="127.0.9.2", tags=["EDGE", "eu"])
    NodeFactory(org=world.org, address="127.0.9.3", tags=["edges"])
    assert node_addresses_for_tag(org=world.org, tag="edge") == ["127.0.9.1", "127.0.9.2"]


def test_counts_stop_at_the_cap_and_say_more(world):
    node = NodeFactory(org=world.org)
    for severity, n in (("high", 5), ("low", 2)):
        for _ in range(n):
            FindingFactory(node=node, severity=severity)
    counts = finding_severity_counts(org=world.org, filters=finding_filters_from({}), cap=3)
    assert counts == {"critical": 0, "high": 4, "medium": 0, "low": 2, "info": 0}
    only_low = finding_severity_counts(org=world.org, filters=finding_filters_from({"severity": "low"}), cap=3)
    assert only_low == {"critical": 0, "high": 0, "medium": 0, "low": 2, "info": 0}


def test_pages_below_the_cap_land_exactly_even_when_a_severity_is_capped(world):
    node = NodeFactory(org=world.org)
    highs = [FindingFactory(node=node, severity="high") for _ in range(5)]
    FindingFactory(node=node, severity="low")
    filters = finding_filters_from({})
    counts = finding_severity_counts(org=world.org, filters=filters, cap=3)
    page = finding_page(org=world.org, filters=filters, counts=counts, offset=2, limit=2)
    assert [row["id"] for row in page] == [highs[2].pk, highs[1].pk]
