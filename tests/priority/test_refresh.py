"""priority_refresh: every input read from the database, set-based, and called where an input changes."""

from __future__ import annotations

from datetime import date, timedelta

from django.utils import timezone

from nodes.models import Node, NodeSnapshot
from nodes.services import nodes_set_criticality, node_update
from scans.findings.priority import findings_reprioritize, priority_refresh
from scans.findings.scoring import scoring_run
from scans.findings.triage import finding_triage
from scans.models import Finding, FindingEvent
from tests.factories import FindingFactory, NodeFactory

SERVICES = [{"port": 443, "protocol": "tcp", "service": "https"}, {"port": 53, "protocol": "udp"}]


def node(world, **fields):
    defaults = {"org": world.org, "state": Node.State.UP, "services": SERVICES, "last_discovered_at": timezone.now()}
    return NodeFactory(**{**defaults, **fields})


def critical(on, **fields):
    return FindingFactory(node=on, **{"severity": "critical", "cvss_score": 9.8, "port": 443, "protocol": "tcp",
                                      **fields})


def refreshed(finding) -> Finding:
    priority_refresh(org=finding.org, node_ids=[finding.node_id])
    finding.refresh_from_db()
    return finding


def test_an_open_finding_gets_its_priority_and_reasons(world):
    finding = refreshed(critical(node(world)))
    assert finding.priority == 2
    assert finding.priority_reasons == ["CVSS 9.8", "reachable on 443/tcp", "node criticality medium"]


def test_kev_and_epss_values_on_the_finding_move_it(world):
    finding = refreshed(critical(node(world), kev_added=date(2024, 5, 2), epss_percentile=0.97))
    assert finding.priority == 1
    assert finding.priority_reasons[:2] == ["listed by CISA KEV since 2024-05-02", "EPSS 97th percentile"]


def test_a_port_the_last_discovery_did_not_find_open_is_not_reachable(world):
    finding = refreshed(critical(node(world), port=8443))
    assert finding.priority == 3
    assert "not reachable on 8443/tcp when last scanned" in finding.priority_reasons


def test_the_transport_counts_in_reachability(world):
    finding = refreshed(FindingFactory(node=node(world), severity="high", cvss_score=7.5, port=53, protocol="tcp"))
    assert "not reachable on 53/tcp when last scanned" in finding.priority_reasons
    finding = refreshed(FindingFactory(node=finding.node, severity="high", cvss_score=7.5, port=53, protocol="udp"))
    assert "reachable on 53/udp" in finding.priority_reasons


def test_a_finding_without_a_port_counts_by_the_nodes_state(world):
    down = refreshed(FindingFactory(node=node(world, state=Node.State.DOWN, services=[]), severity="critical",
                                    cvss_score=9.8))
    up = refreshed(FindingFactory(node=node(world), severity="critical", cvss_score=9.8))
    assert "node not reachable when last scanned" in down.priority_reasons and down.priority == 3
    assert "node reachable when last scanned" in up.priority_reasons and up.priority == 2


def test_a_node_never_discovered_has_an_unknown_reachability(world):
    finding = refreshed(critical(node(world, state=Node.State.UNKNOWN, services=[], last_discovered_at=None)))
    assert "reachability on 443/tcp not known yet" in finding.priority_reasons


def test_a_potential_match_uses_the_organizations_threshold_until_confirmed(world):
    world.org.potential_threshold = 0.5
    world.org.save(update_fields=["potential_threshold"])
    uncertain = refreshed(critical(node(world), match_confidence=0.3))
    assert uncertain.priority == 3
    Finding.objects.filter(pk=uncertain.pk).update(confirmed_at=timezone.now())
    assert refreshed(uncertain).priority == 2
    assert refreshed(critical(uncertain.node, match_confidence=0.55)).priority == 2


def test_a_finding_that_is_not_open_has_no_priority(world):
    finding = refreshed(critical(node(world)))
    Finding.objects.filter(pk=finding.pk).update(status=Finding.Status.FIXED)
    finding = refreshed(finding)
    assert finding.priority is None and finding.priority_reasons is None


def test_a_changed_priority_is_written_in_the_findings_history_but_a_first_one_is_not(world):
    finding = refreshed(critical(node(world)))
    assert not FindingEvent.objects.filter(finding=finding, kind=FindingEvent.Kind.PRIORITY).exists()
    Finding.objects.filter(pk=finding.pk).update(kev_added=date(2024, 5, 2))
    assert refreshed(finding).priority == 1
    event = FindingEvent.objects.get(finding=finding, kind=FindingEvent.Kind.PRIORITY)
    assert event.reason.startswith("P2 → P1: listed by CISA KEV since 2024-05-02")


def test_refreshing_twice_changes_nothing_the_second_time(world):
    finding = critical(node(world))
    assert priority_refresh(org=world.org, node_ids=[finding.node_id]) == 1
    assert priority_refresh(org=world.org, node_ids=[finding.node_id]) == 0


def test_it_leaves_other_organizations_alone(world):
    mine, theirs = critical(node(world)), critical(NodeFactory(org=world.other_org))
    priority_refresh(org=world.org, finding_ids=[mine.pk, theirs.pk])
    theirs.refresh_from_db()
    assert theirs.priority is None


def test_it_takes_a_constant_number_of_queries_per_chunk(world, django_assert_max_num_queries):
    nodes = [node(world) for _ in range(20)]
    for n in nodes:
        FindingFactory.create_batch(10, node=n, severity="high", cvss_score=7.5, port=443)
    with django_assert_max_num_queries(5):  # read, update, due dates (and a savepoint pair around them)
        assert priority_refresh(org=world.org, node_ids=[n.pk for n in nodes]) == 200
    Finding.objects.filter(org=world.org).update(kev_added=date(2024, 5, 2))
    with django_assert_max_num_queries(6):  # read, update, history events, due dates
        assert priority_refresh(org=world.org) == 200
    assert set(Finding.objects.filter(org=world.org).values_list("priority", flat=True)) == {1}


