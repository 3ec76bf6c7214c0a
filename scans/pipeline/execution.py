"""(node, scanner) jobs: admission, claim, run, heartbeat, retry, fan-in.

A job is the unit of status and of retry. Discovery jobs (scanner ``discovery``, on the
``nodes`` queue) and scanner jobs (on the ``scans`` queue) go through the same path:

1. *Admission* (:func:`jobs_pump`): queued jobs wait in the database, not in the
   broker; each organization has at most ``max_concurrent_jobs`` dispatched or running,
   so one tenant's 10,000 jobs cannot sit in front of everyone else's in the queue.
2. *Claim*: ``UPDATE ... SET status=running WHERE status IN (queued, retrying)`` with a
   fresh claim token; a duplicate delivery claims nothing and does nothing.
3. *Run*: the claimed jobs of one message run concurrently in one event loop, each
   under its own time budget, while a thread beats their heartbeat.
4. *Record*: a conditional UPDATE on (status=running, our token) writes the outcome, so
   a job the watchdog already took back is not overwritten. Transient errors retry with
   exponential backoff and jitter; an exhausted or crashed job fails alone and opens an
   intervention.
5. *Fan-in*: whoever finishes the last outstanding job of a stage advances the session.
   Discovery does not wait for a zone with no worker alive: the other nodes go on to their
   scanner jobs, a node discovered later gets its own then, and execution hands on once
   every discovery and scanner job is done.
"""

from __future__ import annotations

import asyncio
import functools
import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import DEFERRED, Exists, F, OuterRef, Q
from django.utils import timezone

from config import prepared
from config.bulk import bulk_insert
from interventions.models import Intervention
from interventions.services import intervention_open, interventions_resolve_after_retry
from nodes.models import Node
from orgs.models import Organization, Zone
from orgs.scope import ScopeError, resolve_and_check
from scans.discovery.discover import discover_many
from scans.findings.candidates import ServiceObservation
from scans.models import ScanJob, ScanProfile, ScanSession
from scans.pipeline import conf, dispatch
from scans.pipeline.windows import held_by_windows, sessions_mark_held, windows_closed
from scans.pipeline.workers import worker_announce, worker_withdraw
from scans.pipeline.zones import (
    OutOfZone,
    ZoneGuard,
    not_waiting_for_a_zone,
    this_worker,
    zone_queue,
    zones_dispatchable,
)
from scans.pipeline.profiles import (
    profile_context,
    profile_max_attempts,
    profile_ports,
    profile_scanner_options,
    profile_timeout,
    profile_udp,
)
from scans.scanners import connections
from scans.scanners.base import ScannerError, ScannerUnavailable, Target, get_scanner, load_all
from scans.scanners.portscan import PROCESS_BUDGET

logger = structlog.get_logger(__name__)

DISCOVERY = "discovery"
ANALYSIS = "cve"  # analysis results are stored as jobs of this pseudo-scanner (no network)
NOT_EXECUTION = (DISCOVERY, ANALYSIS)
UNFINISHED = (ScanJob.Status.QUEUED, ScanJob.Status.RUNNING, ScanJob.Status.RETRYING)
DEFAULT_TIMEOUT = 120.0  # seconds, for a job of a session without a profile

Status = ScanJob.Status
Stage = ScanSession.Stage


class JobTimeout(Exception):
    """The job overran its time budget (a target that accepts and never answers)."""


# Worth another try: the network or the target may answer next time.
TRANSIENT = (JobTimeout, TimeoutError, ConnectionError, OSError)


def is_transient(exc: BaseException) -> bool:
    # Celery's SoftTimeLimitExceeded is matched by name: this module stays runner-agnostic.
    return isinstance(exc, TRANSIENT) or type(exc).__name__ == "SoftTimeLimitExceeded"


def stage_of(scanner: str) -> str:
    return Stage.DISCOVERY if scanner == DISCOVERY else Stage.EXECUTION


def jobs_of_stage(session_id: int, stage: str):
    qs = ScanJob.objects.filter(session_id=session_id)
    return qs.filter(scanner=DISCOVERY) if stage == Stage.DISCOVERY else qs.exclude(scanner__in=NOT_EXECUTION)


def jobs_outstanding(session_id: int, stage: str):
    """The stage's jobs its fan-in waits for. Discovery does not wait for a zone with no worker alive:
    the other zones' nodes go on to their scanner jobs, and the waiting ones follow when a worker comes
    (:func:`stage_check_complete`). Execution waits for its own jobs and for any discovery still to finish."""
    if stage == Stage.DISCOVERY:
        return jobs_of_stage(session_id, stage).filter(status__in=UNFINISHED).filter(not_waiting_for_a_zone())
    return jobs_of_stage(session_id, stage).filter(status__in=UNFINISHED)


def _unfinished_before_analysis(session_id: int):
    """Discovery and scanner jobs not finished: what the execution stage waits for before handing on."""
    return ScanJob.objects.filter(session_id=session_id, status__in=UNFINISHED).exclude(scanner=ANALYSIS)


def task_name_for(scanner: str) -> str:
    return "scans.tasks.discovery_jobs_run" if scanner == DISCOVERY else "scans.tasks.job_run"


def _time_limits(timeout: float) -> dict[str, float]:
    grace = conf.job_grace_seconds()
    # Soft: the task gets an exception it can record; hard: the pool kills it (the watchdog takes over).
    return {"soft_time_limit": timeout + grace, "time_limit": timeout + 2 * grace}


# --- admission ------------------------------------------------------------------------------


