"""Admin changes are audited like every other change a person makes (DESIGN: "Every change made
by a person or token is an AuditEvent"): the Django admin's own LogEntry keeps no before/after
and is not scoped to an organization, so each audited ModelAdmin writes an AuditEvent too."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.forms.models import model_to_dict

from orgs.audit import audit_record


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "pk"):
        return value.pk
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None), dict)) else str(value)


class AuditedAdmin(admin.ModelAdmin):
    """Writes ``<model>.admin_created|admin_changed|admin_deleted`` with the changed fields' before/after."""

    def audit_org(self, obj):
        return getattr(obj, "org", None)

    def save_model(self, request, obj, form, change):
        before = {}
        if change and obj.pk:
            stored = type(obj).objects.filter(pk=obj.pk).first()
            before = model_to_dict(stored) if stored is not None else {}
        super().save_model(request, obj, form, change)
        after = model_to_dict(obj)
        fields = form.changed_data if change else list(after)
        changes = {f: [_plain(before.get(f)), _plain(after.get(f))] for f in fields if f in after}
        verb = f"{obj._meta.model_name}.admin_{'changed' if change else 'created'}"
        audit_record(org=self.audit_org(obj), verb=verb, target=obj, changes=changes, actor=request.user,
                     ip=request.META.get("REMOTE_ADDR"))

    def delete_model(self, request, obj):
        audit_record(org=self.audit_org(obj), verb=f"{obj._meta.model_name}.admin_deleted", target=obj,
                     actor=request.user, ip=request.META.get("REMOTE_ADDR"))
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit_record(org=self.audit_org(obj), verb=f"{obj._meta.model_name}.admin_deleted", target=obj,
                         actor=request.user, ip=request.META.get("REMOTE_ADDR"))
        super().delete_queryset(request, queryset)
