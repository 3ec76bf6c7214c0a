"""Console pages of the scans app, under /o/<slug>/ (see config/urls.py)."""

from django.urls import path  # noqa: F401

app_name = "scans"

urlpatterns: list = []
