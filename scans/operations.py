"""What the deployment's operators watch: the status and feeds pages, and the /metrics gauges about the work.

Both read the same things: queue depth per queue (``config.operations``, from the broker),
the workers alive (``scans.pipeline.workers``), and the work in flight from the rows (jobs,
sessions, unresolved interventions). Queue depth and workers are the deployment's, shared
by every tenant, so only staff (the people who run the deployment) see the status page;
members of organizations see their own work in their sessions and interventions.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client.core import GaugeMetricFamily

from config.celery import QUEUES
from config.metrics import work_collector_register
from config.operations import queue_depths
from interventions.models import Intervention
from orgs.models import Zone
from scans.cve.feed_staleness import feed_statuses
from scans.models import ScanJob, ScanSession
from scans.pipeline.workers import ALIVE_WITHIN, workers_alive

ACTIVE_JOBS = (ScanJob.Status.QUEUED, ScanJob.Status.RUNNING, ScanJob.Status.RETRYING)
ACTIVE_SESSIONS = (ScanSession.Status.QUEUED, ScanSession.Status.RUNNING)


@login_required
@require_GET
def status_page(request):
    if not request.user.is_staff:
        raise PermissionDenied("The deployment's status is for its operators (staff accounts).")
    depths = queue_depths()
    workers = workers_alive()
    consumers = {queue: [w.hostname for w in workers if queue in (w.queues or [])] for queue in depths}
    context = {
        "queues": [{"name": q, "depth": d, "workers": consumers.get(q, [])} for q, d in depths.items()],
        "workers": workers,
        "alive_within": int(ALIVE_WITHIN.total_seconds()),
        "jobs": dict(ScanJob.objects.filter(status__in=ACTIVE_JOBS).values_list("status").annotate(n=Count("pk"))),
        "sessions_running": ScanSession.objects.filter(status__in=ACTIVE_SESSIONS).count(),
        "interventions_open": Intervention.objects.unresolved().count(),
        "zones": zones_status(),
    }
    return render(request, "operations/status.html", context)


def zones_status() -> list[dict]:
    """Every zone of the deployment: its workers alive and the messages waiting in its queue."""
    zones = list(Zone.objects.select_related("org").order_by("org__name", "name"))
    if not zones:
        return []
    alive = workers_alive()
    depths = queue_depths(queues=[zone.queue for zone in zones])
    return [{"zone": zone, "queue": zone.queue, "depth": depths.get(zone.queue),
             "workers": [w.hostname for w in alive if w.zone_id == zone.pk]} for zone in zones]


@login_required
@require_GET
def feeds_page(request):
    """The vulnerability feeds (NVD, KEV, EPSS): deployment-wide, so for staff like the status page."""
    if not request.user.is_staff:
        raise PermissionDenied("The vulnerability feeds are the deployment's, for its operators (staff accounts).")
    return render(request, "operations/feeds.html",
                  {"feeds": feed_statuses(), "stale_days": f"{settings.WATCHPOST_FEED_STALE_DAYS:g}"})


class WorkCollector:
    """Gauges read at scrape time: what is queued, running, open and alive."""

    def collect(self):
        depth = GaugeMetricFamily("watchpost_queue_depth", "Messages waiting in each Celery queue", labels=["queue"])
        for queue, count in queue_depths().items():
            if count is not None:
                depth.add_metric([queue], count)
        yield depth

        jobs = GaugeMetricFamily("watchpost_jobs", "Scan jobs waiting or running, by status", labels=["status"])
        counts = dict(ScanJob.objects.filter(status__in=ACTIVE_JOBS).values_list("status").annotate(n=Count("pk")))
        for status in ACTIVE_JOBS:
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs

        hour_ago = timezone.now() - timezone.timedelta(hours=1)
        finished = GaugeMetricFamily("watchpost_jobs_finished_last_hour", "Scan jobs finished in the last hour",
                                     labels=["status"])
        counts = dict(ScanJob.objects.filter(status__in=ScanJob.FINISHED, finished_at__gte=hour_ago)
                      .values_list("status").annotate(n=Count("pk")))
        for status in ScanJob.FINISHED:
            finished.add_metric([status], counts.get(status, 0))
        yield finished

        sessions = GaugeMetricFamily("watchpost_sessions", "Sessions not finished, by status", labels=["status"])
        counts = dict(ScanSession.objects.filter(status__in=ACTIVE_SESSIONS)
                      .values_list("status").annotate(n=Count("pk")))
        for status in ACTIVE_SESSIONS:
            sessions.add_metric([status], counts.get(status, 0))
        yield sessions

        interventions = GaugeMetricFamily("watchpost_interventions_open", "Unresolved interventions, by kind",
                                          labels=["kind"])
        counts = dict(Intervention.objects.unresolved().values_list("kind").annotate(n=Count("pk")))
        for kind, _ in Intervention.Kind.choices:
            interventions.add_metric([kind], counts.get(kind, 0))
        yield interventions

        workers = GaugeMetricFamily("watchpost_workers_alive", "Workers seen recently, by queue they consume",
                                    labels=["queue"])
        per_queue: dict[str, int] = {}
        for worker in workers_alive():
            for queue in worker.queues or []:
                per_queue[queue] = per_queue.get(queue, 0) + 1
        for queue in QUEUES:
            workers.add_metric([queue], per_queue.get(queue, 0))
        yield workers

        zone_workers = GaugeMetricFamily("watchpost_zone_workers_alive", "Workers seen recently, by zone",
                                         labels=["zone", "zone_name", "org"])
        zone_depth = GaugeMetricFamily("watchpost_zone_queue_depth", "Messages waiting in each zone's queue",
                                       labels=["zone", "zone_name", "org"])
        for row in zones_status():
            labels = [str(row["zone"].pk), row["zone"].name, row["zone"].org.slug]
            zone_workers.add_metric(labels, len(row["workers"]))
            if row["depth"] is not None:
                zone_depth.add_metric(labels, row["depth"])
        yield zone_workers
        yield zone_depth


def work_gauges_register() -> None:
    """Called once by ``ScansConfig.ready``: /metrics (in config, which imports no app) serves these gauges."""
    work_collector_register(WorkCollector())
