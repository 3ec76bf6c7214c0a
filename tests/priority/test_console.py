"""Priority and criticality in the console: the findings list and page, the node page and the nodes list."""

from __future__ import annotations

from datetime import date

from django.utils import timezone

from nodes.models import Node
from nodes.services import parse_node_csv, nodes_bulk_add
from orgs.models import AuditEvent
from tests.factories import FindingFactory, NodeFactory

import pytest
from django.core.exceptions import ValidationError


def test_the_findings_list_shows_the_priority_badge_and_filters_by_it(login, world):
    node = NodeFactory(org=world.org)
    FindingFactory(node=node, title="Urgent one", priority=1)
    FindingFactory(node=node, title="Later one", priority=4)

    page = login(world.viewer).get("/o/acme/findings/?priority=P1").content.decode()

    assert "Urgent one" in page and "Later one" not in page
    assert '<span class="prio prio-1" title="P1: fix first">P1</span>' in page
    assert '<option value="1" selected>P1</option>' in page


def test_the_findings_list_sorts_by_priority(login, world):
    node = NodeFactory(org=world.org)
    FindingFactory(node=node, title="Third", priority=3)
    FindingFactory(node=node, title="First", priority=1)
    FindingFactory(node=node, title="Second", priority=2)

    page = login(world.viewer).get("/o/acme/findings/?sort=priority").content.decode()

    assert page.index("First") < page.index("Second") < page.index("Third")


def test_the_finding_page_says_why_in_words(login, world):
    finding = FindingFactory(node=NodeFactory(org=world.org), priority=1, priority_reasons=[
        "listed by CISA KEV since 2024-05-02", "EPSS 97th percentile", "reachable on 443/tcp",
        "node criticality high"])

    page = login(world.viewer).get(f"/o/acme/findings/{finding.pk}/").content.decode()

    assert ("<strong>P1:</strong> listed by CISA KEV since 2024-05-02, EPSS 97th percentile, reachable on 443/tcp, "
            "node criticality high") in page


def test_a_finding_without_priority_says_only_open_ones_have_one(login, world):
    finding = FindingFactory(node=NodeFactory(org=world.org), status="fixed")
    page = login(world.viewer).get(f"/o/acme/findings/{finding.pk}/").content.decode()
    assert "No priority: only open findings have one." in page


def test_the_node_page_offers_the_criticality_to_writers_and_shows_it_to_readers(login, world):
    node = NodeFactory(org=world.org, criticality="high")
    writer = login(world.analyst).get(f"/o/acme/nodes/{node.pk}/").content.decode()
    assert '<option value="high" selected>High</option>' in writer
    reader = login(world.viewer).get(f"/o/acme/nodes/{node.pk}/").content.decode()
    assert 'name="criticality"' not in reader and "High" in reader


def test_an_analyst_sets_the_criticality_of_the_ticked_nodes(login, world):
    nodes = [NodeFactory(org=world.org, state=Node.State.UP, services=[{"port": 443}]) for _ in range(2)]
    finding = FindingFactory(node=nodes[0], severity="critical", cvss_score=9.8, port=443, priority=2)
    client = login(world.analyst)
    query = "&".join(f"node={n.pk}" for n in nodes)

    form = client.get(f"/o/acme/nodes/criticality/?{query}")
    assert form.status_code == 200 and "Set criticality of 2 nodes" in form.content.decode()
    response = client.post("/o/acme/nodes/criticality/", {"node": [n.pk for n in nodes], "criticality": "low"})

    assert response.status_code == 302 and response["Location"] == "/o/acme/nodes/"
    assert set(Node.objects.filter(pk__in=[n.pk for n in nodes]).values_list("criticality", flat=True)) == {"low"}
    assert AuditEvent.objects.filter(verb="node.updated", changes__criticality=["medium", "low"]).count() == 2
    finding.refresh_from_db()
    assert finding.priority == 3 and "node criticality low" in finding.priority_reasons


def test_setting_one_nodes_criticality_from_its_page_returns_there(login, world):
    node = NodeFactory(org=world.org)
    response = login(world.analyst).post("/o/acme/nodes/criticality/", {"node": node.pk, "criticality": "critical"})
    assert response["Location"] == f"/o/acme/nodes/{node.pk}/"


