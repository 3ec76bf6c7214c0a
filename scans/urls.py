"""Console pages of the scans app, under /o/<slug>/ (see config/urls.py).

"Scan this node now" lives at the node's own address (nodes/<id>/scan/): it starts a session.
"""

from django.urls import path

from scans import views

app_name = "scans"

urlpatterns = [
    path("sessions/", views.session_list, name="session_list"),
    path("sessions/new/", views.session_new, name="session_new"),
    path("sessions/<int:session_id>/", views.session_detail, name="session_detail"),
    path("sessions/<int:session_id>/progress/", views.session_detail, {"live_only": True}, name="session_progress"),
    path("sessions/<int:session_id>/cancel/", views.session_cancel_view, name="session_cancel"),
    path("nodes/<int:node_id>/scan/", views.node_scan, name="node_scan"),
    path("imports/", views.import_list, name="import_list"),
    path("imports/<int:import_id>/", views.import_row, name="import_row"),
    path("findings/", views.finding_list, name="finding_list"),
    path("findings/bulk-triage/", views.finding_bulk_triage, name="finding_bulk_triage"),
    path("findings/groups/", views.finding_groups, name="finding_groups"),
    path("findings/groups/triage/", views.finding_group_triage, name="finding_group_triage"),
    path("findings/export/<str:kind>/", views.finding_export_view, name="finding_export"),
    path("findings/views/", views.saved_view_list, name="saved_view_list"),
    path("findings/views/menu/", views.saved_view_menu, name="saved_view_menu"),
    path("findings/views/new/", views.saved_view_new, name="saved_view_new"),
    path("findings/views/<int:view_id>/", views.saved_view_open, name="saved_view_open"),
    path("findings/views/<int:view_id>/delete/", views.saved_view_delete_view, name="saved_view_delete"),
    path("findings/<int:finding_id>/", views.finding_detail_view, name="finding_detail"),
    path("findings/<int:finding_id>/triage/", views.finding_triage_view, name="finding_triage"),
    path("findings/<int:finding_id>/certainty/", views.finding_certainty_view, name="finding_certainty"),
    path("findings/bulk-remediate/", views.finding_bulk_remediate, name="finding_bulk_remediate"),
    path("findings/<int:finding_id>/assign/", views.finding_assign_view, name="finding_assign"),
    path("findings/<int:finding_id>/ticket/", views.finding_ticket_view, name="finding_ticket"),
    path("findings/<int:finding_id>/comments/", views.finding_comment_view, name="finding_comment"),
]

# The organization's home page: in the organization's namespace ("orgs:dashboard"), mounted there
# by config/urls.py, because it sums up what every app below holds.
dashboard_urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("running/", views.dashboard_running, name="dashboard_running"),
]