def jobs_pump(*, org_id: int) -> int:
    """Dispatch waiting jobs of the organization up to its concurrency limit; returns how many."""
    sent: list[tuple[str, list[int], str, float]] = []
    waiting_jobs = _waiting_jobs(org_id)
    if not waiting_jobs.exists():
        # Nothing waits for admission (the usual case once a session's jobs are all dispatched, when
        # every finished message calls this): no need to lock the organization and count its busy jobs.
        return 0
    with transaction.atomic():
        # One pump per organization at a time, or two could both fill the same free slots.
        org = _org_for_admission(org_id)
        if org is None:
            return 0
        now = timezone.now()
        # A closed scan window holds its zone's jobs back here, the one place jobs are dispatched from.
        closed = windows_closed(org=org, zoned=org.zoned)
        sessions_mark_held(org=org, closed=closed, waiting=waiting_jobs, now=now, marked=org.marked)
        held = held_by_windows(closed)
        if held is not None:
            waiting_jobs = waiting_jobs.exclude(held)
        busy = ScanJob.objects.filter(session__org_id=org_id).filter(
            Q(status=Status.RUNNING) | Q(status__in=(Status.QUEUED, Status.RETRYING), task_id__gt="")
        ).count()
        slots = max(0, org.max_concurrent_jobs - busy)
        if not slots:
            return 0
        waiting_jobs = waiting_jobs.exclude(session__status__in=ScanSession.FINISHED)
        blocked = _zones_blocked(waiting_jobs) if org.zoned else set()
        if blocked:
            # A zone whose jobs may not go now keeps them in the database, holding no slot.
            waiting_jobs = waiting_jobs.exclude(node__zone_id__in=blocked)
        waiting = list(
            waiting_jobs.order_by("session__created_at", "session_id", "id")
            .values("id", "scanner", "session_id", "session__correlation_id", "session__profile_id",
                    "node__zone_id")[:slots]
        )
        if not waiting:
            return 0
        groups: dict[tuple[int, bool, int | None], list[dict]] = defaultdict(list)
        for row in waiting:
            groups[(row["session_id"], row["scanner"] == DISCOVERY, row["node__zone_id"])].append(row)
        timeouts = _profile_timeouts({row["session__profile_id"] for row in waiting})
        assigned: list[tuple[str, list[int]]] = []
        for (_, is_discovery, zone_id), rows in groups.items():
            if is_discovery:  # a message's nodes are swept together: few, even messages
                batches = conf.even_batches(rows, conf.discovery_batch_size())
            else:
                batches = [rows[i:i + conf.job_batch_size()] for i in range(0, len(rows), conf.job_batch_size())]
            for batch in batches:
                ids = [row["id"] for row in batch]
                task_id = uuid.uuid4().hex
                assigned.append((task_id, ids))
                timeout = max(timeouts.get((batch[0]["session__profile_id"], row["scanner"]), DEFAULT_TIMEOUT) for row in batch)
                sent.append((task_name_for(batch[0]["scanner"]), ids, batch[0]["session__correlation_id"], timeout))
                dispatch.enqueue(task_name_for(batch[0]["scanner"]), kwargs={"job_ids": ids}, task_id=task_id,
                                 correlation_id=batch[0]["session__correlation_id"], queue=zone_queue(zone_id),
                                 **_time_limits(timeout))
        _tasks_assigned(assigned, now)
    return sum(len(ids) for _, ids, _, _ in sent)


def _org_for_admission(org_id: int) -> Organization | None:
    """The organization, locked, with what admission asks of it beyond its limit read in the same
    statement: whether it has zones (``zoned``), and whether a session of it is marked as waiting for
    a window (``marked``). Most organizations have neither: their pump then reads no zone's window,
    no worker's presence and no session's mark."""
    return (Organization.objects.select_for_update().filter(pk=org_id)
            .annotate(zoned=Exists(Zone.objects.filter(org_id=OuterRef("pk"))),
                      marked=Exists(ScanSession.objects.filter(org_id=OuterRef("pk"),
                                                               window_waiting_until__isnull=False)))
            .first())


def _zones_blocked(waiting_jobs) -> set[int]:
    """Zones of the waiting jobs whose work may not be dispatched now (``zones_dispatchable``)."""
    if dispatch.is_inline():
        return set()  # one process runs everything: there is no zone worker to wait for
    zone_ids = set(waiting_jobs.filter(node__zone__isnull=False).values_list("node__zone_id", flat=True)
                   .distinct().order_by())
    return zone_ids - zones_dispatchable(zone_ids) if zone_ids else set()


def _waiting_jobs(org_id: int):
    """The organization's jobs waiting for admission: queued, not yet dispatched, session not cancelled."""
    return ScanJob.objects.filter(session__org_id=org_id, status=Status.QUEUED, task_id="",
                                  session__cancel_requested=False)


def _tasks_assigned(assigned: list[tuple[str, list[int]]], now) -> None:
    """Mark each message's jobs as dispatched under its task id (published when the transaction commits).

    A session's fan-out sends 150 messages for 3,000 jobs, and every worker waits for this
    before its first job: the UPDATEs go in one round trip.
    """
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {ScanJob._meta.db_table} SET task_id = %s, queued_at = %s "
                           "WHERE id = ANY(%s) AND task_id = ''", [(task_id, now, ids) for task_id, ids in assigned])


def _profile_timeouts(profile_ids: set[int]) -> dict[tuple[int, str], float]:
    return {(profile.pk, scanner): seconds for profile in ScanProfile.objects.filter(pk__in=profile_ids)
            for scanner, seconds in _scanner_timeouts(profile).items()}


