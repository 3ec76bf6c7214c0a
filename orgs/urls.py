from django.urls import path

from orgs import views

app_name = "orgs"

urlpatterns = [
    path("members/", views.members, name="members"),
    path("members/<int:member_id>/role/", views.member_change_role, name="member_change_role"),
    path("members/<int:member_id>/remove/", views.member_remove, name="member_remove"),
    path("invitations/", views.invitation_create, name="invitation_create"),
    path("invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("settings/", views.settings, name="settings"),
    path("settings/schedule-preview/", views.schedule_preview, name="schedule_preview"),
    path("settings/zones/<int:zone_id>/windows-budget/", views.zone_windows_budget, name="zone_windows_budget"),
    path("settings/tokens/", views.tokens, name="tokens"),
    path("settings/tokens/new/", views.token_create, name="token_create"),
    path("settings/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path("zones/", views.zones, name="zones"),
    path("zones/<int:zone_id>/", views.zone, name="zone"),
    path("zones/<int:zone_id>/delete/", views.zone_remove, name="zone_remove"),
    path("audit/", views.audit, name="audit"),
    path("audit/export.csv", views.audit_export, name="audit_export"),
]
