"""Celery adapters for webhooks, on the ``reports`` queue.

The tasks keep the names they were first published under (``orgs.tasks.webhook_*``, routed by
that name in config.celery): queued messages and beat's periodic task rows carry them.
"""

from __future__ import annotations

from celery import shared_task

from reports.webhooks.services import webhook_deliver, webhook_deliveries_sweep


@shared_task(name="orgs.tasks.webhook_deliver", acks_late=True, ignore_result=True, soft_time_limit=60, time_limit=90)
def webhook_deliver_task(delivery_id: int) -> str | None:
    """One attempt; the service records it and, when it should retry, publishes the next attempt
    with its backoff as the countdown (the row's next_attempt_at says when)."""
    result = webhook_deliver(delivery_id=delivery_id)
    return result.status if result is not None else None


@shared_task(name="orgs.tasks.webhook_deliveries_sweep", acks_late=True, ignore_result=True, soft_time_limit=60,
             time_limit=90)
def webhook_deliveries_sweep_task() -> int:
    return webhook_deliveries_sweep()
