from django.contrib import admin

from orgs.admin import ReadOnlyAdmin
from orgs.admin_audit import AuditedAdmin
from reports.models import Report, ReportSchedule, WebhookDelivery, WebhookEndpoint


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["pk", "org", "kind", "format", "status", "trigger", "node", "session", "size", "created_at",
                    "finished_at"]
    list_filter = ["kind", "format", "status", "trigger", "org"]
    search_fields = ["org__slug", "file_name", "error"]
    raw_id_fields = ["org", "node", "session", "schedule", "requested_by", "requested_by_token"]
    # The per-finding state is for the next report's comparison, not for reading here.
    exclude = ["finding_state"]
    readonly_fields = ["file", "file_name", "size", "content_type", "pages", "changes", "summary", "correlation_id",
                       "started_at", "finished_at", "period_start", "period_end"]


@admin.register(ReportSchedule)
class ReportScheduleAdmin(admin.ModelAdmin):
    """Read here; change schedules on the Reports page, which keeps the beat row in step."""

    list_display = ["org", "kind", "format", "crontab", "crontab_timezone", "enabled", "updated_at"]
    list_filter = ["enabled", "format"]
    raw_id_fields = ["org", "periodic_task"]
    filter_horizontal = ["recipients"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AuditedAdmin):
    """Endpoints (every notification channel kind) are created and re-pointed through the console or API,
    where the URL passes the network policy and e-mail recipients are checked."""

    list_display = ["__str__", "kind", "org", "state", "consecutive_failures", "created_at"]
    list_filter = ["kind", "state", "org"]
    search_fields = ["url", "description", "org__slug"]
    readonly_fields = ["org", "kind", "url", "pinned_address", "email_addresses", "email_members", "consecutive_failures",
                       "paused_at", "created_by", "created_at"]
    exclude = ["secret"]

    def has_add_permission(self, request):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["event_type", "endpoint", "status", "attempts", "response_code", "duration_ms", "created_at"]
    list_filter = ["status", "event_type"]
    raw_id_fields = ["endpoint"]
