"""Notification pages under /o/<slug>/settings/notifications/, in the organization's namespace
(``orgs:notifications``...) beside the webhook pages: config/urls.py mounts them."""

from django.urls import path

from reports.notifications import views

urlpatterns = [
    path("settings/notifications/", views.notifications_page, name="notifications"),
    path("settings/notifications/new/", views.notification_channel_create, name="notification_channel_create"),
    path("settings/notifications/digest/", views.notification_digest, name="notification_digest"),
]
