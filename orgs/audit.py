"""Writing the audit trail: one AuditEvent per change made by a person or a token."""

from __future__ import annotations

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
