"""Priority and criticality over the API: a node's criticality read and written, findings filtered and sorted."""

from __future__ import annotations

from rest_framework.test import APIClient

from nodes.models import Node
from orgs.models import AuditEvent
from scans.models import Finding
from tests.factories import FindingFactory, NodeFactory


def test_a_nodes_criticality_is_read_in_the_list_and_alone(api, world):
    node = NodeFactory(org=world.org, criticality="high")
    assert api("read").get(f"/api/v1/nodes/{node.pk}/").json()["criticality"] == "high"
    assert api("read").get("/api/v1/nodes/").json()["results"][0]["criticality"] == "high"


def test_patching_the_criticality_audits_it_and_reprioritizes_the_nodes_findings(api, world):
    node = NodeFactory(org=world.org, state=Node.State.UP, services=[{"port": 443}])
    finding = FindingFactory(node=node, severity="high", cvss_score=7.5, port=443, priority=3)

    response = api().patch(f"/api/v1/nodes/{node.pk}/", {"criticality": "critical"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["criticality"] == "critical"
    finding.refresh_from_db()
    assert finding.priority == 2 and "node criticality critical" in finding.priority_reasons
    event = AuditEvent.objects.get(verb="node.updated", target_id=str(node.pk))
    assert event.changes["criticality"] == ["medium", "critical"]


def test_a_bad_criticality_is_a_field_error_and_changes_nothing(api, world):
    node = NodeFactory(org=world.org)
    response = api().patch(f"/api/v1/nodes/{node.pk}/", {"criticality": "urgent"}, format="json")
    assert response.status_code == 400
    assert "criticality" in response.json()["errors"]
    node.refresh_from_db()
    assert node.criticality == "medium"


def test_a_read_token_may_not_change_the_criticality(api, world):
    node = NodeFactory(org=world.org)
    assert api("read").patch(f"/api/v1/nodes/{node.pk}/", {"criticality": "low"}, format="json").status_code == 403


def test_another_organizations_node_is_a_404(api, world):
    node = NodeFactory(org=world.other_org)
    assert api().patch(f"/api/v1/nodes/{node.pk}/", {"criticality": "low"}, format="json").status_code == 404


def test_anonymous_callers_are_refused(world):
    node = NodeFactory(org=world.org)
    assert APIClient().patch(f"/api/v1/nodes/{node.pk}/", {"criticality": "low"}, format="json").status_code == 401
    assert APIClient().get("/api/v1/findings/?priority=P1").status_code == 401


def test_nodes_added_in_bulk_and_alone_take_their_criticality(api, world):
    response = api().post("/api/v1/nodes/bulk/", {"nodes": [{"address": "127.0.60.1", "criticality": "critical"},
                                                             {"address": "127.0.60.2"}]}, format="json")
    assert response.status_code == 200, response.content
    assert dict(Node.objects.filter(org=world.org).values_list("address", "criticality")) == {
        "127.0.60.1": "critical", "127.0.60.2": "medium"}
    response = api().post("/api/v1/nodes/", {"address": "127.0.60.3", "criticality": "low"}, format="json")
    assert response.status_code == 201 and response.json()["criticality"] == "low"


def test_findings_are_filtered_by_priority_and_carry_it(api, world):
    node = NodeFactory(org=world.org)
    p1 = FindingFactory(node=node, priority=1, priority_reasons=["listed by CISA KEV since 2024-05-02"])
    FindingFactory(node=node, priority=3)
    FindingFactory(node=NodeFactory(org=world.other_org), priority=1)

    page = api("read").get("/api/v1/findings/?priority=P1").json()

    assert [f["id"] for f in page["results"]] == [p1.pk]
    assert page["results"][0]["priority"] == 1
    detail = api("read").get(f"/api/v1/findings/{p1.pk}/").json()
    assert detail["priority_reasons"] == ["listed by CISA KEV since 2024-05-02"]


def test_an_unknown_priority_is_a_field_error(api, world):
    response = api("read").get("/api/v1/findings/?priority=P7")
    assert response.status_code == 400 and "priority" in response.json()["errors"]


def test_sorted_by_priority_p1_comes_first_and_pages_follow(api, world):
    node = NodeFactory(org=world.org)
    p3 = FindingFactory(node=node, priority=3)
    p1_old = FindingFactory(node=node, priority=1)
    p2 = FindingFactory(node=node, priority=2)
    p1_new = FindingFactory(node=node, priority=1)
    FindingFactory(node=node, status=Finding.Status.FIXED)  # no priority: not in this order

    first = api("read").get("/api/v1/findings/?sort=priority&page_size=2").json()
    second = api("read").get(first["next"]).json()

    assert [f["id"] for f in first["results"] + second["results"]] == [p1_new.pk, p1_old.pk, p2.pk, p3.pk]
