from django.contrib import admin

from orgs.admin import ReadOnlyAdmin
from scans.models import (
    CveProduct,
    CveRecord,
    EpssScore,
    FeedState,
    Finding,
    FindingComment,
    FindingDailyStats,
    FindingEvent,
    FindingGroup,
    ImportRequest,
    KevEntry,
    OrganizationScore,
    SavedView,
    ScanJob,
    ScanProfile,
    ScanSession,
    ServiceProduct,
    WorkerHeartbeat,
)


@admin.register(ScanProfile)
class ScanProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "org", "ports", "time_budget_seconds", "job_timeout_seconds"]
    search_fields = ["name", "slug"]
    autocomplete_fields = ["org"]


class ScanJobInline(admin.TabularInline):
    model = ScanJob
    extra = 0
    fields = ["node", "scanner", "status", "attempts", "started_at", "finished_at", "error"]
    readonly_fields = fields
    show_change_link = True
    can_delete = False


@admin.register(ScanSession)
class ScanSessionAdmin(admin.ModelAdmin):
    list_display = ["pk", "org", "trigger", "status", "stage", "jobs_total", "jobs_succeeded", "jobs_failed", "created_at", "finished_at"]
    list_filter = ["status", "stage", "trigger", "org"]
    search_fields = ["correlation_id", "org__slug"]
    raw_id_fields = ["org", "profile", "requested_by", "requested_by_token"]
    date_hierarchy = "created_at"
    inlines = [ScanJobInline]


@admin.register(ScanJob)
class ScanJobAdmin(admin.ModelAdmin):
    list_display = ["pk", "session", "node", "scanner", "status", "attempts", "started_at", "finished_at"]
    list_filter = ["status", "scanner"]
    search_fields = ["node__address", "task_id", "error"]
    raw_id_fields = ["session", "node"]


@admin.register(Finding)
class FindingAdmin(admin.ModelAdmin):
    list_display = ["title", "severity", "status", "node", "org", "source", "port", "last_seen"]
    list_filter = ["severity", "status", "source", "org"]
    search_fields = ["title", "rule_id", "fingerprint", "node__address", "cve_ids"]
    raw_id_fields = ["org", "node", "first_session", "last_session", "triaged_by", "assignee"]
    date_hierarchy = "last_seen"


@admin.register(FindingComment)
class FindingCommentAdmin(admin.ModelAdmin):
    """A comment is fixed here as it would be by hand (a typo, a secret pasted by mistake)."""

    list_display = ["finding", "author", "created_at"]
    search_fields = ["body", "finding__title"]
    raw_id_fields = ["finding", "author"]
    date_hierarchy = "created_at"


@admin.register(FindingGroup)
class FindingGroupAdmin(ReadOnlyAdmin):
    """Rewritten from the open findings by ``finding_groups_refresh``: an edit here would not last."""

    list_display = ["rule_id", "org", "severity", "priority", "open_count", "node_count", "due_at"]
    list_filter = ["severity", "org"]
    search_fields = ["rule_id", "title"]


@admin.register(SavedView)
class SavedViewAdmin(admin.ModelAdmin):
    list_display = ["name", "org", "shared", "owner", "token", "updated_at"]
    list_filter = ["shared", "org"]
    search_fields = ["name", "query"]
    raw_id_fields = ["org", "owner", "token"]


@admin.register(FindingDailyStats)
class FindingDailyStatsAdmin(ReadOnlyAdmin):
    """Written by the scoring stage, imports, triage and beat; rebuilt by ``finding_stats_backfill``."""

    list_display = ["org", "day", "open_critical", "open_high", "open_medium", "open_low", "new", "sla_overdue"]
    list_filter = ["org"]
    date_hierarchy = "day"


class CveProductInline(admin.TabularInline):
    model = CveProduct
    extra = 0


@admin.register(CveRecord)
class CveRecordAdmin(admin.ModelAdmin):
    list_display = ["cve_id", "severity", "cvss_score", "published", "last_modified"]
    list_filter = ["severity", "cvss_version"]
    search_fields = ["cve_id", "description"]
    inlines = [CveProductInline]


@admin.register(CveProduct)
class CveProductAdmin(admin.ModelAdmin):
    list_display = ["vendor", "product", "cve"]
    search_fields = ["vendor", "product", "cve__cve_id"]
    raw_id_fields = ["cve"]


@admin.register(FindingEvent)
class FindingEventAdmin(ReadOnlyAdmin):
    """A finding's history is evidence, written by the lifecycle and triage: read here, never edited."""

    list_display = ["at", "finding", "kind", "from_status", "to_status", "session", "by", "token"]
    list_filter = ["kind"]
    raw_id_fields = ["finding", "session", "by", "token"]
    date_hierarchy = "at"


@admin.register(ImportRequest)
class ImportRequestAdmin(ReadOnlyAdmin):
    """Uploads are made through the API; here they are read (and deleted when a file must go)."""

    list_display = ["created_at", "org", "format", "filename", "size", "status", "session"]
    list_filter = ["status", "format"]
    search_fields = ["filename", "sha256", "org__slug"]
    raw_id_fields = ["org", "session", "requested_by", "requested_by_token"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    """Written by workers every few seconds (scans.pipeline.workers); a row unseen for long is a dead worker."""

    list_display = ["hostname", "queues", "concurrency", "pid", "started_at", "seen_at"]
    readonly_fields = ["hostname", "queues", "concurrency", "pid", "started_at", "seen_at"]

    def has_add_permission(self, request):
        return False


@admin.register(OrganizationScore)
class OrganizationScoreAdmin(admin.ModelAdmin):
    list_display = ["org", "score", "grade", "node_count", "created_at"]
    list_filter = ["grade", "org"]
    raw_id_fields = ["org", "session"]


@admin.register(FeedState)
class FeedStateAdmin(ReadOnlyAdmin):
    """Written by the feeds' syncs and imports; the checkpoint is where an interrupted NVD sync resumes."""

    list_display = ["feed", "last_success_at", "last_attempt_at", "records", "source_date", "last_error"]


@admin.register(KevEntry)
class KevEntryAdmin(ReadOnlyAdmin):
    """The CISA KEV catalog as last imported (a snapshot: replaced whole by the next import)."""

    list_display = ["cve_id", "vendor", "product", "date_added", "due_date", "known_ransomware_use"]
    list_filter = ["known_ransomware_use"]
    search_fields = ["cve_id", "vendor", "product"]


@admin.register(EpssScore)
class EpssScoreAdmin(ReadOnlyAdmin):
    """FIRST's EPSS scores as last imported (a daily snapshot)."""

    list_display = ["cve_id", "score", "percentile", "model_date"]
    search_fields = ["cve_id"]


@admin.register(ServiceProduct)
class ServiceProductAdmin(ReadOnlyAdmin):
    """The index a catalog re-match finds services by, rewritten by each analysis of a node."""

    list_display = ["org", "node", "port", "protocol", "vendor", "product"]
    search_fields = ["vendor", "product", "node__address"]
    raw_id_fields = ["org", "node"]
