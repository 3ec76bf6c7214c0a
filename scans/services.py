"""Writes about findings made by people: triage."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from orgs.audit import audit_record
from orgs.concurrency import check_version
from scans.models import Finding
from scans.scoring import scoring_run

Status = Finding.Status
TRIAGE_TARGETS = (Status.FALSE_POSITIVE, Status.RISK_ACCEPTED, Status.OPEN)


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

    # Locked so two people triaging at once record one after the other, each audited.
    finding = Finding.objects.select_for_update().get(pk=finding.pk)
    check_version(finding, expected_version)
    if status == Status.OPEN and finding.status not in Finding.TRIAGED:
        raise ValidationError("Only a triaged finding can be set back to open.")
    before = {"status": finding.status, "reason": finding.triage_reason, "until": finding.risk_accepted_until}
    finding.status = status
    finding.triage_reason = reason
    finding.risk_accepted_until = until
    finding.triaged_by = by if by is not None and by.is_authenticated else None
    finding.triaged_at = timezone.now()
    finding.version += 1
    finding.save(update_fields=["status", "triage_reason", "risk_accepted_until", "triaged_by", "triaged_at",
                                "version"])
    audit_record(
        org=finding.org, verb="finding.triaged", target=finding, actor=by, token=token, ip=ip,
        changes={
            "status": [before["status"], status],
            "reason": [before["reason"], reason],
            "risk_accepted_until": [_iso(before["until"]), _iso(until)],
        },
    )
    # The node's score and snapshot depend on which findings are active.
    scoring_run(org=finding.org, node_ids=[finding.node_id])
    return finding


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None
