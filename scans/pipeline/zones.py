"""Zones in the pipeline: which queue a job travels on, whether it may be dispatched now, and the
checks a zone worker makes (at its start, and before every target).

- A job of a node in a zone goes to the zone's queue (``zone-<id>``); every other job, and every
  stage, stays on the central queues.
- :func:`zones_dispatchable` is the one question admission asks before it sends a zone's jobs:
  may they go now? Today: only while a worker of the zone is alive, so a zone without a worker
  holds none of the organization's concurrency slots and its jobs wait in the database.
  :func:`not_waiting_for_a_zone` asks the same in a query: a stage's fan-in does not wait for such
  work (discovery hands over; a node discovered later gets its scanner jobs then).
- A worker started with ``WATCHPOST_ZONE`` checks the zone exists before it consumes anything
  (:func:`worker_zone_check`), and refuses, before any packet, a target outside its zone
  (:func:`zone_target_check`).
- :func:`zones_unavailable_sweep` (the watchdog's): one ``zone_unavailable`` intervention per
  zone whose work has waited past ``WATCHPOST_ZONE_GRACE_SECONDS``; resolved once a worker is back.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import structlog
from django.db import connection
from django.db.models import Count, Exists, Min, OuterRef, Q
from django.utils import timezone

from interventions.models import Intervention
from interventions.services import InterventionTransitionError, intervention_open, intervention_resolve
from orgs.models import Zone
from orgs.scope import ScopeError
from orgs.zones import ZonePlacer, ip_or_none, zone_for_worker
from scans.models import ScanJob, ScanSession, WorkerHeartbeat
from scans.pipeline import conf, dispatch
from scans.pipeline.workers import ALIVE_WITHIN

logger = structlog.get_logger(__name__)

UNFINISHED = (ScanJob.Status.QUEUED, ScanJob.Status.RUNNING, ScanJob.Status.RETRYING)
WAITING = (ScanJob.Status.QUEUED, ScanJob.Status.RETRYING)


def zone_queue(zone_id: int | None) -> str | None:
    """The queue of a zone's jobs; None for the default zone (the task's own route)."""
    return f"zone-{zone_id}" if zone_id is not None else None


# --- may a zone's jobs be dispatched now ---------------------------------------------------------


def zones_alive(zone_ids: Iterable[int], *, now: datetime | None = None) -> set[int]:
    """The zones among ``zone_ids`` with a worker seen recently."""
    zone_ids = [z for z in zone_ids if z is not None]
    if not zone_ids:
        return set()
    now = now or timezone.now()
    return set(WorkerHeartbeat.objects.filter(zone_id__in=zone_ids, seen_at__gte=now - ALIVE_WITHIN)
               .values_list("zone_id", flat=True).distinct())


def zones_dispatchable(zone_ids: Iterable[int | None], *, now: datetime | None = None) -> set[int | None]:
    """Of ``zone_ids`` (None: the default zone), those whose jobs may be dispatched now.

    The default zone's always may (the central workers are the deployment's business: without
    them nothing runs at all). A zone's may while one of its workers is alive; a zone's scan window
    or rate budget, when it has one, is asked here too.
    """
    zone_ids = set(zone_ids)
    allowed = {None} & zone_ids
    return allowed | zones_alive(zone_ids - {None}, now=now)


def not_waiting_for_a_zone(*, now: datetime | None = None) -> Q:
    """The jobs (a ``ScanJob`` filter) that are *not* waiting for a worker of their zone: running, of the
    default zone, or of a zone with a worker alive (:func:`zones_dispatchable`'s answer, as one condition
    a query can carry). A stage's fan-in does not wait for the others: they go on when their worker comes."""
    if dispatch.is_inline():
        return Q()  # one process runs everything: there is no zone worker to wait for
    now = now or timezone.now()
    alive = WorkerHeartbeat.objects.filter(zone_id=OuterRef("node__zone_id"), seen_at__gte=now - ALIVE_WITHIN)
    return ~Q(status__in=WAITING) | Q(node__zone__isnull=True) | Q(Exists(alive))


# --- waiting for a zone ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZoneWait:
    zone: Zone
    since: datetime
    jobs: int


def zones_waiting(*, session_ids: Iterable[int] | None = None, now: datetime | None = None) -> list[ZoneWait]:
    """Zones whose unfinished work (of unfinished sessions) waits because no worker of theirs is alive;
    ``since``: when the oldest of it was queued."""
    now = now or timezone.now()
    jobs = ScanJob.objects.filter(status__in=WAITING, node__zone__isnull=False,
                                  session__cancel_requested=False).exclude(session__status__in=ScanSession.FINISHED)
    if session_ids is not None:
        jobs = jobs.filter(session_id__in=list(session_ids))
    rows = list(jobs.values("node__zone_id").annotate(since=Min("queued_at"), n=Count("id")).order_by())
    if not rows:
        return []
    dead = {row["node__zone_id"] for row in rows} - zones_alive({row["node__zone_id"] for row in rows}, now=now)
    if not dead:
        return []
    zones = Zone.objects.select_related("org").in_bulk(dead)
    return sorted((ZoneWait(zones[row["node__zone_id"]], row["since"], row["n"]) for row in rows
                   if row["node__zone_id"] in dead and row["node__zone_id"] in zones), key=lambda w: w.since)


def sessions_waiting_for_zones(*, now: datetime | None = None) -> set[int]:
    """Unfinished sessions with work waiting for a zone that has no worker alive."""
    now = now or timezone.now()
    rows = set(ScanJob.objects.filter(status__in=WAITING, node__zone__isnull=False)
               .exclude(session__status__in=ScanSession.FINISHED)
               .values_list("session_id", "node__zone_id").distinct().order_by())
    if not rows:
        return set()
    alive = zones_alive({zone_id for _, zone_id in rows}, now=now)
    return {session_id for session_id, zone_id in rows if zone_id not in alive}


