"""Celery adapters for reports: load ids, call one service. All run on the ``reports`` queue."""

from __future__ import annotations

from celery import shared_task

from reports import services
from scans.tasks import RETRY_OPTIONS


# A render failure is recorded on the row by the service (no retry: it would fail the same way);
# a lost worker redelivers the message (acks_late) and the stale claim is taken again.
@shared_task(name="reports.tasks.report_generate_run", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=1800, time_limit=1860)
def report_generate_run(report_id: int) -> None:
    services.report_generate(report_id=report_id)


@shared_task(name="reports.tasks.report_schedule_run", acks_late=True, ignore_result=True, **RETRY_OPTIONS)
def report_schedule_run(schedule_id: int) -> None:
    services.report_schedule_run(schedule_id=schedule_id)


@shared_task(name="reports.tasks.report_email_run", acks_late=True, ignore_result=True, **RETRY_OPTIONS)
def report_email_run(report_id: int) -> None:
    services.report_email_send(report_id=report_id)
