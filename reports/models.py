"""Reports: a session's or an organization's findings rendered as HTML, PDF, CSV or JSON."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Report(models.Model):
    class Kind(models.TextChoices):
        SESSION = "session", "Session"
        ORGANIZATION = "organization", "Organization"

    class Format(models.TextChoices):
        HTML = "html", "HTML"
        PDF = "pdf", "PDF"
        CSV = "csv", "CSV"
        JSON = "json", "JSON"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="reports")
    session = models.ForeignKey("scans.ScanSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SESSION)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.JSON)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    file = models.FileField(upload_to="reports/%Y/%m/", blank=True)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Reporting runs twice on duplicate delivery; it must not write two reports.
            models.UniqueConstraint(fields=["session", "kind", "format"], name="report_unique_session_kind_format"),
        ]
        indexes = [models.Index(fields=["org", "-created_at"], name="report_org_created")]

    def __str__(self) -> str:
        return f"{self.kind} report {self.pk} ({self.format}, {self.status})"