def test_a_bad_criticality_is_refused_and_changes_nothing(login, world):
    node = NodeFactory(org=world.org)
    response = login(world.analyst).post("/o/acme/nodes/criticality/", {"node": node.pk, "criticality": "urgent"})
    assert response.status_code == 400
    node.refresh_from_db()
    assert node.criticality == "medium"


def test_a_viewer_may_not_set_criticality(login, world):
    node = NodeFactory(org=world.org)
    client = login(world.viewer)
    assert client.get(f"/o/acme/nodes/criticality/?node={node.pk}").status_code == 403
    assert client.post("/o/acme/nodes/criticality/", {"node": node.pk, "criticality": "low"}).status_code == 403


def test_another_organizations_node_is_a_404_even_among_ones_own(login, world):
    mine, theirs = NodeFactory(org=world.org), NodeFactory(org=world.other_org)
    client = login(world.analyst)
    assert client.get(f"/o/acme/nodes/criticality/?node={mine.pk}&node={theirs.pk}").status_code == 404
    assert client.post("/o/acme/nodes/criticality/",
                       {"node": [mine.pk, theirs.pk], "criticality": "low"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.criticality == "medium"


def test_anonymous_users_go_to_login(client, world):
    node = NodeFactory(org=world.org)
    response = client.get(f"/o/acme/nodes/criticality/?node={node.pk}")
    assert response.status_code == 302 and "/login" in response["Location"]


def test_the_nodes_list_offers_set_criticality_for_the_ticked_nodes(login, world):
    NodeFactory(org=world.org)
    page = login(world.analyst).get("/o/acme/nodes/").content.decode()
    assert 'formaction="/o/acme/nodes/criticality/"' in page


def test_the_edit_form_changes_the_criticality(login, world):
    node = NodeFactory(org=world.org, address="127.0.50.9")
    response = login(world.analyst).post(f"/o/acme/nodes/{node.pk}/edit/",
                                         {"address": "127.0.50.9", "criticality": "high"})
    assert response.status_code == 302
    node.refresh_from_db()
    assert node.criticality == "high"


def test_a_csv_may_name_each_nodes_criticality(world):
    report = nodes_bulk_add(org=world.org, csv_file="address,name,tags,criticality\n127.0.70.1,db,,Critical\n"
                                                     "127.0.70.2,web,,\n")
    assert report.added == 2
    assert dict(Node.objects.filter(org=world.org).values_list("address", "criticality")) == {
        "127.0.70.1": "critical", "127.0.70.2": "medium"}


def test_a_csv_with_a_bad_criticality_names_the_line_and_adds_nothing(world):
    with pytest.raises(ValidationError, match=r"Line 3: the criticality 'urgent' is not a criticality"):
        nodes_bulk_add(org=world.org, csv_file="address,criticality\n127.0.70.1,low\n127.0.70.2,urgent\n")
    assert not Node.objects.filter(org=world.org).exists()
    rows = parse_node_csv("127.0.70.3,,,high\n")
    assert rows[0].criticality == "high"


def test_the_nodes_list_marks_each_nodes_criticality_on_its_address(login, world):
    NodeFactory(org=world.org, address="127.0.50.1", criticality="critical")

    page = login(world.viewer).get("/o/acme/nodes/").content.decode()

    assert 'title="Criticality: critical"' in page and "criticality critical</span>" in page


def test_the_nodes_list_leaves_the_default_criticality_unmarked(login, world):
    NodeFactory(org=world.org, address="127.0.50.3")
    page = login(world.viewer).get("/o/acme/nodes/").content.decode()
    assert "127.0.50.3" in page and "Criticality:" not in page


def test_the_node_page_lists_its_open_findings_most_urgent_first(login, world):
    node = NodeFactory(org=world.org)
    FindingFactory(node=node, title="Critical but P3", severity="critical", priority=3)
    FindingFactory(node=node, title="High and P1", severity="high", priority=1)
    page = login(world.viewer).get(f"/o/acme/nodes/{node.pk}/").content.decode()
    assert page.index("High and P1") < page.index("Critical but P3")
    assert '<span class="prio prio-1" title="P1: fix first">P1</span>' in page
