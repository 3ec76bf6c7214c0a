"""Pipeline tunables, read from Django settings when set there, else from the environment.

Tests and the fault tests shrink them (seconds instead of minutes) through the
environment, which reaches worker subprocesses too.
"""

from __future__ import annotations

import os

from django.conf import settings


def _number(name: str, default: float) -> float:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, default)
    return float(value)


def heartbeat_seconds() -> float:
    """How often a running job (or stage) touches its heartbeat."""
    return _number("WATCHPOST_HEARTBEAT_SECONDS", 10)


def stale_seconds() -> float:
    """A running job whose heartbeat is older than this is presumed dead (worker killed)."""
    return _number("WATCHPOST_STALE_SECONDS", 60)


def lost_seconds() -> float:
    """A dispatched job nobody claimed for this long lost its message (broker restarted)."""
    return _number("WATCHPOST_LOST_SECONDS", 300)


def stage_seconds() -> float:
    """Deadline of a one-piece stage (scan creation, analysis, normalization, scoring, reporting)."""
    return _number("WATCHPOST_STAGE_SECONDS", 600)


def discovery_seconds() -> float:
    """Deadline of the discovery stage."""
    return _number("WATCHPOST_DISCOVERY_SECONDS", 1800)


def job_grace_seconds() -> float:
    """Between the soft (scanner budget) and the hard (kill the task) time limit of a job."""
    return _number("WATCHPOST_JOB_GRACE_SECONDS", 10)


def retry_backoff_seconds() -> float:
    return _number("WATCHPOST_RETRY_BACKOFF_SECONDS", 5)


def retry_backoff_max_seconds() -> float:
    return _number("WATCHPOST_RETRY_BACKOFF_MAX_SECONDS", 300)


def job_batch_size() -> int:
    """Jobs per Celery message. A job stays the unit of claim, status and retry; a message
    carrying a few of them (run concurrently) costs one broker round trip instead of several, and one
    claim, one record and one hand-over to the next message. At 20 jobs those took a sixth of a
    worker's time in a 1,000-node session's execution; 40 halves the number of messages."""
    return max(1, int(_number("WATCHPOST_JOB_BATCH", 40)))


def discovery_batch_size() -> int:
    """At most this many discovery jobs per message. A message's nodes are swept together, under one
    socket budget, with identification alongside (``discover_many``): the bigger the batch, the
    less each node costs, so a session's nodes are split into as few, even messages as this allows."""
    return max(1, int(_number("WATCHPOST_DISCOVERY_BATCH", 250)))


def even_batches(items: list, limit: int) -> list[list]:
    """``items`` in as few batches of at most ``limit`` as possible, their sizes one apart at most:
    1,001 nodes at 250 are five messages of about 200, not four of 250 and one of 1."""
    count = -(-len(items) // max(1, limit))
    return [items[i * len(items) // count:(i + 1) * len(items) // count] for i in range(count)]


def normalization_parts() -> int:
    """At most this many parts a session's normalization is split into, each a task for any worker process."""
    return max(1, int(_number("WATCHPOST_NORMALIZATION_PARTS", 4)))


def normalization_part_jobs() -> int:
    """At least this many jobs in each part: a smaller session is normalized in one piece.

    More parts than worker processes even out their finishing times: a process that finishes
    its part early takes the next one instead of waiting for the slowest."""
    return max(1, int(_number("WATCHPOST_NORMALIZATION_PART_JOBS", 500)))


def discovery_sockets() -> int:
    """Connects in flight at once per worker process, over all the discovery it runs (the sweep's budget)."""
    return max(1, int(_number("WATCHPOST_DISCOVERY_SOCKETS", 4096)))


def discovery_identify_concurrency() -> int:
    """Open ports identified at once per discovery message, while its sweep goes on."""
    return max(1, int(_number("WATCHPOST_DISCOVERY_IDENTIFY", 256)))


def watchdog_interval_seconds() -> float:
    return _number("WATCHPOST_WATCHDOG_SECONDS", 30)