def _scanner_timeouts(profile) -> dict[str, float]:
    """Seconds each job of the profile gets: discovery's and each of its scanners'."""
    if profile is None:
        return {}
    return {scanner: profile_timeout(profile, scanner) for scanner in [DISCOVERY, *profile.scanners]}


# --- run ------------------------------------------------------------------------------------


class Heartbeat(threading.Thread):
    """Calls ``beat()`` every ``interval`` seconds on its own connection until stopped.

    A failed beat (the database restarting, a lock, a dropped connection) is logged and the
    next one tried on a fresh connection: a heartbeat that died for good on one error would
    let the watchdog take the work for dead and re-queue it while it still runs.
    """

    def __init__(self, name: str, interval: float, beat: Callable[[], Any], **log_context: Any) -> None:
        super().__init__(name=name, daemon=True)
        self.interval, self.beat, self.log_context = interval, beat, log_context
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                try:
                    self.beat()
                except Exception:  # noqa: BLE001 - a missed beat is the watchdog's business, not a crash
                    logger.warning("heartbeat.failed", heartbeat=self.name, exc_info=True, **self.log_context)
                    connection.close()  # the next beat opens a fresh connection
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(5)


def job_heartbeat(token: str, interval: float) -> Heartbeat:
    """Touches ``heartbeat_at`` of the jobs claimed under ``token`` while they run."""
    def beat() -> None:
        ScanJob.objects.filter(task_id=token, status=Status.RUNNING).update(heartbeat_at=timezone.now())

    return Heartbeat("job-heartbeat", interval, beat, token=token)


def jobs_run(*, job_ids: list[int]) -> dict[str, int]:
    """Claim, run and record the given jobs. Safe to call twice with the same ids."""
    token = uuid.uuid4().hex
    claimed = _claim(job_ids, token)
    if not claimed:
        logger.info("jobs.nothing_to_claim", job_ids=job_ids)
        return {"claimed": 0}
    guard = ZoneGuard(this_worker().zone_id)
    heartbeat = job_heartbeat(token, conf.heartbeat_seconds())
    heartbeat.start()
    try:
        try:
            # The nodes' connection budgets, bound to their addresses as _target checks them.
            with connections.budgets_active({}):
                outcomes = asyncio.run(_run_all(claimed, guard, _node_budgets(claimed)))
        except Exception as exc:  # noqa: BLE001 - soft time limit, or the loop itself failed
            outcomes = {job.pk: exc for job in claimed}
    finally:
        heartbeat.stop()
    counts = _record(claimed, outcomes, token)
    _hand_over(claimed[0].session, {stage_of(job.scanner) for job in claimed})
    return counts


def _hand_over(session: ScanSession, stages: set[str]) -> None:
    """After a message: admit what waits, and advance a stage none of whose jobs is outstanding.

    Whether anything waits and whether each stage has jobs outstanding are asked in one query;
    the pump and the fan-in, which check again under their locks, run only when it says so.
    Every message ends here, and most find nothing to do.
    """
    outstanding = {f"outstanding_{stage}": Exists(jobs_outstanding(session.pk, stage)) for stage in stages}
    flags = (Organization.objects.filter(pk=session.org_id).order_by()
             .annotate(waiting=Exists(_waiting_jobs(session.org_id)), **outstanding)
             .values("waiting", *outstanding).first())
    if flags is None:
        return
    if flags["waiting"]:
        jobs_pump(org_id=session.org_id)
    for stage in stages:
        if not flags[f"outstanding_{stage}"]:
            stage_check_complete(session_id=session.pk, stage=stage)
        elif stage == Stage.DISCOVERY and session.stage == Stage.EXECUTION:
            # Discovered after the session moved on (its zone had waited for a worker) while another
            # discovery still runs: these nodes need not wait for it to get their scanner jobs.
            stage_check_complete(session_id=session.pk, stage=Stage.EXECUTION)


def _claim(job_ids: list[int], token: str) -> list[ScanJob]:
    # No close_old_connections() here: Celery's Django fix-up does it around every task, and
    # inside a caller's transaction (--inline, tests) it would close the caller's connection.
    # A message's jobs share their session (admission batches them per session): its row, profile
    # and organization are read once, not once per job.
    sessions = {session.pk: session for session in ScanSession.objects.select_related("profile", "org").filter(
        pk__in=ScanJob.objects.filter(id__in=job_ids).values("session_id"))}
    if not sessions:
        return []
    now = timezone.now()
    # Each job's deadline is its scanner's budget under its session's profile.
    deadlines = [(session.pk, scanner, seconds) for session in sessions.values()
                 for scanner, seconds in _scanner_timeouts(session.profile).items()]
    claimed = _claim_in_one_statement(job_ids, token, now, deadlines)
    for job in claimed:
        job.session = sessions[job.session_id]
    return claimed


# What running a job and recording its outcome read (``_target``, ``_record``, an intervention's
# title); any other field is still there when asked for, one query later. Decoding the rest for
# every message (a retried job's earlier raw result, the node's discovery evidence, a dozen
# timestamps a row) cost more than the claim's own statements.
CLAIMED_JOB_FIELDS = ("id", "session_id", "node_id", "scanner", "status", "attempts", "max_attempts", "task_id")
CLAIMED_NODE_FIELDS = ("id", "address", "hostname", "name", "services", "state", "zone_id",
                       "max_new_connections_per_second", "max_connections_at_once")


