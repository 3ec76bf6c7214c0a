from django.contrib import admin

from reports.models import Report, ReportSchedule


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
