"""Webhooks: endpoints an organization manages, the events it is sent, signing and delivery.

The deliveries are made of domain events (``orgs.events``) the lower layers publish: this
module subscribes to them in ``webhooks_connect``, called from ``ReportsConfig.ready()``, so
no lower layer imports webhooks.

An endpoint is a notification channel of a ``kind`` (a signed webhook, a Slack or Teams incoming
webhook, e-mail): ``reports.notifications.channels`` renders each kind's body from the stored event,
and every kind goes through the same outbox, retries, circuit breaker and delivery log here.

Events (``WebhookEndpoint.Event``), the rules a channel chooses:

- ``session.finished`` — a scan session (or an import) finished, with its outcome and counts;
- ``session.failed`` — the same, for a session that failed;
- ``finding.new`` — the findings a session or import saw for the first time, at or above the
  endpoint's minimum severity, *batched*: one delivery per endpoint per session/import carrying
  the list (at most ``WATCHPOST_WEBHOOK_FINDINGS_MAX``, with the total and ``truncated``);
- ``finding.critical`` — the same list, of the new findings that are critical or P1;
- ``finding.reopened`` — the findings a session or import reopened (seen again after a fix);
- ``finding.sla_breached`` / ``finding.risk_expired`` — findings past their due date, findings whose
  accepted risk expired, as published by the SLA code (``orgs.events``);
- ``intervention.opened`` — an operational failure was handed to a person.

Where an event is published, its deliveries are written as rows in the same transaction (an outbox:
no event is lost if the process dies after commit) and published to the ``reports`` queue on
commit. With no endpoint configured the hook costs one indexed query and nothing else. The
``finding.new`` list is read by the worker before the first attempt (then kept, so retries send
the same bytes): reading it scans the organization's open findings, which the finishing
transaction should not wait for.

Each signed-webhook delivery is POSTed with ``Watchpost-Signature: t=<unix>,v1=<hex>`` where ``hex`` is
HMAC-SHA256 over ``"<unix>." + body`` under the endpoint's secret, plus ``Watchpost-Event`` and
``Watchpost-Delivery`` (the delivery's id, the same on every retry, so receivers drop replays).

Target URLs pass the scan-target policy (``orgs.scope``: the organization's scope and
``SCAN_ALLOWED_NETWORKS``) when saved and again at every attempt; the host is resolved once per
attempt and the connection goes to that checked address (Host header and SNI keep the name);
redirects are not followed. Connection errors, timeouts, 5xx, 408 and 429 retry with exponential
backoff and jitter; other answers fail at once. After ``WATCHPOST_WEBHOOK_FAILURE_THRESHOLD``
deliveries in a row failed for good, the endpoint pauses (circuit breaker) and an intervention
opens; new deliveries are then *held* until a person resumes the endpoint, which releases them.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import random
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Count, F, Q
from django.http import Http404
from django.utils import timezone

from config.celery import app
from interventions.models import Intervention
from interventions.services import (
    InterventionTransitionError,
    intervention_dismiss,
    intervention_open,
    intervention_resolve,
    retry_handler_register,
)
from orgs import events
from orgs.audit import audit_record
from orgs.models import Membership
from orgs.scope import ScopeError, resolve_and_check
from reports.models import WebhookDelivery, WebhookEndpoint
from reports.notifications.channels import HTTP_KINDS, SIGNED_KINDS, email_content, http_document
from scans.models import SEVERITIES, Finding, FindingEvent

logger = structlog.get_logger(__name__)

Event = WebhookEndpoint.Event
Kind = WebhookEndpoint.Kind
Status = WebhookDelivery.Status
EMAIL_ADDRESSES_MAX = 50

SIGNATURE_HEADER = "Watchpost-Signature"
EVENT_HEADER = "Watchpost-Event"
DELIVERY_HEADER = "Watchpost-Delivery"
DELIVER_TASK = "orgs.tasks.webhook_deliver"  # reports.webhooks.tasks; the name queued messages carry
BUILD_KEY = "_build"  # in a payload's data: filled in by the worker before the first attempt
INTERVENTION_SUBJECT = "webhook:{pk}"
RESPONSE_READ_LIMIT = 64 * 1024  # a receiver's answer is read (to free the connection), never kept
# Publishing survives a short broker outage; same policy as the pipeline's dispatch.
PUBLISH_RETRY_POLICY = {"max_retries": 20, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2}


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def max_attempts() -> int:
    return int(_setting("WATCHPOST_WEBHOOK_MAX_ATTEMPTS", 6))


def failure_threshold() -> int:
    return int(_setting("WATCHPOST_WEBHOOK_FAILURE_THRESHOLD", 5))


class WebhookError(ValueError):
    """An endpoint change refused (URL outside policy, unknown event...); the message says why.

    ``field`` names the input at fault; ``boundary`` is the scope guard's (``resolution`` means
    the name did not resolve, which may pass; the others are policy).
    """

    def __init__(self, message: str, *, field: str = "url", boundary: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.boundary = boundary


# --- URL policy --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    """A URL whose host passed the scan-target policy: connect to ``address``, name ``host``."""

    scheme: str
    host: str  # as written in the URL: Host header and SNI
    port: int
    target: str  # path and query
    address: str  # the checked IP literal to connect to


def webhook_url_check(*, org, url: str, resolver: Callable[[str], Iterable[str]] | None = None) -> CheckedUrl:
    """Parse ``url``, resolve its host once and check it like a scan target; ``WebhookError`` if refused."""
    try:
        parts = urlsplit((url or "").strip())
        port = parts.port
    except ValueError as exc:
        raise WebhookError(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookError("the URL must start with http:// or https://")
    if parts.username or parts.password:
        raise WebhookError("the URL must not carry a user name or password; the signature authenticates deliveries")
    if not parts.hostname:
        raise WebhookError("the URL names no host")
    if parts.fragment:
        raise WebhookError("the URL must not have a #fragment")
    try:
        checked = resolve_and_check(parts.hostname, scope=[*org.scope_networks, *org.scope_hostnames],
                                    allowed_networks=settings.SCAN_ALLOWED_NETWORKS, resolver=resolver)
    except ScopeError as exc:
        raise WebhookError(f"webhook URL {exc}", boundary=exc.boundary) from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return CheckedUrl(scheme=parts.scheme, host=parts.hostname, port=port or (443 if parts.scheme == "https" else 80),
                      target=target, address=checked.address)


def _events_clean(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(events or ()))
    unknown = [e for e in chosen if e not in Event.values]
    if unknown:
        raise WebhookError(f"unknown event(s) {', '.join(unknown)}; choose from {', '.join(Event.values)}",
                           field="events")
    if not chosen:
        raise WebhookError("choose at least one event", field="events")
    return chosen


def _kind_clean(kind: str) -> str:
    if kind not in Kind.values:
        raise WebhookError(f"unknown channel kind {kind!r}; choose from {', '.join(Kind.values)}", field="kind")
    return kind


def _addresses_clean(addresses: Iterable[str]) -> list[str]:
    cleaned = list(dict.fromkeys(a.strip() for a in (addresses or ()) if a and a.strip()))
    if len(cleaned) > EMAIL_ADDRESSES_MAX:
        raise WebhookError(f"at most {EMAIL_ADDRESSES_MAX} addresses", field="email_addresses")
    for address in cleaned:
        try:
            validate_email(address)
        except ValidationError:
            raise WebhookError(f"{address!r} is not an e-mail address", field="email_addresses") from None
    return cleaned


def _members_clean(org, members) -> list:
    """Users who are members of ``org``; anyone else is refused (not silently dropped)."""
    users = list(members or ())
    ids = {getattr(u, "pk", u) for u in users}
    found = set(Membership.objects.filter(org=org, user_id__in=ids).values_list("user_id", flat=True))
    if ids - found:
        raise WebhookError("e-mail members must be members of this organization", field="email_members")
    return sorted(ids)


def _recipients_check(*, addresses: list[str], member_ids: list[int], assignees: bool) -> None:
    if not (addresses or member_ids or assignees):
        raise WebhookError("an e-mail channel needs an address, a member, or the findings' assignees",
                           field="email_addresses")


def _severity_clean(severity: str) -> str:
    if severity not in SEVERITIES:
        raise WebhookError(f"unknown severity {severity!r}; choose from {', '.join(SEVERITIES)}",
                           field="min_severity")
    return severity


# --- access and selectors ----------------------------------------------------------------------


def webhook_endpoint_for(membership, endpoint_id) -> WebhookEndpoint:
    """The organization's endpoint, or 404 (another organization's endpoint is not revealed).

    Reads only ``membership.org``, so the API's token principal passes too.
    """
    pk = _row_id(endpoint_id)
    endpoint = WebhookEndpoint.objects.select_related("org").filter(org=membership.org, pk=pk).first() if pk else None
    if endpoint is None:
        raise Http404("No such webhook endpoint")
    return endpoint


def _row_id(value) -> int | None:
    """An id from a URL, or None when it cannot name a row (not a number, or beyond a 64-bit key)."""
    try:
        pk = int(str(value))
    except ValueError:
        return None
    return pk if 0 < pk < 2**63 else None


def webhook_delivery_for(endpoint: WebhookEndpoint, delivery_id) -> WebhookDelivery:
    pk = _row_id(delivery_id)
    delivery = (WebhookDelivery.objects.select_related("endpoint__org").filter(endpoint=endpoint, pk=pk).first()
                if pk else None)
    if delivery is None:
        raise Http404("No such delivery")
    return delivery


def webhook_endpoint_list_for_org(*, org, kinds: Iterable[str] | None = None):
    """Endpoints (of ``kinds``, else all) with their delivery counts by outcome, in one query."""
    def count(*statuses):
        return Count("deliveries", filter=Q(deliveries__status__in=statuses))

    endpoints = WebhookEndpoint.objects.filter(org=org)
    if kinds is not None:
        endpoints = endpoints.filter(kind__in=list(kinds))
    return (endpoints.order_by("created_at", "id")
            .annotate(succeeded=count(Status.SUCCEEDED), failed=count(Status.FAILED),
                      waiting=count(Status.PENDING, Status.RETRYING, Status.HELD)))


def webhook_delivery_list(*, endpoint: WebhookEndpoint, status: str = ""):
    """The endpoint's delivery log, newest first (the payload is left out: it can be large)."""
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).defer("payload").order_by("-created_at", "-id")
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries


