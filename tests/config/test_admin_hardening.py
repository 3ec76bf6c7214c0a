"""The admin cannot break an organization's scope, mint unusable tokens, or change anything unaudited."""

import pytest
from django.urls import reverse

from orgs.models import ApiToken, AuditEvent
from orgs.services import api_token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.test", "pw"))
    return client


def _org_form(org, **overrides):
    data = {
        "name": org.name, "slug": org.slug, "scope_networks": '["127.0.0.0/8"]', "scope_hostnames": "[]",
        "schedule_crontab": "", "schedule_timezone": "UTC", "max_concurrent_jobs": 50, "node_cooldown_minutes": 0,
        "retention_raw_output_days": 30, "retention_sessions_days": 365, "potential_threshold": 0.6,
        "sla_p1_days": 7, "sla_p2_days": 30, "sla_p3_days": 90, "sla_p4_days": 180, "scan_windows": "[]",
        "created_at_0": "2026-01-01", "created_at_1": "00:00:00",
        "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0, "memberships-MIN_NUM_FORMS": 0,
        "memberships-MAX_NUM_FORMS": 1000,
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("networks, hostnames, message", [
    ('["not a cidr"]', "[]", "not a network"),
    ('["*"]', "[]", "not a network"),
    ('["127.0.0.0/8"]', '["*"]', "neither a CIDR nor a host name"),
    ('"127.0.0.0/8 and more"', "[]", "not a network"),
    ('[1, 2]', "[]", "list of strings"),
])
def test_the_organization_form_refuses_a_scope_the_guard_cannot_read(superuser_client, world, networks, hostnames, message):
    url = reverse("admin:orgs_organization_change", args=[world.org.pk])
    response = superuser_client.post(url, _org_form(world.org, scope_networks=networks, scope_hostnames=hostnames))
    assert response.status_code == 200 and message in response.content.decode()
    world.org.refresh_from_db()
    assert world.org.scope_networks == ["127.0.0.0/8"]


def test_a_valid_scope_change_in_the_admin_is_normalized_and_audited_with_before_and_after(superuser_client, world):
    url = reverse("admin:orgs_organization_change", args=[world.org.pk])
    response = superuser_client.post(url, _org_form(world.org, scope_networks='["127.0.10.7/24"]'))
    assert response.status_code == 302
    world.org.refresh_from_db()
    assert world.org.scope_networks == ["127.0.10.0/24"]
    event = AuditEvent.objects.get(verb="organization.admin_changed")
    assert event.org == world.org and event.actor.username == "root"
    assert event.changes["scope_networks"] == [["127.0.0.0/8"], ["127.0.10.0/24"]]


def test_tokens_cannot_be_added_in_the_admin(superuser_client, world):
    assert superuser_client.get(reverse("admin:orgs_apitoken_add")).status_code == 403
    assert superuser_client.post(reverse("admin:orgs_apitoken_add"), {"name": "x", "access": "read"}).status_code == 403
    assert ApiToken.objects.count() == 0


def test_a_tokens_organization_cannot_be_changed_and_widening_its_access_is_audited(superuser_client, world):
    token, _ = api_token_create(org=world.org, name="ci", access=ApiToken.Access.READ)
    url = reverse("admin:orgs_apitoken_change", args=[token.pk])
    response = superuser_client.post(url, {"org": world.other_org.pk, "name": "ci", "access": "read_write",
                                           "expires_at_0": "", "expires_at_1": ""})
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.org == world.org and token.access == "read_write"
    event = AuditEvent.objects.get(verb="apitoken.admin_changed")
    assert event.changes == {"access": ["read", "read_write"]} and event.org == world.org


def test_the_revoke_action_revokes_through_the_service(superuser_client, world):
    token, _ = api_token_create(org=world.org, name="ci", access=ApiToken.Access.READ)
    response = superuser_client.post(reverse("admin:orgs_apitoken_changelist"),
                                     {"action": "revoke", "_selected_action": [token.pk]})
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(verb="api_token.revoked", target_id=str(token.pk)).exists()