def session_zones_waiting(session: ScanSession) -> list[ZoneWait]:
    """What the session page says: "waiting for zone X since …"."""
    if session.is_finished or session.stage not in (ScanSession.Stage.DISCOVERY, ScanSession.Stage.EXECUTION):
        return []  # only the stages whose jobs run on workers wait for a zone's
    return zones_waiting(session_ids=[session.pk])


def zone_grace_seconds() -> float:
    """How long a zone's work waits for a worker before a person is told (``zone_unavailable``)."""
    return conf._number("WATCHPOST_ZONE_GRACE_SECONDS", 600)


def zones_unavailable_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Open one ``zone_unavailable`` intervention per zone whose work has waited past the grace period
    (not bumped on every sweep); resolve it once a worker of the zone is alive again."""
    now = now or timezone.now()
    counts = {"zones_unavailable": 0, "zones_back": 0}
    grace = timezone.timedelta(seconds=zone_grace_seconds())
    waits = zones_waiting(now=now)
    for wait in waits:
        if now - wait.since < grace:
            continue
        subject = f"zone:{wait.zone.pk}"
        if Intervention.objects.unresolved().filter(org_id=wait.zone.org_id, subject=subject,
                                                    kind=Intervention.Kind.ZONE_UNAVAILABLE).exists():
            continue
        intervention_open(
            org=wait.zone.org, kind=Intervention.Kind.ZONE_UNAVAILABLE, subject=subject,
            title=f"No worker of zone {wait.zone.name} for {int((now - wait.since).total_seconds() // 60)} min: "
                  f"{wait.jobs} job(s) wait",
            context={"zone": wait.zone.pk, "zone_name": wait.zone.name, "queue": wait.zone.queue,
                     "waiting_since": wait.since.isoformat(), "jobs_waiting": wait.jobs,
                     "hint": f"start a worker: WATCHPOST_ZONE={wait.zone.pk} celery -A config worker "
                             f"-Q {wait.zone.queue}"},
        )
        counts["zones_unavailable"] += 1
    open_ones = list(Intervention.objects.unresolved().filter(kind=Intervention.Kind.ZONE_UNAVAILABLE))
    if open_ones:
        zone_ids = {int(i.subject.split(":", 1)[1]) for i in open_ones if i.subject.split(":", 1)[1].isdigit()}
        back = zones_alive(zone_ids, now=now)
        for intervention in open_ones:
            if intervention.subject.split(":", 1)[1].isdigit() and int(intervention.subject.split(":", 1)[1]) in back:
                try:
                    intervention_resolve(intervention=intervention, by=None, note="A worker of the zone is back.")
                    counts["zones_back"] += 1
                except InterventionTransitionError:
                    pass  # a person closed it meanwhile
    return {k: v for k, v in counts.items() if v}


# --- the zone worker -------------------------------------------------------------------------


@dataclass(slots=True)
class _ThisWorker:
    hostname: str = ""
    zone_id: int | None = None


# Set once in the worker's main process before its pool forks: every pool process inherits it.
THIS_WORKER = _ThisWorker()


def this_worker() -> _ThisWorker:
    return THIS_WORKER


class OutOfZone(ScopeError):
    """A zone worker refused a target outside its zone: it never connects to it."""


def worker_zone_check(sender=None, instance=None, **kwargs) -> None:
    """Celery's ``celeryd_after_setup``, before the worker consumes anything: note its name, and with
    ``WATCHPOST_ZONE`` set, the zone it serves, or exit with the reason when that names no zone."""
    THIS_WORKER.hostname = str(sender or getattr(instance, "hostname", "") or "")
    value = os.environ.get("WATCHPOST_ZONE", "")
    if not value.strip():
        THIS_WORKER.zone_id = None
        return
    try:
        zone = zone_for_worker(value)
    except ValueError as error:
        logger.error("worker.zone_refused", reason=str(error))
        print(f"watchpost: this worker will not start: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    finally:
        connection.close()  # the pool's processes must not inherit this connection
    THIS_WORKER.zone_id = zone.pk
    queues = {q.name for q in instance.app.amqp.queues.consume_from.values()} if instance is not None else set()
    if queues and zone.queue not in queues:
        logger.warning("worker.zone_queue_not_consumed", zone=zone.pk, queue=zone.queue, queues=sorted(queues))
    logger.info("worker.zone", zone=zone.pk, zone_name=zone.name, queue=zone.queue)


class ZoneGuard:
    """A zone worker's check of a message's targets: its zone read once per message."""

    def __init__(self, zone_id: int | None) -> None:
        self.zone_id = zone_id
        self.zone = Zone.objects.filter(pk=zone_id).first() if zone_id is not None else None
        self.placer = ZonePlacer([self.zone] if self.zone else [])

    def check(self, *, address: str, hostname: str = "") -> None:
        """Refuse (:class:`OutOfZone`) a target the zone does not hold; a central worker checks nothing."""
        if self.zone_id is None:
            return
        if self.zone is None:
            raise OutOfZone(f"refused {address}: this worker's zone {self.zone_id} no longer exists",
                            target=address, address=address, boundary="zone")
        name = hostname or ("" if ip_or_none(address) else address)
        if not self.placer.holds(self.zone.pk, address=address, hostname=name):
            raise OutOfZone(f"refused {address}: outside zone {self.zone.name!r} served by this worker "
                            f"({', '.join([*self.zone.networks, *self.zone.hostnames]) or 'nothing'})",
                            target=address, address=address, boundary="zone")