def _claim_in_one_statement(job_ids, token, now, deadlines) -> list[ScanJob]:
    """The conditional UPDATE returns the claimed rows, joined with their nodes: one round trip.

    On a busy machine every round trip waits for the database's process to get a core, and a
    session's execution claims one message after another.
    """
    job, node, session = ScanJob._meta.db_table, Node._meta.db_table, ScanSession._meta.db_table
    rows = prepared.fetchall(
        f"WITH claimed AS (UPDATE {job} j SET status = %(running)s, attempts = j.attempts + 1, started_at = %(now)s, "
        "worker = %(worker)s, "
        "heartbeat_at = %(now)s, task_id = %(token)s, error = '', deadline_at = %(now)s + make_interval(secs => "
        "COALESCE((SELECT d.seconds FROM unnest(%(d_sessions)s::bigint[], %(d_scanners)s::text[], "
        "%(d_seconds)s::float8[]) AS d(session_id, scanner, seconds) "
        "WHERE d.session_id = j.session_id AND d.scanner = j.scanner), %(default)s)) "
        "WHERE j.id = ANY(%(ids)s) AND j.status = ANY(%(claimable)s) "
        f"AND EXISTS (SELECT 1 FROM {session} s WHERE s.id = j.session_id AND NOT s.cancel_requested) "
        f"RETURNING {', '.join(f'j.{name}' for name in CLAIMED_JOB_FIELDS)}) "
        f"SELECT c.*, {', '.join(f'n.{name}' for name in CLAIMED_NODE_FIELDS)} "
        f"FROM claimed c JOIN {node} n ON n.id = c.node_id ORDER BY c.id",
        {"running": Status.RUNNING, "now": now, "token": token, "ids": list(job_ids), "worker": this_worker().hostname,
         "claimable": [Status.QUEUED, Status.RETRYING], "default": DEFAULT_TIMEOUT,
         "d_sessions": [d[0] for d in deadlines], "d_scanners": [d[1] for d in deadlines],
         "d_seconds": [float(d[2]) for d in deadlines]},
    )
    width = len(CLAIMED_JOB_FIELDS)
    claimed = []
    for row in rows:
        job_row = _from_db(ScanJob, CLAIMED_JOB_FIELDS, row[:width])
        job_row.node = _from_db(Node, CLAIMED_NODE_FIELDS, row[width:])
        claimed.append(job_row)
    return claimed


def _from_db(model, names: tuple[str, ...], values) -> Any:
    """A model instance from some of its columns, converted as a query would (JSON decoded); the
    others deferred."""
    attnames, columns = _row_layout(model, names)
    converted = [DEFERRED if at is None else values[at] if values[at] is None or convert is None
                 else convert(values[at], None, connection) for at, convert in columns]
    return model.from_db(connection.alias, attnames, converted)


@functools.cache
def _row_layout(model, names: tuple[str, ...]) -> tuple[list[str], list[tuple[int | None, Any]]]:
    """How a row of ``names`` becomes ``model``'s values, worked out once per claim statement's shape rather
    than once per row: each of the model's fields in its order, with its place in the row (None: deferred)
    and its converter, if it has one."""
    at = {model._meta.get_field(name).attname: n for n, name in enumerate(names)}
    fields = model._meta.concrete_fields
    return ([field.attname for field in fields],
            [(at.get(field.attname), getattr(field, "from_db_value", None)) for field in fields])


def _node_budgets(jobs: list[ScanJob]) -> dict[int, connections.Budget]:
    """The connection budget of each job's node that has one (its own, its zone's): one query for the zones."""
    zone_ids = {job.node.zone_id for job in jobs if job.node.zone_id is not None}
    zone_rates = dict(Zone.objects.filter(pk__in=zone_ids, max_new_connections_per_second__isnull=False)
                      .values_list("pk", "max_new_connections_per_second")) if zone_ids else {}
    budgets = {}
    for job in jobs:
        node = job.node
        budget = connections.budget_for_node(
            node_id=node.pk, new_per_second=node.max_new_connections_per_second, at_once=node.max_connections_at_once,
            zone_id=node.zone_id, zone_new_per_second=zone_rates.get(node.zone_id))
        if budget is not None:
            budgets[job.pk] = budget
    return budgets


CENTRAL = ZoneGuard(None)


def _target(job: ScanJob, guard: ZoneGuard = CENTRAL, budgets: dict[int, connections.Budget] | None = None) -> Target:
    """The node as a checked scan target: re-checked here, the last point before any packet; on a zone
    worker, refused too when it lies outside the worker's zone.

    A node with a connection budget has it bound to the address every connection goes to.
    """
    node, org = job.node, job.session.org
    checked = resolve_and_check(node.address, scope=[*org.scope_networks, *org.scope_hostnames],
                                allowed_networks=settings.SCAN_ALLOWED_NETWORKS)
    guard.check(address=checked.address, hostname=checked.hostname or node.hostname)
    if budgets and job.pk in budgets:
        connections.budget_bind(checked.address, budgets[job.pk])
    services = tuple(ServiceObservation.from_dict(s) for s in node.services or ())
    return Target(address=checked.address, hostname=node.hostname, ports=tuple(node.open_ports), services=services)


