"""Writes about findings made by people: triage, one at a time and in bulk; confirming or dismissing a
potential finding."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from orgs.audit import audit_record, audit_record_many
from orgs.concurrency import check_version
from scans.models import Finding, FindingEvent
from scans.findings.priority import priority_refresh
from scans.findings.daily_stats import finding_daily_stats_refresh_later
from scans.findings.scoring import scoring_run
from scans.findings.sla import clock_fields, clock_paused, clock_resumed, due_dates_refresh
from scans.selectors import FindingFilters, finding_list_for_org

Status = Finding.Status
TRIAGE_TARGETS = (Status.FALSE_POSITIVE, Status.RISK_ACCEPTED, Status.OPEN)
BULK_TRIAGE_LIMIT = 50_000
BULK_TRIAGE_BATCH = 1_000


def _triage_check(*, status: str, reason: str, until) -> str:
    reason = (reason or "").strip()
    if status not in TRIAGE_TARGETS:
        raise ValidationError(f"{status!r} is not a triage status (false_positive, risk_accepted or open).")
    if status != Status.OPEN and not reason:
        raise ValidationError("Say why: a reason is required to triage a finding.")
    if status == Status.RISK_ACCEPTED:
        if until is None:
            raise ValidationError("An accepted risk needs an expiry date.")
        if until <= timezone.now():
            raise ValidationError("The acceptance must expire in the future.")
    elif until is not None:
        raise ValidationError("Only an accepted risk has an expiry date.")
    return reason


@transaction.atomic
def finding_triage(
    *, finding: Finding, status: str, by, reason: str, until=None, token=None, ip: str | None = None,
    expected_version: int | None = None,
) -> Finding:
    """Mark a finding a false positive or an accepted risk (until a date), or set it back to open.

    Who and why are kept on the finding and in the audit trail. Rescans and imports keep
    the triage (the lifecycle never reopens or closes a triaged finding); an accepted
    risk counts against the score again once ``until`` has passed. With ``expected_version``,
    a finding changed since the caller read it raises ``StaleVersionError`` instead.
    """
    reason = _triage_check(status=status, reason=reason, until=until)

    # Locked so two people triaging at once record one after the other, each audited.
    finding = Finding.objects.select_for_update().get(pk=finding.pk)
    check_version(finding, expected_version)
    if status == Status.OPEN and finding.status not in Finding.TRIAGED:
        raise ValidationError("Only a triaged finding can be set back to open.")
    return _triage_apply(finding=finding, status=status, reason=reason, until=until, by=by, token=token, ip=ip)


def _triage_apply(*, finding: Finding, status: str, reason: str, until, by, token, ip,
                  kind: str = FindingEvent.Kind.TRIAGED, verb: str = "finding.triaged") -> Finding:
    """Write a triage on a locked, checked finding: its fields, its history, the audit trail, the score."""
    before = {"status": finding.status, "reason": finding.triage_reason, "until": finding.risk_accepted_until}
    clock = clock_fields(finding, to_status=status, now=timezone.now())
    finding.status = status
    finding.triage_reason = reason
    finding.risk_accepted_until = until
    finding.triaged_by = by if by is not None and by.is_authenticated else None
    finding.triaged_at = timezone.now()
    finding.version += 1
    finding.save(update_fields=["status", "triage_reason", "risk_accepted_until", "triaged_by", "triaged_at",
                                "version", *clock])
    FindingEvent.objects.create(finding=finding, kind=kind, from_status=before["status"],
                                to_status=status, by=finding.triaged_by, token=token, reason=reason,
                                at=finding.triaged_at)
    audit_record(
        org=finding.org, verb=verb, target=finding, actor=by, token=token, ip=ip,
        changes={
            "status": [before["status"], status],
            "reason": [before["reason"], reason],
            "risk_accepted_until": [_iso(before["until"]), _iso(until)],
        },
    )
    # Only an open finding has a priority; the node's score and snapshot depend on which findings are active.
    priority_refresh(org=finding.org, finding_ids=[finding.pk])
    # Its due date goes with the status (a finding without a priority has none to change).
    due_dates_refresh(org=finding.org, finding_ids=[finding.pk])
    scoring_run(org=finding.org, node_ids=[finding.node_id], rule_ids=[finding.rule_id])
    finding_daily_stats_refresh_later(org=finding.org)
    return finding


# -- certainty -------------------------------------------------------------------------


def _potential_locked(finding: Finding, expected_version: int | None) -> Finding:
    finding = Finding.objects.select_for_update(of=("self",)).select_related("org").get(pk=finding.pk)
    check_version(finding, expected_version)
    if not finding.is_potential:
        raise ValidationError("This finding is not potential: it is certain enough to count, or already confirmed.")
    return finding


@transaction.atomic
def finding_confirm(
    *, finding: Finding, by, note: str = "", token=None, ip: str | None = None, expected_version: int | None = None,
) -> Finding:
    """An analyst vouches for a potential finding (checked by hand, say): from now on it counts in its
    node's grade, the organization's score and reports, whatever its confidence. Who and when are kept
    on the finding, in its history (a CONFIRMED event) and in the audit trail. With
    ``expected_version``, a finding changed since the caller read it raises ``StaleVersionError``."""
    finding = _potential_locked(finding, expected_version)
    actor = by if by is not None and by.is_authenticated else None
    finding.confirmed_at = timezone.now()
    finding.confirmed_by = actor
    finding.version += 1
    finding.save(update_fields=["confirmed_at", "confirmed_by", "version"])
    said = f"{finding.match_confidence:.0%} confidence" + (f": {finding.match_reason}" if finding.match_reason else "")
    note = (note or "").strip()
    FindingEvent.objects.create(finding=finding, kind=FindingEvent.Kind.CONFIRMED, from_status=finding.status,
                                to_status=finding.status, by=actor, token=token,
                                reason=f"Confirmed ({said})" + (f". {note}" if note else ""), at=finding.confirmed_at)
    audit_record(org=finding.org, verb="finding.confirmed", target=finding, actor=by, token=token, ip=ip,
                 changes={"confirmed": [False, True], "match_confidence": finding.match_confidence,
                          "match_reason": finding.match_reason, "note": note})
    scoring_run(org=finding.org, node_ids=[finding.node_id])
    finding_daily_stats_refresh_later(org=finding.org)
    return finding


@transaction.atomic
def finding_dismiss(
    *, finding: Finding, by, reason: str, token=None, ip: str | None = None, expected_version: int | None = None,
) -> Finding:
    """An analyst rules a potential finding out: a false positive, with why (a CONFIRMED event in its
    history, audited as ``finding.dismissed``). ``finding_triage`` can set it back to open."""
    reason = _triage_check(status=Status.FALSE_POSITIVE, reason=reason, until=None)
    finding = _potential_locked(finding, expected_version)
    if finding.status == Status.FALSE_POSITIVE:
        raise ValidationError("This finding is already a false positive.")
    return _triage_apply(finding=finding, status=Status.FALSE_POSITIVE, reason=reason, until=None, by=by,
                         token=token, ip=ip, kind=FindingEvent.Kind.CONFIRMED, verb="finding.dismissed")


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def bulk_finding_ids(*, org, finding_ids: Iterable[int] | None, filters: FindingFilters | None, limit: int,
                     verb: str, reopening: bool = False) -> list[int]:
    """The findings a bulk change acts on (``verb``, in the refusals): the ids given, or every finding matching
    ``filters`` (of those, only the triaged when ``reopening``). More than ``limit`` is refused, never cut."""
    if (finding_ids is None) == (filters is None):
        raise ValidationError(f"Give either the findings to {verb} or a filter, not both.")
    if finding_ids is not None:
        ids = sorted({int(pk) for pk in finding_ids})
        if len(ids) > limit:
            raise ValidationError(f"{len(ids):,} findings selected; {verb} at most {limit:,} at once.")
        matching = _reopenable(Finding.objects.filter(org=org, id__in=ids), reopening)
    else:
        matching = _matching(org=org, filters=filters, reopening=reopening)
    # One more than the limit is enough to know it is too many, without counting a million rows.
    ids = list(matching.order_by("id").values_list("id", flat=True)[:limit + 1])
    if len(ids) > limit:
        raise ValidationError(f"More than {limit:,} findings match; {verb} at most {limit:,} at once: narrow the "
                              "filter (a severity, a node, a source).")
    return ids


def findings_triage_bulk(
    *, org, finding_ids: Iterable[int] | None = None, filters: FindingFilters | None = None, status: str,
    reason: str, until=None, by, token=None, ip: str | None = None, limit: int = BULK_TRIAGE_LIMIT,
) -> int:
    """Triage many findings at once: the ids given, or every finding matching ``filters``.

    The same rules as ``finding_triage``; one audit event and one history event per finding,
    a constant number of queries per batch of 1,000 (lock and read, update, two bulk inserts),
    one transaction, one re-score of the affected nodes at the end. Setting back to open
    skips findings that are not triaged. Returns how many findings changed.
    """
    reason = _triage_check(status=status, reason=reason, until=until)
    ids = bulk_finding_ids(org=org, finding_ids=finding_ids, filters=filters, limit=limit, verb="triage",
                           reopening=status == Status.OPEN)
    actor = by if by is not None and by.is_authenticated else None
    now = timezone.now()
    node_ids: set[int] = set()
    rule_ids: set[str] = set()
    triaged: list[int] = []
    changed = 0
    with transaction.atomic():
        for start in range(0, len(ids), BULK_TRIAGE_BATCH):
            batch = ids[start:start + BULK_TRIAGE_BATCH]
            rows = list(Finding.objects.select_for_update().filter(org=org, id__in=batch)
                        .values("id", "node_id", "status", "triage_reason", "risk_accepted_until", "severity",
                                "title", "rule_id"))
            if status == Status.OPEN:  # re-read under the lock: someone may have reopened it meanwhile
                rows = [row for row in rows if row["status"] in Finding.TRIAGED]
            if not rows:
                continue
            # The SLA clock pauses for the rows leaving open, resumes for those opening again.
            clock = ({"sla_started_at": clock_resumed(now), "sla_paused_at": None, "sla_breached_at": None}
                     if status == Status.OPEN else {"sla_paused_at": clock_paused(now)})
            Finding.objects.filter(id__in=[row["id"] for row in rows]).update(
                status=status, triage_reason=reason, risk_accepted_until=until, triaged_by=actor, triaged_at=now,
                version=F("version") + 1, **clock,
            )
            audit_record_many(
                org=org, verb="finding.triaged", target_type="scans.finding", actor=actor, token=token, ip=ip,
                targets=[(row["id"], f"[{row['severity']}] {row['title']}",
                          {"status": [row["status"], status], "reason": [row["triage_reason"], reason],
                           "risk_accepted_until": [_iso(row["risk_accepted_until"]), _iso(until)], "bulk": True})
                         for row in rows])
            FindingEvent.objects.bulk_create([
                FindingEvent(finding_id=row["id"], kind=FindingEvent.Kind.TRIAGED, from_status=row["status"],
                             to_status=status, by=actor, token=token, reason=reason, at=now) for row in rows
            ])
            node_ids.update(row["node_id"] for row in rows)
            rule_ids.update(row["rule_id"] for row in rows)
            triaged.extend(row["id"] for row in rows)
            changed += len(rows)
        if node_ids:
            # Only open findings have a priority; the nodes' scores and snapshots depend on which
            # findings are active.
            priority_refresh(org=org, finding_ids=triaged)
            due_dates_refresh(org=org, finding_ids=triaged)
            scoring_run(org=org, node_ids=node_ids, rule_ids=rule_ids)
            finding_daily_stats_refresh_later(org=org)
    return changed


def findings_matching_count(*, org, filters: FindingFilters, status: str) -> int:
    """How many findings a bulk change of ``filters`` would touch (a reopening, to ``status`` open: only the
    triaged ones), counted up to the limit plus one."""
    matching = _matching(org=org, filters=filters, reopening=status == Status.OPEN)
    return matching.order_by()[:BULK_TRIAGE_LIMIT + 1].count()


def _matching(*, org, filters: FindingFilters, reopening: bool):
    """The findings a bulk change by filter acts on: those of the list's filter (when ``reopening``, of
    those only the triaged: an open finding has nothing to reopen)."""
    return _reopenable(finding_list_for_org(org=org, filters=filters), reopening)


def _reopenable(matching, reopening: bool):
    return matching.filter(status__in=Finding.TRIAGED) if reopening else matching