# --- endpoint services --------------------------------------------------------------------------


def webhook_endpoint_create(*, org, url: str = "", events: Iterable[str], min_severity: str = "high",
                            description: str = "", kind: str = Kind.WEBHOOK, email_addresses: Iterable[str] = (),
                            email_members=(), email_assignees: bool = False, by=None, token=None,
                            ip: str | None = None, resolver=None) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint (a channel of ``kind``); a signed webhook's secret is returned here once
    (the console shows it once); the other kinds have none (empty string)."""
    kind = _kind_clean(kind)
    events, min_severity = _events_clean(events), _severity_clean(min_severity)
    addresses, member_ids, pinned = [], [], None
    if kind == Kind.EMAIL:
        addresses, member_ids = _addresses_clean(email_addresses), _members_clean(org, email_members)
        _recipients_check(addresses=addresses, member_ids=member_ids, assignees=email_assignees)
        url = ""
    else:
        pinned = webhook_url_check(org=org, url=url, resolver=resolver).address
    secret = "whsec_" + secrets.token_urlsafe(32) if kind in SIGNED_KINDS else ""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            org=org, kind=kind, url=url.strip(), description=description.strip(), secret=secret, events=events,
            min_severity=min_severity, pinned_address=pinned, email_addresses=addresses,
            email_assignees=bool(email_assignees) and kind == Kind.EMAIL,
            created_by=by if getattr(by, "is_authenticated", False) else None,
        )
        if member_ids:
            endpoint.email_members.set(member_ids)
        changes = {"kind": kind, "url": endpoint.url, "events": events, "min_severity": min_severity}
        if kind == Kind.EMAIL:
            changes.update(email_addresses=addresses, email_members=member_ids, email_assignees=endpoint.email_assignees)
        audit_record(org=org, verb="webhook.created", target=endpoint, actor=by, token=token, ip=ip, changes=changes)
    return endpoint, secret


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, url: str | None = None, events: Iterable[str] | None = None,
                            min_severity: str | None = None, description: str | None = None,
                            email_addresses: Iterable[str] | None = None, email_members=None,
                            email_assignees: bool | None = None, by=None, token=None,
                            ip: str | None = None, resolver=None) -> WebhookEndpoint:
    """Change what was given; a channel's kind stays (a new kind is a new channel, with its own log)."""
    changes: dict[str, Any] = {}
    members_now = None
    if endpoint.is_email:
        addresses = _addresses_clean(email_addresses) if email_addresses is not None else endpoint.email_addresses
        before = sorted(endpoint.email_members.values_list("pk", flat=True))
        member_ids = _members_clean(endpoint.org, email_members) if email_members is not None else before
        assignees = endpoint.email_assignees if email_assignees is None else bool(email_assignees)
        _recipients_check(addresses=addresses, member_ids=member_ids, assignees=assignees)
        if addresses != endpoint.email_addresses:
            changes["email_addresses"] = [endpoint.email_addresses, addresses]
            endpoint.email_addresses = addresses
        if member_ids != before:
            changes["email_members"] = [before, member_ids]
            members_now = member_ids
        if assignees != endpoint.email_assignees:
            changes["email_assignees"] = [endpoint.email_assignees, assignees]
            endpoint.email_assignees = assignees
        url = None  # an e-mail channel has no URL
    if url is not None and url.strip() != endpoint.url:
        checked = webhook_url_check(org=endpoint.org, url=url, resolver=resolver)
        changes["url"] = [endpoint.url, url.strip()]
        endpoint.url, endpoint.pinned_address = url.strip(), checked.address
    if events is not None:
        events = _events_clean(events)
        if events != endpoint.events:
            changes["events"] = [endpoint.events, events]
            endpoint.events = events
    if min_severity is not None and _severity_clean(min_severity) != endpoint.min_severity:
        changes["min_severity"] = [endpoint.min_severity, min_severity]
        endpoint.min_severity = min_severity
    if description is not None and description.strip() != endpoint.description:
        changes["description"] = [endpoint.description, description.strip()]
        endpoint.description = description.strip()
    if changes:
        with transaction.atomic():
            endpoint.save(update_fields=["url", "pinned_address", "events", "min_severity", "description",
                                         "email_addresses", "email_assignees"])
            if members_now is not None:
                endpoint.email_members.set(members_now)
            audit_record(org=endpoint.org, verb="webhook.updated", target=endpoint, actor=by, token=token, ip=ip,
                         changes=changes)
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, by=None, token=None, ip: str | None = None) -> None:
    audit_record(org=endpoint.org, verb="webhook.deleted", target=endpoint, actor=by, token=token, ip=ip,
                 changes={"url": endpoint.url})
    _intervention_close(endpoint=endpoint, by=by, note="The webhook endpoint was deleted.", dismiss=True)
    endpoint.delete()


