"""``python manage.py embedded_db start|stop|status``: the embedded PostgreSQL server under ``var/``.

Processes start the server on their own when they first connect; ``stop`` is what ends it
(``make run`` runs it when honcho exits). The server under ``WATCHPOST_VAR_DIR`` is the one
meant, whether or not ``DATABASE_URL`` points elsewhere.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from config import embedded_db


class Command(BaseCommand):
    help = "Start, stop or show the embedded PostgreSQL server under WATCHPOST_VAR_DIR."
    # Checks must not open a connection: that would start the server `stop` is asked to end.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["start", "stop", "status"])

    def handle(self, *args, action, **options):
        server = embedded_db.EmbeddedServer.under(settings.VAR_DIR)
        if action == "start":
            pid, started = embedded_db.start(server)
            self.stdout.write(f"{'started' if started else 'already running'} (pid {pid}); {self._where(server)}")
        elif action == "stop":
            pid = embedded_db.stop(server)
            self.stdout.write(f"stopped (pid {pid})" if pid else "not running")
        else:
            pid = embedded_db.running_pid(server)
            self.stdout.write(f"running (pid {pid}); {self._where(server)}" if pid else "not running")

    @staticmethod
    def _where(server: embedded_db.EmbeddedServer) -> str:
        return f"socket in {server.socket_dir}, data in {server.data}"
