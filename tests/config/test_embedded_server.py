"""The embedded PostgreSQL server's lifetime: started once for every process, attached to by the
others, recovered after a crash, stopped by ``manage.py embedded_db stop``.

On a server of its own under a throwaway var directory, not the one the suite runs on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import psutil
import psycopg
import pytest
from django.core.management import call_command

from config import embedded_db
from config.embedded_db import EmbeddedServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = EmbeddedServer.under(tmp_path_factory.mktemp("embedded-var"))
    embedded_db.start(server)  # initdb once for the module (a second or two)
    yield server
    embedded_db.stop(server)


@pytest.fixture
def running(server) -> EmbeddedServer:
    embedded_db.ensure_running(server)
    return server


def _query(server: EmbeddedServer, statement: str):
    with psycopg.connect(host=str(server.socket_dir), port=embedded_db.PORT, user="postgres", dbname="watchpost",
                         autocommit=True) as connection:
        cursor = connection.execute(statement)
        return cursor.fetchall() if cursor.description else None


def _servers_on(server: EmbeddedServer) -> list[int]:
    """Live postmasters of this data directory (a zombie has no command line left)."""
    return [process.pid for process in psutil.process_iter(["cmdline"])
            if str(server.data) in (process.info["cmdline"] or ())]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _in_a_new_process(server: EmbeddedServer, code: str) -> str:
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**environment, "DJANGO_SETTINGS_MODULE": "config.settings",
                               "WATCHPOST_VAR_DIR": str(server.root.parent)})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_server_listens_on_its_socket_only_and_holds_the_watchpost_database(running):
    assert _query(running, "SELECT current_database(), current_setting('listen_addresses')") == [("watchpost", "")]
    assert (running.socket_dir / ".s.PGSQL.5432").is_socket()
    assert _servers_on(running) == [embedded_db.running_pid(running)]


def test_a_second_process_attaches_to_the_running_server_instead_of_starting_another(running):
    pid = embedded_db.running_pid(running)

    # What web, worker and beat do: Django's first connection goes through the embedded backend.
    answer = _in_a_new_process(running, "import django; django.setup(); from django.db import connection; "
                                        "connection.ensure_connection(); print(connection.vendor, connection.pg_version)")

    assert answer.startswith("postgresql 18")
    assert embedded_db.running_pid(running) == pid
    assert _servers_on(running) == [pid]


def test_processes_starting_at_the_same_time_start_one_server_between_them(running):
    embedded_db.stop(running)
    code = ("from config import embedded_db; "
            f"print(*embedded_db.start(embedded_db.EmbeddedServer.under({str(running.root.parent)!r})))")
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}

    processes = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True,
                                  env=environment) for _ in range(3)]
    answers = sorted(process.communicate(timeout=120)[0].split() for process in processes)

    pid = embedded_db.running_pid(running)
    assert answers == [[str(pid), "False"], [str(pid), "False"], [str(pid), "True"]]
    assert _servers_on(running) == [pid]


def test_a_server_killed_with_sigkill_leaves_a_stale_pid_the_next_start_recovers_from(running):
    _query(running, "CREATE TABLE survivor AS SELECT 7 AS id")
    pid = embedded_db.running_pid(running)

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (running.data / "postmaster.pid").read_text().split()[0] == str(pid)  # left behind
    assert embedded_db.running_pid(running) is None

    embedded_db.ensure_running(running)

    assert embedded_db.running_pid(running) not in (None, pid)
    assert _query(running, "SELECT id FROM survivor") == [(7,)]  # committed before the kill, recovered


def test_embedded_db_stop_leaves_no_server_process(running, settings):
    settings.VAR_DIR = running.root.parent
    pid = embedded_db.running_pid(running)
    children = psutil.Process(pid).children()
    out = StringIO()

    call_command("embedded_db", "stop", stdout=out)

    assert out.getvalue().strip() == f"stopped (pid {pid})"
    assert _servers_on(running) == []
    assert children and not any(_alive(process) for process in [pid, *(child.pid for child in children)])
    assert not (running.data / "postmaster.pid").exists()


def test_embedded_db_status_and_start_say_what_they_find(server, settings):
    settings.VAR_DIR = server.root.parent
    embedded_db.stop(server)

    def command(action):
        out = StringIO()
        call_command("embedded_db", action, stdout=out)
        return out.getvalue().strip()

    assert command("status") == "not running"
    assert command("stop") == "not running"
    assert command("start").startswith("started (pid ")
    assert command("start").startswith(f"already running (pid {embedded_db.running_pid(server)})")
    assert command("status") == (f"running (pid {embedded_db.running_pid(server)}); "
                                 f"socket in {server.socket_dir}, data in {server.data}")
