"""``bench pipeline --nodes N``: one standard-profile session over N loopback nodes on real workers.

Needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL). Serves N lab nodes on distinct
127.1.x.y addresses (ssh, http, https each), starts Celery worker subprocesses, runs a
session through all seven stages, and runs the same discovery and scanners over the
same targets directly (no database, no broker, same number of processes and the same
jobs-per-message concurrency): total / direct - 1 is what orchestration costs. The two
take turns for ``--rounds`` rounds (pipeline first, then direct first, ...) after
``--warmup`` rounds that are not counted, and the figures are the rounds' medians, each
round's shown beside them.

With ``--zones Z`` every round also runs the session a third time with the nodes split between Z
zones, one zone worker each beside the central ones: the JSON line keeps its keys (the session
without zones) and adds ``"zones"``, the zoned session's figures and its total against the other's.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import os
import resource
import subprocess
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from statistics import median
from typing import Any, TextIO

from django.core.management import CommandError
from django.db import connection
from django.utils import timezone

from nodes.models import Node
from nodes.services import nodes_create
from orgs.models import Organization
from orgs.zones import zone_create
from scans.benchmarks import print_table
from scans.benchmarks.processes import start_worker, stop
from scans.discovery.discover import discover_many
from scans.findings.candidates import ServiceObservation
from scans.lab import Lab, tls
from scans.lab.services import start_node
from scans.models import ScanJob, ScanProfile, ScanSession, WorkerHeartbeat
from scans.pipeline import conf
from scans.pipeline.profiles import profile_context, profile_ports
from scans.pipeline.sessions import STAGES, session_start
from scans.scanners.base import Target, get_scanner
from scans.scanners.portscan import PROCESS_BUDGET

help = "N loopback nodes through all seven stages on Celery workers (PostgreSQL + Redis); orchestration overhead"
KINDS = ("ssh", "http", "https")


def add_arguments(parser) -> None:
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (each with --concurrency children)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--rounds", type=int, default=5,
                        help="pipeline and direct run this many times each, taking turns; the figures are medians")
    parser.add_argument("--warmup", type=int, default=1,
                        help="rounds run first and not counted, so no measured side pays for first use")
    parser.add_argument("--zones", type=int, default=0,
                        help="also run each round's session with the nodes split between this many zones, one "
                             "zone worker each beside the central ones")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark organization and its rows")


def addresses(count: int) -> list[str]:
    # 127.1.0.0/16: clear of 127.0.0.1, where the real PostgreSQL and Redis listen.
    return [f"127.1.{i // 250}.{i % 250 + 1}" for i in range(count)]


def run(options: dict[str, Any], out: TextIO) -> dict[str, Any]:
    if not os.environ.get("REDIS_URL"):
        raise CommandError("bench pipeline needs Redis (REDIS_URL)")
    if options["rounds"] < 1 or options["warmup"] < 0:
        raise CommandError("--rounds must be at least 1 and --warmup at least 0")
    if not 0 <= options.get("zones", 0) <= 16 or options.get("zones", 0) > options["nodes"]:
        raise CommandError("--zones must be between 0 and 16, and at most --nodes")
    profile = _profile(options)  # before serving a thousand nodes: an unknown name fails at once
    count = options["nodes"]
    nodes = addresses(count)
    out.write(f"Serving {count} lab nodes ({', '.join(KINDS)} each) on 127.1.x.y ...\n")
    began = time.monotonic()
    rounds = []
    with Lab() as lab:
        certs = tls.CertFactory()
        for address in nodes:
            start_node(lab, address, KINDS, certs=certs)
        out.write(f"  lab ready in {time.monotonic() - began:.1f}s\n")
        for n in range(options["warmup"]):
            # Not counted: whichever side ran first would otherwise also pay for the lab's, the
            # database's and the machine's first use.
            out.write(f"Warm-up round {n + 1} of {options['warmup']} (not counted)\n")
            warm = _round(options, profile, nodes, pipeline_first=True, out=out)
            out.write(f"  warm-up: total {warm['pipeline']['total']:.1f}s, direct {warm['direct']['total']:.1f}s\n")
        for n in range(options["rounds"]):
            # Pipeline and direct run take turns (ABBA): on a shared machine a neighbour's burst, or
            # a drift in the machine's speed, then weighs on both sides alike instead of on one.
            out.write(f"Round {n + 1} of {options['rounds']}\n")
            rounds.append(_round(options, profile, nodes, pipeline_first=n % 2 == 0, out=out))
        certs.cleanup()
    return _report(options, rounds, out)


def _round(options, profile, nodes, *, pipeline_first: bool, out) -> dict[str, Any]:
    """One pipeline session and one direct run over the same served nodes, with their CPU seconds.

    CPU seconds beside wall seconds: on a shared machine the wall clock also counts the
    neighbours; the CPU each side spent says whether orchestration did more work.
    """
    measured: dict[str, Any] = {}
    sides = ("pipeline", "zoned", "direct") if pipeline_first else ("direct", "zoned", "pipeline")
    for side in sides:
        if side == "zoned" and not options.get("zones"):
            continue
        mark = _cpu()
        if side == "direct":
            measured[side] = _direct(options, profile, nodes, out)
        else:
            measured[side] = _pipeline(options, profile, nodes, out, zones=options.get("zones", 0) if side == "zoned"
                                       else 0)
        done = _cpu()
        measured[side]["cpu"] = {"processes": done[0] - mark[0], "lab": done[1] - mark[1]}
    return measured


def _cpu() -> tuple[float, float]:
    """(CPU seconds of finished child processes: workers or the direct pool, CPU seconds of this process: the lab)."""
    children, own = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    return children.ru_utime + children.ru_stime, own.ru_utime + own.ru_stime


def _zones_create(org, nodes: list[str], count: int) -> list:
    """``count`` zones holding consecutive shares of the nodes, each as the few CIDRs that cover its share."""
    zones = []
    share = -(-len(nodes) // count)
    for n in range(count):
        part = [ipaddress.ip_address(a) for a in nodes[n * share:(n + 1) * share]]
        networks = [str(net) for net in ipaddress.collapse_addresses(ipaddress.ip_network(a) for a in part)]
        zones.append(zone_create(org=org, name=f"bench zone {n + 1}", networks=networks))
    return zones


def _pipeline(options, profile, nodes, out, zones: int = 0):
    # Earlier runs' deleted rows, on a server with autovacuum off (as CI's is), would make this run
    # scan dead tuples and plan from stale statistics: start every run from the same state.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    slug = f"bench-{int(time.time())}-{uuid.uuid4().hex[:6]}"
    org = Organization.objects.create(name=f"Benchmark {slug}", slug=slug, scope_networks=["127.1.0.0/16"],
                                      max_concurrent_jobs=10_000)
    nodes_create(org=org, nodes=[Node(org=org, address=a, resolved_ip=a) for a in nodes], batch_size=2000)
    zoned = _zones_create(org, nodes, zones) if zones else []
    since = timezone.now()
    workers = [start_worker(f"bench{n}", concurrency=options["concurrency"], log=f"/tmp/watchpost-bench-worker-{n}.log")
               for n in range(options["workers"])]
    workers += [start_worker(f"benchzone{n}", concurrency=options["concurrency"], queues=zone.queue,
                             env={"WATCHPOST_ZONE": str(zone.pk)}, log=f"/tmp/watchpost-bench-zone-worker-{n}.log")
                for n, zone in enumerate(zoned)]
    names = [f"bench{n}@" for n in range(options["workers"])] + [f"benchzone{n}@" for n in range(len(zoned))]
    try:
        _wait_for_workers(workers, out, since, names=names)
        connection.close()
        started, began_at = time.monotonic(), timezone.now()
        session = session_start(org=org, trigger=ScanSession.Trigger.CLI, profile=profile,
                                correlation_id=f"{slug}-session")
        last = ""
        while time.monotonic() - started < options["timeout"]:
            session.refresh_from_db()
            line = (f"  {time.monotonic() - started:6.1f}s {session.stage:<14} pending {max(session.stage_pending, 0):>5}"
                    f"  jobs {session.jobs_finished}/{session.jobs_total}")
            if line.split("s ", 1)[1] != last:
                out.write(line + "\n")
                last = line.split("s ", 1)[1]
            if session.is_finished:
                break
            if any(worker.poll() is not None for worker in workers):
                raise RuntimeError("a worker exited; see /tmp/watchpost-bench-worker-*.log")
            # Seldom: this process also serves the lab, and every poll takes the lab's thread off the
            # interpreter for a moment. The total comes from the session's own finish time, not the poll.
            time.sleep(1.0)
        else:
            raise RuntimeError(f"session {session.pk} not finished after {options['timeout']}s")
        wall = (session.finished_at - began_at).total_seconds()
    finally:
        for worker in workers:
            stop(worker)
    figures = _session_figures(session, wall)
    if zoned:
        # Every network job ran on a worker of its node's zone, or the zoned figures mean nothing.
        prefixes = {zone.pk: f"benchzone{n}@" for n, zone in enumerate(zoned)}
        figures["jobs_off_zone"] = sum(
            1 for zone_id, worker in ScanJob.objects.filter(session=session).exclude(scanner="cve")
            .values_list("node__zone_id", "worker") if not worker.startswith(prefixes.get(zone_id, "-")))
    if not options["keep"]:
        org.delete()
    return figures


def _session_figures(session, wall: float) -> dict[str, Any]:
    timings = session.stage_timings or {}
    jobs = ScanJob.objects.filter(session=session)
    raws = list(jobs.exclude(scanner="cve").values_list("scanner", "raw_result"))
    durations = [(scanner, float((raw or {}).get("duration") or 0)) for scanner, raw in raws]
    return {
        "services": sum(len(named or ()) for named in Node.objects.filter(org_id=session.org_id)
                        .values_list("services", flat=True)),
        "findings": sum(len((raw or {}).get("findings") or ()) for scanner, raw in raws if scanner != "discovery"),
        "status": session.status, "total": wall, "findings_new": session.findings_new,
        "stages": {stage: float((timings.get(stage) or {}).get("seconds") or 0.0) for stage in STAGES},
        # The slowest node's discovery inside its worker: the stage's seconds minus this is dispatch and recording.
        "slowest_discovery": max((seconds for scanner, seconds in durations if scanner == "discovery"), default=0.0),
        "scanner_seconds": sum(seconds for _, seconds in durations),
        "jobs": dict(Counter(jobs.exclude(scanner__in=["discovery", "cve"]).values_list("status", flat=True))),
    }


def _wait_for_workers(workers: list[subprocess.Popen], out: TextIO, since, seconds: float = 120,
                      names: list[str] | None = None) -> None:
    """Until every worker is ready: a worker's start-up (Django, imports) is not the session's time.

    Read from the presence rows workers write when ready (``scans.pipeline.workers``) rather than
    asked over the broker: a remote-control ping would leave broker connections in this
    process, which the direct run's processes then inherit by fork.
    """

    began = time.monotonic()
    names = names or [f"bench{n}@" for n in range(len(workers))]
    while time.monotonic() - began < seconds:
        if any(worker.poll() is not None for worker in workers):
            raise RuntimeError("a worker exited; see /tmp/watchpost-bench-*worker-*.log")
        ready = list(WorkerHeartbeat.objects.filter(seen_at__gte=since).values_list("hostname", flat=True))
        if all(any(host.startswith(name) for host in ready) for name in names):
            out.write(f"  {len(workers)} worker(s) ready in {time.monotonic() - began:.1f}s\n")
            return
        time.sleep(0.2)
    raise RuntimeError(f"workers not ready after {seconds:g}s")


# --- the same work, direct -------------------------------------------------------------------


def _profile(options):
    # The benchmark's organization is new and has no profiles of its own: a built-in one, by name.
    profile = ScanProfile.objects.filter(org=None, slug=options["profile"]).first()
    if profile is None:
        raise CommandError(f"unknown built-in scan profile {options['profile']!r}")
    return profile


def _direct(options, profile, nodes, out) -> dict[str, Any]:
    """Discovery then the profile's scanners over the same targets, no database or broker."""
    # The pool's processes are forked from this one: none of them may inherit (and, exiting, close)
    # this process's database connection.
    connection.close()
    processes = options["workers"] * options["concurrency"]
    batch = conf.job_batch_size()
    ports = profile_ports(profile)
    context = profile_context(profile)
    chunks = conf.even_batches(nodes, conf.discovery_batch_size())  # as the pipeline splits them
    out.write(f"  direct run: same targets, {processes} processes, the same jobs per message ...\n")
    # Frozen as a worker's pool process freezes what it inherits (config/celery.py): these inherit
    # this process's Django and the whole lab, and walking those in every full collection is not
    # the scanners' work either.
    with ProcessPoolExecutor(processes, initializer=gc.freeze) as pool:
        t0 = time.monotonic()
        found = {}
        for part in pool.map(_discover_chunk, [(chunk, ports, context) for chunk in chunks]):
            found.update(part)
        discovery = time.monotonic() - t0
        work = [(address, scanner, found[address]) for address in nodes for scanner in profile.scanners
                if found.get(address)]
        t1 = time.monotonic()
        findings = sum(pool.map(_scan_chunk, [(work[i:i + batch], dict(profile.options or {}), context)
                                              for i in range(0, len(work), batch)]))
        scanning = time.monotonic() - t1
    # What the run found, beside the session's: the same work on both sides, not just the same call.
    services = sum(len(named) for named in found.values())
    return {"discovery": discovery, "scanning": scanning, "total": discovery + scanning, "services": services,
            "findings": findings}


