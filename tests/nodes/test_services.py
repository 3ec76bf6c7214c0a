"""Node services: the scope guard on every declared address, edits, enable/disable, bulk add."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from nodes.models import Node, NodeSnapshot
from nodes.services import (
    BULK_MAX_ROWS,
    node_create,
    node_get_or_create,
    node_set_enabled,
    node_update,
    nodes_bulk_add,
    nodes_create,
    parse_node_csv,
    parse_node_paste,
)
from orgs.models import AuditEvent
from tests.factories import NodeFactory

pytestmark = pytest.mark.django_db


def names(mapping):
    """A resolver for the guard that answers from a table: no DNS in tests."""

    def resolve(name):
        if name not in mapping:
            raise OSError("Name or service not known")
        return mapping[name]

    return resolve


def test_a_node_in_scope_is_created_with_its_snapshot_and_an_audit_event(world):
    node = node_create(org=world.org, address=" 127.0.0.5 ", name="web-1", tags="a, b", by=world.analyst,
                       ip="127.0.0.9")
    assert (node.address, node.resolved_ip, node.name, node.tags) == ("127.0.0.5", "127.0.0.5", "web-1", ["a", "b"])
    assert NodeSnapshot.objects.filter(node=node).exists()
    event = AuditEvent.objects.get(verb="node.created")
    assert event.actor == world.analyst and event.ip == "127.0.0.9" and event.target_id == str(node.pk)


def test_an_address_outside_the_organizations_scope_is_refused_with_the_guards_reason(world, settings):
    settings.SCAN_ALLOWED_NETWORKS = ["127.0.0.0/8", "10.0.0.0/8"]
    with pytest.raises(ValidationError, match="outside the organization's scope"):
        node_create(org=world.org, address="10.0.0.1", by=world.owner)
    assert not Node.objects.exists()


def test_an_address_outside_the_allowed_networks_is_refused_before_anything_is_written(world):
    world.org.scope_networks = ["0.0.0.0/0"]
    world.org.save()
    with pytest.raises(ValidationError, match="SCAN_ALLOWED_NETWORKS"):
        node_create(org=world.org, address="10.0.0.1", by=world.owner)
    assert not Node.objects.exists() and not AuditEvent.objects.filter(verb="node.created").exists()


def test_a_duplicate_address_is_refused_clearly(world):
    node_create(org=world.org, address="127.0.0.5")
    with pytest.raises(ValidationError, match="already a node"):
        node_create(org=world.org, address="127.0.0.5")


def test_a_url_or_a_port_is_not_an_address(world):
    for bad in ("http://127.0.0.1/", "127.0.0.1:80", ""):
        with pytest.raises(ValidationError):
            node_create(org=world.org, address=bad)


def test_a_host_name_in_scope_becomes_a_node_with_its_checked_address(world):
    world.org.scope_hostnames = ["*.lab.internal"]
    world.org.save()
    node = node_create(org=world.org, address="Web.Lab.Internal", resolver=names({"web.lab.internal": ["127.0.0.7"]}))
    assert (node.address, node.hostname, node.resolved_ip) == ("web.lab.internal", "web.lab.internal", "127.0.0.7")


def test_a_name_that_does_not_resolve_is_refused(world):
    with pytest.raises(ValidationError, match="does not resolve"):
        node_create(org=world.org, address="nowhere.lab.internal", resolver=names({}))


def test_an_edit_changes_name_tags_and_hostname_and_is_audited(world):
    node = NodeFactory(org=world.org, address="127.0.0.5")
    node_update(node=node, name="db", tags=["prod", "prod", " eu "], hostname="db.example.test", by=world.analyst)
    node.refresh_from_db()
    assert (node.name, node.tags, node.hostname) == ("db", ["prod", "eu"], "db.example.test")
    event = AuditEvent.objects.get(verb="node.updated")
    assert event.changes["name"] == ["", "db"]


def test_an_edit_that_changes_nothing_writes_no_audit_event(world):
    node = NodeFactory(org=world.org, address="127.0.0.5", name="db")
    node_update(node=node, name="db", address="127.0.0.5", by=world.analyst)
    assert not AuditEvent.objects.filter(verb="node.updated").exists()


def test_a_changed_address_passes_the_guard_again(world, settings):
    settings.SCAN_ALLOWED_NETWORKS = ["127.0.0.0/8", "10.0.0.0/8"]
    node = NodeFactory(org=world.org, address="127.0.0.5")
    with pytest.raises(ValidationError, match="outside the organization's scope"):
        node_update(node=node, address="10.0.0.1", by=world.owner)
    node.refresh_from_db()
    assert node.address == "127.0.0.5"
    node_update(node=node, address="127.0.0.6", by=world.owner)
    node.refresh_from_db()
    assert (node.address, node.resolved_ip) == ("127.0.0.6", "127.0.0.6")


def test_an_address_change_onto_another_node_is_refused(world):
    NodeFactory(org=world.org, address="127.0.0.6")
    node = NodeFactory(org=world.org, address="127.0.0.5")
    with pytest.raises(ValidationError, match="already a node"):
        node_update(node=node, address="127.0.0.6")


def test_an_invalid_hostname_is_refused(world):
    node = NodeFactory(org=world.org)
    with pytest.raises(ValidationError, match="not a valid host name"):
        node_update(node=node, hostname="not a name")


def test_too_many_or_too_long_tags_are_refused(world):
    node = NodeFactory(org=world.org)
    with pytest.raises(ValidationError):
        node_update(node=node, tags=[f"t{i}" for i in range(30)])
    with pytest.raises(ValidationError):
        node_update(node=node, tags=["x" * 41])


def test_disabling_is_audited_once_and_idempotent(world):
    node = NodeFactory(org=world.org)
    node_set_enabled(node=node, enabled=False, by=world.analyst)
    node_set_enabled(node=node, enabled=False, by=world.analyst)
    node.refresh_from_db()
    assert node.enabled is False
    assert AuditEvent.objects.filter(verb="node.disabled").count() == 1
    node_set_enabled(node=node, enabled=True, by=world.analyst)
    assert Node.objects.get(pk=node.pk).enabled is True


# --- bulk ------------------------------------------------------------------------------------


def test_a_pasted_list_adds_skips_and_refuses_row_by_row(world, settings):
    settings.SCAN_ALLOWED_NETWORKS = ["127.0.0.0/8", "10.0.0.0/8"]
    NodeFactory(org=world.org, address="127.0.0.2")
    report = nodes_bulk_add(org=world.org, text="127.0.0.1 web one\n127.0.0.2\n\n10.0.0.1\n127.0.0.1\n",
                            by=world.analyst)
    outcomes = [(r.line, r.address, r.outcome) for r in report.rows]
    assert outcomes == [(1, "127.0.0.1", "added"), (2, "127.0.0.2", "duplicate"), (4, "10.0.0.1", "refused"),
                        (5, "127.0.0.1", "duplicate")]
    assert "organization's scope" in report.rows[2].reason
    assert "line 1" in report.rows[3].reason
    assert (report.added, report.duplicates, report.refused) == (1, 2, 1)
    node = Node.objects.get(address="127.0.0.1")
    assert node.name == "web one" and NodeSnapshot.objects.filter(node=node).exists()
    event = AuditEvent.objects.get(verb="node.bulk_added")
    assert event.changes["added"] == ["127.0.0.1"] and event.actor == world.analyst


def test_a_csv_with_a_header_names_and_tags_is_added(world):
    report = nodes_bulk_add(org=world.org, csv_file=b"address,name,tags\r\n127.0.0.1,web,prod;eu\r\n127.0.0.2\r\n")
    assert report.added == 2
    assert Node.objects.get(address="127.0.0.1").tags == ["prod", "eu"]


def test_a_csv_without_a_header_is_read_as_address_name_tags(world):
    nodes_bulk_add(org=world.org, csv_file="127.0.0.1,web,prod\n")
    assert Node.objects.get(address="127.0.0.1").name == "web"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"address,name\n127.0.0.1,a\n127.0.0.2,b,c,d\n", "Line 3: 4 columns"),
        (b"127.0.0.1\n\xff\xfe\n", "Line 2: not UTF-8"),
        (b'127.0.0.1,"web\n', "not valid CSV"),
        (b"address,colour\n127.0.0.1,red\n", "Line 1: the header"),
        (b"127.0.0.1\n,name-only\n", "Line 2: the address is empty"),
        (b"", "no address"),
        (b"127.0.0.1\x00\n", "NUL"),
    ],
)
def test_a_malformed_csv_adds_nothing_and_names_the_line(world, data, message):
    with pytest.raises(ValidationError, match=message):
        nodes_bulk_add(org=world.org, csv_file=data)
    assert not Node.objects.exists()


def test_a_file_too_big_or_with_too_many_rows_is_refused_whole(world):
    with pytest.raises(ValidationError, match="larger than"):
        parse_node_csv(b"127.0.0.1\n" * 200_000)
    rows = "".join(f"127.0.{i // 250}.{i % 250 + 1}\n" for i in range(BULK_MAX_ROWS + 1))
    with pytest.raises(ValidationError, match="more than the limit"):
        nodes_bulk_add(org=world.org, text=rows)
    assert not Node.objects.exists()


def test_a_paste_with_a_control_character_names_its_line(world):
    with pytest.raises(ValidationError, match="Line 2"):
        parse_node_paste("127.0.0.1\n127.0.0.2 na\x07me\n")


def test_a_thousand_rows_are_added_in_batches_not_row_by_row(world, django_assert_max_num_queries):
    rows = "".join(f"127.0.{i // 250}.{i % 250 + 1}\n" for i in range(1000))
    # Read the existing addresses, one INSERT of nodes, one of snapshots, whether any zone places them, the audit
    # event, savepoints.
    with django_assert_max_num_queries(9):
        report = nodes_bulk_add(org=world.org, text=rows, by=world.owner)
    assert report.added == 1000 and NodeSnapshot.objects.filter(org=world.org).count() == 1000


def test_nodes_come_into_existence_each_with_its_snapshot(world):
    nodes = [Node(org=world.org, address=f"127.0.7.{i}") for i in range(1, 4)]
    nodes_create(org=world.org, nodes=nodes)
    assert all(node.pk for node in nodes)
    assert set(NodeSnapshot.objects.filter(org=world.org).values_list("node_id", flat=True)) == {n.pk for n in nodes}


def test_a_duplicate_address_writes_nothing_unless_existing_nodes_are_skipped(world):
    kept = NodeFactory(org=world.org, address="127.0.7.1", name="kept")
    with pytest.raises(IntegrityError):
        nodes_create(org=world.org, nodes=[Node(org=world.org, address="127.0.7.2"),
                                           Node(org=world.org, address="127.0.7.1")])
    assert not Node.objects.filter(address="127.0.7.2").exists()

    nodes = [Node(org=world.org, address="127.0.7.1"), Node(org=world.org, address="127.0.7.2")]
    nodes_create(org=world.org, nodes=nodes, skip_existing=True)
    assert nodes[0].pk == kept.pk and Node.objects.get(pk=kept.pk).name == "kept"
    assert NodeSnapshot.objects.filter(node_id=nodes[1].pk, org=world.org).exists()


def test_the_pipeline_gets_the_node_at_an_address_creating_it_once(world):
    node = node_get_or_create(org=world.org, address=" 127.0.7.9 ")
    assert (node.address, node.resolved_ip) == ("127.0.7.9", "127.0.7.9")
    assert node_get_or_create(org=world.org, address="127.0.7.9").pk == node.pk
    assert NodeSnapshot.objects.filter(node=node).count() == 1
