"""Console pages of the reports app, under /o/<slug>/reports/ (see config/urls.py)."""

from django.urls import path

from reports import views

app_name = "reports"

urlpatterns = [
    path("", views.report_list, name="list"),
    path("request/", views.report_request, name="request"),
    path("schedule/", views.report_schedule, name="schedule"),
    path("<int:report_id>/status/", views.report_status, name="status"),
    path("<int:report_id>/download/", views.report_download, name="download"),
]
