"""Nodes over the API: list, detail, add one or many (scope-checked with the reason), edit, delete."""

from __future__ import annotations

from nodes.models import Node, NodeScore
from orgs.models import AuditEvent, Zone
from tests.api.conftest import problem
from tests.factories import NodeFactory


def test_the_list_shows_nodes_with_their_snapshot_ordered_by_address(api, world):
    NodeFactory(org=world.org, address="127.0.50.2")
    NodeFactory(org=world.org, address="127.0.50.1")

    body = api("read").get("/api/v1/nodes/").json()

    assert body["count"] == 2
    assert [n["address"] for n in body["results"]] == ["127.0.50.1", "127.0.50.2"]
    assert body["results"][0]["snapshot"]["open_findings"] == 0


def test_page_size_is_capped_at_500(api, world):
    Node.objects.bulk_create([Node(org=world.org, address=f"127.1.{i // 250}.{i % 250}") for i in range(510)])

    body = api("read").get("/api/v1/nodes/?page_size=1000").json()

    assert len(body["results"]) == 500 and body["count"] == 510


def test_the_list_reads_a_constant_number_of_queries(api, world, django_assert_max_num_queries):
    for n in range(30):
        NodeFactory(org=world.org)
    client = api("read")
    with django_assert_max_num_queries(6):  # token, last use, count, page (snapshot joined)
        assert client.get("/api/v1/nodes/?page_size=100").status_code == 200


def test_it_filters_by_tag_and_state(api, world):
    NodeFactory(org=world.org, address="127.0.50.1", tags=["prod"])
    NodeFactory(org=world.org, address="127.0.50.2", tags=["production"])

    body = api("read").get("/api/v1/nodes/?tag=prod").json()

    assert [n["address"] for n in body["results"]] == ["127.0.50.1"]


def test_a_node_names_its_zone_and_the_list_filters_by_zone_or_the_default_zone(api, world):
    zone = Zone.objects.create(org=world.org, name="lab", networks=["127.0.51.0/24"])
    inside = NodeFactory(org=world.org, address="127.0.51.1", zone=zone)
    NodeFactory(org=world.org, address="127.0.52.1")
    client = api("read")

    zoned = client.get(f"/api/v1/nodes/?zone={zone.pk}").json()["results"]
    central = client.get("/api/v1/nodes/?zone=default").json()["results"]

    assert [(n["address"], n["zone"], n["zone_pinned"]) for n in zoned] == [("127.0.51.1", zone.pk, False)]
    assert [(n["address"], n["zone"]) for n in central] == [("127.0.52.1", None)]
    assert client.get(f"/api/v1/nodes/{inside.pk}/").json()["zone"] == zone.pk


def test_a_zone_filter_that_is_not_an_id_is_refused_with_the_reason(api, world):
    body = problem(api("read").get("/api/v1/nodes/?zone=lab"), 400)

    assert "zone" in body["errors"]


def test_adding_a_node_checks_its_address_and_audits_the_token(api, world):
    response = api().post("/api/v1/nodes/", {"address": "127.0.50.9", "name": "web", "tags": ["prod"]},
                          format="json")

    assert response.status_code == 201, response.content
    node = Node.objects.get(org=world.org, address="127.0.50.9")
    assert response["Location"] == f"/api/v1/nodes/{node.pk}/"
    event = AuditEvent.objects.get(verb="node.created", target_id=str(node.pk))
    assert event.token.name == "ci" and event.actor is None


def test_an_address_outside_the_scope_is_refused_with_the_reason(api, world):
    body = problem(api().post("/api/v1/nodes/", {"address": "10.1.2.3"}, format="json"), 400, "invalid")

    assert "10.1.2.3" in body["detail"]
    assert body["errors"]
    assert not Node.objects.filter(address="10.1.2.3").exists()


def test_bulk_creation_reports_every_row(api, world):
    NodeFactory(org=world.org, address="127.0.50.1")

    response = api().post("/api/v1/nodes/bulk/", {"nodes": [
        {"address": "127.0.50.1"}, {"address": "127.0.50.2", "name": "b"}, {"address": "10.9.9.9"},
        {"address": "127.0.50.2"}]}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["added"], body["duplicates"], body["refused"]) == (1, 2, 1)
    outcomes = [(r["row"], r["outcome"]) for r in body["rows"]]
    assert outcomes == [(1, "duplicate"), (2, "added"), (3, "refused"), (4, "duplicate")]
    refused = body["rows"][2]
    assert refused["reason"] and refused["node_id"] is None


def test_editing_a_node_changes_only_what_is_sent(api, world):
    node = NodeFactory(org=world.org, address="127.0.50.1", name="old", tags=["a"])

    response = api().patch(f"/api/v1/nodes/{node.pk}/", {"name": "new", "enabled": False}, format="json")

    assert response.status_code == 200, response.content
    node.refresh_from_db()
    assert (node.name, node.enabled, node.tags) == ("new", False, ["a"])


def test_deleting_a_node_removes_it(api, world):
    node = NodeFactory(org=world.org)

    assert api().delete(f"/api/v1/nodes/{node.pk}/").status_code == 204

    assert not Node.objects.filter(pk=node.pk).exists()
    assert AuditEvent.objects.filter(verb="node.deleted", target_id=str(node.pk)).exists()


def test_snapshot_and_score_history(api, world):
    node = NodeFactory(org=world.org)
    NodeScore.objects.create(node=node, score=80, grade="B", counts={"high": 1})

    snapshot = api("read").get(f"/api/v1/nodes/{node.pk}/snapshot/").json()
    scores = api("read").get(f"/api/v1/nodes/{node.pk}/scores/").json()

    assert snapshot["critical"] == 0
    assert [s["score"] for s in scores["results"]] == [80]


def test_a_node_reads_the_same_in_the_list_and_alone(api, world):
    node = NodeFactory(org=world.org, tags=["prod"], services=[{"port": 443}, {"port": 22}])
    client = api("read")
    assert client.get("/api/v1/nodes/").json()["results"][0] == client.get(f"/api/v1/nodes/{node.pk}/").json()
