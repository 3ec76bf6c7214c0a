"""Writing the audit trail: one AuditEvent per change made by a person or a token."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models

from config.request_id import current_request_id
from orgs.models import AuditEvent


def audit_record(
    *,
    org,
    verb: str,
    target: models.Model | None = None,
    changes: dict[str, Any] | None = None,
    actor=None,
    token=None,
    ip: str | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        org=org,
        verb=verb,
        actor=actor if actor is not None and actor.is_authenticated else None,
        token=token,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:255] if target is not None else "",
        changes=changes or {},
        ip=ip,
        request_id=current_request_id(),
    )


def audit_record_many(
    *,
    org,
    verb: str,
    target_type: str,
    targets: Iterable[tuple[Any, str, dict[str, Any]]],
    actor=None,
    token=None,
    ip: str | None = None,
) -> list[AuditEvent]:
    """One event per target of a bulk change, in one insert: ``targets`` are (id, label, changes)."""
    actor = actor if actor is not None and actor.is_authenticated else None
    request_id = current_request_id()
    return AuditEvent.objects.bulk_create([
        AuditEvent(org=org, verb=verb, actor=actor, token=token, target_type=target_type, target_id=str(pk),
                   target_repr=label[:255], changes=changes, ip=ip, request_id=request_id)
        for pk, label, changes in targets
    ])