def webhook_endpoint_pause(*, endpoint: WebhookEndpoint, reason: str, by=None, token=None,
                           ip: str | None = None) -> bool:
    """enabled → paused: new deliveries are held, queued ones too. False if it was paused already."""
    now = timezone.now()
    with transaction.atomic():
        changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, state=WebhookEndpoint.State.ENABLED).update(
            state=WebhookEndpoint.State.PAUSED, paused_reason=reason[:500], paused_at=now)
        if not changed:
            return False
        WebhookDelivery.objects.filter(endpoint=endpoint, status__in=(Status.PENDING, Status.RETRYING)).update(
            status=Status.HELD, next_attempt_at=None)
        endpoint.refresh_from_db()
        if by is not None or token is not None:
            audit_record(org=endpoint.org, verb="webhook.paused", target=endpoint, actor=by, token=token, ip=ip,
                         changes={"reason": reason})
    logger.info("webhook.paused", endpoint_id=endpoint.pk, reason=reason)
    return True


def webhook_endpoint_resume(*, endpoint: WebhookEndpoint, by=None, token=None, ip: str | None = None) -> int:
    """paused → enabled: held deliveries go out, the failure count restarts, the intervention resolves.

    Returns how many held deliveries were released (0 when the endpoint was not paused).
    """
    with transaction.atomic():
        changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, state=WebhookEndpoint.State.PAUSED).update(
            state=WebhookEndpoint.State.ENABLED, paused_reason="", paused_at=None, consecutive_failures=0)
        endpoint.refresh_from_db()
        if not changed:
            return 0
        held = list(WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.HELD).order_by("id")
                    .values_list("pk", flat=True))
        WebhookDelivery.objects.filter(pk__in=held).update(status=Status.PENDING, next_attempt_at=None)
        audit_record(org=endpoint.org, verb="webhook.resumed", target=endpoint, actor=by, token=token, ip=ip,
                     changes={"released": len(held)})
        _intervention_close(endpoint=endpoint, by=by, note=f"Resumed; {len(held)} held deliveries released.")
        for pk in held:
            _enqueue(pk)
    logger.info("webhook.resumed", endpoint_id=endpoint.pk, released=len(held))
    return len(held)


