"""Scoring: the default policy at its edges, snapshot rewriting, history and the organization roll-up."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from interventions.models import Intervention
from nodes.models import NodeScore, NodeSnapshot
from scans.findings.scoring import SCORING_POLICIES, DefaultScoringPolicy, NodeFacts, scoring_policy, scoring_run
from scans.models import OrganizationScore
from tests.factories import FindingFactory, NodeFactory, ScanSessionFactory

policy = DefaultScoringPolicy()


def bulk_statements(model, rows: int) -> int:
    fields = [f for f in model._meta.concrete_fields if not f.primary_key or not f.auto_created]
    return math.ceil(rows / connection.ops.bulk_batch_size(fields, [None] * rows))


def score(exposures=0, **counts):
    return policy.node_score(NodeFacts(counts=counts, exposures=exposures))


@pytest.mark.parametrize(
    ("value", "grade"),
    [(100, "A"), (90, "A"), (89, "B"), (80, "B"), (79, "C"), (65, "C"), (64, "D"), (40, "D"), (39, "F"), (0, "F")],
)
def test_grades_change_exactly_at_their_boundaries(value, grade):
    assert policy.grade(value) == grade


def test_a_node_without_findings_scores_100():
    assert score() == 100


def test_informational_findings_cost_nothing():
    assert score(info=500) == 100


def test_one_finding_costs_its_severity_base():
    assert (score(critical=1), score(high=1), score(medium=1), score(low=1)) == (70, 85, 94, 98)


def test_each_further_finding_of_a_severity_costs_less():
    assert score(high=1) - score(high=2) > score(high=2) - score(high=3) > 0


def test_a_severity_never_takes_more_than_its_cap():
    # 30 / (1 - 0.5) = 60 points at most for criticals, whatever their number.
    assert score(critical=1000) == 40
    assert policy.grade(score(critical=1000)) == "D"


def test_many_low_findings_never_fail_a_node():
    assert policy.grade(score(low=10_000)) == "A"


def test_two_mediums_still_grade_a_and_three_do_not():
    assert (score(medium=2), score(medium=3)) == (90, 88)


def test_an_exposure_costs_on_top_of_its_severity():
    assert score(critical=1, exposures=1) == 50
    assert policy.grade(score(critical=1, exposures=1)) == "D"


def test_everything_at_once_bottoms_out_at_zero():
    assert score(critical=50, high=50, medium=50, low=50, exposures=50) == 0


def test_the_organization_score_weighs_worse_nodes_more():
    assert policy.organization_score([]) == 100
    assert policy.organization_score([100, 100]) == 100
    # A plain mean would say 90; the failing node weighs three times a healthy one.
    assert policy.organization_score([0] + [100] * 9) == 75


class StrictPolicy(DefaultScoringPolicy):
    SEVERITY_PENALTIES = {**DefaultScoringPolicy.SEVERITY_PENALTIES, "info": (1.0, 1.0)}


@pytest.fixture
def strict_policy_registered(monkeypatch):
    monkeypatch.setitem(SCORING_POLICIES, "strict", StrictPolicy)  # registered for this test only


def test_the_policy_is_replaceable_through_settings(settings, strict_policy_registered):
    settings.WATCHPOST_SCORING_POLICY = "strict"
    assert isinstance(scoring_policy(), StrictPolicy)


def test_scoring_run_uses_the_configured_policy(world, settings, strict_policy_registered):
    settings.WATCHPOST_SCORING_POLICY = "strict"
    node = NodeFactory(org=world.org)
    FindingFactory.create_batch(3, node=node, severity="info")

    scoring_run(org=world.org)

    assert NodeSnapshot.objects.get(node=node).score == 97


def test_it_rewrites_the_snapshot_of_every_scored_node(world):
    node = NodeFactory(org=world.org, protocols=["ssh", "http"],
                       services=[{"port": 22, "service": "ssh"}, {"port": 80, "service": "http"}])
    FindingFactory(node=node, severity="critical")
    FindingFactory.create_batch(2, node=node, severity="medium")
    FindingFactory(node=node, severity="low", status="fixed")
    FindingFactory(node=node, severity="high", status="false_positive")
    FindingFactory(node=node, severity="high", status="risk_accepted",
                   risk_accepted_until=timezone.now() - timedelta(days=1))  # expired: counts
    Intervention.objects.create(org=world.org, kind="node_unreachable", subject=f"node:{node.pk}", title="Down",
                                node=node)

    scoring_run(org=world.org, scan_status="partial")

    snapshot = NodeSnapshot.objects.get(node=node)
    assert (snapshot.critical, snapshot.high, snapshot.medium, snapshot.low, snapshot.info) == (1, 1, 2, 0, 0)
    assert snapshot.score == score(critical=1, high=1, medium=2)
    assert snapshot.grade == policy.grade(snapshot.score)
    assert (snapshot.open_ports, snapshot.protocols, snapshot.open_interventions) == ([22, 80], ["ssh", "http"], 1)
    assert snapshot.last_scan_status == "partial" and snapshot.last_scan_at is not None


def test_exposures_are_recognized_by_their_rule_id(world):
    node = NodeFactory(org=world.org)
    FindingFactory(node=node, severity="critical", rule_id="exposure-docker-api-unauthenticated")

    scoring_run(org=world.org)

    assert NodeSnapshot.objects.get(node=node).score == 50


def test_a_run_without_scan_status_keeps_the_last_scan_fields(world):
    node = NodeFactory(org=world.org)
    scoring_run(org=world.org, scan_status="succeeded")
    before = NodeSnapshot.objects.get(node=node).last_scan_at

    scoring_run(org=world.org)

    snapshot = NodeSnapshot.objects.get(node=node)
    assert (snapshot.last_scan_status, snapshot.last_scan_at) == ("succeeded", before)


def test_it_scores_only_the_nodes_it_is_given(world):
    scored, untouched = NodeFactory(org=world.org), NodeFactory(org=world.org)

    scoring_run(org=world.org, node_ids=[scored.pk])

    assert NodeSnapshot.objects.get(node=scored).score == 100
    assert NodeSnapshot.objects.get(node=untouched).score is None


def test_it_recreates_a_missing_snapshot(world):
    node = NodeFactory(org=world.org)
    NodeSnapshot.objects.filter(node=node).delete()

    scoring_run(org=world.org, node_ids=[node.pk])

    assert NodeSnapshot.objects.get(node=node).grade == "A"


def test_it_keeps_one_history_row_per_node_per_session(world):
    node = NodeFactory(org=world.org)
    FindingFactory(node=node, severity="high")
    session = ScanSessionFactory(org=world.org)

    scoring_run(org=world.org, session=session)
    scoring_run(org=world.org, session=session)  # a stage that runs twice

    assert NodeScore.objects.filter(node=node, session=session).count() == 1
    assert OrganizationScore.objects.filter(org=world.org, session=session).count() == 1
    history = NodeScore.objects.get(node=node)
    assert (history.score, history.grade, history.counts["high"]) == (85, "B", 1)


def test_the_roll_up_covers_every_scored_enabled_node_of_the_organization(world):
    healthy, failing, disabled = (NodeFactory(org=world.org) for _ in range(3))
    FindingFactory.create_batch(5, node=failing, severity="critical")
    FindingFactory.create_batch(5, node=disabled, severity="critical")
    disabled.enabled = False
    disabled.save(update_fields=["enabled"])
    NodeFactory(org=world.other_org)
    scoring_run(org=world.org)

    rollup = scoring_run(org=world.org, node_ids=[healthy.pk])

    failing_score = score(critical=5)
    assert rollup.node_count == 2
    assert rollup.score == policy.organization_score([100, failing_score])
    assert rollup.grade == policy.grade(rollup.score)


def test_it_does_not_count_another_organizations_findings(world):
    node = NodeFactory(org=world.org)
    FindingFactory(node=NodeFactory(org=world.other_org), severity="critical")

    scoring_run(org=world.org)

    assert NodeSnapshot.objects.get(node=node).score == 100


def test_scoring_many_nodes_takes_a_constant_number_of_queries(world, django_assert_max_num_queries):
    nodes = NodeFactory.create_batch(300, org=world.org)
    for node in nodes[::3]:
        FindingFactory(node=node, severity="high")
        FindingFactory(node=node, severity="critical", rule_id=f"exposure-redis-{node.pk}")
    session = ScanSessionFactory(org=world.org)
    # Fixed queries, plus the statements Django splits a bulk insert into on SQLite (999
    # parameters each). On PostgreSQL rows are copied in (COPY is not counted) and an upsert
    # takes two statements: its staging table, then INSERT ... SELECT.
    allowed = 14 + bulk_statements(NodeScore, 300) + bulk_statements(NodeSnapshot, 300) + 1

    with django_assert_max_num_queries(allowed):
        scoring_run(org=world.org, session=session)
    with django_assert_max_num_queries(allowed):
        scoring_run(org=world.org, node_ids=[n.pk for n in nodes], session=session, scan_status="succeeded")

    assert NodeSnapshot.objects.filter(org=world.org, score=score(critical=1, high=1, exposures=1)).count() == 100
    assert NodeScore.objects.filter(session=session).count() == 300