def test_a_criticality_change_recomputes_the_nodes_findings_and_its_score(world):
    target = node(world)
    finding = refreshed(FindingFactory(node=target, severity="high", cvss_score=7.5, port=443))
    scoring_run(org=world.org, node_ids=[target.pk])
    before = NodeSnapshot.objects.get(node=target).score
    assert finding.priority == 3
    node_update(node=target, criticality="critical", by=world.analyst)
    finding.refresh_from_db()
    assert finding.priority == 2 and "node criticality critical" in finding.priority_reasons
    assert NodeSnapshot.objects.get(node=target).score < before  # a P2 weighs on the score


def test_setting_many_nodes_criticality_recomputes_their_findings(world):
    nodes = [node(world) for _ in range(3)]
    findings = [refreshed(FindingFactory(node=n, severity="critical", cvss_score=9.8, port=443)) for n in nodes]
    assert nodes_set_criticality(org=world.org, node_ids=[n.pk for n in nodes], criticality="low",
                                 by=world.analyst) == 3
    assert {Finding.objects.get(pk=f.pk).priority for f in findings} == {3}
    assert nodes_set_criticality(org=world.org, node_ids=[n.pk for n in nodes], criticality="low") == 0


def test_triage_takes_the_priority_away_and_reopening_gives_it_back(world):
    finding = refreshed(critical(node(world)))
    finding = finding_triage(finding=finding, status=Finding.Status.FALSE_POSITIVE, by=world.analyst,
                             reason="not this build")
    finding.refresh_from_db()
    assert finding.priority is None
    finding_triage(finding=finding, status=Finding.Status.OPEN, by=world.analyst, reason="")
    finding.refresh_from_db()
    assert finding.priority == 2


def test_an_expired_acceptance_does_not_give_a_priority(world):
    finding = refreshed(critical(node(world)))
    Finding.objects.filter(pk=finding.pk).update(status=Finding.Status.RISK_ACCEPTED,
                                                 risk_accepted_until=timezone.now() - timedelta(days=1))
    assert refreshed(finding).priority is None


def test_the_feeds_reprioritize_findings_of_several_organizations_and_rescore_their_nodes(world):
    mine = critical(node(world))
    theirs = critical(NodeFactory(org=world.other_org, state=Node.State.UP, services=SERVICES,
                                  last_discovered_at=timezone.now()))
    priority_refresh(org=world.org)
    priority_refresh(org=world.other_org)
    scoring_run(org=world.org, node_ids=[mine.node_id])
    before = NodeSnapshot.objects.get(node_id=mine.node_id).score
    Finding.objects.filter(pk__in=[mine.pk, theirs.pk]).update(kev_added=date(2024, 5, 2))

    assert findings_reprioritize(finding_ids=[mine.pk, theirs.pk]) == 2

    assert set(Finding.objects.filter(pk__in=[mine.pk, theirs.pk]).values_list("priority", flat=True)) == {1}
    assert NodeSnapshot.objects.get(node_id=mine.node_id).score < before
    assert findings_reprioritize(finding_ids=[mine.pk, theirs.pk]) == 0


def test_a_new_finding_is_written_with_the_priority_and_feed_values_a_refresh_would_give_it(world):
    from scans.findings.candidates import FindingCandidate
    from scans.findings.lifecycle import findings_ingest
    from scans.findings.priority import IngestPriorities
    from scans.models import EpssScore, KevEntry

    KevEntry.objects.create(cve_id="CVE-2024-1", date_added=date(2024, 5, 2), known_ransomware_use=True)
    KevEntry.objects.create(cve_id="CVE-2024-2", date_added=date(2023, 1, 9))
    EpssScore.objects.create(cve_id="CVE-2024-2", score=0.4, percentile=0.9, model_date=date(2026, 12, 6))
    up = node(world, address="127.0.0.21", criticality="high")
    never = node(world, address="127.0.0.22", state=Node.State.UNKNOWN, last_discovered_at=None, services=[],
                 criticality="low")
    candidates = [
        (up, FindingCandidate(source="nuclei", rule_id="a", title="a", host=up.address, port=443, cvss_score=9.8,
                              cve_ids=("cve-2024-1", "CVE-2024-2"))),
        (up, FindingCandidate(source="nuclei", rule_id="b", title="b", host=up.address, port=53, protocol="udp",
                              severity="medium")),
        (up, FindingCandidate(source="nuclei", rule_id="c", title="c", host=up.address, port=8443, severity="high",
                              evidence={"match_confidence": 0.3, "match_reason": "guess"})),
        (never, FindingCandidate(source="nuclei", rule_id="d", title="d", host=never.address, severity="low")),
    ]
    priorities = IngestPriorities(org=world.org, node_ids=[up.pk, never.pk],
                                  cve_id_sets=[c.cve_ids for _, c in candidates])

    findings_ingest(org=world.org, source="nuclei", items=[(n.pk, c) for n, c in candidates], complete=False,
                    priorities=priorities)
    columns = ("rule_id", "priority", "priority_reasons", "kev_added", "kev_ransomware", "epss_score",
               "epss_percentile")
    written = sorted(Finding.objects.values_list(*columns))
    from scans.cve.exploitation import exploitation_values_refresh

    exploitation_values_refresh()
    assert priority_refresh(org=world.org) == 0  # nothing to correct
    assert sorted(Finding.objects.values_list(*columns)) == written
    assert written[0][1:5] == (1, written[0][2], date(2023, 1, 9), True)
    assert {row[1] for row in written} != {None}
