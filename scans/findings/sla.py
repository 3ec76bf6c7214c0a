"""The SLA of open findings: when each is due, the clock paused by a triage, and the periodic sweep.

An open finding is due ``days`` after its clock started, ``days`` being its organization's SLA for its
priority (``Organization.sla_p1_days`` .. ``sla_p4_days``), or, while it has no priority, for its
severity (critical as P1, high as P2, medium as P3, low and info as P4). A CISA KEV due date of one of
its CVEs wins when it is earlier (the end of that day, UTC). The clock starts at ``first_seen``, or at
``sla_started_at`` when set: a rescan that reopens a fixed finding starts a new clock, and a finding
triaged away from open (false positive, accepted risk) pauses it (``sla_paused_at``): when it opens
again, the clock's start moves on by the time it was paused, so the finding keeps the time it had left.
A finding that is not open has no due date.

``due_dates_refresh`` writes ``due_at`` with one UPDATE per chunk, only where it changes. It runs
after every change of priority (``priority_refresh`` calls it with the findings it changed), for the
whole organization when its SLA policy changes (``SETTINGS_CHANGED``), and for findings whose KEV
values moved. A new finding is written with its due date by the lifecycle (``ingest_due_at``, the same
rule in Python, tested against the SQL), so an import writes each row once.

``scans.findings.sla_sweep`` runs on beat: it reopens the accepted risks whose acceptance expired (a REOPENED event
saying so, then ``RISK_ACCEPTANCE_EXPIRED``) and marks open findings that went past their due date,
each once (``sla_breached_at``, then ``SLA_BREACHED``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from django.db import connection, models
from django.db.models.expressions import RawSQL

from orgs.models import Organization
from scans.findings.groups import finding_groups_refresh
from scans.models import Finding, KevEntry

CHUNK = 5000  # finding ids per UPDATE
ORG_CHUNK = 50_000  # id range per UPDATE over a whole organization
SLA_FIELDS = ("sla_p1_days", "sla_p2_days", "sla_p3_days", "sla_p4_days")
# The priority whose SLA a finding without one (open, not yet computed) follows.
SEVERITY_PRIORITY = {"critical": 1, "high": 2, "medium": 3, "low": 4, "info": 4}

_F = Finding._meta.db_table
_K = KevEntry._meta.db_table
_O = Organization._meta.db_table

# The due date of an open finding f, the organization's four SLAs given as %(p1)s..%(p4)s.
_DUE = f"""
    CASE WHEN f.status = 'open' THEN LEAST(
      coalesce(f.sla_started_at, f.first_seen) + make_interval(days => CASE coalesce(f.priority,
          CASE f.severity WHEN 'critical' THEN 1 WHEN 'high' THEN 2 WHEN 'medium' THEN 3 ELSE 4 END)
        WHEN 1 THEN %(p1)s WHEN 2 THEN %(p2)s WHEN 3 THEN %(p3)s ELSE %(p4)s END),
      CASE WHEN f.kev_added IS NOT NULL THEN (
        SELECT (min(k.due_date) + 1)::timestamp AT TIME ZONE 'UTC' FROM {_K} k
        WHERE k.cve_id IN (SELECT upper(c) FROM jsonb_array_elements_text(
          CASE jsonb_typeof(f.cve_ids) WHEN 'array' THEN f.cve_ids ELSE '[]' END) c)) END)
    END"""
# A due date moved into the future (a longer SLA, a reopening) is no longer a breach to keep.
_REFRESH = f"""
    UPDATE {_F} f SET due_at = d.due,
           sla_breached_at = CASE WHEN d.due IS NULL OR d.due > now() THEN NULL ELSE f.sla_breached_at END
    FROM (SELECT f.id, {_DUE} AS due FROM {_F} f
          WHERE f.org_id = %(org)s AND {{scope}} AND (f.status = 'open' OR f.due_at IS NOT NULL)) d
    WHERE f.id = d.id AND f.due_at IS DISTINCT FROM d.due"""
_BY_FINDINGS = _REFRESH.format(scope="f.id = ANY(%(ids)s::bigint[])")
_BY_RANGE = _REFRESH.format(scope="f.id >= %(low)s AND f.id < %(high)s")


def sla_days(org, priority: int | None, severity: str) -> int:
    """The organization's days to fix a finding of ``priority`` (else of ``severity``)."""
    field = f"sla_p{priority or SEVERITY_PRIORITY.get(severity, 4)}_days"
    if org is None:  # an ingest outside any organization (tests of the lifecycle alone): the defaults
        return Organization._meta.get_field(field).default
    return getattr(org, field)


