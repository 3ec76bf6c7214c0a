"""Console pages of the nodes app, under /o/<slug>/ (see config/urls.py)."""

from django.urls import path  # noqa: F401

app_name = "nodes"

urlpatterns: list = []
