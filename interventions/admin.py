from django.contrib import admin

from interventions.models import Intervention, WorkerHeartbeat


@admin.register(Intervention)
class InterventionAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "state", "org", "subject", "occurrences", "opened_at", "closed_at"]
    list_filter = ["kind", "state", "org"]
    search_fields = ["title", "subject", "note"]
    raw_id_fields = ["org", "session", "job", "node", "acknowledged_by", "closed_by"]
    date_hierarchy = "opened_at"


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    """Written by workers every few seconds (config.operations); a row unseen for long is a dead worker."""

    list_display = ["hostname", "queues", "concurrency", "pid", "started_at", "seen_at"]
    readonly_fields = ["hostname", "queues", "concurrency", "pid", "started_at", "seen_at"]

    def has_add_permission(self, request):
        return False