async def _run_all(jobs: list[ScanJob], guard: ZoneGuard, budgets: dict[int, connections.Budget]) -> dict[int, Any]:
    discovery = [job for job in jobs if job.scanner == DISCOVERY]
    others = [job for job in jobs if job.scanner != DISCOVERY]
    found, *results = await asyncio.gather(_discover_all(discovery, guard, budgets),
                                           *(_run_one(job, guard, budgets) for job in others),
                                           return_exceptions=True)
    if isinstance(found, BaseException):
        found = {job.pk: found for job in discovery}
    return {**found, **{job.pk: result for job, result in zip(others, results)}}


async def _discover_all(jobs: list[ScanJob], guard: ZoneGuard, budgets: dict[int, connections.Budget]) -> dict[int, Any]:
    """The message's discovery jobs as one fleet: one sweep over all their nodes, identification alongside.

    Each job keeps its own outcome: its result, or the error (scope, timeout) that ended it.
    """
    PROCESS_BUDGET.resize(conf.discovery_sockets())
    out: dict[int, Any] = {}
    by_profile: dict[int, list[tuple[ScanJob, Target]]] = defaultdict(list)
    for job in jobs:
        try:
            target = _target(job, guard, budgets)
        except Exception as exc:  # noqa: BLE001 - out of scope now: this job fails, the others run
            out[job.pk] = exc
            continue
        # Grouped only once checked: a profile none of whose targets passed has no group to sweep.
        by_profile[job.session.profile_id].append((job, target))
    for group in by_profile.values():
        profile = group[0][0].session.profile
        timeout = profile_timeout(profile, DISCOVERY)
        found = await discover_many([target for _, target in group], profile_ports(profile), profile_context(profile),
                                    timeout=timeout, identify_concurrency=conf.discovery_identify_concurrency(),
                                    udp=profile_udp(profile))
        for (job, _), result in zip(group, found):
            if isinstance(result, TimeoutError):
                result = JobTimeout(f"discovery overran its time budget of {timeout:g}s")
            out[job.pk] = result if isinstance(result, BaseException) else result.to_dict()
    return out


async def _run_one(job: ScanJob, guard: ZoneGuard, budgets: dict[int, connections.Budget]) -> dict[str, Any]:
    profile = job.session.profile
    timeout = profile_timeout(profile, job.scanner)
    context = profile_context(profile)
    target = _target(job, guard, budgets)
    hard = timeout + conf.job_grace_seconds()
    scanner = get_scanner(job.scanner)
    options = profile_scanner_options(profile, job.scanner)
    if not target.services and target.ports and scanner.options.get("ports", (None,))[0] is list:
        # Nothing named by discovery: point the inspector at every open port (as the scan command does).
        options.setdefault("ports", list(target.ports))
    try:
        result = await asyncio.wait_for(scanner.run_async(target, options, budget=timeout, context=context), timeout=hard)
    except TimeoutError:
        raise JobTimeout(f"{job.scanner} overran its hard time limit of {hard:g}s") from None
    data = result.to_dict()
    if not result.complete and "time budget" in (result.error or ""):
        # An overrun keeps what it saw (raw output is never thrown away) but counts as a timeout.
        exc = JobTimeout(f"{job.scanner}: {result.error}")
        exc.raw_result = data  # type: ignore[attr-defined]
        raise exc
    return data


# --- record ---------------------------------------------------------------------------------


def _backoff(attempt: int) -> float:
    base, cap = conf.retry_backoff_seconds(), conf.retry_backoff_max_seconds()
    # Exponential with full jitter around it: retries of many jobs do not arrive in step.
    return min(cap, base * 2 ** max(0, attempt - 1)) * (0.5 + random.random())


