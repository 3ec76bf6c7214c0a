"""The default database: ``DATABASE_URL`` when set, else the embedded PostgreSQL server under ``var/``.

Watchpost runs on PostgreSQL only; a URL naming another database (SQLite included) is refused
at start-up rather than half working.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.embedded_db import EmbeddedServer
from config.embedded_db import database_settings as embedded_database_settings

POSTGRESQL_ENGINE = "django.db.backends.postgresql"


def database_settings(url: str, *, var_dir: Path) -> dict[str, Any]:
    """The ``DATABASES["default"]`` entry for ``url`` (empty: the embedded server under ``var_dir``)."""
    if not url:
        return embedded_database_settings(EmbeddedServer.under(var_dir))
    database = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    if database["ENGINE"] != POSTGRESQL_ENGINE:
        scheme = url.split(":", 1)[0]
        raise ImproperlyConfigured(
            f"DATABASE_URL is a {scheme}:// URL, but Watchpost runs on PostgreSQL only "
            "(postgres://...). Unset DATABASE_URL to use the embedded PostgreSQL server under var/."
        )
    return database


def database_url(database: dict[str, Any]) -> str:
    """A ``DATABASE_URL`` naming the database of a ``DATABASES`` entry: for a subprocess (a Celery
    worker under test) that must use the very database this process uses.

    A socket directory travels as the ``host`` option rather than as the URL's host, whose
    parser lower-cases it. Options with plain values (``sslmode=require``) come along.
    """
    host, port = str(database.get("HOST") or ""), str(database.get("PORT") or "")
    user = quote(database.get("USER") or "", safe="")
    password = quote(database.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    options = {key: str(value).lower() if isinstance(value, bool) else value
               for key, value in (database.get("OPTIONS") or {}).items() if isinstance(value, str | int | bool)}
    if host.startswith("/"):
        options["host"], host = host, ""
    address = f"[{host}]" if ":" in host else quote(host, safe="")  # an IPv6 address goes in brackets
    if port:
        address += f":{port}"  # a socket's too: it names the socket file (.s.PGSQL.5432)
    query = f"?{urlencode(options)}" if options else ""
    return f"postgres://{credentials}{address}/{quote(database['NAME'], safe='')}{query}"