def webhook_endpoint_resume_for_intervention(*, intervention, by=None, token=None) -> int:
    """"Retry" on a ``webhook_failing`` intervention: resume its endpoint (which resolves it)."""
    endpoint = WebhookEndpoint.objects.filter(org_id=intervention.org_id,
                                              pk=_row_id(intervention.context.get("endpoint_id"))).first()
    if endpoint is None:
        raise InterventionTransitionError("The webhook endpoint no longer exists; dismiss this intervention.")
    released = webhook_endpoint_resume(endpoint=endpoint, by=by, token=token)
    _intervention_close(endpoint=endpoint, by=by, note="The endpoint was resumed.")  # if it was not paused
    return released


def webhook_delivery_redeliver(*, delivery: WebhookDelivery, by=None, token=None, ip: str | None = None) -> bool:
    """Send a failed delivery again (same id and body), e.g. after the receiver was fixed."""
    with transaction.atomic():
        status = Status.HELD if delivery.endpoint.is_paused else Status.PENDING
        changed = WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.FAILED).update(
            status=status, next_attempt_at=None, attempts=0)
        if not changed:
            return False
        audit_record(org=delivery.endpoint.org, verb="webhook.redelivered", target=delivery, actor=by, token=token,
                     ip=ip)
        if status == Status.PENDING:
            _enqueue(delivery.pk)
    delivery.refresh_from_db()
    return True


def _intervention_close(*, endpoint: WebhookEndpoint, by, note: str, dismiss: bool = False) -> None:
    close = intervention_dismiss if dismiss else intervention_resolve
    for intervention in Intervention.objects.unresolved().filter(
            subject=INTERVENTION_SUBJECT.format(pk=endpoint.pk), kind=Intervention.Kind.WEBHOOK_FAILING):
        try:
            close(intervention=intervention, by=by, note=note)
        except InterventionTransitionError:
            pass  # a person closed it meanwhile


# --- events ------------------------------------------------------------------------------------


def _subscribed(org_id: int, event: str) -> list[WebhookEndpoint]:
    """The one query an event costs when nobody listens (few endpoints per organization; filter here)."""
    return [e for e in WebhookEndpoint.objects.filter(org_id=org_id) if event in e.events]


def _deliveries_create(endpoints: list[WebhookEndpoint], event: str, data_for: Callable[[WebhookEndpoint], Any],
                       org) -> list[WebhookDelivery]:
    """Write one delivery per endpoint (held when paused) and publish the others on commit."""
    now = timezone.now()
    rows = []
    for endpoint in endpoints:
        data = data_for(endpoint)
        if data is None:
            continue
        event_id = uuid.uuid4()
        payload = {"id": str(event_id), "type": event, "created_at": now.isoformat(),
                   "org": {"slug": org.slug, "name": org.name}, "data": data}
        rows.append(WebhookDelivery(endpoint=endpoint, event_type=event, event_id=event_id, payload=payload,
                                    status=Status.HELD if endpoint.is_paused else Status.PENDING, created_at=now))
    if not rows:
        return []
    created = WebhookDelivery.objects.bulk_create(rows)  # one INSERT, in the caller's transaction
    for delivery in created:
        if delivery.status == Status.PENDING:
            _enqueue(delivery.pk)
    return created


