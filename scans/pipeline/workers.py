"""Worker presence: every Celery worker beats its own row, read by the status page and /metrics.

A worker starts beating once it is ready (``ScansConfig.ready`` connects the signal); the
rows say which workers are alive and which queues each consumes.
"""

from __future__ import annotations

import os
import threading

import structlog
from django.db import close_old_connections
from django.utils import timezone

from config.operations import WORKER_ALIVE_WITHIN, WORKER_PRESENCE_SECONDS
from scans.models import WorkerHeartbeat

logger = structlog.get_logger(__name__)

PRESENCE_SECONDS = WORKER_PRESENCE_SECONDS
ALIVE_WITHIN = WORKER_ALIVE_WITHIN


def workers_alive() -> list[WorkerHeartbeat]:
    """Heartbeat rows of the workers seen recently, with the queues each consumes."""
    return list(WorkerHeartbeat.objects.filter(seen_at__gte=timezone.now() - ALIVE_WITHIN).order_by("hostname"))


def worker_heartbeat_write(*, hostname: str, queues: list[str], concurrency: int | None,
                           zone_id: int | None = None) -> None:
    now = timezone.now()
    updated = WorkerHeartbeat.objects.filter(hostname=hostname).update(
        seen_at=now, queues=queues, pid=os.getpid(), concurrency=concurrency, zone_id=zone_id)
    if not updated:
        WorkerHeartbeat.objects.update_or_create(
            hostname=hostname, defaults={"queues": queues, "pid": os.getpid(), "concurrency": concurrency,
                                         "zone_id": zone_id, "started_at": now, "seen_at": now})


def worker_presence_start(*, hostname: str, queues: list[str], concurrency: int | None,
                          zone_id: int | None = None) -> threading.Thread:
    """Beat a heartbeat row from a daemon thread for as long as the worker process lives.

    A failed write (database restarting) is logged and retried on the next beat: presence
    must survive exactly the outages it helps diagnose.
    """
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            try:
                close_old_connections()
                worker_heartbeat_write(hostname=hostname, queues=queues, concurrency=concurrency, zone_id=zone_id)
            except Exception as error:  # noqa: BLE001 - keep beating through transient errors
                logger.warning("worker_presence.write_failed", hostname=hostname, error=str(error)[:200])
            stop.wait(PRESENCE_SECONDS)

    thread = threading.Thread(target=beat, name="watchpost-worker-presence", daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]
    thread.start()
    _PRESENCE.append(thread)
    return thread


_PRESENCE: list[threading.Thread] = []  # this process's beating thread, stopped when the worker withdraws


def worker_announce(sender=None, zone_id: int | None = None, **kwargs) -> None:
    """Celery's ``worker_ready``: write this worker's presence at once (a zone's waiting work is released
    as soon as a worker of the zone is seen), then keep beating it."""
    consumer = sender
    queues = sorted(q.name for q in consumer.task_consumer.queues) if getattr(consumer, "task_consumer", None) else []
    concurrency = getattr(consumer.pool, "num_processes", None) if consumer.pool else None
    try:
        worker_heartbeat_write(hostname=consumer.hostname, queues=queues, concurrency=concurrency, zone_id=zone_id)
    except Exception as error:  # noqa: BLE001 - the beating thread tries again
        logger.warning("worker_presence.write_failed", hostname=consumer.hostname, error=str(error)[:200])
    worker_presence_start(hostname=consumer.hostname, queues=queues, concurrency=concurrency, zone_id=zone_id)


def worker_withdraw(*, hostname: str) -> None:
    """A worker shutting down says so: its zone's work waits from now on, not after three missed beats."""
    while _PRESENCE:
        thread = _PRESENCE.pop()
        thread.stop.set()  # type: ignore[attr-defined]
        thread.join(5)
    try:
        close_old_connections()
        WorkerHeartbeat.objects.filter(hostname=hostname).delete()
    except Exception as error:  # noqa: BLE001 - the row then ages out by itself
        logger.warning("worker_presence.withdraw_failed", hostname=hostname, error=str(error)[:200])
