"""Integration tests run against the real thing: PostgreSQL, Redis and Celery worker subprocesses.

They are skipped, with the reason, unless REDIS_URL is set (`.ci/run` sets it); the database
is PostgreSQL whatever DATABASE_URL says (the embedded server when it is unset).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.database import database_url

REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(config, items):
    if not os.environ.get("REDIS_URL"):
        skip = pytest.mark.skip(reason="integration tests need real services: REDIS_URL is not set")
        for item in items:
            if "tests/integration/" in str(item.fspath):
                item.add_marker(skip)


class Worker:
    """A real `celery worker` subprocess on the test database, its log kept in a file."""

    def __init__(self, tmp_path: Path, *, queues: str, concurrency: int = 2, name: str = "w1", extra_env=None):
        self.log_path = tmp_path / f"worker-{name}.log"
        env = {
            **os.environ,
            # The test database, on the embedded server's socket or wherever DATABASE_URL pointed.
            "DATABASE_URL": database_url(settings.DATABASES["default"]),
            "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.command = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-c", str(concurrency),
            "-n", f"{name}@%h", "--pool", "prefork", "-l", "INFO", "--without-gossip", "--without-mingle",
        ]
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> Worker:
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command, cwd=REPO, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b" ready." in self.log_path.read_bytes():
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()}")
            time.sleep(0.2)
        self.kill()  # not left running to hold the test database open for the next run
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group: the worker and its pool children die mid-task."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_log", None):
            self._log.close()


@pytest.fixture
def start_worker(tmp_path, transactional_db):
    """Start real workers: ``start_worker(queues="nodes")``; all are stopped after the test."""
    workers: list[Worker] = []
    connection.close()  # the worker must not inherit a half-used connection state

    def _start(**kwargs) -> Worker:
        worker = Worker(tmp_path, name=f"w{len(workers) + 1}", **kwargs).start()
        workers.append(worker)
        return worker

    yield _start
    for worker in workers:
        worker.stop()


@pytest.fixture
def purge_queues():
    from config.celery import QUEUES, app

    with app.connection_for_write() as conn:
        for queue in QUEUES:
            conn.default_channel.queue_purge(queue)
