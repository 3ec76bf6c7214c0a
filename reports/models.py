"""Reports: an organization's, a node's or a session's findings rendered as HTML, PDF, CSV, JSON or SARIF.

A ``Report`` row is the request and its outcome (status, error, the stored file); the
file itself lives in Django's default storage and is only ever served through the
application to members of the organization. A ``ReportSchedule`` is an organization's
recurring report, run by a django-celery-beat row and e-mailed to its recipients. A
``WebhookEndpoint`` is where an organization wants events sent (a notification channel: a signed
webhook, a Slack or Teams incoming webhook, or e-mail), a ``WebhookDelivery`` one event sent there
(``reports.webhooks`` delivers, ``reports.notifications`` formats per channel kind).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Report(models.Model):
    class Kind(models.TextChoices):
        ORGANIZATION = "organization", "Organization"
        NODE = "node", "Node"
        SESSION = "session", "Session"

    class Format(models.TextChoices):
        PDF = "pdf", "PDF"
        HTML = "html", "HTML"
        CSV = "csv", "CSV"
        JSON = "json", "JSON"
        SARIF = "sarif", "SARIF 2.1"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Rendering"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        PIPELINE = "pipeline", "Scan session"
        CONSOLE = "console", "Console"
        API = "api", "API"
        SCHEDULE = "schedule", "Schedule"
        CLI = "cli", "Command line"

    FINISHED = (Status.READY, Status.FAILED)

    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="reports")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ORGANIZATION)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.JSON)
    # The subject: the organization itself, one node, or one session.
    node = models.ForeignKey("nodes.Node", null=True, blank=True, on_delete=models.CASCADE, related_name="reports")
    session = models.ForeignKey("scans.ScanSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    schedule = models.ForeignKey("reports.ReportSchedule", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="reports")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.PIPELINE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    file = models.FileField(upload_to="reports/", blank=True, max_length=300)
    file_name = models.CharField(max_length=200, blank=True, help_text="The name a download is saved under")
    size = models.PositiveBigIntegerField(null=True, blank=True, help_text="Bytes")
    content_type = models.CharField(max_length=100, blank=True)
    pages = models.PositiveIntegerField(null=True, blank=True, help_text="PDF pages")
    # The pipeline's session summary (what ran, timings) and the executive figures of the report.
    summary = models.JSONField(default=dict, blank=True)
    # What changed since the previous comparable report (same kind and subject): counts and examples.
    changes = models.JSONField(default=dict, blank=True)
    # {finding id: [status, severity]} at render time: what the next comparable report compares with.
    # Deferred by every list: it holds one entry per finding of the subject.
    finding_state = models.JSONField(default=dict, blank=True)
    period_start = models.DateTimeField(null=True, blank=True, help_text="Since the previous comparable report")
    period_end = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    requested_by_token = models.ForeignKey("orgs.ApiToken", null=True, blank=True, on_delete=models.SET_NULL,
                                           related_name="+")
    correlation_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Reporting runs twice on duplicate delivery; it must not write two reports. People may
            # ask for as many session reports as they like.
            models.UniqueConstraint(fields=["session", "kind", "format"], condition=Q(trigger="pipeline"),
                                    name="report_unique_session_kind_format"),
            models.CheckConstraint(condition=~Q(kind="node") | Q(node__isnull=False), name="report_node_kind_has_node"),
        ]
        indexes = [
            models.Index(fields=["org", "-created_at"], name="report_org_created"),
            models.Index(fields=["org", "kind", "status", "-created_at"], name="report_org_kind_status"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} report {self.pk} ({self.format}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def subject_label(self) -> str:
        if self.kind == self.Kind.NODE and self.node_id:
            return f"{self.node.name} ({self.node.address})" if self.node.name else self.node.address
        if self.kind == self.Kind.SESSION and self.session_id:
            return f"Session #{self.session_id}"
        return str(self.org)


class ReportSchedule(models.Model):
    """An organization's recurring report: what, when, and who receives it by e-mail.

    Its django-celery-beat row (``periodic_task``) is written only by
    ``reports.services.report_schedule_save``.
    """

    org = models.OneToOneField("orgs.Organization", on_delete=models.CASCADE, related_name="report_schedule")
    kind = models.CharField(max_length=16, choices=Report.Kind.choices, default=Report.Kind.ORGANIZATION)
    format = models.CharField(max_length=8, choices=Report.Format.choices, default=Report.Format.PDF)
    crontab = models.CharField(max_length=100, default="0 6 * * 1", help_text="minute hour day month weekday")
    crontab_timezone = models.CharField(max_length=64, default="UTC")
    enabled = models.BooleanField(default=True)
    recipients = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+",
                                        help_text="Members who receive the report by e-mail")
    periodic_task = models.OneToOneField("django_celery_beat.PeriodicTask", null=True, blank=True,
                                         on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.format} report of {self.org} at '{self.crontab}'"


class WebhookEndpoint(models.Model):
    """Where an organization wants events sent, a notification channel: its kind says how
    (``reports.notifications.channels``), its events are its rules (``reports.webhooks`` delivers)."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Signed webhook"
        SLACK = "slack", "Slack incoming webhook"
        TEAMS = "teams", "Microsoft Teams workflow"
        EMAIL = "email", "E-mail"

    class Event(models.TextChoices):
        SESSION_FINISHED = "session.finished", "Session finished"
        SESSION_FAILED = "session.failed", "Session failed"
        FINDING_NEW = "finding.new", "New findings"
        FINDING_CRITICAL = "finding.critical", "New P1 or critical finding"
        FINDING_REOPENED = "finding.reopened", "Finding reopened"
        SLA_BREACHED = "finding.sla_breached", "SLA breached"
        RISK_ACCEPTANCE_EXPIRED = "finding.risk_expired", "Risk acceptance expired"
        INTERVENTION_OPENED = "intervention.opened", "Intervention opened"

    class State(models.TextChoices):
        ENABLED = "enabled", "Enabled"
        PAUSED = "paused", "Paused"

    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="webhook_endpoints")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.WEBHOOK, db_default=Kind.WEBHOOK)
    url = models.URLField(max_length=500, blank=True, help_text="Every kind but e-mail")
    description = models.CharField(max_length=200, blank=True)
    # Kept as-is, not hashed: signing every delivery needs the raw secret, and a hash cannot sign.
    # It is shown once on creation (like a token) and never rendered again; database access already
    # holds everything the secret protects.
    secret = models.CharField(max_length=100, editable=False)
    events = models.JSONField(default=list, help_text="Event names this endpoint receives")
    min_severity = models.CharField(max_length=16, default="high", help_text="finding.new: lowest severity sent")
    state = models.CharField(max_length=16, choices=State.choices, default=State.ENABLED)
    paused_reason = models.CharField(max_length=500, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # E-mail channels: explicit addresses, members (while they are members), and, if asked, the
    # assignees of the findings an event is about.
    email_addresses = models.JSONField(default=list, blank=True)
    email_members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    email_assignees = models.BooleanField(default=False, db_default=False)
    # The address the URL's host resolved to when it was last checked (save or delivery), for people.
    pinned_address = models.GenericIPAddressField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "orgs_webhookendpoint"  # the tables they were created with, in orgs
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.description or self.url or f"{self.get_kind_display()} {self.pk}"

    @property
    def is_email(self) -> bool:
        return self.kind == self.Kind.EMAIL

    @property
    def is_paused(self) -> bool:
        return self.state == self.State.PAUSED


class WebhookDelivery(models.Model):
    """One event for one endpoint: its payload, attempts and outcome (the endpoint's delivery log)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        HELD = "held", "Held (endpoint paused)"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=32)
    # Sent as Watchpost-Delivery: unique, so a receiver can drop a replay.
    event_id = models.UUIDField(unique=True)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "orgs_webhookdelivery"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["endpoint", "-created_at"], name="webhookdelivery_ep_created"),
                   models.Index(fields=["endpoint", "status"], name="webhookdelivery_ep_status")]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint} ({self.status})"
