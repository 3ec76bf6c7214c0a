"""The Django admin lists every model and keeps the audit trail read-only."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from orgs.audit import audit_record

pytestmark = pytest.mark.django_db

PROJECT_APPS = ("orgs", "nodes", "scans", "reports", "interventions")


def test_every_domain_model_is_registered_in_the_admin():
    missing = [m.__name__ for a in PROJECT_APPS for m in apps.get_app_config(a).get_models() if m not in admin.site._registry]
    assert missing == []


@pytest.fixture
def superuser_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.test", "pw"))
    return client


@pytest.mark.parametrize("model", [m for a in PROJECT_APPS for m in apps.get_app_config(a).get_models()], ids=lambda m: m.__name__)
def test_each_model_changelist_renders(superuser_client, model, world):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert superuser_client.get(url).status_code == 200


def test_audit_events_cannot_be_added_changed_or_deleted_in_the_admin(superuser_client, world):
    event = audit_record(org=world.org, verb="test.happened")
    assert superuser_client.get(reverse("admin:orgs_auditevent_add")).status_code == 403
    response = superuser_client.post(reverse("admin:orgs_auditevent_change", args=[event.pk]), {"verb": "forged"})
    assert response.status_code == 403
    assert superuser_client.post(reverse("admin:orgs_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.verb == "test.happened"


def test_a_member_without_staff_status_cannot_open_the_admin(client, world):
    client.force_login(world.owner)
    assert client.get(reverse("admin:index")).status_code == 302
