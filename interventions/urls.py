"""Console pages of the interventions app, under /o/<slug>/interventions/ (see config/urls.py)."""

from django.urls import path

from interventions import views

app_name = "interventions"

urlpatterns = [
    path("", views.intervention_list, name="list"),
    path("<int:intervention_id>/", views.intervention_detail, name="detail"),
    path("<int:intervention_id>/actions/", views.intervention_actions, name="actions"),
    path("<int:intervention_id>/acknowledge/", views.intervention_act, {"action": "acknowledge"}, name="acknowledge"),
    path("<int:intervention_id>/resolve/", views.intervention_act, {"action": "resolve"}, name="resolve"),
    path("<int:intervention_id>/dismiss/", views.intervention_act, {"action": "dismiss"}, name="dismiss"),
    path("<int:intervention_id>/retry/", views.intervention_act, {"action": "retry"}, name="retry"),
]
