from django.contrib import admin

from interventions.models import Intervention


@admin.register(Intervention)
class InterventionAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "state", "org", "subject", "occurrences", "opened_at", "closed_at"]
    list_filter = ["kind", "state", "org"]
    search_fields = ["title", "subject", "note"]
    raw_id_fields = ["org", "session", "job", "node", "acknowledged_by", "closed_by"]
    date_hierarchy = "opened_at"

