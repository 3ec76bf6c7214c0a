"""Celery adapters for reporting: load ids, call one service."""

from __future__ import annotations

from celery import shared_task

from scans.pipeline.stages import stage_run
from scans.tasks import STAGE_TASK_OPTIONS


@shared_task(name="reports.tasks.reporting_stage_run", **STAGE_TASK_OPTIONS)
def reporting_stage_run(session_id: int, stage: str) -> None:
    stage_run(session_id=session_id, stage=stage)
