"""A node discovery never reached: unscored, out of the roll-up, and the pages say so (QA, issue 8)."""

import pytest
from django.urls import reverse
from django.utils import timezone

from nodes.models import Node, NodeScore, NodeSnapshot
from scans.findings.scoring import scoring_run
from scans.selectors import dashboard_for_org
from tests.factories import FindingFactory, NodeFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db


def silent_node(org, **fields):
    return NodeFactory(org=org, state="down", services=[], last_discovered_at=timezone.now(),
                       discovery_evidence={"protocols": [], "portscan": {"open": 0, "closed": 1017}}, **fields)


def test_a_node_that_answered_on_no_port_is_left_unscored(world):
    node = silent_node(world.org)
    session = ScanSessionFactory(org=world.org)

    scoring_run(org=world.org, node_ids=[node.pk], session=session, scan_status="succeeded")

    snapshot = NodeSnapshot.objects.get(node=node)
    assert (snapshot.score, snapshot.grade) == (None, "")
    assert not NodeScore.objects.filter(node=node).exists()


def test_silent_nodes_do_not_raise_the_organization_score(world):
    failing = NodeFactory(org=world.org, state="up")
    FindingFactory.create_batch(4, node=failing, severity="critical")
    before = scoring_run(org=world.org)
    for _ in range(3):
        silent_node(world.org)

    after = scoring_run(org=world.org)

    assert (after.score, after.grade, after.node_count) == (before.score, before.grade, 1)


def test_silent_nodes_stay_out_of_the_grade_distribution(world):
    NodeFactory(org=world.org, state="up")
    silent_node(world.org)
    scoring_run(org=world.org)

    grades = {g["grade"]: g["count"] for g in dashboard_for_org(org=world.org)["grades"]}

    assert sum(grades.values()) == 1 and grades["A"] == 1


def test_a_down_node_with_findings_from_an_earlier_scan_keeps_its_score(world):
    node = silent_node(world.org)
    FindingFactory(node=node, severity="high")

    scoring_run(org=world.org)

    assert NodeSnapshot.objects.get(node=node).score == 85


def test_a_node_that_answers_again_is_scored_again(world):
    node = silent_node(world.org)
    scoring_run(org=world.org)
    node.state = "up"
    node.save(update_fields=["state"])

    scoring_run(org=world.org)

    assert NodeSnapshot.objects.get(node=node).grade == "A"


def test_the_list_says_not_reachable_instead_of_a_score(world, login):
    silent_node(world.org, name="quiet")
    scoring_run(org=world.org, scan_status="succeeded")

    content = login(world.viewer).get(reverse("nodes:list", args=["acme"])).content.decode()

    assert "not reachable" in content
    assert "grade-A" not in content and ">succeeded<" not in content


def test_the_node_page_explains_why_it_has_no_score_and_when_discovery_found_nothing(world, login):
    node = silent_node(world.org)
    scoring_run(org=world.org, scan_status="succeeded")

    content = login(world.analyst).get(reverse("nodes:detail", args=["acme", node.pk])).content.decode()

    assert "Not scored" in content and "left out of the organization" in content
    assert "Discovery found no open port" in content and "<time" in content.split("Discovery found no open port")[1][:40]
    assert "No open port known yet" not in content


def test_an_organization_none_of_whose_nodes_answered_gets_no_score_rather_than_a_perfect_one(world):
    from scans.models import OrganizationScore
    from tests.factories import NodeFactory

    node = NodeFactory(org=world.org)
    Node.objects.filter(pk=node.pk).update(state=Node.State.DOWN)
    assert scoring_run(org=world.org, scan_status="succeeded") is None
    assert not OrganizationScore.objects.filter(org=world.org).exists()
