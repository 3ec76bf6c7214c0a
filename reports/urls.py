"""Console pages of the reports app, under /o/<slug>/ (see config/urls.py)."""

from django.urls import path  # noqa: F401

app_name = "reports"

urlpatterns: list = []
