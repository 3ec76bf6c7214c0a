"""Cached pages of the node list, keyed by the organization's ``NodeListVersion``.

The API's node list is what integrations poll; at 10,000 nodes a page costs PostgreSQL a
count, an index walk and a hundred JSON objects, the same answer again and again between
scans. The database bumps the organization's version in the commit of any change to its
nodes or snapshots (``nodes.models.NodeListVersion``), so a page cached under the version
read *before* the page was built can be stale only if that version is already superseded:
a reader that sees the new version never gets the old page. Inside a transaction that may
hold uncommitted writes of its own the cache is bypassed, and without a version (an
organization whose nodes never changed since the table was emptied) nothing is cached.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache
from django.db import connection

from config import prepared
from nodes.models import NodeListVersion

# Long enough to serve a dashboard's polling between scans; versions make it exact anyway.
TIMEOUT_SECONDS = 600


def current_version(org_id: int) -> int | None:
    if connection.in_atomic_block:
        return None
    row = prepared.fetchone(f"SELECT version FROM {NodeListVersion._meta.db_table} WHERE org_id = %s", [org_id])
    return row[0] if row else None


def cache_key(org_id: int, version: int, url: str) -> str:
    # The absolute URL: the page's next/previous links carry the host the caller used.
    return f"nodes-list:{org_id}:{version}:{hashlib.sha256(url.encode()).hexdigest()}"


def etag(version: int) -> str:
    return f'"nodes-{version}"'


def get(key: str) -> bytes | None:
    return cache.get(key)


def put(key: str, body: bytes) -> None:
    cache.set(key, body, TIMEOUT_SECONDS)
