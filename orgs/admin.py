from django.contrib import admin

from orgs.models import ApiToken, AuditEvent, Membership, Organization, OrganizationScore


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "schedule_crontab", "max_concurrent_jobs", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    raw_id_fields = ["default_profile"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "org", "role", "created_at"]
    list_filter = ["role", "org"]
    search_fields = ["user__username", "user__email", "org__name", "org__slug"]
    autocomplete_fields = ["user", "org"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "org", "access", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["access", "org"]
    search_fields = ["name", "prefix", "org__slug"]
    autocomplete_fields = ["org", "created_by"]
    # The hash is useless to a person and the prefix identifies the token; neither is edited by hand.
    readonly_fields = ["prefix", "key_hash", "last_used_at"]


@admin.register(OrganizationScore)
class OrganizationScoreAdmin(admin.ModelAdmin):
    list_display = ["org", "score", "grade", "node_count", "created_at"]
    list_filter = ["grade", "org"]
    raw_id_fields = ["org", "session"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit trail is evidence: it can be read and searched, never changed here."""

    list_display = ["created_at", "org", "actor", "token", "verb", "target_type", "target_repr", "ip", "request_id"]
    list_filter = ["verb", "org"]
    search_fields = ["verb", "target_repr", "target_id", "request_id", "actor__username"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