def webhooks_connect() -> None:
    """Subscribe to the domain events deliveries are made of, and say what retrying a failing
    endpoint's intervention does (resume it). Called once, from ``ReportsConfig.ready()``."""
    events.event_subscribe(events.SESSION_FINISHED, session_finished)
    events.event_subscribe(events.INTERVENTION_OPENED, intervention_opened)
    events.event_subscribe(events.SLA_BREACHED, findings_sla_breached)
    events.event_subscribe(events.RISK_ACCEPTANCE_EXPIRED, findings_risk_acceptance_expired)
    retry_handler_register(kinds=[Intervention.Kind.WEBHOOK_FAILING], handler=webhook_endpoint_resume_for_intervention)


SESSION_EVENTS = frozenset({Event.SESSION_FINISHED, Event.SESSION_FAILED, Event.FINDING_NEW, Event.FINDING_CRITICAL,
                            Event.FINDING_REOPENED})


def session_finished(*, session) -> list[WebhookDelivery]:
    """On a finished session or import: ``session.finished`` (and ``session.failed``), then the
    findings it made new (``finding.new``, ``finding.critical``) or reopened (``finding.reopened``)."""
    endpoints = [e for e in WebhookEndpoint.objects.filter(org_id=session.org_id) if SESSION_EVENTS & set(e.events)]
    if not endpoints:
        return []
    org = session.org

    def wanting(event):
        return [e for e in endpoints if event in e.events]

    created = _deliveries_create(wanting(Event.SESSION_FINISHED), Event.SESSION_FINISHED,
                                 lambda e: _session_data(session), org)
    if session.status == session.Status.FAILED:
        created += _deliveries_create(wanting(Event.SESSION_FAILED), Event.SESSION_FAILED,
                                      lambda e: _session_data(session), org)
    # The lists are read by the worker at the first attempt (BUILD_KEY), not here: reading them costs a
    # scan of the organization's open findings, which must not hold the session's finishing transaction.
    build = {"session_id": session.pk, "trigger": session.trigger}
    if session.findings_new:
        created += _deliveries_create(wanting(Event.FINDING_NEW), Event.FINDING_NEW, lambda e: {
            BUILD_KEY: {**build, "select": "new", "min_severity": e.min_severity}}, org)
        created += _deliveries_create(wanting(Event.FINDING_CRITICAL), Event.FINDING_CRITICAL, lambda e: {
            BUILD_KEY: {**build, "select": "critical"}}, org)
    if session.findings_reopened:
        created += _deliveries_create(wanting(Event.FINDING_REOPENED), Event.FINDING_REOPENED, lambda e: {
            BUILD_KEY: {**build, "select": "reopened"}}, org)
    return created


def findings_sla_breached(*, org, finding_ids) -> list[WebhookDelivery]:
    """``orgs.events.SLA_BREACHED``: the findings that just went past their due date."""
    return _findings_event(org=org, finding_ids=finding_ids, event=Event.SLA_BREACHED)


def findings_risk_acceptance_expired(*, org, finding_ids) -> list[WebhookDelivery]:
    """``orgs.events.RISK_ACCEPTANCE_EXPIRED``: the findings whose accepted risk expired (open again)."""
    return _findings_event(org=org, finding_ids=finding_ids, event=Event.RISK_ACCEPTANCE_EXPIRED)


def _findings_event(*, org, finding_ids, event: str) -> list[WebhookDelivery]:
    """One delivery per subscribed channel listing the findings (read once, here: they are few and named)."""
    endpoints = _subscribed(org.pk, event)
    ids = [pk for pk in (finding_ids or ()) if pk]
    if not endpoints or not ids:
        return []
    limit = int(_setting("WATCHPOST_WEBHOOK_FINDINGS_MAX", 500))
    found = Finding.objects.filter(org_id=org.pk, pk__in=ids)  # another organization's ids name nothing
    rows = list(found.select_related("node", "assignee").order_by("id")[: limit + 1])
    if not rows:
        return []
    total = len(rows) if len(rows) <= limit else found.count()
    rows = sorted(rows[:limit], key=_urgency)
    data = {"count": total, "truncated": total > limit,
            "findings": [_finding_data(f, org_slug=org.slug) for f in rows]}
    return _deliveries_create(endpoints, event, lambda e: data, org)


def intervention_opened(*, intervention) -> list[WebhookDelivery]:
    """On a newly opened intervention (not a bump of one already open)."""
    endpoints = _subscribed(intervention.org_id, Event.INTERVENTION_OPENED)
    if not endpoints:
        return []
    data = {"intervention": {
        "id": intervention.pk, "kind": intervention.kind, "state": intervention.state, "title": intervention.title,
        "subject": intervention.subject, "session_id": intervention.session_id, "job_id": intervention.job_id,
        "node_id": intervention.node_id, "opened_at": intervention.opened_at.isoformat(),
        "context": intervention.context,
        "url": f"/o/{intervention.org.slug}/interventions/{intervention.pk}/",
    }}
    return _deliveries_create(endpoints, Event.INTERVENTION_OPENED, lambda e: data, intervention.org)


