"""Celery adapters for interventions: the watchdog sweep, run on beat."""

from __future__ import annotations

from celery import shared_task

from interventions.watchdog import watchdog_sweep


@shared_task(name="interventions.tasks.watchdog_sweep", acks_late=True, ignore_result=True, soft_time_limit=120,
             time_limit=180)
def watchdog_sweep_task() -> dict:
    return watchdog_sweep()
