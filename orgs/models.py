"""Organizations (tenants), who belongs to them, their API tokens and the audit trail."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from orgs.budgets import MAX_NEW_PER_SECOND
from orgs.windows import windows_validate
from django.utils import timezone


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    # Declared scope: what this tenant may scan. Bounded again by SCAN_ALLOWED_NETWORKS.
    scope_networks = models.JSONField(default=list, blank=True, help_text="CIDRs, e.g. 127.0.10.0/24")
    scope_hostnames = models.JSONField(default=list, blank=True, help_text="Names or wildcards, e.g. *.lab.internal")
    default_profile = models.ForeignKey(
        "scans.ScanProfile", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Recurring scans: a crontab ("0 3 * * *") in the given timezone; empty = off.
    schedule_crontab = models.CharField(max_length=100, blank=True)
    schedule_timezone = models.CharField(max_length=64, default="UTC")
    max_concurrent_jobs = models.PositiveIntegerField(default=50)
    node_cooldown_minutes = models.PositiveIntegerField(default=0)
    # Retention (`manage.py prune`, daily on beat): raw scanner output and whole sessions older than
    # these are deleted; findings, their history and score history are kept. 0 keeps forever.
    retention_raw_output_days = models.PositiveIntegerField(default=30)
    retention_sessions_days = models.PositiveIntegerField(default=365)
    # Below this match confidence a finding is potential: shown apart, left out of grades and
    # scores until an analyst confirms it.
    potential_threshold = models.FloatField(default=0.6, db_default=0.6)
    # Days to fix an open finding, by its priority (P1 to P4): the SLA its due date follows.
    sla_p1_days = models.PositiveIntegerField(default=7, db_default=7)
    sla_p2_days = models.PositiveIntegerField(default=30, db_default=30)
    sla_p3_days = models.PositiveIntegerField(default=90, db_default=90)
    sla_p4_days = models.PositiveIntegerField(default=180, db_default=180)
    # When scanning is allowed: weekly ranges in schedule_timezone (orgs.windows); empty = any time.
    scan_windows = models.JSONField(default=list, blank=True, db_default=[], validators=[windows_validate],
                                    help_text='[{"days": [0-6], "start": "HH:MM", "end": "HH:MM"}]; empty = any time')
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Zone(models.Model):
    """A part of an organization's networks that its own workers scan: nodes whose address lies in
    one of its networks (the most specific network wins), or that were placed in it by hand, are
    discovered and scanned by the workers consuming the zone's queue. Nodes in no zone belong to the
    organization's default zone, served by the central workers."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="zones")
    name = models.CharField(max_length=100)
    networks = models.JSONField(default=list, blank=True, help_text="CIDRs inside the organization's scope")
    hostnames = models.JSONField(default=list, blank=True, help_text="Names or wildcards inside the organization's scope")
    # The zone's own scan windows (orgs.windows), in the organization's timezone; empty = the organization's.
    scan_windows = models.JSONField(default=list, blank=True, db_default=[], validators=[windows_validate],
                                    help_text="Weekly ranges; empty = the organization's windows")
    # New connections per second all the zone's workers together may open (scans.scanners.connections);
    # null = no limit.
    max_new_connections_per_second = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_NEW_PER_SECOND)])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["org", "name"], name="zone_unique_org_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def queue(self) -> str:
        """The Celery queue its discovery and scanner jobs travel on."""
        return f"zone-{self.pk}"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    ANALYST = "analyst", "Analyst"
    VIEWER = "viewer", "Viewer"


class RoleRights:
    """What a role lets its holder do; a membership and an API principal hold a role alike."""

    __slots__ = ()
    role: str

    @property
    def can_write(self) -> bool:
        """Analysts and above change data (start scans, triage); viewers only read."""
        return self.role != Role.VIEWER

    @property
    def can_manage(self) -> bool:
        """Owners and admins manage members, tokens and settings."""
        return self.role in (Role.OWNER, Role.ADMIN)


class Membership(RoleRights, models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now)
    # The daily e-mail of the findings assigned to the member and due (reports.notifications.digest):
    # on unless the member turns it off; digest_sent_on claims a day's e-mail, so it goes once.
    digest_enabled = models.BooleanField(default=True, db_default=True)
    digest_sent_on = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "org"], name="membership_unique_user_org")]
        ordering = ["org", "user"]

    def __str__(self) -> str:
        return f"{self.user} in {self.org} ({self.role})"


def secret_new(*, prefix: str = "") -> str:
    """A secret to hand out once (an API token's key, an invitation's token): 32 random bytes, URL-safe,
    after ``prefix`` (what kind of secret it is)."""
    return prefix + secrets.token_urlsafe(32)


def secret_digest(secret: str) -> str:
    """All that is stored of a secret, and what it is looked up by: its SHA-256, which a reader of the
    database cannot use."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for one organization. Only a SHA-256 of the secret is stored (``secret_digest``)."""

    class Access(models.TextChoices):
        READ = "read", "Read only"
        READ_WRITE = "read_write", "Read and write"

    PREFIX_LENGTH = 8

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=PREFIX_LENGTH, db_index=True, help_text="Shown to identify the token")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    access = models.CharField(max_length=16, choices=Access.choices, default=Access.READ)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    @property
    def can_write(self) -> bool:
        return self.access == self.Access.READ_WRITE


class InvitationQuerySet(models.QuerySet):
    def pending(self):
        now = timezone.now()
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now)


class Invitation(models.Model):
    """An invitation to join an organization, sent by e-mail. Single use, expiring.

    Only a SHA-256 of the token is stored; the raw token exists only in the e-mailed link,
    so a database reader cannot accept anybody's invitation.
    """

    VALID_DAYS = 7

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["org", "-created_at"], name="invitation_org_created")]

    def __str__(self) -> str:
        return f"{self.email} to {self.org} ({self.role})"

    @property
    def state(self) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"

    @property
    def is_pending(self) -> bool:
        return self.state == "pending"


class AuditEvent(models.Model):
    """A change made by a person or a token. Written by services, never edited."""

    org = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL)
    verb = models.CharField(max_length=64, help_text="e.g. membership.role_changed, finding.triaged")
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["org", "-created_at"], name="audit_org_created")]

    def __str__(self) -> str:
        return f"{self.verb} {self.target_type}:{self.target_id}"


class IdempotencyKey(models.Model):
    """One ``Idempotency-Key`` an API caller sent with a POST that starts work (orgs.idempotency).

    The row is inserted, and committed, before the work starts: the unique constraint is
    what lets exactly one of two concurrent identical requests do the work. The first
    response is kept and replayed to every repeat with the same key and body.
    """

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    # Who sent it: "token:<id>" or "user:<id>"; two callers never share a key space.
    principal = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body")
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "principal", "key"], name="idempotency_unique_org_principal_key"),
        ]

    def __str__(self) -> str:
        return f"{self.principal} {self.key} ({self.state})"
