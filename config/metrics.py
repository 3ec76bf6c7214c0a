"""/metrics in Prometheus text format (prometheus-client), and the request metrics middleware.

Request counters and latency are per process; under gunicorn, set PROMETHEUS_MULTIPROC_DIR
to an empty directory shared by the workers and every worker's counts are summed at scrape
(prometheus-client's multiprocess mode). Gauges about the work (queue depth, jobs, sessions,
interventions, workers) are read from the broker and the database at scrape time.

Access: with WATCHPOST_METRICS_TOKEN set, a scrape must send ``Authorization: Bearer <token>``;
otherwise only clients in WATCHPOST_METRICS_ALLOWED_NETWORKS (default loopback) are answered.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time

from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY

REQUESTS = Counter("watchpost_http_requests_total", "HTTP requests answered, by view, method and status",
                   ["view", "method", "status"])
LATENCY = Histogram("watchpost_http_request_duration_seconds", "Time to answer an HTTP request, by view", ["view"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))


class MetricsMiddleware:
    """Counts and times every request under the name of the view that answered it (bounded labels)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match is not None else "unresolved"
        LATENCY.labels(view=view).observe(time.perf_counter() - started)
        REQUESTS.labels(view=view, method=request.method if request.method in _METHODS else "other",
                        status=str(response.status_code)).inc()
        return response


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class WorkCollector:
    """Gauges read at scrape time: what is queued, running, open and alive."""

    def collect(self):
        from config.operations import queue_depths, workers_alive
        from interventions.models import Intervention
        from scans.models import ScanJob, ScanSession

        depth = GaugeMetricFamily("watchpost_queue_depth", "Messages waiting in each Celery queue", labels=["queue"])
        for queue, count in queue_depths().items():
            if count is not None:
                depth.add_metric([queue], count)
        yield depth

        active = (ScanJob.Status.QUEUED, ScanJob.Status.RUNNING, ScanJob.Status.RETRYING)
        jobs = GaugeMetricFamily("watchpost_jobs", "Scan jobs waiting or running, by status", labels=["status"])
        counts = dict(ScanJob.objects.filter(status__in=active).values_list("status").annotate(n=Count("pk")))
        for status in active:
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
        counts = dict(ScanSession.objects.filter(status__in=(ScanSession.Status.QUEUED, ScanSession.Status.RUNNING))
                      .values_list("status").annotate(n=Count("pk")))
        for status in (ScanSession.Status.QUEUED, ScanSession.Status.RUNNING):
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
        from config.celery import QUEUES

        for queue in QUEUES:
            workers.add_metric([queue], per_queue.get(queue, 0))
        yield workers


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(WorkCollector())
        return registry
    return _SINGLE_PROCESS


_SINGLE_PROCESS = CollectorRegistry()
_SINGLE_PROCESS.register(WorkCollector())


def _allowed(request) -> bool:
    token = getattr(settings, "WATCHPOST_METRICS_TOKEN", "")
    if token:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        return header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode())
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in settings.WATCHPOST_METRICS_ALLOWED_NETWORKS)


@require_safe
@never_cache
def metrics(request):
    if not _allowed(request):
        return HttpResponse("Forbidden: /metrics needs the metrics token or an allowed address.\n", status=403,
                            content_type="text/plain")
    body = generate_latest(REGISTRY) + generate_latest(_registry())
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
