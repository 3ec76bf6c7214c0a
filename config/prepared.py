"""Hot, fixed SQL statements: parameters bound on the server, single lookups prepared.

Django's psycopg backend binds parameters on the client, so PostgreSQL plans every statement
again on every call. For the few written-out statements that every API request runs (the
token lookup, the node list's version, a page of JSON) planning costs as much as running:
the findings page's statement takes ~1.3 ms to plan and ~2 ms to run. Prepared once per
database connection (connections live ``conn_max_age`` seconds), the plan is reused.
Bound on the server, a large value (a scanner's raw JSON output) is sent as it is, not
quoted into the statement's text and parsed back out of it; a statement that names a
parameter ``%b`` gets it in binary (a long array of text: no escaping of every element).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connection


@contextmanager
def _cursor() -> Iterator[psycopg.Cursor]:
    """A psycopg cursor on Django's connection that binds parameters on the server."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def fetchone(sql: str, params: dict[str, Any] | list[Any]) -> tuple | None:
    with _cursor() as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone()


def fetchall(sql: str, params: dict[str, Any] | list[Any]) -> list[tuple]:
    """Every row ``sql`` returns, prepared (for a statement whose text never changes, its values
    all in parameters, such as arrays)."""
    with _cursor() as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()


def execute(sql: str, params: dict[str, Any] | list[Any]) -> int:
    """Run a statement that returns no rows, prepared as ``fetchall``'s are; the rows it touched."""
    with _cursor() as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.rowcount


def executemany(sql: str, rows: list[list[Any]]) -> None:
    """``sql`` once per row, all rows in one round trip (psycopg's pipeline), bound on the server.

    Not prepared: psycopg's ``executemany`` takes no ``prepare`` flag, and Django turns automatic
    preparing off. Binding alone is what saves the work for large values."""
    with _cursor() as cursor:
        cursor.executemany(sql, rows)
