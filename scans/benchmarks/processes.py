"""The processes a benchmark starts beside itself: gunicorn serving the real stack, Celery workers.

Each runs from the repository in a process group of its own, logs to a file under /tmp, and
works on the database this process uses; :func:`stop` ends the group.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.core.management.base import CommandError
from django.db import connection

from config.database import database_url

REPO = Path(__file__).resolve().parents[2]
QUEUES = "orchestration,nodes,scans,scoring,reports"
GUNICORN_LOG = "/tmp/watchpost-bench-api-gunicorn.log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int, *, workers: int, threads: int) -> subprocess.Popen:
    env = {**_environment(), "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "false",
           "STATIC_MANIFEST": "false",
           # On, but out of reach: the throttle's Redis round trip is measured, a 429 never happens.
           "WATCHPOST_API_THROTTLE_RATE": "1000000/min"}
    env.setdefault("SECRET_KEY", "bench-api-" + uuid.uuid4().hex)
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", str(workers), "--bind",
               f"127.0.0.1:{port}", "--log-level", "warning", "--keep-alive", "30"]
    if threads > 1:
        command += ["--threads", str(threads)]
    return _start(command, GUNICORN_LOG, env)


def wait_for(port: int, timeout: float = 30) -> None:
    """Until gunicorn on ``port`` answers its health check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise CommandError(f"gunicorn did not answer /healthz (see {GUNICORN_LOG})")


def start_worker(name: str, *, concurrency: int, log: str, nice: int = 0, queues: str = QUEUES,
                 env: dict[str, str] | None = None) -> subprocess.Popen:
    """A Celery worker named ``name@host`` on every central queue (or ``queues``), with ``concurrency``
    processes (``nice``: at a lower CPU priority than the web); ``env`` adds to its environment (a zone
    worker's ``WATCHPOST_ZONE``)."""
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-c", str(concurrency),
               "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "-l", "WARNING"]
    if nice:
        command = ["nice", "-n", str(nice), *command]
    return _start(command, log, {**_environment(), **(env or {})})


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _environment() -> dict[str, str]:
    # DATABASE_URL naming the database this process uses: under pytest that is the test database,
    # not the one DATABASE_URL names; with DATABASE_URL unset, the embedded server's socket.
    return {**os.environ, "LOG_LEVEL": "WARNING", "DATABASE_URL": database_url(connection.settings_dict)}


def _start(command: list[str], log: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=REPO, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)
