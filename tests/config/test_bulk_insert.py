"""bulk_insert: what bulk_create does with the same options, by COPY on PostgreSQL."""

import pytest

from config.bulk import bulk_insert
from nodes.models import NodeSnapshot
from scans.models import ScanJob
from tests.factories import NodeFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(world):
    return ScanSessionFactory(org=world.org)


def test_rows_arrive_with_their_values_and_json_intact(world, session):
    nodes = NodeFactory.create_batch(3, org=world.org)
    raw = {"findings": [{"title": "x", "evidence": {"quote": "it's \"here\"\n\ttab"}}], "complete": True}

    bulk_insert([ScanJob(session=session, node=node, scanner="cve", status=ScanJob.Status.SUCCEEDED, attempts=1,
                         raw_result=raw) for node in nodes])

    jobs = ScanJob.objects.filter(session=session)
    assert sorted(jobs.values_list("node_id", flat=True)) == sorted(n.pk for n in nodes)
    assert all(job.raw_result == raw and job.status == "succeeded" and job.attempts == 1 for job in jobs)


def test_ignoring_conflicts_keeps_the_rows_already_there(world, session):
    node = NodeFactory(org=world.org)
    first = ScanJob.objects.create(session=session, node=node, scanner="http", error="kept")
    other = NodeFactory(org=world.org)

    bulk_insert([ScanJob(session=session, node=node, scanner="http", error="dropped"),
                 ScanJob(session=session, node=other, scanner="http")], ignore_conflicts=True)

    assert ScanJob.objects.get(pk=first.pk).error == "kept"
    assert ScanJob.objects.filter(session=session).count() == 2


def test_updating_conflicts_changes_only_the_fields_named(world):
    node = NodeFactory(org=world.org)
    NodeSnapshot.objects.filter(node=node).delete()
    NodeSnapshot.objects.create(node=node, org=world.org, score=40, grade="D", high=3)

    bulk_insert([NodeSnapshot(node=node, org=world.org, score=90, grade="A", high=0)],
                update_conflicts=True, unique_fields=["node"], update_fields=["score", "grade"])

    snapshot = NodeSnapshot.objects.get(node=node)
    assert (snapshot.score, snapshot.grade, snapshot.high) == (90, "A", 3)


def test_objects_with_and_without_primary_keys_are_refused(world, session):
    node = NodeFactory(org=world.org)
    kept = ScanJob.objects.create(session=session, node=node, scanner="http")

    with pytest.raises(ValueError, match="primary key"):
        bulk_insert([kept, ScanJob(session=session, node=node, scanner="tls")])


def test_nothing_to_insert_is_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        bulk_insert([])
