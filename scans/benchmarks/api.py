"""``python manage.py bench api``: the integration API under load, at 10,000 nodes and 1,000,000 findings.

The organization comes from the console benchmark's generator (``scans.benchmarks.console``:
set-based ``INSERT ... SELECT FROM generate_series``, reused when it already holds the right
counts). gunicorn serves the real stack (two workers, DEBUG off, PostgreSQL and Redis) on a
free loopback port; a separate load process (so it never shares a GIL with the server)
drives each endpoint in turn with ``--threads`` keep-alive connections, spread over
``--client-processes`` processes, for ``--seconds``:

- ``nodes_list``: ``GET /api/v1/nodes/?page_size=100``;
- ``findings_list_filtered``: ``GET /api/v1/findings/?severity=high&status=open&page_size=100``
  at every depth of the cursor: the whole chain of ``next`` links is walked first, then the
  threads ask for pages drawn uniformly from it (p99 reported per tenth of the depth too);
- ``finding_detail``: ``GET /api/v1/findings/<id>/`` for ids drawn from the organization.

Throttling stays on (its Redis counter is part of every request) but with a rate the
benchmark cannot reach: the server runs with ``WATCHPOST_API_THROTTLE_RATE=1000000/min``,
so a 429 never distorts the figures. Requests are logged at WARNING (not one line each).
Prints a table, then one JSON line, last.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import random
import threading
import time
from typing import Any, TextIO

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection

from orgs.models import ApiToken
from orgs.services import api_token_create
from scans.benchmarks import percentile, print_table
from scans.benchmarks.console import console_organization
from scans.benchmarks.processes import free_port, start_gunicorn, stop, wait_for
from scans.models import Finding

help = "The API under load at 10,000 nodes / 1,000,000 findings through gunicorn (PostgreSQL and Redis)"

TARGET_RPS_NODES = 500.0
TARGET_P99_MS = 100.0
ENDPOINTS = ("nodes_list", "findings_list_filtered", "finding_detail")
FINDINGS_FILTER = "/api/v1/findings/?severity=high&status=open&page_size=100"


def add_arguments(parser) -> None:
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--findings", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="load time per endpoint")
    parser.add_argument("--threads", type=int, default=8, help="concurrent keep-alive connections")
    parser.add_argument("--client-processes", type=int, default=4, help="load processes the connections are spread over")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    # Sync workers (one request at a time each), as the README's production command runs them:
    # a request waits in the shared listen queue for whichever worker frees first. With
    # threads, keep-alive connections stay with the worker that accepted them, and one
    # worker holding six of the eight connections shows as the slowest percentile.
    parser.add_argument("--worker-threads", type=int, default=1,
                        help="threads per gunicorn worker (more than one: the gthread worker)")
    parser.add_argument("--regenerate", action="store_true", help="drop and regenerate the organization's rows")


def run(options: dict[str, Any], out: TextIO) -> dict[str, Any]:
    if not settings.REDIS_URL:
        raise CommandError("bench api measures the production stack, Redis included: set REDIS_URL, "
                           "e.g. REDIS_URL=redis://127.0.0.1:6379/0 python manage.py bench api")
    org, _, reused = console_organization(nodes=options["nodes"], findings=options["findings"],
                                          regenerate=options["regenerate"], out=out)
    out.write(f"organization {org.slug}: {options['nodes']:,} nodes, {options['findings']:,} findings "
              f"({'reused' if reused else 'generated'})\n")
    ApiToken.objects.filter(org=org, name="bench-api").delete()
    _, key = api_token_create(org=org, name="bench-api", access=ApiToken.Access.READ)
    finding_ids = list(Finding.objects.filter(org=org).order_by("?").values_list("pk", flat=True)[:5000])
    connection.close()  # the server and the load process get their own connections

    port = free_port()
    server = start_gunicorn(port, workers=options["workers"], threads=options["worker_threads"])
    try:
        wait_for(port)
        plan = {"port": port, "token": key, "seconds": options["seconds"], "threads": options["threads"],
                "client_processes": options["client_processes"], "finding_ids": finding_ids}
        results = _drive(plan)
    finally:
        stop(server)
    return _report(results, options, out)


# -- the load ------------------------------------------------------------------------------


def _drive(plan: dict[str, Any]) -> dict[str, Any]:
    parent, child = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.get_context("fork").Process(target=_load_process, args=(plan, child))
    process.start()
    results = parent.recv()
    process.join(30)
    return results


def _load_process(plan: dict[str, Any], pipe) -> None:
    """The load generator: every endpoint in turn, ``threads`` connections for ``seconds`` each."""
    headers = {"Authorization": f"Bearer {plan['token']}", "Accept": "application/json"}
    results: dict[str, Any] = {"walk_error": ""}

    # The cursor chain, walked once from the first page to the last (these requests are measured too).
    conn = http.client.HTTPConnection("127.0.0.1", plan["port"], timeout=30)
    chain: list[str] = []
    walk: list[tuple[float, int, int]] = []
    url: str | None = FINDINGS_FILTER
    while url:
        chain.append(url)
        started = time.perf_counter()
        status, body = _get(conn, url, headers)
        walk.append(((time.perf_counter() - started) * 1000, status, len(chain) - 1))
        if status != 200:
            results["walk_error"] = f"page {len(chain)}: HTTP {status} {body[:300]!r}"
            break
        nxt = json.loads(body).get("next")
        url = nxt[nxt.index("/api/"):] if nxt else None
    conn.close()

    pickers = {
        "nodes_list": lambda rng: ("/api/v1/nodes/?page_size=100", -1),
        "findings_list_filtered": lambda rng: (lambda depth: (chain[depth], depth))(rng.randrange(len(chain))),
        "finding_detail": lambda rng: (f"/api/v1/findings/{rng.choice(plan['finding_ids'])}/", -1),
    }
    for name in ENDPOINTS:
        samples: list[tuple[float, int, int]] = list(walk) if name == "findings_list_filtered" else []
        seen: list[str] = []
        begun = time.monotonic()
        stop_at = begun + plan["seconds"]
        # The connections are spread over several client processes: in one process, eight
        # threads queue for one GIL, and that wait would be counted as the server's latency.
        processes = max(1, min(plan["client_processes"], plan["threads"]))
        pipes = []
        for p in range(processes):
            connections = range(p, plan["threads"], processes)
            parent, child = multiprocessing.Pipe(duplex=False)
            worker = multiprocessing.get_context("fork").Process(
                target=_client_process, args=(plan, headers, pickers[name], connections, stop_at, child))
            worker.start()
            pipes.append((worker, parent))
        for worker, parent in pipes:
            mine, failures = parent.recv()
            worker.join(30)
            samples.extend(mine)
            seen.extend(failures[:5 - len(seen)])
        elapsed = time.monotonic() - begun
        timed = len(samples) - (len(walk) if name == "findings_list_filtered" else 0)
        results[name] = {"samples": samples, "seconds": elapsed, "timed_requests": timed, "failures": seen}
    results["chain_length"] = len(chain)
    pipe.send(results)


def _client_process(plan: dict[str, Any], headers: dict[str, str], pick, connections: range, stop_at: float,
                    pipe) -> None:
    """One client process: a thread per connection, each asking for ``pick``'s paths until ``stop_at``."""
    samples: list[tuple[float, int, int]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def user(index: int) -> None:
        rng = random.Random(index)
        c = http.client.HTTPConnection("127.0.0.1", plan["port"], timeout=30)
        mine = []
        while time.monotonic() < stop_at:
            path, depth = pick(rng)
            started = time.perf_counter()
            try:
                status, body = _get(c, path, headers)
                if status != 200 and len(failures) < 5:
                    failures.append(f"{path}: HTTP {status} {body[:200]!r}")
            except (OSError, http.client.HTTPException) as exc:
                status = 0
                if len(failures) < 5:
                    failures.append(f"{path}: {type(exc).__name__}: {exc}")
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", plan["port"], timeout=30)
            mine.append(((time.perf_counter() - started) * 1000, status, depth))
        c.close()
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=user, args=(i,)) for i in connections]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pipe.send((samples, failures))