def _record(jobs: list[ScanJob], outcomes: dict[int, Any], token: str) -> dict[str, int]:
    if not any(isinstance(outcomes[job.pk], BaseException) for job in jobs):
        # The usual message: jobs that all succeeded. Nothing to retry, nor to open but for nodes found down.
        return _record_successes(jobs, outcomes, token)
    session = jobs[0].session
    now = timezone.now()
    counts = {"succeeded": 0, "failed": 0, "retrying": 0, "cancelled": 0}
    succeeded_ids: set[int] = set()
    to_open: list[tuple[ScanJob, str, str]] = []
    retries: list[tuple[ScanJob, float, str]] = []
    finished_execution = defaultdict(int)
    finished_discovery = 0
    down: list[tuple[ScanJob, dict]] = []
    with transaction.atomic():
        # Lock the rows still ours (running, our token), reading the session's cancel flag with them;
        # then successes are written in one UPDATE. A job the watchdog took back meanwhile is not
        # locked, so not written; the watchdog's own conditional UPDATE waits for this transaction
        # and then finds the row no longer running. One statement per message instead of one per job.
        locked = list(ScanJob.objects.select_for_update(of=("self",)).filter(
            pk__in=[job.pk for job in jobs], status=Status.RUNNING, task_id=token,
        ).values_list("pk", "session__cancel_requested"))
        ours = {pk for pk, _ in locked}
        cancel_requested = any(cancelled for _, cancelled in locked)
        succeeded = [job for job in jobs if not isinstance(outcomes[job.pk], BaseException)]
        written = []
        for job in succeeded:
            if job.pk not in ours:
                continue  # the watchdog took it back meanwhile: its outcome is no longer ours
            _mark_succeeded(job, outcomes[job.pk], now)
            written.append(job)
        _update_rows(ScanJob, written, ["status", "raw_result", "error", "finished_at", "heartbeat_at"])
        discovered = [job for job in written if job.scanner == DISCOVERY]
        _update_rows(Node, [_node_discovered(job, outcomes[job.pk], now) for job in discovered], NODE_DISCOVERED)
        for job in written:
            counts["succeeded"] += 1
            succeeded_ids.add(job.pk)
            if job.scanner == DISCOVERY:
                finished_discovery += 1
                if job.node.state != Node.State.UP:
                    down.append((job, outcomes[job.pk]))
            else:
                finished_execution["succeeded"] += 1
        for job in jobs:
            outcome = outcomes[job.pk]
            if not isinstance(outcome, BaseException):
                continue
            mine = ScanJob.objects.filter(pk=job.pk, status=Status.RUNNING, task_id=token)
            error = f"{type(outcome).__name__}: {outcome}"[:2000]
            raw = getattr(outcome, "raw_result", None)
            transient = is_transient(outcome)
            if cancel_requested:
                status = Status.CANCELLED
            elif transient and job.attempts < job.max_attempts:
                status = Status.RETRYING
            else:
                status = Status.FAILED
            fields: dict[str, Any] = {"status": status, "error": error, "heartbeat_at": now}
            if raw is not None:
                fields["raw_result"] = raw
            if status == Status.RETRYING:
                countdown = _backoff(job.attempts)
                retry_id = uuid.uuid4().hex
                fields.update(task_id=retry_id, queued_at=now + timezone.timedelta(seconds=countdown))
            else:
                fields["finished_at"] = now
            if not mine.update(**fields):
                continue
            if status == Status.RETRYING:
                counts["retrying"] += 1
                retries.append((job, countdown, retry_id))
                continue
            counts[status] += 1
            if job.scanner == DISCOVERY:
                finished_discovery += 1
            else:
                finished_execution[status] += 1
            if status == Status.FAILED:
                kind = _intervention_kind(outcome, transient)
                to_open.append((job, kind, error))
        _session_counted(session.pk, finished_execution, finished_discovery, now)
        for job, countdown, retry_id in retries:
            timeout = profile_timeout(session.profile, job.scanner)
            dispatch.enqueue(task_name_for(job.scanner), kwargs={"job_ids": [job.pk]}, task_id=retry_id,
                             countdown=countdown, correlation_id=session.correlation_id,
                             queue=zone_queue(job.node.zone_id), **_time_limits(timeout))
    for job, kind, error in to_open:
        job_intervention_open(job=job, kind=kind, error=error)
    _nodes_down_open(session, down)
    _resolve_retried(jobs, succeeded_ids)
    logger.info("jobs.recorded", session_id=session.pk, **counts)
    return counts


def _record_successes(jobs: list[ScanJob], outcomes: dict[int, Any], token: str) -> dict[str, int]:
    """Write succeeded jobs (and what discovery found onto their nodes) and count them on their
    session in one statement (its own transaction): one round trip where locking and writing each
    would take five or more (begin, lock, write jobs, write nodes, count, commit). The UPDATE's
    condition (running, our token) skips a job the watchdog took back, as the failures' updates do;
    only the nodes of jobs written are written, and the session counts only the rows written."""
    session = jobs[0].session
    now = timezone.now()
    # The rows go as JSON documents: an array of JSON texts would have each escaped into an
    # array literal, every quote of every raw result.
    as_json = ScanJob._meta.get_field("raw_result").get_db_prep_save
    rows = as_json([{"id": job.pk, "raw_result": outcomes[job.pk], "error": _success_error(outcomes[job.pk])}
                    for job in jobs], connection)
    discovered = [job for job in jobs if job.scanner == DISCOVERY]
    # last_discovered_at is the statement's own "now": the rest of what discovery sets travels as JSON.
    nodes = as_json([{"id": node.pk, **{name: getattr(node, name) for name in NODE_DISCOVERED
                                        if name != "last_discovered_at"}}
                     for node in (_node_discovered(job, outcomes[job.pk], now) for job in discovered)], connection)
    job_table, node_table, session_table = ScanJob._meta.db_table, Node._meta.db_table, ScanSession._meta.db_table
    written = {pk for (pk,) in prepared.fetchall(
        f"WITH written AS (UPDATE {job_table} j SET status = %(succeeded)s, raw_result = v.raw_result, "
        "error = v.error, finished_at = %(now)s, heartbeat_at = %(now)s "
        "FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(id bigint, raw_result jsonb, error text) "
        "WHERE j.id = v.id AND j.status = %(running)s AND j.task_id = %(token)s RETURNING j.id, j.node_id, j.scanner), "
        f"found AS (UPDATE {node_table} n SET services = v.services, protocols = v.protocols, state = v.state, "
        "last_discovered_at = %(now)s, discovery_confidence = v.discovery_confidence, "
        "discovery_evidence = v.discovery_evidence "
        "FROM jsonb_to_recordset(%(nodes)s::jsonb) AS v(id bigint, services jsonb, protocols jsonb, state text, "
        "discovery_confidence double precision, discovery_evidence jsonb) "
        "WHERE n.id = v.id AND n.id IN (SELECT node_id FROM written WHERE scanner = %(discovery)s)), "
        # Discovery jobs count towards the stage's pending jobs only, as failed ones do (_session_counted).
        f"counted AS (UPDATE {session_table} SET "
        "jobs_succeeded = jobs_succeeded + (SELECT count(*) FROM written WHERE scanner <> %(discovery)s), "
        "stage_pending = stage_pending - (SELECT count(*) FROM written), heartbeat_at = %(now)s "
        "WHERE id = %(session)s) "
        "SELECT id FROM written",
        {"succeeded": Status.SUCCEEDED, "running": Status.RUNNING, "now": now, "token": token, "session": session.pk,
         "discovery": DISCOVERY, "rows": rows, "nodes": nodes},
    )}
    for job in jobs:
        if job.pk in written:
            _mark_succeeded(job, outcomes[job.pk], now)
    _nodes_down_open(session, [(job, outcomes[job.pk]) for job in discovered
                               if job.pk in written and job.node.state != Node.State.UP])
    _resolve_retried(jobs, written)
    counts = {"succeeded": len(written), "failed": 0, "retrying": 0, "cancelled": 0}
    logger.info("jobs.recorded", session_id=session.pk, **counts)
    return counts