def _session_data(session) -> dict[str, Any]:
    return {"session": {
        "id": session.pk, "status": session.status, "trigger": session.trigger,
        "profile": session.profile.slug if session.profile_id else None,
        "started_at": session.started_at.isoformat() if session.started_at else None,
        "finished_at": session.finished_at.isoformat() if session.finished_at else None,
        "nodes": session.nodes_total,
        "jobs": {"total": session.jobs_total, "succeeded": session.jobs_succeeded, "failed": session.jobs_failed},
        "findings": {"new": session.findings_new, "updated": session.findings_updated,
                     "reopened": session.findings_reopened, "fixed": session.findings_fixed},
        "error": session.error, "reason": session.reason,
        "url": f"/o/{session.org.slug}/sessions/{session.pk}/",
    }}


def _session_findings_data(*, org, session_id: int, trigger: str, select: str = "new",
                           min_severity: str = "low") -> dict[str, Any] | None:
    """The findings a session made new (``select`` "new": at or above ``min_severity``; "critical":
    critical or P1) or reopened ("reopened"), most urgent first; None when there are none."""
    limit = int(_setting("WATCHPOST_WEBHOOK_FINDINGS_MAX", 500))
    found = Finding.objects.filter(org_id=org.pk, status=Finding.Status.OPEN)
    if select == "reopened":
        # (session, kind, finding) covers this: the findings the session's lifecycle reopened.
        found = found.filter(pk__in=FindingEvent.objects.filter(session_id=session_id, kind=FindingEvent.Kind.REOPENED)
                             .values("finding_id"))
    else:
        # (org, status, severity) is indexed; first_session is not (rescans rewrite findings in place).
        found = found.filter(first_session_id=session_id)
        if select == "critical":
            found = found.filter(Q(severity="critical") | Q(priority=1))
        else:
            found = found.filter(severity__in=SEVERITIES[: SEVERITIES.index(min_severity) + 1]
                                 if min_severity in SEVERITIES else SEVERITIES)
    rows = list(found.select_related("node", "assignee").order_by("id")[: limit + 1])
    if not rows:
        return None
    total = len(rows) if len(rows) <= limit else found.count()
    rows.sort(key=_urgency)
    data = {"session_id": session_id, "trigger": trigger, "count": total, "truncated": total > limit,
            "findings": [_finding_data(f, org_slug=org.slug) for f in rows[:limit]]}
    if select == "new":
        data["min_severity"] = min_severity
    return data


def _urgency(finding) -> tuple:
    """Most severe first, then by priority (P1 first), then oldest."""
    return (SEVERITIES.index(finding.severity) if finding.severity in SEVERITIES else len(SEVERITIES),
            finding.priority or 9, finding.pk)


def _payload_complete(delivery: WebhookDelivery) -> bool:
    """Fill in a payload written with BUILD_KEY (finding.new) once, before its first attempt.

    Saved, so every retry sends the same bytes. False when nothing reached the endpoint's
    minimum severity: the delivery is removed, there is no event to send.
    """
    build = (delivery.payload.get("data") or {}).get(BUILD_KEY) if isinstance(delivery.payload, dict) else None
    if build is None:
        return True
    data = _session_findings_data(org=delivery.endpoint.org, **build)
    if data is None:
        WebhookDelivery.objects.filter(pk=delivery.pk).delete()
        return False
    delivery.payload = {**delivery.payload, "data": data}
    WebhookDelivery.objects.filter(pk=delivery.pk).update(payload=delivery.payload)
    return True


def _finding_data(finding, *, org_slug: str) -> dict[str, Any]:
    return {
        "id": finding.pk, "title": finding.title, "severity": finding.severity, "priority": finding.priority,
        "source": finding.source, "rule_id": finding.rule_id, "cve_ids": finding.cve_ids,
        "cvss_score": float(finding.cvss_score) if finding.cvss_score is not None else None,
        "node": {"id": finding.node_id, "address": finding.node.address},
        "port": finding.port, "protocol": finding.protocol, "location": finding.location,
        "first_seen": finding.first_seen.isoformat(),
        "due_at": finding.due_at.isoformat() if finding.due_at else None,
        "assignee_id": finding.assignee_id,
        "assignee": finding.assignee.get_username() if finding.assignee_id else None,
        "url": f"/o/{org_slug}/findings/{finding.pk}/",
    }


def _enqueue(delivery_id: int, *, countdown: float | None = None) -> None:
    """Publish the delivery task when the surrounding transaction commits (never before the row exists)."""

    def publish() -> None:
        try:
            app.send_task(DELIVER_TASK, kwargs={"delivery_id": delivery_id}, countdown=countdown,
                          retry=True, retry_policy=PUBLISH_RETRY_POLICY)
        except Exception:  # noqa: BLE001 - the row stays pending; webhook_deliveries_sweep re-publishes it
            logger.exception("webhook.publish_failed", delivery_id=delivery_id)

    transaction.on_commit(publish)


# --- signing -----------------------------------------------------------------------------------


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(*, secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret=secret, timestamp=timestamp, body=body)}"


def payload_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, sorted JSON, the same on every retry."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


# --- delivery ----------------------------------------------------------------------------------


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to an address checked in advance: the socket goes to ``address``, the Host header keeps the name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address; SNI and certificate verification use the URL's host name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        # Certificates are verified against the URL's name (never the address): an internal CA can be
        # trusted with WATCHPOST_WEBHOOK_CA_FILE; verification is never turned off.
        cafile = getattr(settings, "WATCHPOST_WEBHOOK_CA_FILE", "") or None
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context(cafile=cafile))
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


