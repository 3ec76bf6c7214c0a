"""Webhook pages under /o/<slug>/settings/webhooks/.

Organization settings by place and by name (``orgs:webhooks``...): config/urls.py mounts these
patterns in the organization's namespace, beside orgs' own pages.
"""

from django.urls import include, path

from reports.webhooks import views

urlpatterns = [
    path("settings/webhooks/", include([
        path("", views.webhooks_list, name="webhooks"),
        path("new/", views.webhook_create, name="webhook_create"),
        path("<int:endpoint_id>/", include([
            path("", views.webhook_detail, name="webhook_detail"),
            path("edit/", views.webhook_update, name="webhook_update"),
            path("pause/", views.webhook_pause, name="webhook_pause"),
            path("resume/", views.webhook_resume, name="webhook_resume"),
            path("delete/", views.webhook_delete, name="webhook_delete"),
            path("deliveries/<int:delivery_id>/redeliver/", views.webhook_redeliver, name="webhook_redeliver"),
        ])),
    ])),
]
