"""Celery adapters for notifications, on the ``reports`` queue (channel deliveries themselves are
webhook deliveries: ``reports.webhooks.tasks``)."""

from __future__ import annotations

from celery import shared_task

from reports.notifications.digest import digests_send

DIGESTS_TASK = "reports.tasks.notification_digests_send"


@shared_task(name=DIGESTS_TASK, acks_late=True, ignore_result=True, soft_time_limit=1800, time_limit=1900)
def notification_digests_send_task() -> int:
    """The day's digests; each member's is claimed before it is sent, so a duplicate run sends none twice."""
    return digests_send()
