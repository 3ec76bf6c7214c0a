"""Writes about interventions: open (idempotently), acknowledge, resolve, dismiss, retry.

Every transition is a conditional UPDATE on the state it leaves, so two people (or a
person and the pipeline) acting at once cannot both win; the loser gets a clear
``InterventionTransitionError``. Every transition writes an AuditEvent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import structlog
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from interventions.models import Intervention
from orgs.audit import audit_record
from orgs.concurrency import StaleVersionError
from orgs.events import INTERVENTION_OPENED, event_publish

logger = structlog.get_logger(__name__)

State = Intervention.State
Kind = Intervention.Kind


class InterventionTransitionError(ValueError):
    """A transition the state machine does not allow (resolved → acknowledged, a second dismiss...)."""


def intervention_open(
    *,
    org,
    kind: str,
    subject: str,
    title: str,
    context: dict[str, Any] | None = None,
    session=None,
    job=None,
    node=None,
) -> Intervention:
    """Open an intervention, or bump the unresolved one the organization already has for (subject, kind).

    Idempotent: a job failing again, or the watchdog finding the same stuck stage on its
    next round, adds an occurrence and refreshes the context instead of a second row.
    """
    context = dict(context or {})
    for _ in range(3):
        with transaction.atomic():
            existing = (
                Intervention.objects.select_for_update()
                .filter(org=org, subject=subject, kind=kind, state__in=Intervention.UNRESOLVED)
                .first()
            )
            if existing is not None:
                existing.occurrences = F("occurrences") + 1
                existing.context = {**existing.context, **context}
                existing.title = title[:300]
                existing.save(update_fields=["occurrences", "context", "title"])
                existing.refresh_from_db(fields=["occurrences"])
                logger.info("intervention.bumped", intervention_id=existing.pk, kind=kind, subject=subject,
                            occurrences=existing.occurrences)
                return existing
            try:
                # A savepoint: losing the race to a concurrent opener must not poison the transaction.
                with transaction.atomic():
                    intervention = Intervention.objects.create(
                        org=org, kind=kind, subject=subject, title=title[:300], context=context,
                        session=session, job=job, node=node,
                    )
            except IntegrityError:
                continue  # someone opened it between our read and our insert: bump theirs
            audit_record(org=org, verb="intervention.opened", target=intervention,
                         changes={"state": [None, State.OPEN], "kind": kind, "subject": subject})
            event_publish(INTERVENTION_OPENED, intervention=intervention)  # subscribers write in this transaction
            logger.info("intervention.opened", intervention_id=intervention.pk, kind=kind, subject=subject)
            return intervention
    raise RuntimeError(f"could not open or bump the intervention for {subject} ({kind})")


def _transition(*, intervention: Intervention, to: str, by, note: str, verb: str, extra: dict[str, Any],
                expected_version: int | None = None, token=None) -> Intervention:
    allowed_from = [state for state, targets in Intervention.TRANSITIONS.items() if to in targets]
    old = intervention.state
    with transaction.atomic():
        claim = Intervention.objects.filter(pk=intervention.pk, state__in=allowed_from)
        if expected_version is not None:
            claim = claim.filter(version=expected_version)
        changed = claim.update(state=to, version=F("version") + 1, **extra)
        if not changed and expected_version is not None:
            current = Intervention.objects.filter(pk=intervention.pk).first()
            if current is not None and current.version != expected_version:
                raise StaleVersionError(current=current, expected=expected_version)
        if not changed:
            current = Intervention.objects.filter(pk=intervention.pk).values_list("state", flat=True).first()
            label = dict(State.choices).get(to, to).lower()
            raise InterventionTransitionError(
                f"Intervention #{intervention.pk} is {current or 'gone'}; it cannot be {label} "
                f"(only from {' or '.join(allowed_from)})."
            )
        intervention.refresh_from_db()
        audit_record(org=intervention.org, verb=verb, target=intervention, actor=by, token=token,
                     changes={"state": [old, to], "note": note})
    logger.info(verb, intervention_id=intervention.pk, state=to)
    return intervention


def intervention_acknowledge(*, intervention: Intervention, by, note: str = "",
                             expected_version: int | None = None, token=None) -> Intervention:
    """Someone is on it: open → acknowledged."""
    extra: dict[str, Any] = {"acknowledged_by": _user(by), "acknowledged_at": timezone.now()}
    if note:
        extra["note"] = note
    return _transition(intervention=intervention, to=State.ACKNOWLEDGED, by=by, note=note,
                       verb="intervention.acknowledged", extra=extra, expected_version=expected_version, token=token)


def intervention_resolve(*, intervention: Intervention, by, note: str = "",
                         expected_version: int | None = None, token=None) -> Intervention:
    """The cause is fixed: open | acknowledged → resolved."""
    return _close(intervention=intervention, to=State.RESOLVED, by=by, note=note, expected_version=expected_version,
                  token=token)


def intervention_dismiss(*, intervention: Intervention, by, note: str = "",
                         expected_version: int | None = None, token=None) -> Intervention:
    """Not worth acting on: open | acknowledged → dismissed."""
    return _close(intervention=intervention, to=State.DISMISSED, by=by, note=note, expected_version=expected_version,
                  token=token)


def _close(*, intervention: Intervention, to: str, by, note: str, expected_version: int | None,
           token=None) -> Intervention:
    extra: dict[str, Any] = {"closed_by": _user(by), "closed_at": timezone.now()}
    if note:
        extra["note"] = note
    return _transition(intervention=intervention, to=to, by=by, note=note, verb=f"intervention.{to}", extra=extra,
                       expected_version=expected_version, token=token)


# Kinds whose failed work is one job, re-queued alone by a retry.
JOB_KINDS = (Kind.JOB_EXHAUSTED, Kind.SCANNER_CRASHED, Kind.NODE_UNREACHABLE, Kind.OUT_OF_ZONE)

# What a retry does, by intervention kind, registered by the app that owns the failed work
# (the pipeline registers its kinds in ScansConfig.ready(), webhooks theirs in ReportsConfig's).
# Interventions never import those apps: the dependency reads one way, pipeline → interventions.
# A handler queues the work inside the retry's transaction, or raises InterventionTransitionError
# saying why it cannot.
RETRY_HANDLERS: dict[str, Callable[..., None]] = {}


def retry_handler_register(*, kinds: Iterable[str], handler: Callable[..., None]) -> None:
    """``handler(intervention=..., by=..., token=...)`` re-queues the failed work of interventions of ``kinds``."""
    for kind in kinds:
        RETRY_HANDLERS[kind] = handler


def intervention_retryable(intervention: Intervention) -> bool:
    """Whether ``intervention_retry`` has work to re-queue for it, so pages offer Retry only then.

    Read from the same table the retry uses: a kind nobody registered cannot be retried; a
    job kind needs its job; a registered session kind (a stuck stage) needs its job or its session.
    """
    if not intervention.is_unresolved or intervention.kind == Kind.IMPORT_REJECTED:
        return False
    if intervention.kind not in RETRY_HANDLERS:
        return False
    if intervention.kind == Kind.WEBHOOK_FAILING:  # its retry resumes the endpoint it names
        return bool((intervention.context or {}).get("endpoint_id"))
    if intervention.kind in JOB_KINDS:
        return intervention.job_id is not None
    return intervention.job_id is not None or intervention.session_id is not None


def intervention_retry(*, intervention: Intervention, by, expected_version: int | None = None,
                       token=None) -> Intervention:
    """Re-queue only the failed work; the intervention resolves itself when that work succeeds.

    A job intervention re-queues its job (the session re-opens its execution stage for
    it); a stuck stage re-runs that stage. An import cannot be retried: the file was
    rejected, a corrected one must be uploaded.
    """
    intervention.refresh_from_db()
    if expected_version is not None and intervention.version != expected_version:
        raise StaleVersionError(current=intervention, expected=expected_version)
    if not intervention.is_unresolved:
        raise InterventionTransitionError(
            f"Intervention #{intervention.pk} is {intervention.state}; only an open or acknowledged one can be retried."
        )
    if intervention.kind == Kind.IMPORT_REJECTED:
        raise InterventionTransitionError("A rejected import cannot be retried; upload a corrected file instead.")
    # The retry is counted in the same transaction that queues the work (published on commit),
    # so the work can never succeed before the intervention knows it was retried.
    with transaction.atomic():
        Intervention.objects.filter(pk=intervention.pk).update(retry_count=F("retry_count") + 1,
                                                               last_retry_at=timezone.now(),
                                                               version=F("version") + 1)
        if intervention.kind in RETRY_HANDLERS:
            RETRY_HANDLERS[intervention.kind](intervention=intervention, by=by, token=token)
        else:
            raise InterventionTransitionError(f"Interventions of kind {intervention.kind} cannot be retried.")
    intervention.refresh_from_db()
    audit_record(org=intervention.org, verb="intervention.retried", target=intervention, actor=by, token=token,
                 changes={"retry_count": intervention.retry_count})
    logger.info("intervention.retried", intervention_id=intervention.pk, retry_count=intervention.retry_count)
    return intervention


def interventions_resolve_after_retry(*, job=None, session=None) -> int:
    """The retried work succeeded: resolve the interventions a person retried for it.

    Called by the pipeline when a job succeeds or a session finishes its stage. Only
    interventions with a retry resolve this way: one nobody acted on stays for a person.
    """
    qs = Intervention.objects.unresolved().filter(retry_count__gt=0)
    if job is not None:
        qs = qs.filter(job=job)
    elif session is not None:
        qs = qs.filter(session=session, job__isnull=True)
    else:
        return 0
    resolved = 0
    for intervention in qs:
        try:
            intervention_resolve(intervention=intervention, by=None, note="The retried work succeeded.")
            resolved += 1
        except InterventionTransitionError:
            pass  # a person closed it meanwhile
    return resolved


def _user(by):
    return by if by is not None and getattr(by, "is_authenticated", False) else None
