"""Priority where it is used beyond the lists: node scores and grades, and reports' top risks."""

from __future__ import annotations

from nodes.models import NodeSnapshot
from scans.findings.scoring import DefaultScoringPolicy, NodeFacts, scoring_run
from tests.factories import FindingFactory, NodeFactory

from reports.content import top_risks
from scans.models import Finding

policy = DefaultScoringPolicy()


def test_a_p1_finding_costs_more_than_the_same_severity_ranked_lower():
    plain = policy.node_score(NodeFacts(counts={"critical": 1}))
    urgent = policy.node_score(NodeFacts(counts={"critical": 1}, priorities={1: 1}))
    soon = policy.node_score(NodeFacts(counts={"critical": 1}, priorities={2: 1}))
    assert (plain, soon, urgent) == (70, 65, 60)
    assert policy.grade(plain) == "C" and policy.grade(urgent) == "D"


def test_many_p1_findings_cost_at_most_twice_the_first():
    facts = NodeFacts(counts={"high": 1000}, priorities={1: 1000})
    assert policy.node_score(facts) == 100 - 30 - 20


def test_scoring_counts_the_open_findings_by_priority(world):
    calm, urgent = NodeFactory(org=world.org), NodeFactory(org=world.org)
    FindingFactory(node=calm, severity="high", priority=3)
    FindingFactory(node=urgent, severity="high", priority=1)
    scoring_run(org=world.org, node_ids=[calm.pk, urgent.pk])
    assert NodeSnapshot.objects.get(node=calm).score == 85
    assert NodeSnapshot.objects.get(node=urgent).score == 75


def test_top_risks_come_p1_first_whatever_their_severity(world):
    node = NodeFactory(org=world.org)
    FindingFactory(node=node, rule_id="crit", title="Critical but unreachable", severity="critical", priority=3)
    FindingFactory(node=node, rule_id="kev", title="High and exploited", severity="high", priority=1)
    FindingFactory(node=node, rule_id="unranked", title="Critical without priority", severity="critical")

    risks = top_risks(Finding.objects.filter(org=world.org, status="open"))

    assert [r["title"] for r in risks] == ["High and exploited", "Critical but unreachable",
                                          "Critical without priority"]
    assert [r["priority"] for r in risks] == [1, 3, None]
