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
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
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

# Collectors of gauges about the work, read at scrape time. The app that owns the work registers
# them in its AppConfig.ready (scans.operations), so config imports no app.
WORK_COLLECTORS: list = []
_SINGLE_PROCESS = CollectorRegistry()


def work_collector_register(collector) -> None:
    """``collector.collect()`` yields metric families; it is asked at every scrape."""
    WORK_COLLECTORS.append(collector)
    _SINGLE_PROCESS.register(collector)


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in WORK_COLLECTORS:
            registry.register(collector)
        return registry
    return _SINGLE_PROCESS


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
