"""``bench load``: 50 simulated users on gunicorn while a 100-node session runs on real workers.

Needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL). Serves N lab nodes on 127.1.x.y,
starts gunicorn (two workers) and a Celery worker on a loopback port, logs in the users
(each with its own console session and API token), then drives load from a separate
process: each user loops over a mix of console pages, htmx partials and API calls with a
think time between requests (a person reads a page before the next click: 0.5–1.5 s by
default, like load tools' default pacing), for a fixed time. The session is started as the
load begins; the benchmark waits for it to finish afterwards and reports its status.
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import random
import statistics
import subprocess
import threading
import time
import uuid
from typing import Any, TextIO

from nodes.models import Node
from nodes.services import nodes_create
from orgs.models import ApiToken, Membership, Organization, Role
from orgs.services import api_token_create
from scans.benchmarks import load_users, percentile, print_summary, print_table
from scans.benchmarks.pipeline import addresses
from scans.benchmarks.processes import start_gunicorn, start_worker, stop, wait_for

help = "50 users mixing console pages, htmx partials and API calls on gunicorn while a 100-node session runs"

PORT = 8093


def add_arguments(parser) -> None:
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--think", type=float, nargs=2, default=(0.5, 1.5), metavar=("MIN", "MAX"),
                        help="seconds a user waits between requests")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark organization")


def run(options: dict[str, Any], out: TextIO) -> None:
    from django.core.management import CommandError
    from django.db import connection

    from scans.lab import Lab
    from scans.lab.services import start_node

    if not os.environ.get("REDIS_URL"):
        raise CommandError("bench load needs Redis (REDIS_URL)")
    nodes = addresses(options["nodes"])
    with Lab() as lab:
        for address in nodes:
            start_node(lab, address, ("ssh", "http", "redis"))
        org, users = _organization(options, nodes)
        server = start_gunicorn(options["port"], workers=2, threads=4)
        worker = _start_scan_worker()
        try:
            wait_for(options["port"])
            _warm_up(options["port"], org, users[0])
            connection.close()
            session = _start_session(org, options)
            results = _drive(options, org, session, users)
            status = _wait_session(session, timeout=600)
        finally:
            stop(worker)
            stop(server)
    _report(options, results, status, out)
    if not options["keep"]:
        org.delete()


def _organization(options, nodes):
    from django.contrib.auth import get_user_model
    from django.test import Client

    slug = f"bench-load-{uuid.uuid4().hex[:6]}"
    org = Organization.objects.create(name="Load benchmark", slug=slug, scope_networks=["127.1.0.0/16"],
                                      max_concurrent_jobs=1000)
    created = [Node(org=org, address=a, resolved_ip=a) for a in nodes]
    nodes_create(org=org, nodes=created)
    User = get_user_model()
    users = []
    for n in range(options["users"]):
        user, _ = User.objects.get_or_create(username=f"{slug}-user{n}")
        Membership.objects.create(org=org, user=user, role=Role.ANALYST)
        client = Client()
        client.force_login(user)  # a real session row, read by gunicorn from the database
        _, key = api_token_create(org=org, name=f"load-{n}", access=ApiToken.Access.READ)
        users.append({"cookie": client.cookies["sessionid"].value, "token": key})
    org.node_ids = [n.pk for n in created]  # type: ignore[attr-defined]
    return org, users


def _start_scan_worker() -> subprocess.Popen:
    """One Celery worker (two processes) on every queue, at a lower CPU priority than the web.

    On a host that serves people and scans alike, the scans are the batch work: ``nice`` lets
    a page answer first and the scan take the idle cycles, which is how the README's production
    section runs workers beside web on one machine.
    """
    process = start_worker("load", concurrency=2, log="/tmp/watchpost-bench-load-worker.log", nice=10)
    time.sleep(3)  # connected before the session starts; its messages would wait in Redis anyway
    return process


def _start_session(org, options):
    from scans.models import ScanSession
    from scans.pipeline.sessions import session_start

    return session_start(org=org, trigger=ScanSession.Trigger.CLI, profile=options["profile"],
                         correlation_id=f"{org.slug}-load")


def _requests(org, session) -> list[tuple[str, str, str, dict]]:
    """(name, kind, path, headers) the users pick from; kind is console, htmx or api.

    Without a session (the warm-up, before it starts) its three routes are left out."""
    s = org.slug
    node = random.choice(org.node_ids)
    hx = {"HX-Request": "true"}
    sid = session.pk if session is not None else None
    routes = [
        ("dashboard", "console", f"/o/{s}/", {}),
        ("dashboard running (htmx)", "htmx", f"/o/{s}/running/", hx),
        ("nodes", "console", f"/o/{s}/nodes/", {}),
        ("nodes search (htmx)", "htmx", f"/o/{s}/nodes/?q=127.1.0", hx),
        ("node detail", "console", f"/o/{s}/nodes/{node}/", {}),
        ("sessions", "console", f"/o/{s}/sessions/", {}),
        ("session detail", "console", f"/o/{s}/sessions/{sid}/", {}),
        ("session progress (htmx)", "htmx", f"/o/{s}/sessions/{sid}/progress/", hx),
        ("findings", "console", f"/o/{s}/findings/", {}),
        ("findings filtered (htmx)", "htmx", f"/o/{s}/findings/?severity=high&status=open", hx),
        ("interventions", "console", f"/o/{s}/interventions/", {}),
        ("api nodes", "api", "/api/v1/nodes/?page_size=50", {}),
        ("api findings", "api", "/api/v1/findings/?severity=high&status=open", {}),
        ("api session", "api", f"/api/v1/sessions/{sid}/", {}),
    ]
    return routes if sid is not None else [r for r in routes if r[0] not in SESSION_ROUTES]


SESSION_ROUTES = {"session detail", "session progress (htmx)", "api session"}
# The warm-up: rounds of every route from this many connections at once, at least the first
# number of rounds and at most the second, until a whole round answers within WARM_MS.
WARM_CONNECTIONS, WARM_ROUNDS, WARM_MS = 8, (3, 10), 300


def _warm_up(port: int, org, user: dict) -> None:
    """Every gunicorn worker booted and warm before the clock starts, as on a server that has been up a while.

    ``wait_for`` returns once one worker answers; the other may still be importing Django
    (and the first users' connections may then all land on the one that answered), and each
    worker imports the URL conf and compiles the templates on its first requests, and the
    run's first requests would wait for that, enough to make the p99. That is gunicorn
    starting, not the console under load. The session starts after this, with the load; its
    own pages are left out here.
    """
    routes = _requests(org, None)

    def client(index: int, times: list[float]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # a new connection every round
        for _, kind, path, headers in routes[index:] + routes[:index]:
            headers = {**headers, **({"Authorization": f"Bearer {user['token']}"} if kind == "api"
                                     else {"Cookie": f"sessionid={user['cookie']}"})}
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                times.append(float("inf"))  # not warm yet: another round
                conn.close()
                continue
            times.append((time.perf_counter() - started) * 1000)
        conn.close()

    least, most = WARM_ROUNDS
    for round_ in range(1, most + 1):
        times: list[float] = []
        threads = [threading.Thread(target=client, args=(i, times)) for i in range(WARM_CONNECTIONS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if round_ >= least and max(times) < WARM_MS:
            return


def _drive(options, org, session, users) -> list[tuple[str, float, int]]:
    plan = {"port": options["port"], "seconds": options["seconds"], "think": tuple(options["think"]),
            "users": users, "requests": [_requests(org, session) for _ in range(8)]}
    parent, child = multiprocessing.Pipe(duplex=False)
    # spawn, not fork: this process runs the lab's event-loop thread, and a forked child could
    # inherit a lock held by it.
    process = multiprocessing.get_context("spawn").Process(target=load_users.run, args=(plan, child))
    process.start()
    if not parent.poll(plan["seconds"] + 120):
        process.kill()
        raise RuntimeError("the load process sent no results")
    results = parent.recv()
    process.join(30)
    return results


def _wait_session(session, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.refresh_from_db()
        if session.is_finished:
            return session.status
        time.sleep(1)
    return session.status


def _report(options, results, status, out) -> None:
    by_name: dict[str, list[tuple[float, int]]] = {}
    for name, ms, code in results:
        by_name.setdefault(name, []).append((ms, code))
    rows = []
    for name, items in sorted(by_name.items()):
        times = [ms for ms, _ in items]
        rows.append((name, len(items), sum(1 for _, c in items if not 200 <= c < 400), statistics.median(times),
                     percentile(times, 99)))
    print_table(out, f"Load: {options['users']} users for {options['seconds']:g}s, think "
                     f"{options['think'][0]:g}-{options['think'][1]:g}s, while a {options['nodes']}-node session runs",
                ["request", "count", "errors", "p50 ms", "p99 ms"], rows)
    times = [ms for _, ms, _ in results]
    errors = sum(1 for _, _, code in results if not 200 <= code < 400)
    out.write(f"\nsession {status}; {len(results)} requests, {errors} errors\n")
    print_summary(out, {"benchmark": "load", "users": options["users"], "seconds": int(options["seconds"]),
                        "requests": len(results), "errors": errors, "p50_ms": round(percentile(times, 50), 1),
                        "p99_ms": round(percentile(times, 99), 1), "session_status": status})
