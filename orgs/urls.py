from django.urls import path

from orgs import views

app_name = "orgs"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("members/", views.members, name="members"),
    path("members/add/", views.member_add, name="member_add"),
    path("members/<int:member_id>/role/", views.member_change_role, name="member_change_role"),
    path("members/<int:member_id>/remove/", views.member_remove, name="member_remove"),
]
