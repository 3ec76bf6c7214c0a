from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from orgs.admin_audit import AuditedAdmin
from orgs.models import (
    ApiToken,
    AuditEvent,
    IdempotencyKey,
    Invitation,
    Membership,
    Organization,
    Zone,
)
from orgs.scope import ScopeError, parse_networks, parse_scope
from orgs.services import api_token_revoke
from orgs.zones import zone_create, zone_delete, zone_hostnames_clean, zone_networks_clean, zone_overlaps_refuse, zone_update


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class OrganizationAdminForm(forms.ModelForm):
    """Scope is validated by the scope guard's own parser, as the console does: a scope the guard
    cannot read would break every scan and import of the organization."""

    class Meta:
        model = Organization
        fields = "__all__"

    def _entries(self, field: str) -> list[str]:
        value = self.cleaned_data.get(field) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError('Give a JSON list of strings, e.g. ["127.0.10.0/24"].')
        return [v.strip() for v in value if v.strip()]

    def clean_scope_networks(self):
        entries = self._entries("scope_networks")
        try:
            return [str(network) for network in parse_networks(entries)]
        except ScopeError as error:
            raise ValidationError(str(error)) from None

    def clean_scope_hostnames(self):
        entries = self._entries("scope_hostnames")
        try:
            scope = parse_scope(entries)
        except ScopeError as error:
            raise ValidationError(str(error)) from None
        if scope.networks:
            raise ValidationError("Networks belong in scope networks, not in host names.")
        return [entry.lower().rstrip(".") for entry in entries]


@admin.register(Organization)
class OrganizationAdmin(AuditedAdmin):
    form = OrganizationAdminForm
    list_display = ["name", "slug", "schedule_crontab", "max_concurrent_jobs", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    raw_id_fields = ["default_profile"]
    inlines = [MembershipInline]

    def audit_org(self, obj):
        return obj


@admin.register(Membership)
class MembershipAdmin(AuditedAdmin):
    list_display = ["user", "org", "role", "digest_enabled", "created_at"]
    list_filter = ["role", "digest_enabled", "org"]
    search_fields = ["user__username", "user__email", "org__name", "org__slug"]
    autocomplete_fields = ["user", "org"]


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedAdmin):
    """Tokens are made only by the service (console settings or `create_token`), which shows the
    secret once: an admin "add" could only save a token without a usable hash. A token stays in
    its organization; widening its access or lifting a revocation is audited with before/after."""

    list_display = ["name", "prefix", "org", "access", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["access", "org"]
    search_fields = ["name", "prefix", "org__slug"]
    readonly_fields = ["org", "prefix", "key_hash", "created_by", "created_at", "last_used_at", "revoked_at"]
    fields = ["org", "name", "access", "expires_at", "prefix", "key_hash", "created_by", "created_at",
              "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            api_token_revoke(token=token, by=request.user, ip=request.META.get("REMOTE_ADDR"))
        messages.success(request, "Revoked.")


@admin.register(Invitation)
class InvitationAdmin(AuditedAdmin):
    """Invitations are sent from the console (the raw token exists only in the e-mail)."""

    list_display = ["email", "org", "role", "invited_by", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = ["role", "org"]
    search_fields = ["email", "org__slug"]
    readonly_fields = ["org", "email", "role", "invited_by", "created_at", "accepted_at", "accepted_by"]
    exclude = ["token_hash"]

    def has_add_permission(self, request):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ["key", "principal", "org", "method", "path", "state", "response_status", "created_at"]
    list_filter = ["state"]
    search_fields = ["key", "principal"]


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


class ZoneAdminForm(forms.ModelForm):
    """A zone's networks and names pass the same rules as in the console (inside the scope, no overlap)."""

    class Meta:
        model = Zone
        fields = ["org", "name", "networks", "hostnames"]

    def clean(self):
        data = super().clean()
        org = data.get("org")
        if org is None:
            return data
        try:
            data["networks"] = zone_networks_clean(org=org, networks=data.get("networks") or [])
            data["hostnames"] = zone_hostnames_clean(org=org, hostnames=data.get("hostnames") or [])
            zone_overlaps_refuse(org=org, networks=data["networks"], hostnames=data["hostnames"],
                                 exclude_pk=self.instance.pk)
        except ValidationError as error:
            raise ValidationError({"networks" if error.code == "networks" else "hostnames": error.messages}) from None
        return data


@admin.register(Zone)
class ZoneAdmin(admin.ModelAdmin):
    """Written through the zone services, which audit the change and place the organization's nodes again."""

    form = ZoneAdminForm
    list_display = ["name", "org", "queue", "created_at"]
    list_filter = ["org"]
    search_fields = ["name", "org__name"]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            if change:
                zone_update(zone=Zone.objects.get(pk=obj.pk), name=data["name"], networks=data["networks"], hostnames=data["hostnames"],
                            by=request.user)
            else:
                obj.pk = zone_create(org=data["org"], name=data["name"], networks=data["networks"],
                                     hostnames=data["hostnames"], by=request.user).pk
        except ValidationError as error:
            # The overlap check runs under the organization's lock, after the form's: told, not raised.
            messages.error(request, " ".join(error.messages))

    def delete_model(self, request, obj):
        zone_delete(zone=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for zone in queryset:
            zone_delete(zone=zone, by=request.user)