def _discover_chunk(args):
    chunk, ports, context = args

    PROCESS_BUDGET.resize(conf.discovery_sockets())
    results = asyncio.run(discover_many(chunk, ports, context,
                                        identify_concurrency=conf.discovery_identify_concurrency()))
    return {r.address: [s.to_dict() for s in r.services] if r.open_ports else [] for r in results}


def _scan_chunk(args):
    chunk, options, context = args

    async def all_of():
        async def one(address, scanner, services):
            observed = tuple(ServiceObservation.from_dict(s) for s in services)
            target = Target(address, ports=tuple(sorted({s.port for s in observed})), services=observed)
            return await get_scanner(scanner).run_async(target, dict(options.get(scanner) or {}), context=context)

        return await asyncio.gather(*(one(*item) for item in chunk), return_exceptions=True)

    results = asyncio.run(all_of())
    return sum(len(result.findings) for result in results if not isinstance(result, BaseException))


def _report(options, rounds, out) -> dict[str, Any]:
    pipelines = [r["pipeline"] for r in rounds]
    directs = [r["direct"] for r in rounds]
    # Each round's overhead pairs a session with the direct run beside it; the figure is their median,
    # so one round that met a neighbour's burst moves it no more than it should.
    overheads = [p["total"] / d["total"] - 1 for p, d in zip(pipelines, directs)]
    table = [(stage, [p["stages"][stage] for p in pipelines]) for stage in STAGES] + [
        ("discovery: slowest node in its worker", [p["slowest_discovery"] for p in pipelines]),
        ("total (wall)", [p["total"] for p in pipelines]),
        ("direct: discovery", [d["discovery"] for d in directs]),
        ("direct: scanners", [d["scanning"] for d in directs]),
        ("direct: total", [d["total"] for d in directs]),
        ("overhead, %", [100 * o for o in overheads]),
        ("services identified: pipeline", [p["services"] for p in pipelines]),
        ("services identified: direct", [d["services"] for d in directs]),
        ("scanner findings: pipeline", [p["findings"] for p in pipelines]),
        ("scanner findings: direct", [d["findings"] for d in directs]),
        ("cpu: worker processes", [p["cpu"]["processes"] for p in pipelines]),
        ("cpu: direct processes", [d["cpu"]["processes"] for d in directs]),
        ("cpu: lab, pipeline run", [p["cpu"]["lab"] for p in pipelines]),
        ("cpu: lab, direct run", [d["cpu"]["lab"] for d in directs]),
    ]
    header = ["seconds"] + [f"round {n + 1}" for n in range(len(rounds))] + (["median"] if len(rounds) > 1 else [])
    print_table(out, f"Pipeline: {options['nodes']} nodes, {options['profile']} profile, "
                     f"{options['workers']}x{options['concurrency']} worker processes, {len(rounds)} round(s)",
                header, [[name, *values] + ([median(values)] if len(rounds) > 1 else []) for name, values in table])
    total, direct, overhead = median(p["total"] for p in pipelines), median(d["total"] for d in directs), median(overheads)
    statuses = sorted({p["status"] for p in pipelines})
    out.write("\n")
    for n, p in enumerate(pipelines, 1):
        out.write(f"round {n}: status {p['status']}; jobs {p['jobs']}; findings new {p['findings_new']}\n")
    out.write(f"median: total {total:.1f}s, direct {direct:.1f}s, overhead {100 * overhead:.1f}%\n")
    figures = {
        "benchmark": "pipeline", "nodes": options["nodes"], "profile": options["profile"],
        "processes": options["workers"] * options["concurrency"], "rounds": len(rounds), "warmup_rounds": options["warmup"],
        "status": statuses[0] if len(statuses) == 1 else statuses,
        "stages": {stage: round(median(p["stages"][stage] for p in pipelines), 3) for stage in STAGES},
        "total_seconds": round(total, 3), "direct_seconds": round(direct, 3),
        "direct_discovery_seconds": round(median(d["discovery"] for d in directs), 3),
        "direct_scanner_seconds": round(median(d["scanning"] for d in directs), 3),
        "overhead": round(overhead, 3),  # orchestration's share on top of the direct run, median of the rounds
        # Both sides identified the same services and their scanners reported the same findings, every round.
        "same_work": all(p["services"] == d["services"] and p["findings"] == d["findings"]
                         for p, d in zip(pipelines, directs)),
        "rounds_total_seconds": [round(p["total"], 3) for p in pipelines],
        "rounds_direct_seconds": [round(d["total"], 3) for d in directs],
        "rounds_overhead": [round(o, 3) for o in overheads],
        "cpu_seconds": {"workers": round(median(p["cpu"]["processes"] for p in pipelines), 2),
                        "direct": round(median(d["cpu"]["processes"] for d in directs), 2)},
        "job_scanner_seconds_sum": round(median(p["scanner_seconds"] for p in pipelines), 3),
        "jobs": pipelines[-1]["jobs"], "findings_new": pipelines[-1]["findings_new"],
    }
    if options.get("zones"):
        figures["zones"] = _zones_report(options, rounds, total, out)
    return figures


