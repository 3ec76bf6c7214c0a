"""The findings' daily rollup (``FindingDailyStats``): what the trend charts read instead of a million findings.

``finding_daily_stats_refresh`` rewrites one organization's row for today in one
``INSERT ... SELECT ... ON CONFLICT`` statement whose reads are bounded by the day's activity
and the organization's open findings:

- open findings by severity: the sums of the node snapshots (the dashboard's own tiles, as the
  scoring just wrote them);
- the SLA: open findings with a due date, and those past it, counted now;
- new and fixed: the day's ``new`` and ``fixed`` finding events of the organization's recent
  sessions (an index walk per session), each fix with its time to fix (fixed − first seen).

Callers: the pipeline's scoring stage, an import, triage (queued after commit, see
``finding_daily_stats_refresh_later``) and an hourly beat row for the days with none of those.

``finding_daily_stats_backfill`` rebuilds past days from the findings themselves (first seen,
fixed at, due date), for an organization that had findings before the rollup existed; a day
already written live is kept unless ``replace``.
"""

from __future__ import annotations

import datetime as dt

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from config.celery import app
from nodes.models import NodeSnapshot
from scans.models import SEVERITIES, Finding, FindingDailyStats, FindingEvent, ScanSession

REFRESH_TASK = "scans.tasks.finding_daily_stats_refresh"
# A session's events are written within its run: sessions created this long before the day can
# still be writing into it (the pipeline's time budgets are hours, not days).
SESSION_SPAN = dt.timedelta(days=2)
# Triage refreshes the row after commit, at most once per organization in this many seconds: a
# person triaging fifty findings one by one costs one refresh, not fifty.
REFRESH_COALESCE_SECONDS = 30

STATS = FindingDailyStats._meta.db_table
FINDINGS = Finding._meta.db_table
EVENTS = FindingEvent._meta.db_table
SESSIONS = ScanSession._meta.db_table
SNAPSHOTS = NodeSnapshot._meta.db_table

_OPEN = [f"open_{s}" for s in SEVERITIES]
_FIXED = [f"fixed_{s}" for s in SEVERITIES]
_FIX_SECONDS = [f"fix_seconds_{s}" for s in SEVERITIES]
COLUMNS = [*_OPEN, "sla_open", "sla_overdue", "new", *_FIXED, *_FIX_SECONDS]


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.timezone.utc)
    return start, start + dt.timedelta(days=1)


def _upsert(select_sql: str, *, replace: bool = True) -> str:
    names = ", ".join(COLUMNS)
    conflict = ("DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in [*COLUMNS, "updated_at"])
                if replace else "DO NOTHING")
    return f"INSERT INTO {STATS} (org_id, day, {names}, updated_at) {select_sql} ON CONFLICT (org_id, day) {conflict}"


_REFRESH = _upsert(
    "SELECT %(org)s, %(day)s, "
    + ", ".join(f"snap.{s}" for s in SEVERITIES) + ", sla.open, sla.overdue, new.n, "
    + ", ".join(f"fix.{c}" for c in [*_FIXED, *_FIX_SECONDS]) + ", %(now)s "
    "FROM (SELECT " + ", ".join(f"coalesce(sum({s}), 0) AS {s}" for s in SEVERITIES)
    + f" FROM {SNAPSHOTS} WHERE org_id = %(org)s) AS snap, "
    f"(SELECT count(*) AS open, count(*) FILTER (WHERE due_at < %(now)s) AS overdue FROM {FINDINGS} "
    "WHERE org_id = %(org)s AND status = 'open' AND due_at IS NOT NULL) AS sla, "
    f"(SELECT count(*) AS n FROM {EVENTS} e WHERE e.session_id IN (SELECT id FROM {SESSIONS} "
    "WHERE org_id = %(org)s AND created_at >= %(since)s AND created_at < %(end)s) "
    "AND e.kind = 'new' AND e.at >= %(start)s AND e.at < %(end)s) AS new, "
    "(SELECT " + ", ".join(
        f"count(*) FILTER (WHERE f.severity = '{s}') AS fixed_{s}, "
        f"coalesce(sum(extract(epoch FROM e.at - f.first_seen)) FILTER (WHERE f.severity = '{s}'), 0)::bigint "
        f"AS fix_seconds_{s}" for s in SEVERITIES)
    + f" FROM {EVENTS} e JOIN {FINDINGS} f ON f.id = e.finding_id WHERE e.session_id IN (SELECT id FROM {SESSIONS} "
    "WHERE org_id = %(org)s AND created_at >= %(since)s AND created_at < %(end)s) "
    "AND e.kind = 'fixed' AND e.at >= %(start)s AND e.at < %(end)s) AS fix"
)


