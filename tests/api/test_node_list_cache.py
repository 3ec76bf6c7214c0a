"""The node list's cached pages are never stale: every committed change to an organization's
nodes or snapshots — by a service, a bulk ``update()`` as the pipeline does, or a raw SQL
statement — shows in the very next list: the version that keys the cache is kept by database
triggers."""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from nodes import list_cache, services
from nodes.models import Node, NodeSnapshot
from tests.factories import NodeFactory


def _addresses(client) -> list[str]:
    response = client.get("/api/v1/nodes/?page_size=100")
    assert response.status_code == 200, response.content[:300]
    return [node["address"] for node in response.json()["results"]]


@pytest.mark.django_db(transaction=True)
class TestCachedNodeList:
    def test_a_node_added_through_the_service_appears_in_the_next_list(self, world, api):
        NodeFactory(org=world.org, address="127.0.60.1")
        client = api("read")
        assert _addresses(client) == ["127.0.60.1"]
        services.node_create(org=world.org, address="127.0.60.2", name="", tags=[], by=None)
        assert _addresses(client) == ["127.0.60.1", "127.0.60.2"]

    def test_a_bulk_update_like_the_pipelines_shows_at_once(self, world, api):
        node = NodeFactory(org=world.org, address="127.0.60.1", state=Node.State.UNKNOWN)
        client = api("read")
        assert client.get("/api/v1/nodes/").json()["results"][0]["state"] == "unknown"
        Node.objects.filter(pk=node.pk).update(state=Node.State.UP)
        assert client.get("/api/v1/nodes/").json()["results"][0]["state"] == "up"

    def test_a_new_score_in_a_snapshot_shows_at_once(self, world, api):
        node = NodeFactory(org=world.org, address="127.0.60.1")
        client = api("read")
        assert client.get("/api/v1/nodes/").json()["results"][0]["snapshot"]["score"] is None
        NodeSnapshot.objects.filter(pk=node.pk).update(score=42, grade="D")
        assert client.get("/api/v1/nodes/").json()["results"][0]["snapshot"]["grade"] == "D"

    def test_a_change_made_in_raw_sql_shows_at_once(self, world, api):
        node = NodeFactory(org=world.org, address="127.0.60.1", name="before")
        client = api("read")
        assert client.get("/api/v1/nodes/").json()["results"][0]["name"] == "before"
        with connection.cursor() as cursor:
            cursor.execute("UPDATE nodes_node SET name = 'after' WHERE id = %s", [node.pk])
        assert client.get("/api/v1/nodes/").json()["results"][0]["name"] == "after"

    def test_a_deleted_node_leaves_the_list_at_once(self, world, api):
        NodeFactory(org=world.org, address="127.0.60.1")
        gone = NodeFactory(org=world.org, address="127.0.60.2")
        client = api("read")
        assert len(_addresses(client)) == 2
        services.node_delete(node=gone, by=None)
        assert _addresses(client) == ["127.0.60.1"]

    def test_an_unchanged_list_is_answered_without_reading_the_nodes(self, world, api):
        NodeFactory.create_batch(3, org=world.org)
        client = api("read")
        first = client.get("/api/v1/nodes/")
        with CaptureQueriesContext(connection) as queries:
            again = client.get("/api/v1/nodes/")
        assert again.content == first.content
        assert not [q for q in queries.captured_queries if re.search(r"\bnodes_node\b", q["sql"])]

    def test_a_poller_with_the_current_etag_gets_304_until_something_changes(self, world, api):
        node = NodeFactory(org=world.org, address="127.0.60.1")
        client = api("read")
        tag = client.get("/api/v1/nodes/")["ETag"]
        assert client.get("/api/v1/nodes/", HTTP_IF_NONE_MATCH=tag).status_code == 304
        Node.objects.filter(pk=node.pk).update(name="renamed")
        fresh = client.get("/api/v1/nodes/", HTTP_IF_NONE_MATCH=tag)
        assert fresh.status_code == 200 and fresh["ETag"] != tag
        assert fresh.json()["results"][0]["name"] == "renamed"

    def test_each_organization_gets_only_its_own_cached_page(self, world, api):
        NodeFactory(org=world.org, address="127.0.60.1")
        NodeFactory(org=world.other_org, address="127.0.61.1")
        assert _addresses(api("read")) == ["127.0.60.1"]
        assert _addresses(api("other")) == ["127.0.61.1"]
        assert _addresses(api("read")) == ["127.0.60.1"]

    def test_one_transaction_bumps_the_version_once_per_organization(self, world):
        with transaction.atomic():
            NodeFactory.create_batch(5, org=world.org)
            assert list_cache.current_version(world.org.pk) is None  # own uncommitted writes: no cache
        first = list_cache.current_version(world.org.pk)
        assert first is not None
        with transaction.atomic():
            Node.objects.filter(org=world.org).update(name="x")
            NodeSnapshot.objects.filter(org=world.org).update(score=1)
        assert list_cache.current_version(world.org.pk) > first

