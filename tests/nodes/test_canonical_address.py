"""A node's address is stored in its canonical spelling, whichever path creates it, and duplicates
are found on that spelling (127.1, 2130706433 and 0x7f000001 are one node: 127.0.0.1)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from nodes.models import Node
from nodes.services import (
    node_addresses_canonical_plan,
    node_create,
    node_get_or_create,
    node_update,
    nodes_bulk_add,
)
from orgs.models import ApiToken, AuditEvent
from orgs.scope import UNBOUNDED, ScopeError, canonical_target, resolve_and_check
from orgs.services import api_token_create
from scans.findings.imports import findings_import
from tests.findings.conftest import nuclei_file, nuclei_result  # noqa: F401 - the fixture is used below
from tests.nodes.test_services import names

pytestmark = pytest.mark.django_db

SPELLINGS_OF_LOCALHOST = ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.0.0.01",
                          "::ffff:127.0.0.1", "[::ffff:7f00:1]", "127.0.0.1."]


@pytest.mark.parametrize("spelling", SPELLINGS_OF_LOCALHOST)
def test_every_spelling_of_an_ipv4_address_has_one_canonical_form(spelling):
    assert canonical_target(spelling) == "127.0.0.1"


def test_leading_zeros_are_read_as_octal_as_inet_aton_reads_them():
    assert canonical_target("127.000.010.205") == "127.0.8.205"


@pytest.mark.parametrize(("typed", "canonical"), [
    ("Web-1.Example.", "web-1.example"), ("LOCALHOST", "localhost"), ("2001:DB8:0:0::1", "2001:db8::1"),
    ("host.v2", "host.v2"),
])
def test_names_stay_names_lower_cased_and_ipv6_takes_its_short_form(typed, canonical):
    assert canonical_target(typed) == canonical


def test_the_guard_checks_a_legacy_spelling_as_the_address_it_reaches():
    checked = resolve_and_check("0x7f000001", scope=["127.0.0.0/8"], allowed_networks="127.0.0.0/8",
                                resolver=names({}))
    assert (checked.address, checked.hostname) == ("127.0.0.1", "")
    with pytest.raises(ScopeError, match="outside the deployment's allowed networks"):
        resolve_and_check("167772161", scope=UNBOUNDED, allowed_networks="127.0.0.0/8", resolver=names({}))  # 10.0.0.1


def test_a_name_ending_in_a_number_that_is_no_address_is_refused_as_syntax():
    with pytest.raises(ScopeError, match="cannot end in a number") as refused:
        resolve_and_check("web.999999999999", scope=["127.0.0.0/8"], resolver=names({}))
    assert refused.value.boundary == "syntax"


def test_the_console_service_stores_the_canonical_address_and_refuses_another_spelling(world):
    node = node_create(org=world.org, address="127.000.010.205")
    assert (node.address, node.resolved_ip, node.hostname) == ("127.0.8.205", "127.0.8.205", "")
    with pytest.raises(ValidationError, match="127.0.8.205 is already a node"):
        node_create(org=world.org, address="2130708685")


def test_three_spellings_of_one_address_in_a_bulk_add_make_one_node(world):
    report = nodes_bulk_add(org=world.org, text="0x7f000001 a\n2130706433 b\n127.1 c\n")
    assert [(r.address, r.outcome) for r in report.rows] == [
        ("127.0.0.1", "added"), ("127.0.0.1", "duplicate"), ("127.0.0.1", "duplicate")]
    assert list(Node.objects.filter(org=world.org).values_list("address", flat=True)) == ["127.0.0.1"]


def test_a_csv_of_spellings_is_judged_on_the_canonical_address(world):
    node_create(org=world.org, address="127.0.0.1")
    report = nodes_bulk_add(org=world.org, csv_file=b"address,name\n127.1,one\n0177.0.0.2,two\n")
    assert [(r.address, r.outcome) for r in report.rows] == [("127.0.0.1", "duplicate"), ("127.0.0.2", "added")]


def test_the_api_stores_the_canonical_address(world):
    _, key = api_token_create(org=world.org, name="ci", access=ApiToken.Access.READ_WRITE)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = client.post("/api/v1/nodes/", {"address": "0x7f000001"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["address"] == "127.0.0.1"
    again = client.post("/api/v1/nodes/", {"address": "127.1"}, format="json")
    assert again.status_code == 400


def test_an_edit_to_another_spelling_of_the_same_address_changes_nothing(world):
    node = node_create(org=world.org, address="127.0.0.7")
    node_update(node=node, address="2130706439")
    node.refresh_from_db()
    assert node.address == "127.0.0.7" and not AuditEvent.objects.filter(verb="node.updated").exists()


def test_the_pipeline_and_imports_find_the_node_under_its_canonical_address(world, nuclei_file):
    node = node_create(org=world.org, address="127.0.0.1")
    assert node_get_or_create(org=world.org, address="127.1") == node
    findings_import(org=world.org, fmt="nuclei", path=nuclei_file([nuclei_result("0x7f000001", "git-config")]))
    assert list(Node.objects.filter(org=world.org).values_list("address", flat=True)) == ["127.0.0.1"]


def test_the_plan_renames_lone_spellings_and_reports_collisions_without_merging():
    renames, collisions = node_addresses_canonical_plan([
        (1, 7, "127.1"), (2, 7, "Web.Example."),
        (3, 7, "0x7f000002"), (4, 7, "127.0.0.2"),  # the canonical one exists: it stays, 3 is reported
        (5, 7, "2130706435"), (6, 7, "127.3"),  # neither canonical: the oldest takes it, 6 is reported
        (8, 9, "127.1"),  # another organization: its own node
    ])
    assert renames == [(1, "127.0.0.1"), (5, "127.0.0.3"), (2, "web.example"), (8, "127.0.0.1")]
    assert [(c.org_id, c.address, c.kept, c.others) for c in collisions] == [
        (7, "127.0.0.2", 4, ((3, "0x7f000002"),)), (7, "127.0.0.3", 5, ((6, "127.3"),))]


@pytest.fixture
def before_canonical_addresses():
    """The schema before nodes.0005, restored to the latest afterwards."""
    # Rows written so far (the test's organizations) leave foreign-key checks pending, and PostgreSQL
    # alters no table that has any: check them now, so the migrations can run in the test's transaction.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor = MigrationExecutor(connection)
    target = [("nodes", "0004_node_criticality")]
    executor.migrate(target)
    yield executor.loader.project_state(target).apps
    # The same for the rows the test wrote, before the later migrations.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_migration_canonicalizes_stored_addresses_and_reports_what_collides(world, before_canonical_addresses):
    apps = before_canonical_addresses
    OldNode = apps.get_model("nodes", "Node")
    lone = OldNode.objects.create(org_id=world.org.pk, address="127.000.010.205", hostname="127.000.010.205")
    kept = OldNode.objects.create(org_id=world.org.pk, address="127.0.0.1")
    spelled = OldNode.objects.create(org_id=world.org.pk, address="0x7f000001", hostname="0x7f000001")

    executor = MigrationExecutor(connection)
    executor.migrate([("nodes", "0005_canonical_address")])
    MigratedNode = executor.loader.project_state([("nodes", "0005_canonical_address")]).apps.get_model("nodes", "Node")

    stored = dict(MigratedNode.objects.filter(org_id=world.org.pk).values_list("pk", "address"))
    assert stored == {lone.pk: "127.0.8.205", kept.pk: "127.0.0.1", spelled.pk: "0x7f000001"}
    assert MigratedNode.objects.get(pk=lone.pk).hostname == ""
    event = AuditEvent.objects.get(org=world.org, verb="node.address_duplicates")
    assert event.changes == {"address": "127.0.0.1", "kept": kept.pk,
                             "duplicates": [{"id": spelled.pk, "address": "0x7f000001"}]}
