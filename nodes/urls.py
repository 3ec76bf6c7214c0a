"""Console pages of the nodes app, under /o/<slug>/nodes/ (see config/urls.py)."""

from django.urls import path

from nodes import views

app_name = "nodes"

urlpatterns = [
    path("", views.node_list, name="list"),
    path("add/", views.node_add, name="add"),
    path("add/validate/", views.node_validate, name="validate"),
    path("bulk/", views.node_bulk_add, name="bulk"),
    path("criticality/", views.node_criticality, name="criticality"),
    path("<int:node_id>/", views.node_detail, name="detail"),
    path("<int:node_id>/edit/", views.node_edit, name="edit"),
    path("<int:node_id>/enabled/", views.node_enable, name="enable"),
    path("<int:node_id>/budgets/", views.node_budgets, name="budgets"),
    path("<int:node_id>/zone/", views.node_zone, name="zone"),
]