@dataclass
class AttemptResult:
    status: str  # the delivery's status after the attempt
    retry_in: float | None = None  # seconds until the next attempt, when retrying
    response_code: int | None = None
    error: str = ""
    duration_ms: int | None = None


def _post(checked: CheckedUrl, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    cls = _PinnedHTTPSConnection if checked.scheme == "https" else _PinnedHTTPConnection
    connection = cls(checked.host, checked.port, address=checked.address, timeout=timeout)
    try:
        connection.request("POST", checked.target, body=body, headers=headers)
        response = connection.getresponse()
        response.read(RESPONSE_READ_LIMIT)
        return response.status, response.getheader("Retry-After") or ""
    finally:
        connection.close()


def retry_delay(attempt: int, *, retry_after: str = "") -> float:
    """Exponential backoff with jitter after ``attempt`` failed attempts; a sane Retry-After wins."""
    base = _setting("WATCHPOST_WEBHOOK_RETRY_BASE_SECONDS", 10.0)
    cap = _setting("WATCHPOST_WEBHOOK_RETRY_MAX_SECONDS", 3600.0)
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    # "Equal jitter": half the delay fixed, half random, so retries of many deliveries spread out.
    delay = delay / 2 + random.uniform(0, delay / 2)
    if retry_after.strip().isdigit():
        delay = max(delay, min(cap, float(retry_after.strip())))
    return delay


def _retryable(code: int) -> bool:
    return code >= 500 or code in (408, 429)


def webhook_deliver(*, delivery_id: int, resolver=None) -> AttemptResult | None:
    """Make one attempt at a delivery; None when it is not this attempt's turn (done, held, duplicate).

    The attempt is claimed with a conditional UPDATE (status pending/retrying and due), so a
    duplicate task message cannot send it twice at once. The caller (the Celery task) schedules
    the next attempt when the result says ``retry_in``.
    """
    now = timezone.now()
    lease = _setting("WATCHPOST_WEBHOOK_TIMEOUT_SECONDS", 10.0) * 3 + 30
    delivery = WebhookDelivery.objects.select_related("endpoint__org").filter(pk=delivery_id).first()
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    if endpoint.is_paused:
        WebhookDelivery.objects.filter(pk=delivery.pk, status__in=(Status.PENDING, Status.RETRYING)).update(
            status=Status.HELD, next_attempt_at=None)
        return None
    due = now + timedelta(seconds=1)  # a Celery countdown may fire a hair before the row's time
    claimed = (WebhookDelivery.objects.filter(pk=delivery.pk, status__in=(Status.PENDING, Status.RETRYING),
                                              attempts=delivery.attempts)
               .exclude(next_attempt_at__gt=due)
               .update(attempts=F("attempts") + 1, next_attempt_at=now + timedelta(seconds=lease)))
    if not claimed:
        return None
    attempt = delivery.attempts + 1
    if not _payload_complete(delivery):  # finding.new: its list, once (a crash before it leaves it to the next)
        return None
    result = _attempt(delivery=delivery, endpoint=endpoint, attempt=attempt, resolver=resolver)
    _record(delivery=delivery, endpoint=endpoint, attempt=attempt, result=result)
    return result


def _attempt(*, delivery: WebhookDelivery, endpoint: WebhookEndpoint, attempt: int, resolver) -> AttemptResult:
    if endpoint.kind not in HTTP_KINDS:
        return _attempt_email(delivery=delivery, endpoint=endpoint, attempt=attempt)
    timeout = _setting("WATCHPOST_WEBHOOK_TIMEOUT_SECONDS", 10.0)
    started = time.monotonic()
    try:
        checked = webhook_url_check(org=endpoint.org, url=endpoint.url, resolver=resolver)
    except WebhookError as exc:
        # A name that does not resolve may be a passing DNS failure; an address outside policy is not.
        if exc.boundary == "resolution":
            return AttemptResult(status=Status.RETRYING, retry_in=retry_delay(attempt), error=str(exc))
        return AttemptResult(status=Status.FAILED, error=f"refused before sending: {exc}")
    if checked.address != endpoint.pinned_address:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(pinned_address=checked.address)
    body = payload_body(http_document(endpoint.kind, delivery.payload))
    headers = {"Content-Type": "application/json", "User-Agent": "Watchpost-Webhooks/1"}
    if endpoint.kind in SIGNED_KINDS:
        headers[SIGNATURE_HEADER] = signature_header(secret=endpoint.secret, timestamp=int(time.time()), body=body)
        headers[EVENT_HEADER] = delivery.event_type
        headers[DELIVERY_HEADER] = str(delivery.event_id)
    try:
        code, retry_after = _post(checked, body, headers, timeout)
    except (OSError, http.client.HTTPException) as exc:  # refused, reset, timeout, TLS, malformed answer
        result = AttemptResult(status=Status.RETRYING, retry_in=retry_delay(attempt),
                               error=f"{type(exc).__name__}: {exc}"[:1000])
    else:
        if 200 <= code < 300:
            result = AttemptResult(status=Status.SUCCEEDED, response_code=code)
        elif _retryable(code):
            result = AttemptResult(status=Status.RETRYING, response_code=code, error=f"HTTP {code}",
                                   retry_in=retry_delay(attempt, retry_after=retry_after))
        else:
            hint = " (redirects are not followed)" if 300 <= code < 400 else ""
            result = AttemptResult(status=Status.FAILED, response_code=code, error=f"HTTP {code}{hint}")
    result.duration_ms = int((time.monotonic() - started) * 1000)
    return result


def email_recipients(*, endpoint: WebhookEndpoint, payload: dict[str, Any]) -> list[str]:
    """An e-mail channel's addresses for one event: its explicit addresses, its members' and, when it
    asks, the assignees' of the event's findings; members and assignees only while they are members."""
    users = set(endpoint.email_members.values_list("pk", flat=True))
    if endpoint.email_assignees:
        users |= {f.get("assignee_id") for f in (payload.get("data") or {}).get("findings") or () if f.get("assignee_id")}
    member_emails = (Membership.objects.filter(org_id=endpoint.org_id, user_id__in=users).exclude(user__email="")
                     .values_list("user__email", flat=True)) if users else []
    return sorted({*endpoint.email_addresses, *member_emails})


def _attempt_email(*, delivery: WebhookDelivery, endpoint: WebhookEndpoint, attempt: int) -> AttemptResult:
    """One e-mail through Django's e-mail backend; a connection or SMTP error retries like an HTTP one."""
    started = time.monotonic()
    to = email_recipients(endpoint=endpoint, payload=delivery.payload)
    if not to:
        result = AttemptResult(status=Status.SUCCEEDED, error="no recipient for this event: nothing sent")
    else:
        subject, body = email_content(delivery.payload)
        message = EmailMessage(subject=subject, body=body, to=to,
                               headers={EVENT_HEADER: delivery.event_type, DELIVERY_HEADER: str(delivery.event_id)})
        try:
            message.send()
        except OSError as exc:  # smtplib.SMTPException is an OSError: refused, reset, timeout, rejected
            result = AttemptResult(status=Status.RETRYING, retry_in=retry_delay(attempt),
                                   error=f"{type(exc).__name__}: {exc}"[:1000])
        else:
            result = AttemptResult(status=Status.SUCCEEDED)
    result.duration_ms = int((time.monotonic() - started) * 1000)
    return result


def _record(*, delivery: WebhookDelivery, endpoint: WebhookEndpoint, attempt: int, result: AttemptResult) -> None:
    now = timezone.now()
    if result.status == Status.RETRYING and attempt >= max_attempts():
        result.status, result.retry_in = Status.FAILED, None
    fields: dict[str, Any] = {"status": result.status, "response_code": result.response_code,
                              "duration_ms": result.duration_ms, "last_error": result.error,
                              "next_attempt_at": None}
    if result.status == Status.SUCCEEDED:
        fields["delivered_at"] = now
    elif result.status == Status.RETRYING:
        fields["next_attempt_at"] = now + timedelta(seconds=result.retry_in or 0)
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        if result.status == Status.SUCCEEDED:
            WebhookEndpoint.objects.filter(pk=endpoint.pk, consecutive_failures__gt=0).update(consecutive_failures=0)
        elif result.status == Status.FAILED:
            _failure_count(endpoint=endpoint, delivery=delivery, error=result.error)
        elif result.status == Status.RETRYING:
            _enqueue(delivery.pk, countdown=result.retry_in)
    logger.info("webhook.attempt", delivery_id=delivery.pk, endpoint_id=endpoint.pk, attempt=attempt,
                status=result.status, response_code=result.response_code, error=result.error)


def _failure_count(*, endpoint: WebhookEndpoint, delivery: WebhookDelivery, error: str) -> None:
    """One more delivery failed for good; at the threshold, pause the endpoint and hand it to a person."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    failures = WebhookEndpoint.objects.filter(pk=endpoint.pk).values_list("consecutive_failures", flat=True).first()
    if failures is None or failures < failure_threshold():  # None: deleted while the attempt ran
        return
    reason = f"{failures} deliveries in a row failed; the last: {error}"[:500]
    if webhook_endpoint_pause(endpoint=endpoint, reason=reason):
        intervention_open(
            org=endpoint.org, kind=Intervention.Kind.WEBHOOK_FAILING,
            subject=INTERVENTION_SUBJECT.format(pk=endpoint.pk),
            title=f"{endpoint.get_kind_display()} {endpoint} paused after {failures} failed deliveries",
            context={"endpoint_id": endpoint.pk, "url": endpoint.url, "error": error,
                     "consecutive_failures": failures, "last_delivery_id": delivery.pk,
                     "resume": f"/o/{endpoint.org.slug}/settings/webhooks/{endpoint.pk}/"},
        )


def webhook_deliveries_sweep(*, older_than: timedelta = timedelta(minutes=5)) -> int:
    """Re-publish deliveries whose task message was lost (pending/retrying, long overdue)."""
    cutoff = timezone.now() - older_than
    overdue = list(WebhookDelivery.objects.filter(status__in=(Status.PENDING, Status.RETRYING))
                   .filter(created_at__lt=cutoff).exclude(next_attempt_at__gt=cutoff)
                   .values_list("pk", flat=True)[:1000])
    for pk in overdue:
        _enqueue(pk)
    return len(overdue)
