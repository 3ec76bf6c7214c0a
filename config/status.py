"""The operators' status page: queue depth per queue and the workers alive (deployment-wide, staff only).

Queue depth and workers are the deployment's, shared by every tenant, so only staff (the
people who run the deployment) see them; members of organizations see their own work in
their sessions and interventions.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import render
from django.views.decorators.http import require_GET

from config.operations import ALIVE_WITHIN, queue_depths, workers_alive


@login_required
@require_GET
def status_page(request):
    if not request.user.is_staff:
        raise PermissionDenied("The deployment's status is for its operators (staff accounts).")
    from interventions.models import Intervention
    from scans.models import ScanJob, ScanSession

    depths = queue_depths()
    workers = workers_alive()
    consumers = {queue: [w.hostname for w in workers if queue in (w.queues or [])] for queue in depths}
    context = {
        "queues": [{"name": q, "depth": d, "workers": consumers.get(q, [])} for q, d in depths.items()],
        "workers": workers,
        "alive_within": int(ALIVE_WITHIN.total_seconds()),
        "jobs": dict(ScanJob.objects.filter(status__in=(ScanJob.Status.QUEUED, ScanJob.Status.RUNNING,
                                                        ScanJob.Status.RETRYING))
                     .values_list("status").annotate(n=Count("pk"))),
        "sessions_running": ScanSession.objects.filter(status__in=(ScanSession.Status.QUEUED,
                                                                   ScanSession.Status.RUNNING)).count(),
        "interventions_open": Intervention.objects.unresolved().count(),
    }
    return render(request, "operations/status.html", context)
