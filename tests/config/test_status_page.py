"""The operators' status page: queue depth and workers alive, for staff only."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scans.models import WorkerHeartbeat
from scans.pipeline.workers import worker_heartbeat_write, worker_presence_start, workers_alive

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("operator", is_staff=True)


def test_staff_see_each_queue_and_the_workers_consuming_it(client, staff):
    WorkerHeartbeat.objects.create(hostname="celery@scanner-1", queues=["scans"], concurrency=4)
    WorkerHeartbeat.objects.create(hostname="celery@gone", queues=["reports"],
                                   seen_at=timezone.now() - timedelta(hours=1))
    client.force_login(staff)
    content = client.get(reverse("status")).content.decode()
    assert "celery@scanner-1" in content and "celery@gone" not in content
    for queue in ("orchestration", "nodes", "scans", "scoring", "reports"):
        assert f"<td>{queue}</td>" in content
    assert "no worker" in content  # the reports queue has nobody alive


def test_members_who_are_not_staff_are_refused(client, world):
    client.force_login(world.owner)
    assert client.get(reverse("status")).status_code == 403


def test_anonymous_visitors_are_sent_to_login(client, db):
    response = client.get(reverse("status"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_status_page_refuses_post(client, staff):
    client.force_login(staff)
    assert client.post(reverse("status")).status_code == 405


def test_a_heartbeat_write_refreshes_the_row_instead_of_adding_one(db):
    worker_heartbeat_write(hostname="celery@a", queues=["scans"], concurrency=2)
    worker_heartbeat_write(hostname="celery@a", queues=["scans", "nodes"], concurrency=2)
    assert [(w.hostname, w.queues) for w in workers_alive()] == [("celery@a", ["scans", "nodes"])]


def test_the_presence_thread_keeps_beating_after_a_failed_write(monkeypatch, transactional_db):
    import scans.pipeline.workers as workers

    calls = []
    real = workers.worker_heartbeat_write

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database restarting")
        real(**kwargs)

    monkeypatch.setattr(workers, "worker_heartbeat_write", flaky)
    monkeypatch.setattr(workers, "PRESENCE_SECONDS", 0.05)
    thread = worker_presence_start(hostname="celery@flaky", queues=["scans"], concurrency=1)
    try:
        # Watch the thread's calls, not the table: on SQLite a read while the thread writes meets
        # "table is locked". A third call means the second, a real write, has finished.
        for _ in range(100):
            if len(calls) >= 3:
                break
            thread.stop.wait(0.05)
    finally:
        thread.stop.set()
        thread.join(2)
    assert len(calls) >= 3 and WorkerHeartbeat.objects.filter(hostname="celery@flaky").exists()
