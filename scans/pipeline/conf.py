"""Pipeline tunables, read from Django settings when set there, else from the environment.

Tests and the fault tests shrink them (seconds instead of minutes) through the
environment, which reaches worker subprocesses too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from django.conf import settings


def _number(name: str, default: float) -> float:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, default)
    return float(value)


@dataclass(frozen=True)
class Tunable:
    """One tunable, read at each call (a test may change it in between): Django's setting ``name``
    when set, else the environment variable ``name``, else ``default``. A ``count`` is a whole
    number, at least one; anything else is a number of seconds."""

    name: str
    default: float
    count: bool = False

    def __call__(self) -> int | float:
        value = _number(self.name, self.default)
        return max(1, int(value)) if self.count else value


# How often a running job (or stage) touches its heartbeat.
heartbeat_seconds = Tunable("WATCHPOST_HEARTBEAT_SECONDS", 10)
# A running job whose heartbeat is older than this is presumed dead (worker killed).
stale_seconds = Tunable("WATCHPOST_STALE_SECONDS", 60)
# A dispatched job nobody claimed for this long lost its message (broker restarted).
lost_seconds = Tunable("WATCHPOST_LOST_SECONDS", 300)
# Deadline of a one-piece stage (scan creation, analysis, normalization, scoring, reporting).
stage_seconds = Tunable("WATCHPOST_STAGE_SECONDS", 600)
# Deadline of the discovery stage.
discovery_seconds = Tunable("WATCHPOST_DISCOVERY_SECONDS", 1800)
# Between the soft (scanner budget) and the hard (kill the task) time limit of a job.
job_grace_seconds = Tunable("WATCHPOST_JOB_GRACE_SECONDS", 10)
retry_backoff_seconds = Tunable("WATCHPOST_RETRY_BACKOFF_SECONDS", 5)
retry_backoff_max_seconds = Tunable("WATCHPOST_RETRY_BACKOFF_MAX_SECONDS", 300)
watchdog_interval_seconds = Tunable("WATCHPOST_WATCHDOG_SECONDS", 30)

# Jobs per Celery message. A job stays the unit of claim, status and retry; a message carrying a
# few of them (run concurrently) costs one broker round trip instead of several, and one claim,
# one record and one hand-over to the next message. At 20 jobs those took a sixth of a worker's
# time in a 1,000-node session's execution; 40 halves the number of messages.
job_batch_size = Tunable("WATCHPOST_JOB_BATCH", 40, count=True)
# At most this many discovery jobs per message. A message's nodes are swept together, under one
# socket budget, with identification alongside (``discover_many``): the bigger the batch, the
# less each node costs, so a session's nodes are split into as few, even messages as this allows
# (``even_batches``).
discovery_batch_size = Tunable("WATCHPOST_DISCOVERY_BATCH", 250, count=True)
# At most this many parts a session's normalization is split into, each a task for any worker process.
normalization_parts = Tunable("WATCHPOST_NORMALIZATION_PARTS", 4, count=True)
# At least this many jobs in each part: a smaller session is normalized in one piece. More parts
# than worker processes even out their finishing times: a process that finishes its part early
# takes the next one instead of waiting for the slowest.
normalization_part_jobs = Tunable("WATCHPOST_NORMALIZATION_PART_JOBS", 500, count=True)
# Connects in flight at once per worker process, over all the discovery it runs (the sweep's budget).
discovery_sockets = Tunable("WATCHPOST_DISCOVERY_SOCKETS", 4096, count=True)
# Open ports identified at once per discovery message, while its sweep goes on.
discovery_identify_concurrency = Tunable("WATCHPOST_DISCOVERY_IDENTIFY", 256, count=True)


def even_batches(items: list, limit: int) -> list[list]:
    """``items`` in as few batches of at most ``limit`` as possible, their sizes one apart at most:
    1,001 nodes at 250 are five messages of about 200, not four of 250 and one of 1."""
    count = -(-len(items) // max(1, limit))
    return [items[i * len(items) // count:(i + 1) * len(items) // count] for i in range(count)]