def finding_daily_stats_refresh(*, org, now: dt.datetime | None = None) -> None:
    """Rewrite ``org``'s row for today (UTC) from the snapshots, the open findings and the day's events."""
    now = now or timezone.now()
    day = now.astimezone(dt.timezone.utc).date()
    start, end = day_bounds(day)
    with connection.cursor() as cursor:
        cursor.execute(_REFRESH, {"org": org.pk, "day": day, "now": now, "start": start, "end": end,
                                  "since": start - SESSION_SPAN})


def finding_daily_stats_refresh_later(*, org) -> None:
    """Queue a refresh after commit, once per organization per ``REFRESH_COALESCE_SECONDS`` (triage)."""
    if cache.add(f"finding-daily-stats:{org.pk}", 1, timeout=REFRESH_COALESCE_SECONDS):
        transaction.on_commit(lambda: app.send_task(REFRESH_TASK, kwargs={"org_id": org.pk},
                                                    countdown=REFRESH_COALESCE_SECONDS))


# Past days from the findings as they are now: a finding counts open from its first sighting until
# it was fixed; one triaged since (false positive, accepted risk) is left out of every day, and a
# fixed finding's former due date is not kept, so it counts in no day's SLA. The live rows, written
# as the days happen, know better; the backfill keeps them unless told to replace them.
_GROUPED = (
    "WITH grouped AS MATERIALIZED (SELECT severity, status, (first_seen AT TIME ZONE 'UTC')::date AS seen_day, "
    "CASE WHEN status = 'fixed' THEN (fixed_at AT TIME ZONE 'UTC')::date END AS fixed_day, "
    "CASE WHEN status = 'open' THEN (due_at AT TIME ZONE 'UTC')::date END AS due_day, count(*) AS n, "
    "sum(CASE WHEN status = 'fixed' THEN extract(epoch FROM fixed_at - first_seen) END) AS fix_seconds "
    f"FROM {FINDINGS} WHERE org_id = %(org)s AND first_seen < %(end)s GROUP BY 1, 2, 3, 4, 5) "
)
_BACKFILL_SELECT = (
    "SELECT %(org)s, d.day, x.*, %(now)s "
    "FROM (SELECT g::date AS day FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS g) AS d "
    "CROSS JOIN LATERAL (SELECT "
    + ", ".join(f"coalesce(sum(n) FILTER (WHERE severity = '{s}' AND seen_day <= d.day AND (status = 'open' "
                f"OR (status = 'fixed' AND fixed_day > d.day))), 0)::int" for s in SEVERITIES)
    + ", coalesce(sum(n) FILTER (WHERE status = 'open' AND due_day IS NOT NULL AND seen_day <= d.day), 0)::int"
    ", coalesce(sum(n) FILTER (WHERE status = 'open' AND due_day IS NOT NULL AND seen_day <= d.day "
    "AND due_day <= d.day), 0)::int"
    ", coalesce(sum(n) FILTER (WHERE seen_day = d.day), 0)::int, "
    + ", ".join(f"coalesce(sum(n) FILTER (WHERE severity = '{s}' AND status = 'fixed' AND fixed_day = d.day), 0)::int"
                for s in SEVERITIES) + ", "
    + ", ".join(f"coalesce(sum(fix_seconds) FILTER (WHERE severity = '{s}' AND status = 'fixed' "
                f"AND fixed_day = d.day), 0)::bigint" for s in SEVERITIES)
    + " FROM grouped) AS x"
)
_BACKFILL = _GROUPED + _upsert(_BACKFILL_SELECT, replace=False)
_BACKFILL_REPLACE = _GROUPED + _upsert(_BACKFILL_SELECT, replace=True)


def finding_daily_stats_backfill(*, org, days: int, replace: bool = False, now: dt.datetime | None = None) -> int:
    """Write ``org``'s rows for the ``days`` days before today from its findings, then today's live row.

    One statement for the past days (one read of the organization's findings, grouped); answers
    how many past days it wrote."""
    now = now or timezone.now()
    today = now.astimezone(dt.timezone.utc).date()
    first, last = today - dt.timedelta(days=max(0, days)), today - dt.timedelta(days=1)
    written = 0
    with transaction.atomic():
        if days > 0:
            with connection.cursor() as cursor:
                cursor.execute(_BACKFILL_REPLACE if replace else _BACKFILL, {
                    "org": org.pk, "first": first, "last": last, "now": now, "end": day_bounds(last)[1]})
                written = cursor.rowcount
        finding_daily_stats_refresh(org=org, now=now)
    return written
