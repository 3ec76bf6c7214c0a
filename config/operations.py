"""What operators watch: queue depth per queue and which workers are alive.

Read by /metrics and by the console's status page. Queue depth asks the broker through
kombu (a passive queue declaration answers the message count on Redis, RabbitMQ and the
embedded filesystem broker alike); worker presence reads the heartbeat rows workers write.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import timedelta

import structlog
from django.db import close_old_connections
from django.utils import timezone

logger = structlog.get_logger(__name__)

PRESENCE_SECONDS = int(os.environ.get("WATCHPOST_WORKER_PRESENCE_SECONDS", "15"))
# A worker unseen for three beats is gone (killed, or its machine is).
ALIVE_WITHIN = timedelta(seconds=PRESENCE_SECONDS * 3)


def queue_depths(timeout: float = 2.0) -> dict[str, int | None]:
    """Messages waiting per queue; None for a queue the broker would not answer about."""
    from config.celery import QUEUES, app

    depths: dict[str, int | None] = {name: None for name in QUEUES}
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            channel = conn.default_channel
            for name in QUEUES:
                try:
                    depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
                except Exception as error:  # noqa: BLE001 - one queue's answer must not hide the others
                    if "NOT_FOUND" in str(error) or "404" in str(error):
                        # Never declared (Redis keeps no empty list; no worker declared it yet): nothing waits.
                        depths[name] = 0
                        channel = conn.channel()  # AMQP closes the channel after a failed passive declare
                    else:
                        logger.warning("operations.queue_depth_failed", queue=name, error=str(error)[:200])
    except Exception as error:  # noqa: BLE001 - the broker is down: every depth is unknown, and said so
        logger.warning("operations.broker_unreachable", error=str(error)[:200])
    return depths


def workers_alive():
    """Heartbeat rows of the workers seen recently, with the queues each consumes."""
    from interventions.models import WorkerHeartbeat

    return list(WorkerHeartbeat.objects.filter(seen_at__gte=timezone.now() - ALIVE_WITHIN).order_by("hostname"))


def worker_heartbeat_write(*, hostname: str, queues: list[str], concurrency: int | None) -> None:
    from interventions.models import WorkerHeartbeat

    now = timezone.now()
    updated = WorkerHeartbeat.objects.filter(hostname=hostname).update(
        seen_at=now, queues=queues, pid=os.getpid(), concurrency=concurrency)
    if not updated:
        WorkerHeartbeat.objects.update_or_create(
            hostname=hostname, defaults={"queues": queues, "pid": os.getpid(), "concurrency": concurrency,
                                         "started_at": now, "seen_at": now})


def worker_presence_start(*, hostname: str, queues: list[str], concurrency: int | None) -> threading.Thread:
    """Beat a heartbeat row from a daemon thread for as long as the worker process lives.

    A failed write (database restarting) is logged and retried on the next beat: presence
    must survive exactly the outages it helps diagnose.
    """
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            try:
                close_old_connections()
                worker_heartbeat_write(hostname=hostname, queues=queues, concurrency=concurrency)
            except Exception as error:  # noqa: BLE001 - keep beating through transient errors
                logger.warning("worker_presence.write_failed", hostname=hostname, error=str(error)[:200])
            stop.wait(PRESENCE_SECONDS)

    thread = threading.Thread(target=beat, name="watchpost-worker-presence", daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]
    thread.start()
    return thread


def default_hostname() -> str:
    return f"celery@{socket.gethostname()}"
