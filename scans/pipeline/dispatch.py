"""The runner seam: hand a piece of work to Celery after commit, or run it in this process.

Services never import Celery tasks; they call :func:`enqueue` with a task *name* and
keyword arguments. Under Celery the message is published when the surrounding
transaction commits (a worker must never see a row before it exists). Inside
:func:`inline`, the same name maps to the same service function and runs in this
process once the caller's transaction is over — ``run_session --inline`` and the
unit tests run the pipeline with no broker at all.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import structlog
from django.db import transaction

from config.celery import REQUEST_ID_HEADER, app

logger = structlog.get_logger(__name__)


def services() -> dict[str, Callable[..., Any]]:
    """Task name -> the service it adapts. Both sides take the same kwargs.

    Imported here, when work is run inline, rather than at the top: these modules enqueue
    through this one, so importing them first would be a circle.
    """
    from scans.cve.rematch import catalog_rematch
    from scans.pipeline.execution import jobs_run
    from scans.pipeline.sessions import session_start_scheduled
    from scans.pipeline.stages import normalization_part_run, stage_run

    return {
        "scans.tasks.discovery_jobs_run": jobs_run,
        "scans.tasks.stage_run": stage_run,
        "scans.tasks.job_run": jobs_run,
        "scans.tasks.normalization_part_run": normalization_part_run,
        "scans.tasks.scoring_stage_run": stage_run,
        "scans.tasks.reporting_stage_run": stage_run,
        "scans.tasks.session_start_scheduled": session_start_scheduled,
        "scans.tasks.catalog_rematch": catalog_rematch,
    }


# Publishing survives a short broker outage (a Redis restart) instead of failing the job
# that finished; if it still fails, the watchdog re-dispatches from the rows.
RETRY_POLICY = {"max_retries": 20, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2}

_inline_queue: ContextVar[deque | None] = ContextVar("watchpost_inline_queue", default=None)


def enqueue(name: str, *, kwargs: dict[str, Any], correlation_id: str = "", countdown: float | None = None,
            expires: float | None = None, task_id: str | None = None, soft_time_limit: float | None = None,
            time_limit: float | None = None, queue: str | None = None) -> str:
    """Queue ``name(**kwargs)``; returns the task id. ``countdown`` is ignored inline (no one waits).

    ``queue`` overrides the task's route (a zone's jobs travel on the zone's queue); inline, there is
    one process and no queue."""
    task_id = task_id or uuid.uuid4().hex
    pending = _inline_queue.get()
    if pending is not None:
        pending.append((name, kwargs))
        return task_id

    def publish() -> None:
        limits = {k: v for k, v in (("soft_time_limit", soft_time_limit), ("time_limit", time_limit)) if v}
        if queue:
            limits["queue"] = queue
        try:
            app.send_task(name, kwargs=kwargs, task_id=task_id, countdown=countdown, expires=expires, **limits,
                          headers={REQUEST_ID_HEADER: correlation_id} if correlation_id else None,
                          retry=True, retry_policy=RETRY_POLICY)
        except Exception:  # noqa: BLE001 - the rows keep the state; the watchdog re-dispatches
            logger.exception("dispatch.publish_failed", task=name, task_id=task_id)

    transaction.on_commit(publish)
    return task_id


def is_inline() -> bool:
    """Inside :func:`inline`: this process runs all the work, whatever its queue."""
    return _inline_queue.get() is not None


def service_for(name: str) -> Callable[..., Any]:
    return services()[name]


@contextlib.contextmanager
def inline() -> Iterator[deque]:
    """Within this block, enqueued work runs in this process when :func:`drain` is called."""
    token = _inline_queue.set(deque())
    try:
        yield _inline_queue.get()
    finally:
        _inline_queue.reset(token)


def drain(*, on_step: Callable[[str, dict], None] | None = None) -> int:
    """Run queued inline work, and what it queues, until nothing is left. Returns the steps run."""
    queue = _inline_queue.get()
    if queue is None:
        raise RuntimeError("drain() outside an inline() block")
    steps = 0
    while queue:
        name, kwargs = queue.popleft()
        service_for(name)(**kwargs)
        steps += 1
        if on_step is not None:
            on_step(name, kwargs)
    return steps
