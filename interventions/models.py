"""Interventions: operational failures handed to a person."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class InterventionQuerySet(models.QuerySet):
    def for_org(self, org):
        return self.filter(org=org)

    def unresolved(self):
        return self.filter(state__in=Intervention.UNRESOLVED)


class Intervention(models.Model):
    class Kind(models.TextChoices):
        JOB_EXHAUSTED = "job_exhausted", "Job exhausted its retries"
        STAGE_STUCK = "stage_stuck", "Stage stuck past its deadline"
        NODE_UNREACHABLE = "node_unreachable", "Node unreachable"
        SCANNER_CRASHED = "scanner_crashed", "Scanner crashed"
        IMPORT_REJECTED = "import_rejected", "Import rejected"
        WEBHOOK_FAILING = "webhook_failing", "Webhook endpoint failing"
        REPORT_FAILED = "report_failed", "Report failed to render"
        FEED_STALE = "feed_stale", "Vulnerability feed stale"
        ZONE_UNAVAILABLE = "zone_unavailable", "Zone without a worker"
        OUT_OF_ZONE = "out_of_zone", "Job refused by its zone's worker"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        DISMISSED = "dismissed", "Dismissed"

    UNRESOLVED = (State.OPEN, State.ACKNOWLEDGED)
    # The state machine: from -> allowed targets.
    TRANSITIONS = {
        State.OPEN: (State.ACKNOWLEDGED, State.RESOLVED, State.DISMISSED),
        State.ACKNOWLEDGED: (State.RESOLVED, State.DISMISSED),
        State.RESOLVED: (),
        State.DISMISSED: (),
    }

    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="interventions")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    # What it is about, as one key ("job:42", "session:7:execution", "node:3", "import:<sha256>",
    # "feed:kev"), so the database can hold at most one unresolved intervention per organization,
    # subject and kind. The organization is part of the key: a subject that is not an id of the
    # organization's own rows (the same file imported by two tenants, a deployment-wide feed) is
    # one intervention in each organization, never one tenant's row bumped by another's failure.
    subject = models.CharField(max_length=255)
    title = models.CharField(max_length=300)
    session = models.ForeignKey("scans.ScanSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="interventions")
    job = models.ForeignKey("scans.ScanJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="interventions")
    node = models.ForeignKey("nodes.Node", null=True, blank=True, on_delete=models.SET_NULL, related_name="interventions")
    context = models.JSONField(default=dict, blank=True, help_text="error, attempts, task id, correlation id...")
    occurrences = models.PositiveIntegerField(default=1)
    opened_at = models.DateTimeField(default=timezone.now)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    retry_count = models.PositiveIntegerField(default=0)
    last_retry_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every transition, for optimistic concurrency (orgs.concurrency).
    version = models.PositiveIntegerField(default=1, db_default=1)

    objects = InterventionQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "subject", "kind"], condition=Q(state__in=["open", "acknowledged"]),
                name="intervention_one_unresolved_per_org"
            ),
        ]
        indexes = [models.Index(fields=["org", "state", "-opened_at"], name="intervention_org_state")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title} ({self.state})"

    @property
    def is_unresolved(self) -> bool:
        return self.state in self.UNRESOLVED
