"""Webhook pages under /o/<slug>/settings/webhooks/.

Organization settings by place and by name (``orgs:webhooks``...): config/urls.py mounts these
patterns in the organization's namespace, beside orgs' own pages.
"""

from django.urls import path

from reports.webhooks import views

urlpatterns = [
    path("settings/webhooks/", views.webhooks_list, name="webhooks"),
    path("settings/webhooks/new/", views.webhook_create, name="webhook_create"),
    path("settings/webhooks/<int:endpoint_id>/", views.webhook_detail, name="webhook_detail"),
    path("settings/webhooks/<int:endpoint_id>/edit/", views.webhook_update, name="webhook_update"),
    path("settings/webhooks/<int:endpoint_id>/pause/", views.webhook_pause, name="webhook_pause"),
    path("settings/webhooks/<int:endpoint_id>/resume/", views.webhook_resume, name="webhook_resume"),
    path("settings/webhooks/<int:endpoint_id>/delete/", views.webhook_delete, name="webhook_delete"),
    path("settings/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver/", views.webhook_redeliver,
         name="webhook_redeliver"),
]
