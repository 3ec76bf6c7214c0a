"""Webhook endpoints and deliveries join the reporting stage that sends them (reports.webhooks): the
models move from orgs, their tables and rows stay."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("reports", "0004_organization_kind_default"),
        ("orgs", "0007_organization_score_to_scans"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WebhookEndpoint",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("url", models.URLField(max_length=500)),
                        ("description", models.CharField(blank=True, max_length=200)),
                        ("secret", models.CharField(editable=False, max_length=100)),
                        ("events", models.JSONField(default=list, help_text="Event names this endpoint receives")),
                        ("min_severity", models.CharField(default="high", help_text="finding.new: lowest severity sent",
                                                          max_length=16)),
                        ("state", models.CharField(choices=[("enabled", "Enabled"), ("paused", "Paused")], default="enabled",
                                                   max_length=16)),
                        ("paused_reason", models.CharField(blank=True, max_length=500)),
                        ("paused_at", models.DateTimeField(blank=True, null=True)),
                        ("consecutive_failures", models.PositiveIntegerField(default=0)),
                        ("pinned_address", models.GenericIPAddressField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                         related_name="+", to=settings.AUTH_USER_MODEL)),
                        ("org", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                  related_name="webhook_endpoints", to="orgs.organization")),
                    ],
                    options={"db_table": "orgs_webhookendpoint", "ordering": ["created_at", "id"]},
                ),
                migrations.CreateModel(
                    name="WebhookDelivery",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("event_type", models.CharField(max_length=32)),
                        ("event_id", models.UUIDField(unique=True)),
                        ("payload", models.JSONField(default=dict)),
                        ("status", models.CharField(choices=[("pending", "Pending"), ("retrying", "Retrying"),
                                                             ("succeeded", "Succeeded"), ("failed", "Failed"),
                                                             ("held", "Held (endpoint paused)")],
                                                    default="pending", max_length=16)),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("response_code", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("duration_ms", models.PositiveIntegerField(blank=True, null=True)),
                        ("last_error", models.CharField(blank=True, max_length=1000)),
                        ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("delivered_at", models.DateTimeField(blank=True, null=True)),
                        ("endpoint", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="deliveries",
                                                       to="reports.webhookendpoint")),
                    ],
                    options={
                        "db_table": "orgs_webhookdelivery",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [models.Index(fields=["endpoint", "-created_at"], name="webhookdelivery_ep_created"),
                                    models.Index(fields=["endpoint", "status"], name="webhookdelivery_ep_status")],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