def ingest_due_at(org, *, priority: int | None, severity: str, started: datetime,
                  kev_due: date | None = None) -> datetime:
    """A new open finding's due date, as ``_DUE`` computes it (the lifecycle writes it with the row)."""
    due = started + timedelta(days=sla_days(org, priority, severity))
    if kev_due is not None:
        kev_end = datetime.combine(kev_due + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        due = min(due, kev_end)
    return due


def _policy(org) -> dict:
    return {"org": org.pk, **{f"p{n}": getattr(org, f"sla_p{n}_days") for n in (1, 2, 3, 4)}}


def due_dates_refresh(*, org, finding_ids: Iterable[int] | None = None) -> int:
    """Write the due date of ``org``'s findings ``finding_ids`` (every finding of it when None), where it
    changes. One UPDATE per 5,000 ids, or per 50,000-id range over the organization. Returns the count."""
    params = _policy(org)
    changed = 0
    with connection.cursor() as cursor:
        if finding_ids is None:
            cursor.execute(f"SELECT min(id), max(id) FROM {_F} WHERE org_id = %s", [org.pk])
            low, high = cursor.fetchone()
            if low is None:
                return 0
            for start in range(low, high + 1, ORG_CHUNK):
                cursor.execute(_BY_RANGE, {**params, "low": start, "high": start + ORG_CHUNK})
                changed += cursor.rowcount
            return changed
        ids = sorted({int(pk) for pk in finding_ids})
        for start in range(0, len(ids), CHUNK):
            cursor.execute(_BY_FINDINGS, {**params, "ids": ids[start:start + CHUNK]})
            changed += cursor.rowcount
    return changed


def sla_on_settings_changed(*, org, changes) -> None:
    """A new SLA policy moves every open finding's due date, and so each group's earliest one."""
    if any(field in changes for field in SLA_FIELDS):
        due_dates_refresh(org=org)
        finding_groups_refresh(org=org)


# -- the clock paused by a triage ---------------------------------------------------------------

# Leaving open for a triage pauses the clock; opening again from a triage moves its start on by the
# pause (or starts a new clock when it was not running: a finding triaged after it was fixed). Written
# unqualified, for Django's UPDATE and the sweep's alike; ``now`` is the one parameter, given twice.
_RESUME_START = ("CASE WHEN sla_paused_at IS NULL THEN %s "
                 "ELSE coalesce(sla_started_at, first_seen) + (%s - sla_paused_at) END")
SQL_RESUME_START = _RESUME_START.replace("%s", "%(now)s")


def clock_paused(now: datetime) -> RawSQL:
    """For a bulk UPDATE to a triaged status: the clock of the rows that were open pauses now."""
    return RawSQL("CASE WHEN status = 'open' THEN %s ELSE sla_paused_at END", (now,),
                  output_field=models.DateTimeField())


def clock_resumed(now: datetime) -> RawSQL:
    """For a bulk UPDATE back to open: the clock's new start."""
    return RawSQL(_RESUME_START, (now, now), output_field=models.DateTimeField())


def clock_fields(finding: Finding, *, to_status: str, now: datetime) -> list[str]:
    """Set the clock of one locked finding moving from its status to ``to_status``; the fields changed."""
    if finding.status == Finding.Status.OPEN and to_status != Finding.Status.OPEN:
        finding.sla_paused_at = now
        return ["sla_paused_at"]
    if finding.status != Finding.Status.OPEN and to_status == Finding.Status.OPEN:
        if finding.sla_paused_at is None:
            finding.sla_started_at = now
        else:
            finding.sla_started_at = (finding.sla_started_at or finding.first_seen) + (now - finding.sla_paused_at)
        finding.sla_paused_at = None
        finding.sla_breached_at = None
        return ["sla_started_at", "sla_paused_at", "sla_breached_at"]
    return []