def _get(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


# -- the figures -----------------------------------------------------------------------------


def _report(results: dict[str, Any], options: dict[str, Any], out: TextIO) -> dict[str, Any]:
    summary: dict[str, Any] = {"benchmark": "api", "endpoints": {}}
    rows = []
    for name in ENDPOINTS:
        data = results[name]
        times = [ms for ms, _, _ in data["samples"]]
        errors = sum(1 for _, status, _ in data["samples"] if status != 200)
        rps = data["timed_requests"] / data["seconds"] if data["seconds"] else 0.0
        p50, p99 = percentile(times, 50), percentile(times, 99)
        summary["endpoints"][name] = {"requests_per_second": round(rps, 1), "p50_ms": round(p50, 2),
                                      "p99_ms": round(p99, 2), "errors": errors}
        target = (f"≥ {TARGET_RPS_NODES:g}/s, p99 ≤ {TARGET_P99_MS:g} ms" if name == "nodes_list"
                  else f"p99 ≤ {TARGET_P99_MS:g} ms")
        ok = errors == 0 and p99 <= TARGET_P99_MS and (name != "nodes_list" or rps >= TARGET_RPS_NODES)
        rows.append((name, len(times), round(rps, 1), round(p50, 2), round(p99, 2), errors, target,
                     "ok" if ok else "MISSED"))
    print_table(out, f"API under load: gunicorn {options['workers']} workers x {options['worker_threads']} thread(s), "
                     f"{options['threads']} client connections, {options['seconds']:g} s per endpoint",
                ("endpoint", "requests", "req/s", "p50 ms", "p99 ms", "errors", "target", ""), rows)

    for name in ENDPOINTS:
        for failure in results[name]["failures"]:
            out.write(f"  {name} failed: {failure}\n")
    if results.get("walk_error"):
        out.write(f"  the cursor walk stopped at {results['walk_error']}\n")
    chain = results["chain_length"]
    by_depth: dict[int, list[float]] = {}
    for ms, _, depth in results["findings_list_filtered"]["samples"]:
        if depth >= 0:
            by_depth.setdefault(min(9, depth * 10 // max(chain, 1)), []).append(ms)
    depth_rows = [(f"{d * 10}-{d * 10 + 10}%", f"pages {d * chain // 10 + 1}-{(d + 1) * chain // 10}", len(v),
                   round(percentile(v, 50), 2), round(percentile(v, 99), 2))
                  for d, v in sorted(by_depth.items())]
    print_table(out, f"findings_list_filtered by cursor depth ({chain} pages of 100 in the chain)",
                ("depth", "pages", "requests", "p50 ms", "p99 ms"), depth_rows)
    return summary
