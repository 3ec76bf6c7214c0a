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
from scans.management.commands.seed_demo import DEMO_SLUG
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

    def handle(self, *args, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        signal.signal(signal.SIGINT, lambda *a: stop.set())
        with Lab() as lab:
            lines = serve_demo(lab)
            self.stdout.write("Demo lab serving:\n" + "\n".join(lines))
            self.stdout.flush()
            if options["start_session"]:
                self._kick_off()
            stop.wait()
        self.stdout.write("Demo lab stopped.")

    def _kick_off(self) -> None:
        org = Organization.objects.filter(slug=DEMO_SLUG).first()
        if org is None or ScanSession.objects.filter(org=org).exclude(status__in=ScanSession.FINISHED).exists():
            return
        session = session_start(org=org, trigger=ScanSession.Trigger.CLI, correlation_id="demo-lab-kick-off")
        self.stdout.write(f"Started demo session {session.pk}; then every 10 minutes on the schedule.")
