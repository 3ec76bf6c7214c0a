"""Console pages of the interventions app, under /o/<slug>/ (see config/urls.py)."""

from django.urls import path  # noqa: F401

app_name = "interventions"

urlpatterns: list = []
