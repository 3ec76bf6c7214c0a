"""The default database: ``DATABASE_URL`` when set, else the embedded SQLite file.

Any SQLite database, named by the URL or the embedded default, gets the same settings:
web, worker and beat share one file, so WAL (readers beside one writer), a busy timeout
(writers wait for each other instead of failing with "database is locked") and IMMEDIATE
transactions (a writer takes the lock when it begins, not halfway through) are what make
that work. A URL's own options win over these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url

SQLITE_ENGINE = "django.db.backends.sqlite3"
SQLITE_OPTIONS = {
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
}


def database_settings(url: str, *, default_path: Path) -> dict[str, Any]:
    """The ``DATABASES["default"]`` entry for ``url`` (empty: the SQLite file at ``default_path``)."""
    if url:
        database = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    else:
        database = {"ENGINE": SQLITE_ENGINE, "NAME": default_path}
    if database["ENGINE"] == SQLITE_ENGINE:
        database["OPTIONS"] = {**SQLITE_OPTIONS, **(database.get("OPTIONS") or {})}
    return database
