"""The seven-stage pipeline as services over the database, whatever runs them.

Discovery → Scan creation → Execution → Analysis → Normalization → Scoring → Reporting.

- ``sessions``: start, cancel, finish and summarize a session; stage hand-over.
- ``stages``: the session-level stages (one piece of work each) and the fan-out ones.
- ``execution``: (node, scanner) jobs: admission under the organization's concurrency
  limit, claim, run, heartbeat, retry with backoff, fan-in.
- ``dispatch``: the runner seam: Celery after commit, or inline in this process.
- ``retries``: re-queueing failed work for interventions and the watchdog.
- ``watchdog``: on beat, nothing stays stuck silently.
- ``workers``: each Celery worker's presence row.
- ``retention``: old raw output and sessions pruned, per organization.

Celery tasks (``scans.tasks``) only load ids and call these services, so
``run_session --inline`` runs exactly the same code.
"""
