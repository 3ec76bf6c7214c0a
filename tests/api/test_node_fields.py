"""The node list's SQL (nodes.selectors.nodes_page_json) writes what the node's fields write in Python."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import orjson
import pytest

from nodes.fields import NODE
from nodes.models import Node, NodeSnapshot
from nodes.selectors import nodes_page_json
from tests.factories import NodeFactory

AT = datetime(2026, 11, 30, 20, 5, 0, 123456, tzinfo=timezone.utc)
SERVICES = [
    [{"port": 443, "name": "https"}, {"port": 22}, {"port": 443}],  # repeated and unordered
    [{"port": 8545}, "not an observation", 7, None, ["port"], "port", {"name": "no port"}],
    {"port": 80},  # hand-edited into an object: names no port
    "port",
    [],
]


@pytest.fixture
def nodes(world):
    made = []
    for n, services in enumerate(SERVICES):
        node = NodeFactory(org=world.org, address=f"127.0.70.{n + 1}", name=f"node-{n}", tags=["prod", "Édge"],
                           protocols=["http"], services=services, state="up", last_discovered_at=AT)
        made.append(node)
    NodeSnapshot.objects.filter(node=made[0]).update(score=72, grade="C", critical=1, high=2, info=4,
                                                     open_ports=[22, 443], last_scan_status="succeeded",
                                                     last_scan_at=AT, open_interventions=1, updated_at=AT)
    made.append(Node.objects.create(org=world.org, address="::1", resolved_ip="::1", hostname="v6.lab",
                                    services=[{"port": 53}]))  # no snapshot row
    return made


def test_the_list_sql_writes_each_node_as_its_fields_do_in_python(world, nodes):
    ids = [node.pk for node in reversed(nodes)]

    from_sql = json.loads(nodes_page_json(org=world.org, ids=ids))
    in_python = [NODE.represent(Node.objects.select_related("snapshot").get(pk=pk)) for pk in ids]

    # Serialized again, so the keys' order is compared too.
    assert orjson.dumps(from_sql) == orjson.dumps(in_python)


def test_open_ports_follow_the_models_rule_in_both_forms(world, nodes):
    from_sql = json.loads(nodes_page_json(org=world.org, ids=[node.pk for node in nodes]))

    expected = [Node.ports_of(node.services) for node in nodes]
    assert [row["open_ports"] for row in from_sql] == expected == [[22, 443], [8545], [], [], [], [53]]


def test_a_node_without_a_snapshot_has_a_null_snapshot_in_both_forms(world, nodes):
    node = nodes[-1]

    from_sql = json.loads(nodes_page_json(org=world.org, ids=[node.pk]))

    assert from_sql[0]["snapshot"] is None is NODE.represent(node)["snapshot"]


def test_another_organizations_node_is_left_out_of_the_page(world, nodes):
    foreign = NodeFactory(org=world.other_org)

    from_sql = json.loads(nodes_page_json(org=world.org, ids=[foreign.pk, nodes[0].pk]))

    assert [row["id"] for row in from_sql] == [nodes[0].pk]
