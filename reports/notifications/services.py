"""Notification writes that are not a channel's (channels are webhook endpoints of a kind, written
by ``reports.webhooks.services``): a member's own daily digest setting.

The events the SLA code publishes reach the channels through ``orgs.events``:
``event_publish(SLA_BREACHED, org=org, finding_ids=[...])`` and
``event_publish(RISK_ACCEPTANCE_EXPIRED, org=org, finding_ids=[...])``, handled by
``reports.webhooks.services.findings_sla_breached`` / ``findings_risk_acceptance_expired``.
"""

from __future__ import annotations

from django.db import transaction

from orgs.audit import audit_record
from orgs.models import Membership


@transaction.atomic
def membership_digest_set(*, membership: Membership, enabled: bool, by=None, ip: str | None = None) -> bool:
    """Turn the member's daily digest on or off; True when it changed."""
    changed = Membership.objects.filter(pk=membership.pk).exclude(digest_enabled=enabled).update(digest_enabled=enabled)
    membership.digest_enabled = enabled
    if changed:
        audit_record(org=membership.org, verb="membership.digest_changed", target=membership, actor=by, ip=ip,
                     changes={"digest_enabled": [not enabled, enabled]})
    return bool(changed)