def _success_error(outcome: dict[str, Any]) -> str:
    """What a succeeded job keeps as its error: the scanner's own note of a partial run, if any."""
    return outcome.get("error", "")[:2000]


def _mark_succeeded(job: ScanJob, outcome: dict[str, Any], now) -> None:
    """The job in memory as its record wrote it."""
    job.status, job.raw_result, job.error = Status.SUCCEEDED, outcome, _success_error(outcome)
    job.finished_at = job.heartbeat_at = now


def _resolve_retried(jobs: list[ScanJob], succeeded_ids: set[int]) -> None:
    """A job a person retried from its intervention has been claimed before (attempts > 1): only
    then can an intervention be waiting for this success."""
    retried = {job.pk for job in jobs if job.pk in succeeded_ids and job.attempts > 1}
    if retried and Intervention.objects.unresolved().filter(job_id__in=retried, retry_count__gt=0).exists():
        for job in jobs:
            if job.pk in retried:
                interventions_resolve_after_retry(job=job)


def _intervention_kind(exc: BaseException, transient: bool) -> str:
    if isinstance(exc, OutOfZone):
        return Intervention.Kind.OUT_OF_ZONE
    if isinstance(exc, (ScannerUnavailable, ScannerError, ScopeError)) or not transient:
        return Intervention.Kind.SCANNER_CRASHED
    if isinstance(exc, (ConnectionError, OSError)) and not isinstance(exc, TimeoutError):
        return Intervention.Kind.NODE_UNREACHABLE
    return Intervention.Kind.JOB_EXHAUSTED


def job_intervention_open(*, job: ScanJob, kind: str, error: str) -> Intervention:
    session = job.session
    what = {
        Intervention.Kind.JOB_EXHAUSTED: f"{job.scanner} on {job.node} failed after {job.attempts} attempt(s)",
        Intervention.Kind.NODE_UNREACHABLE: f"{job.node} unreachable by {job.scanner}",
        Intervention.Kind.SCANNER_CRASHED: f"{job.scanner} crashed on {job.node}",
        Intervention.Kind.STAGE_STUCK: f"{job.scanner} on {job.node} stuck (stale heartbeat or past its deadline)",
        Intervention.Kind.OUT_OF_ZONE: f"{job.scanner} on {job.node} refused by a worker of another zone",
    }[kind]
    return intervention_open(
        org=session.org, kind=kind, subject=f"job:{job.pk}", title=what, session=session, job=job, node=job.node,
        context={"error": error, "attempts": job.attempts, "max_attempts": job.max_attempts, "task_id": job.task_id,
                 "correlation_id": session.correlation_id, "scanner": job.scanner, "node": job.node.address,
                 "session": session.pk, **({"refused_by": this_worker().hostname}
                                            if kind == Intervention.Kind.OUT_OF_ZONE else {})},
    )


def _session_counted(session_id: int, execution: dict[str, int], discovery: int, now) -> None:
    changes: dict[str, Any] = {"heartbeat_at": now}
    for status, n in execution.items():
        changes[f"jobs_{status}"] = F(f"jobs_{status}") + n
    finished = sum(execution.values()) + discovery
    if finished:
        changes["stage_pending"] = F("stage_pending") - finished
    ScanSession.objects.filter(pk=session_id).update(**changes)


NODE_DISCOVERED = ["services", "protocols", "state", "last_discovered_at", "discovery_confidence",
                   "discovery_evidence"]


def _node_discovered(job: ScanJob, data: dict[str, Any], now) -> Node:
    """The job's node with what discovery found set on it (``NODE_DISCOVERED``), in memory; a node
    where nothing answered is down."""
    node = job.node
    protocols = data.get("protocols") or []
    node.services = data.get("services") or []
    node.protocols = sorted({p["protocol"] for p in protocols})
    node.state = Node.State.UP if data.get("open_ports") or data.get("udp_open_ports") else Node.State.DOWN
    node.last_discovered_at = now
    node.discovery_confidence = max((p["confidence"] for p in protocols), default=None)
    node.discovery_evidence = {"protocols": protocols, "portscan": data.get("portscan") or {}}
    return node


def _nodes_down_open(session: ScanSession, down: list[tuple[ScanJob, dict[str, Any]]]) -> None:
    """A node_unreachable intervention for each node discovery found nothing answering on."""
    for job, data in down:
        intervention_open(
            org=session.org, kind=Intervention.Kind.NODE_UNREACHABLE, subject=f"node:{job.node_id}",
            title=f"{job.node} answered on none of {data.get('ports_scanned', 0)} port(s)", session=session,
            node=job.node, context={"session": session.pk, "correlation_id": session.correlation_id,
                                    "portscan": data.get("portscan") or {}, "error": data.get("error", "")},
        )