def _zones_report(options, rounds, total: float, out) -> dict[str, Any]:
    """The zoned sessions beside the others of the same rounds: their total, and its ratio to theirs."""
    zoned = [r["zoned"] for r in rounds]
    ratios = [z["total"] / r["pipeline"]["total"] for z, r in zip(zoned, rounds)]
    zoned_total, ratio = median(z["total"] for z in zoned), median(ratios)
    statuses = sorted({z["status"] for z in zoned})
    out.write(f"zones: {options['zones']} zone workers beside the central one(s): total {zoned_total:.1f}s, "
              f"{100 * (ratio - 1):+.1f}% against {total:.1f}s without zones; "
              f"jobs off their zone {max(z['jobs_off_zone'] for z in zoned)}\n")
    return {
        "zones": options["zones"], "status": statuses[0] if len(statuses) == 1 else statuses,
        "total_seconds": round(zoned_total, 3), "ratio_to_unzoned": round(ratio, 3),
        "within_15_percent": abs(ratio - 1) <= 0.15,
        "stages": {stage: round(median(z["stages"][stage] for z in zoned), 3) for stage in STAGES},
        "rounds_total_seconds": [round(z["total"], 3) for z in zoned],
        "rounds_ratio": [round(x, 3) for x in ratios],
        "jobs": zoned[-1]["jobs"], "jobs_off_zone": max(z["jobs_off_zone"] for z in zoned),
        "same_work": all(z["services"] == r["pipeline"]["services"] and z["findings"] == r["pipeline"]["findings"]
                         for z, r in zip(zoned, rounds)),
    }
