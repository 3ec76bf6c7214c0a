"""A node's connection budgets: set by owners and admins on its page and over the API, bounded, audited."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from orgs.models import AuditEvent
from tests.factories import NodeFactory

pytestmark = pytest.mark.django_db


def budgets_url(node, slug="acme"):
    return reverse("nodes:budgets", args=[slug, node.pk])


def test_an_admin_sets_a_nodes_budgets_on_its_page_and_it_is_audited(world, login):
    node = NodeFactory(org=world.org)
    response = login(world.admin).post(budgets_url(node), {"new_per_second": "20", "at_once": "4"})
    assert response.status_code == 302
    node.refresh_from_db()
    assert (node.max_new_connections_per_second, node.max_connections_at_once) == (20, 4)
    event = AuditEvent.objects.get(verb="node.budgets_changed")
    assert event.changes["max_new_connections_per_second"] == [None, 20]
    page = login(world.admin).get(reverse("nodes:detail", args=["acme", node.pk])).content
    assert b"20 a second, 4 at once" in page


def test_emptying_a_budget_removes_the_limit(world, login):
    node = NodeFactory(org=world.org, max_new_connections_per_second=20)
    login(world.owner).post(budgets_url(node), {"new_per_second": "", "at_once": ""})
    node.refresh_from_db()
    assert node.max_new_connections_per_second is None
    assert b"no limit, no limit" in login(world.owner).get(reverse("nodes:detail", args=["acme", node.pk])).content


@pytest.mark.parametrize("values, message", [
    ({"new_per_second": "0", "at_once": ""}, b"out of bounds"),
    ({"new_per_second": "1000000000", "at_once": ""}, b"out of bounds"),
    ({"new_per_second": "", "at_once": "0"}, b"out of bounds"),
    ({"new_per_second": "lots", "at_once": ""}, b"Enter a whole number"),
])
def test_a_budget_of_zero_or_of_a_billion_is_refused_and_nothing_changes(world, login, values, message):
    node = NodeFactory(org=world.org, max_new_connections_per_second=50)
    response = login(world.owner).post(budgets_url(node), values)
    assert response.status_code == 400 and message in response.content
    node.refresh_from_db()
    assert node.max_new_connections_per_second == 50
    assert not AuditEvent.objects.filter(verb="node.budgets_changed").exists()


def test_an_analyst_a_viewer_an_outsider_and_a_stranger_cannot_set_budgets(world, login, client):
    node = NodeFactory(org=world.org)
    assert login(world.analyst).post(budgets_url(node), {"new_per_second": "5"}).status_code == 403
    assert login(world.viewer).post(budgets_url(node), {"new_per_second": "5"}).status_code == 403
    assert login(world.outsider).post(budgets_url(node), {"new_per_second": "5"}).status_code == 404
    client.logout()
    assert client.post(budgets_url(node), {"new_per_second": "5"}).status_code == 302
    assert client.get(budgets_url(node)).status_code in (302, 405)
    node.refresh_from_db()
    assert node.max_new_connections_per_second is None


def _api(world, user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    client.credentials(HTTP_X_WATCHPOST_ORG=world.org.slug)
    return client


def test_the_api_shows_and_sets_budgets_for_owners_only(world):
    node = NodeFactory(org=world.org)
    owner, analyst = _api(world, world.owner), _api(world, world.analyst)
    response = owner.patch(f"/api/v1/nodes/{node.pk}/", {"max_new_connections_per_second": 20}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["max_new_connections_per_second"] == 20
    assert response.json()["max_connections_at_once"] is None
    assert analyst.patch(f"/api/v1/nodes/{node.pk}/", {"max_connections_at_once": 3}, format="json").status_code == 403
    refused = owner.patch(f"/api/v1/nodes/{node.pk}/", {"max_new_connections_per_second": 10**9}, format="json")
    assert refused.status_code == 400 and "max_new_connections_per_second" in refused.json()["errors"]
    node.refresh_from_db()
    assert (node.max_new_connections_per_second, node.max_connections_at_once) == (20, None)