def _update_rows(model, objects: list, fields: list[str]) -> None:
    """Write ``fields`` of each object to its row (by primary key): one statement with its
    parameters bound on the server, executed for every row in one round trip. ``bulk_update``
    would build a CASE WHEN per row and field, and building those expressions cost more CPU than
    writing the rows; bound on the client, every raw result would be quoted into the statement's
    text. Values are adapted by the fields themselves, as any save would."""
    if not objects:
        return
    meta, quote = model._meta, connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    sql = (f"UPDATE {quote(meta.db_table)} SET {', '.join(f'{quote(f.column)} = %s' for f in columns)} "
           f"WHERE {quote(meta.pk.column)} = %s")
    rows = [[f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns] + [obj.pk] for obj in objects]
    prepared.executemany(sql, rows)


# --- fan-in ---------------------------------------------------------------------------------


def stage_check_complete(*, session_id: int, stage: str) -> bool:
    """Advance the session past a fan-out stage once none of its jobs is outstanding (``jobs_outstanding``)."""
    from scans.pipeline.sessions import stage_advance

    if stage == Stage.EXECUTION:
        return _execution_check_complete(session_id)
    if jobs_outstanding(session_id, stage).exists():
        return False
    if stage_advance(session_id=session_id, from_stage=stage):
        return True
    if stage != Stage.DISCOVERY:
        return False
    # The session had moved past discovery while this node's zone waited for a worker: its scanner
    # jobs are planned now, and the execution stage hands on once they are done.
    return _execution_check_complete(session_id)


def _execution_check_complete(session_id: int) -> bool:
    """Plan the scanner jobs of nodes discovered after scan creation, then advance past execution once
    no discovery or scanner job is left.

    Under the session's row lock: whoever records a job's end also updates the session row, so a
    discovery job finishing meanwhile is either seen finished here (and its node planned) or still
    unfinished (and the stage waits for it); two callers never both plan, nor one advance past the
    other's new jobs.
    """
    from scans.pipeline.sessions import stage_advance

    planned = 0
    with transaction.atomic():
        session = (ScanSession.objects.select_for_update(of=("self",)).select_related("profile")
                   .filter(pk=session_id).first())
        if session is None or session.stage != Stage.EXECUTION or session.is_finished:
            return False
        # A set difference (EXCEPT), not a correlated NOT EXISTS: statistics taken before the session
        # wrote its jobs make the planner rescan the session's jobs once per discovered node.
        late = [] if session.cancel_requested else list(
            ScanJob.objects.filter(session_id=session_id, scanner=DISCOVERY, status=Status.SUCCEEDED,
                                   node__state=Node.State.UP).order_by().values_list("node_id", flat=True)
            .difference(jobs_of_stage(session_id, Stage.EXECUTION).order_by().values_list("node_id", flat=True)))
        if late:
            planned = scanner_jobs_plan(session, late) - session.jobs_total
        if planned:
            ScanSession.objects.filter(pk=session_id).update(
                stage_pending=_unfinished_before_analysis(session_id).count(), heartbeat_at=timezone.now())
            logger.info("session.late_nodes_planned", session_id=session_id, nodes=len(late), jobs=planned)
        outstanding = planned > 0 or _unfinished_before_analysis(session_id).exists()
    if planned:
        jobs_pump(org_id=session.org_id)
    if outstanding:
        return False
    return stage_advance(session_id=session_id, from_stage=Stage.EXECUTION)


def scanner_jobs_plan(session: ScanSession, node_ids: list[int]) -> int:
    """One job per (node, available scanner of the session's profile), unique per (session, node, scanner):
    scan creation's for the nodes discovered by then, and the same for a node discovered later. Returns
    the session's scanner jobs in all (``jobs_total``)."""
    available = load_all()
    scanners, unavailable = [], []
    for name in session.profile.scanners:
        cls = available.get(name)
        reason = "unknown scanner" if cls is None else cls.availability()
        (unavailable if reason else scanners).append(name if not reason else f"{name}: {reason}")
    attempts = profile_max_attempts(session.profile)
    with transaction.atomic():
        bulk_insert([ScanJob(session=session, node_id=node_id, scanner=scanner, max_attempts=attempts)
                     for node_id in node_ids for scanner in scanners], ignore_conflicts=True)
        changes: dict[str, Any] = {"jobs_total": jobs_of_stage(session.pk, Stage.EXECUTION).count()}
        if unavailable:
            changes["summary"] = {**(session.summary or {}), "scanners_unavailable": unavailable}
        ScanSession.objects.filter(pk=session.pk).update(**changes)
    return changes["jobs_total"]


# --- a worker comes and goes ----------------------------------------------------------------


def worker_started(sender=None, **kwargs) -> None:
    """Celery's ``worker_ready``: the worker's presence (with its zone), then the zone's waiting work is
    dispatched at once rather than at the watchdog's next sweep."""
    me = this_worker()
    worker_announce(sender, zone_id=me.zone_id)
    if me.zone_id is None:
        return
    org_ids = set(ScanJob.objects.filter(status=Status.QUEUED, task_id="", node__zone_id=me.zone_id)
                  .exclude(session__status__in=ScanSession.FINISHED)
                  .values_list("session__org_id", flat=True).distinct().order_by())
    for org_id in org_ids:
        try:
            jobs_pump(org_id=org_id)
        except Exception:  # noqa: BLE001 - the watchdog's sweep admits them anyway
            logger.exception("worker.zone_release_failed", zone=me.zone_id, org_id=org_id)


def worker_stopping(sender=None, **kwargs) -> None:
    """Celery's ``worker_shutdown``: the worker's presence row goes with it."""
    if this_worker().hostname:
        worker_withdraw(hostname=this_worker().hostname)
