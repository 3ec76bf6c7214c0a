"""A task goes through a real broker to a real worker, writes a row, and logs the request id."""

import json
import time

import pytest
import structlog

from nodes.models import NodeSnapshot
from scans.tasks import node_rescore_task
from tests.factories import FindingFactory, NodeFactory

pytestmark = pytest.mark.integration


def wait_for(predicate, timeout=30.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def test_a_task_round_trips_through_redis_to_a_worker_that_writes_the_row(start_worker, purge_queues):
    node = NodeFactory()
    FindingFactory(node=node, severity="high")
    FindingFactory(node=node, severity="critical")
    worker = start_worker(queues="nodes")

    structlog.contextvars.bind_contextvars(request_id="req-roundtrip-42")
    try:
        node_rescore_task.delay(node.pk)
    finally:
        structlog.contextvars.clear_contextvars()

    assert wait_for(lambda: NodeSnapshot.objects.get(node=node).high == 1), worker.log()
    snapshot = NodeSnapshot.objects.get(node=node)
    assert (snapshot.critical, snapshot.high) == (1, 1)
    assert snapshot.score is not None and snapshot.grade

    assert wait_for(lambda: "node_rescore.done" in worker.log()), worker.log()
    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    done = [line for line in lines if line.get("event") == "node_rescore.done"]
    assert done[0]["request_id"] == "req-roundtrip-42"
    assert done[0]["task"] == "scans.tasks.node_rescore"


def test_a_worker_keeps_its_database_connection_from_one_task_to_the_next(start_worker, purge_queues):
    """Celery's Django fix-up would close it around every task: a new backend and login per message."""
    from django.db import connection

    def now():
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            return cursor.fetchone()[0]

    def backends_started(after, before=None):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                           " AND backend_start > %s AND (%s::timestamptz IS NULL OR backend_start < %s)",
                           [after, before, before])
            return {row[0] for row in cursor.fetchall()}

    nodes = [NodeFactory() for _ in range(21)]
    worker = start_worker(queues="nodes", concurrency=1)
    first_sent = now()
    node_rescore_task.delay(nodes[0].pk)
    assert wait_for(lambda: worker.log().count("node_rescore.done") == 1), worker.log()
    rest_sent = now()
    for node in nodes[1:]:
        node_rescore_task.delay(node.pk)
    assert wait_for(lambda: worker.log().count("node_rescore.done") == 21), worker.log()

    assert len(backends_started(first_sent, rest_sent)) == 1, "the first task's connection was closed"
    assert backends_started(rest_sent) == set(), "twenty tasks opened connections of their own"
