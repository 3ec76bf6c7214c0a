"""Django's PostgreSQL backend, starting the embedded server on the first connection.

Settings stay cheap to load (no server is started to run ``manage.py help``); a process starts
the server, or attaches to the one running, when it first opens a connection, and again after
the server was stopped while the process lived on.
"""

from __future__ import annotations

from pathlib import Path

from django.db.backends.postgresql import base

from config import embedded_db


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        embedded_db.ensure_running(embedded_db.EmbeddedServer(Path(self.settings_dict["EMBEDDED_SERVER"])))
        return super().get_new_connection(conn_params)
