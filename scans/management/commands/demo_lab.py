"""``python manage.py demo_lab``: serve the demo organization's nodes (127.0.10.1-5) with weak services.

Real sockets on loopback only, started and stopped by this process (``make run`` runs it
as the Procfile's ``lab:``), so the demo's scheduled sessions scan something that
answers and the dashboard has findings to show:

- 127.0.10.1 web-frontend: an old nginx banner, no security headers, HTTPS with an
  expired self-signed certificate accepting TLS 1.0;
- 127.0.10.2 cache: Redis without a password, memcached;
- 127.0.10.3 eth-rpc: a geth JSON-RPC with the admin, personal and debug namespaces;
- 127.0.10.4 container-host: the Docker Engine API without TLS, plus a web page;
- 127.0.10.5 bastion: an old OpenSSH banner.
"""

from __future__ import annotations

import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.core.management.base import BaseCommand

from orgs.models import Organization
from scans.lab import Lab, tls
from scans.lab.services import (
    docker_handler,
    ethereum_handler,
    memcached_handler,
    redis_handler,
    ssh_handler,
    web_handler,
)
from scans.management.commands.seed_demo import BASE_URL, DEMO_OWNER, DEMO_SLUG, login_file_read
from scans.models import ScanSession
from scans.pipeline.sessions import session_start

# (address, name, [(port, handler factory, tls)])
DEMO_SERVICES = [
    ("127.0.10.1", "web-frontend", [(80, lambda: web_handler("nginx/1.14.0 (Ubuntu)"), None),
                                    (443, lambda: web_handler("nginx/1.14.0 (Ubuntu)"), "expired")]),
    ("127.0.10.2", "cache", [(6379, lambda: redis_handler("5.0.7"), None), (11211, memcached_handler, None)]),
    ("127.0.10.3", "eth-rpc", [(8545, ethereum_handler, None)]),
    ("127.0.10.4", "container-host", [(2375, docker_handler, None), (80, web_handler, None)]),
    ("127.0.10.5", "bastion", [(22, lambda: ssh_handler("SSH-2.0-OpenSSH_7.4"), None)]),
]


def serve_demo(lab: Lab) -> list[str]:
    certs = tls.CertFactory()
    lines = []
    for address, name, services in DEMO_SERVICES:
        for port, factory, cert in services:
            context = None
            if cert == "expired":
                bundle = certs.issue(f"{name}.demo", sans=[f"{name}.demo", address], expired=True, self_signed=True)
                context = tls.legacy_server_context(bundle)
            lab.serve(address, port, factory(), name=f"{name}:{port}", ssl_context=context)
            lines.append(f"  {address}:{port:<6} {name}{' (TLS, expired self-signed)' if context else ''}")
    return lines


class Command(BaseCommand):
    help = "Serve the demo nodes' weak services on 127.0.10.1-5 until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--start-session", action="store_true",
                            help="once serving, start one demo session now instead of waiting for the schedule")
        parser.add_argument("--announce-login", default="", metavar="LOGIN_FILE",
                            help="once the console answers and the first session has ended, print the address "
                                 "and the login (from seed_demo --login-file) in a box, last")

    def handle(self, *args, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        signal.signal(signal.SIGINT, lambda *a: stop.set())
        with Lab() as lab:
            lines = serve_demo(lab)
            self.stdout.write("Demo lab serving:\n" + "\n".join(lines))
            self.stdout.flush()
            session = self._kick_off() if options["start_session"] else None
            if options["announce_login"]:
                threading.Thread(target=self._announce, args=(Path(options["announce_login"]), session, stop),
                                 daemon=True).start()
            stop.wait()
        self.stdout.write("Demo lab stopped.")

    def _kick_off(self) -> ScanSession | None:
        org = Organization.objects.filter(slug=DEMO_SLUG).first()
        if org is None or ScanSession.objects.filter(org=org).exclude(status__in=ScanSession.FINISHED).exists():
            return None
        session = session_start(org=org, trigger=ScanSession.Trigger.CLI, correlation_id="demo-lab-kick-off")
        self.stdout.write(f"Started demo session {session.pk}; then every 10 minutes on the schedule.")
        return session

    def _announce(self, login_file: Path, session: ScanSession | None, stop: threading.Event) -> None:
        """The last thing ``make run`` prints: where to go and how to log in, once there is something
        to see (the console answers, the first session has ended), so no log line buries it."""
        deadline = time.monotonic() + ANNOUNCE_WAIT_SECONDS
        while not stop.is_set() and time.monotonic() < deadline and not _console_answers():
            stop.wait(0.5)
        outcome = ""
        while session is not None and not stop.is_set() and time.monotonic() < deadline:
            session.refresh_from_db(fields=["status", "findings_new", "summary"])
            if session.status in ScanSession.FINISHED:
                outcome = f"first demo session {session.get_status_display().lower()}, {session.findings_new} new findings"
                break
            stop.wait(1)
        if stop.is_set():
            return
        login = login_file_read(login_file)
        lines = [f"Watchpost is up: {BASE_URL}/"]
        if login:
            lines.append(f"user: {login[0]}   password: {login[1]}")
        else:
            lines += [f"user: {DEMO_OWNER}   password: shown when the account was made;",
                      "`python manage.py seed_demo --reset-password` makes a new one"]
        if outcome:
            lines.append(outcome)
        lines.append("Ctrl-C stops web, worker, beat, the lab and the database")
        self.stdout.write(login_box(lines))
        self.stdout.flush()


# How long the announcement waits for the console and the first session before printing anyway.
ANNOUNCE_WAIT_SECONDS = 240


def _console_answers() -> bool:
    try:
        with urllib.request.urlopen(f"{BASE_URL}/accounts/login/", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def login_box(lines: list[str]) -> str:
    width = max(len(line) for line in lines)
    rule = "+" + "-" * (width + 2) + "+"
    return "\n".join(["", rule, *(f"| {line.ljust(width)} |" for line in lines), rule, ""])
