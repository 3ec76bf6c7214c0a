from django.contrib import admin

from reports.models import Report


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["pk", "org", "kind", "format", "status", "session", "created_at", "finished_at"]
    list_filter = ["kind", "format", "status", "org"]
    search_fields = ["org__slug", "error"]
    raw_id_fields = ["org", "node", "session", "requested_by"]
