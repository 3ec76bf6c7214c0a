"""What operators watch of the broker: how many messages wait in each queue.

Read by /metrics and by the status page (``scans.operations``). Queue depth asks the broker
through kombu (a passive queue declaration answers the message count on Redis, RabbitMQ and
the embedded filesystem broker alike).
"""

from __future__ import annotations

from collections.abc import Iterable

import os
from datetime import timedelta

import structlog

from config.celery import QUEUES, app

logger = structlog.get_logger(__name__)

# Every worker beats its presence row this often; one unseen for three beats is gone (killed, or its
# machine is). Read by the pipeline (which zones have a worker) and by the pages showing workers.
WORKER_PRESENCE_SECONDS = int(os.environ.get("WATCHPOST_WORKER_PRESENCE_SECONDS", "15"))
WORKER_ALIVE_WITHIN = timedelta(seconds=WORKER_PRESENCE_SECONDS * 3)


def queue_depths(timeout: float = 2.0, *, queues: Iterable[str] | None = None) -> dict[str, int | None]:
    """Messages waiting per queue (the central ones unless ``queues`` says which); None for a queue the
    broker would not answer about."""
    depths: dict[str, int | None] = {name: None for name in (QUEUES if queues is None else queues)}
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            channel = conn.default_channel
            for name in depths:
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
