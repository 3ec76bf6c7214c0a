"""The daily digest: one e-mail per member of an organization listing the open findings assigned to
them that are overdue or due soon, overdue first.

A beat row (``orgs.schedules``, "watchpost: notification digests") runs ``digests_send`` once a
day. A member gets a digest only with something in it, and not when they turned it off
(``Membership.digest_enabled``). Each member's e-mail of the day is claimed with a conditional
UPDATE of ``Membership.digest_sent_on`` before it is sent, so a second run the same day (a
duplicate message, a retried task) sends nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import structlog
from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from orgs.models import Membership
from reports.notifications.channels import absolute_url
from scans.models import Finding

logger = structlog.get_logger(__name__)

ITEMS_MAX = 50  # findings listed in one digest; the rest are counted


def due_within() -> timedelta:
    return timedelta(days=settings.WATCHPOST_DIGEST_DUE_WITHIN_DAYS)


@dataclass
class Digest:
    membership: Membership
    overdue: list[Finding]
    due_soon: list[Finding]
    total: int  # overdue and due soon, of which the lists hold at most ITEMS_MAX

    @property
    def is_empty(self) -> bool:
        return self.total == 0


def _due_findings(*, org_id: int, user_id: int, now: datetime):
    return (Finding.objects.filter(org_id=org_id, assignee_id=user_id, status=Finding.Status.OPEN,
                                   due_at__isnull=False, due_at__lte=now + due_within()))


def digest_for(*, membership: Membership, now: datetime | None = None) -> Digest:
    """What the member's digest says now: overdue first (oldest due first), then due soon."""
    now = now or timezone.now()
    found = _due_findings(org_id=membership.org_id, user_id=membership.user_id, now=now)
    rows = list(found.select_related("node").order_by("due_at", "id")[:ITEMS_MAX])
    total = len(rows) if len(rows) < ITEMS_MAX else found.count()
    return Digest(membership=membership, overdue=[f for f in rows if f.due_at <= now],
                  due_soon=[f for f in rows if f.due_at > now], total=total)


def _line(finding: Finding, now: datetime, slug: str) -> str:
    where = finding.node.address + (f":{finding.port}" if finding.port else "")
    priority = f" P{finding.priority}" if finding.priority else ""
    if finding.due_at <= now:
        days = (now - finding.due_at).days
        when = f"overdue by {days} day{'s' if days != 1 else ''}" if days else "overdue since today"
    else:
        when = f"due {finding.due_at:%Y-%m-%d}"
    link = absolute_url(f"/o/{slug}/findings/{finding.pk}/")
    return f"- [{finding.severity.upper()}{priority}] {finding.title} on {where}, {when}\n  {link}"


def digest_content(digest: Digest, now: datetime | None = None) -> tuple[str, str]:
    """Subject and plain-text body of a member's digest."""
    now = now or timezone.now()
    org = digest.membership.org
    parts = []
    if digest.overdue:
        parts.append(f"{len(digest.overdue)} overdue")
    if digest.due_soon:
        parts.append(f"{len(digest.due_soon)} due within {due_within().days} days")
    subject = f"[Watchpost] {org.name}: your findings, {' and '.join(parts)}"
    lines = [f"Hello {digest.membership.user.get_username()},", "",
             f"These open findings of {org.name} are assigned to you and due:"]
    if digest.overdue:
        lines += ["", f"Overdue ({len(digest.overdue)})", *(_line(f, now, org.slug) for f in digest.overdue)]
    if digest.due_soon:
        lines += ["", f"Due within {due_within().days} days ({len(digest.due_soon)})",
                  *(_line(f, now, org.slug) for f in digest.due_soon)]
    listed = len(digest.overdue) + len(digest.due_soon)
    if digest.total > listed:
        lines += ["", f"…and {digest.total - listed} more."]
    lines += ["", f"All findings: {absolute_url(f'/o/{org.slug}/findings/')}",
              f"Turn this daily e-mail off: {absolute_url(reverse('orgs:notification_digest', kwargs={'slug': org.slug}))}"]
    return subject[:200], "\n".join(lines)


def member_digest_send(*, membership: Membership, now: datetime | None = None) -> bool:
    """Send the member today's digest if it has something to say and was not sent today; True if sent."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    if not membership.digest_enabled or not membership.user.email:
        return False
    digest = digest_for(membership=membership, now=now)
    if digest.is_empty:
        return False
    claimed = (Membership.objects.filter(pk=membership.pk, digest_enabled=True)
               .filter(Q(digest_sent_on__isnull=True) | Q(digest_sent_on__lt=today)).update(digest_sent_on=today))
    if not claimed:
        return False
    subject, body = digest_content(digest, now)
    try:
        EmailMessage(subject=subject, body=body, to=[membership.user.email]).send()
    except OSError:
        # Not sent: give the day back, so the next run (or the sweep of a retried task) tries again.
        Membership.objects.filter(pk=membership.pk, digest_sent_on=today).update(
            digest_sent_on=membership.digest_sent_on)
        logger.exception("digest.send_failed", membership_id=membership.pk)
        raise
    logger.info("digest.sent", membership_id=membership.pk, org_id=membership.org_id, findings=digest.total)
    return True


def digests_send(*, now: datetime | None = None) -> int:
    """Every member's digest of the day (members with a due or overdue assigned finding only)."""
    now = now or timezone.now()
    # One query for who has anything to say: the (organization, assignee) pairs of due open findings.
    pairs = set(Finding.objects.filter(status=Finding.Status.OPEN, assignee__isnull=False, due_at__isnull=False,
                                       due_at__lte=now + due_within())
                .values_list("org_id", "assignee_id").distinct())
    if not pairs:
        return 0
    sent = 0
    wanted = Q()
    for org_id, user_id in pairs:
        wanted |= Q(org_id=org_id, user_id=user_id)
    today: date = timezone.localdate(now)
    members = (Membership.objects.filter(wanted, digest_enabled=True)
               .filter(Q(digest_sent_on__isnull=True) | Q(digest_sent_on__lt=today))
               .select_related("org", "user").order_by("pk"))
    for membership in members:
        try:
            sent += member_digest_send(membership=membership, now=now)
        except OSError:
            continue  # logged; the others still get theirs
    return sent
