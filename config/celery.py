"""The Celery app: five queues, the database beat scheduler, request ids in task headers."""

from __future__ import annotations

import os

import structlog
from celery import Celery, signals
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("watchpost")
app.config_from_object("django.conf:settings", namespace="CELERY")

QUEUES = ("orchestration", "nodes", "scans", "scoring", "reports")
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.conf.task_default_queue = "orchestration"
# The tasks each queue runs, by their full names, whichever app defines them; a task not named here
# runs on the default queue, orchestration (stages other than scoring and reporting, the watchdog,
# schedules).
QUEUE_TASKS = {
    "nodes": ("scans.tasks.discovery_jobs_run", "scans.tasks.node_rescore"),
    "scans": ("scans.tasks.job_run",),
    "scoring": ("scans.tasks.scoring_stage_run", "scans.tasks.finding_daily_stats_refresh"),
    "reports": (
        "scans.tasks.reporting_stage_run",
        "reports.tasks.report_generate_run",
        "reports.tasks.report_schedule_run",
        "reports.tasks.report_email_run",
        "orgs.tasks.webhook_deliver",
        "orgs.tasks.webhook_deliveries_sweep",
        "reports.tasks.notification_digests_send",
    ),
}
app.conf.task_routes = {task: {"queue": queue} for queue, tasks in QUEUE_TASKS.items() for task in tasks}
app.conf.worker_hijack_root_logger = False
# Celery's Django fix-up closes every database connection before and after each task unless
# this is set (it stopped honouring CONN_MAX_AGE in 5.5): a new PostgreSQL backend, login and
# prepared statements for every message, 150 of them in a 1,000-node session. Set, the fix-up
# closes them only every this many tasks, and keep_database_connections below gives tasks
# Django's own rule instead: reuse a connection for CONN_MAX_AGE, drop it once broken.
app.conf.CELERY_DB_REUSE_MAX = 1000
app.autodiscover_tasks()
app.autodiscover_tasks(["reports.webhooks", "reports.notifications"])  # packages of their own inside reports

REQUEST_ID_HEADER = "request_id"


@signals.before_task_publish.connect
def carry_request_id(headers=None, **kwargs):
    """Stamp the current request id on every task published from this context."""
    from config.request_id import current_request_id

    if headers is not None and not headers.get(REQUEST_ID_HEADER):
        request_id = current_request_id()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id


@signals.task_prerun.connect
def bind_request_id(task=None, **kwargs):
    structlog.contextvars.clear_contextvars()
    request_id = getattr(task.request, REQUEST_ID_HEADER, None) or (task.request.headers or {}).get(REQUEST_ID_HEADER)
    structlog.contextvars.bind_contextvars(task=task.name, task_id=task.request.id, request_id=request_id or "")


@signals.task_postrun.connect
def unbind_request_id(**kwargs):
    structlog.contextvars.clear_contextvars()


@signals.task_prerun.connect
@signals.task_postrun.connect
def keep_database_connections(task=None, **kwargs):
    """Around each task, what Django does around each request: close connections past
    CONN_MAX_AGE or in error, and health-check the rest on their next use."""
    from django.db import close_old_connections

    if not getattr(task.request, "is_eager", False):  # an eager task runs inside its caller's transaction
        close_old_connections()


@signals.setup_logging.connect
def use_django_logging(**kwargs):
    """Keep Django's LOGGING (structured JSON) in workers instead of Celery's own format."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.worker_process_init.connect
def freeze_inherited_objects(**kwargs):
    """Move what a pool process inherits (Django, Celery, the apps: some 150,000 objects) out of
    the collector's reach, as ``config/wsgi.py`` does for the web server. Otherwise every full
    collection walks them all, in the middle of somebody's jobs; and the collector's writes to
    their headers would copy the pages a forked process shares with its parent."""
    import gc

    gc.freeze()
