from django.contrib import admin

from nodes.models import Node, NodeListVersion, NodeScore, NodeSnapshot
from orgs.admin import ReadOnlyAdmin


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ["address", "name", "org", "state", "resolved_ip", "enabled", "discovery_confidence", "last_scanned_at"]
    list_filter = ["state", "enabled", "org"]
    search_fields = ["address", "hostname", "name", "resolved_ip"]
    autocomplete_fields = ["org"]


@admin.register(NodeSnapshot)
class NodeSnapshotAdmin(admin.ModelAdmin):
    list_display = ["node", "org", "score", "grade", "critical", "high", "medium", "low", "last_scan_status", "updated_at"]
    list_filter = ["grade", "last_scan_status", "org"]
    search_fields = ["node__address", "node__name"]
    raw_id_fields = ["node", "org"]


@admin.register(NodeScore)
class NodeScoreAdmin(admin.ModelAdmin):
    list_display = ["node", "score", "grade", "session", "created_at"]
    list_filter = ["grade"]
    search_fields = ["node__address"]
    raw_id_fields = ["node", "session"]


@admin.register(NodeListVersion)
class NodeListVersionAdmin(ReadOnlyAdmin):
    """The database's triggers keep these numbers (see the model); shown for diagnosis. Deleting
    a row is harmless: the organization's next change writes it again, and until then its list
    pages are built without the cache."""

    list_display = ["org_id", "version"]
    search_fields = ["org_id"]
