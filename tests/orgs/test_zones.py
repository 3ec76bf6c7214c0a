"""Zones: their rules (inside the scope, no two of equal specificity), node placement, and their pages and API."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from nodes.models import Node
from nodes.placement import AUTOMATIC, node_zone_set
from nodes.services import node_create, node_update
from orgs.models import AuditEvent, Zone
from orgs.services import api_token_create
from orgs.zones import zone_create, zone_delete, zone_update
from scans.models import WorkerHeartbeat


@pytest.fixture
def branch(world):
    return zone_create(org=world.org, name="Branch", networks=["127.0.1.0/24"], by=world.owner)


def zone_of(org, address):
    return Node.objects.get(org=org, address=address).zone_id


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("networks, message", [
    (["10.0.0.0/8"], "10.0.0.0/8 is outside the organization's scope"),
    (["127.0.0.0/7"], "outside the organization's scope"),
    (["not-a-network"], "'not-a-network' is not a network"),
    ([], "at least one network or host name"),
])
def test_a_zone_network_outside_the_scope_or_malformed_is_refused_and_nothing_is_written(world, networks, message):
    with pytest.raises(ValidationError, match=message):
        zone_create(org=world.org, name="Bad", networks=networks)
    assert not Zone.objects.exists()


def test_the_same_network_in_two_zones_is_refused_but_a_more_specific_one_inside_is_allowed(world, branch):
    with pytest.raises(ValidationError, match="127.0.1.0/24 is already a network of zone 'Branch'"):
        zone_create(org=world.org, name="Twin", networks=["127.0.1.0/24"])
    with pytest.raises(ValidationError, match="already a network of zone"):
        zone_create(org=world.org, name="Twin", networks=["127.0.1.7/24"])  # the same network, spelled otherwise

    inner = zone_create(org=world.org, name="Rack", networks=["127.0.1.128/25"])

    assert inner.networks == ["127.0.1.128/25"]


def test_a_zone_host_name_outside_the_organization_s_names_is_refused(world):
    world.org.scope_hostnames = ["*.lab.internal"]
    world.org.save(update_fields=["scope_hostnames"])

    zone = zone_create(org=world.org, name="Lab", hostnames=["*.east.lab.internal", "db.lab.internal"])
    with pytest.raises(ValidationError, match="outside the organization's declared host names"):
        zone_create(org=world.org, name="Elsewhere", hostnames=["db.example.com"])

    assert zone.hostnames == ["*.east.lab.internal", "db.lab.internal"]


def test_two_zones_of_one_name_are_refused(world, branch):
    with pytest.raises(ValidationError, match="already has a zone named 'Branch'"):
        zone_create(org=world.org, name="Branch", networks=["127.0.2.0/24"])


# --- placement ---------------------------------------------------------------------------------


def test_a_new_node_goes_to_the_zone_whose_network_holds_it_most_specifically(world, branch):
    rack = zone_create(org=world.org, name="Rack", networks=["127.0.1.128/25"])

    node_create(org=world.org, address="127.0.1.200")
    node_create(org=world.org, address="127.0.1.5")
    node_create(org=world.org, address="127.0.9.5")

    assert zone_of(world.org, "127.0.1.200") == rack.pk
    assert zone_of(world.org, "127.0.1.5") == branch.pk
    assert zone_of(world.org, "127.0.9.5") is None


def test_nodes_follow_their_zones_when_a_zone_is_added_changed_or_deleted(world):
    for address in ("127.0.1.5", "127.0.2.5"):
        node_create(org=world.org, address=address)
    zone = zone_create(org=world.org, name="Branch", networks=["127.0.1.0/24"])
    assert zone_of(world.org, "127.0.1.5") == zone.pk

    zone_update(zone=zone, networks=["127.0.2.0/24"])
    assert (zone_of(world.org, "127.0.1.5"), zone_of(world.org, "127.0.2.5")) == (None, zone.pk)

    zone_delete(zone=zone)
    assert zone_of(world.org, "127.0.2.5") is None
    assert AuditEvent.objects.filter(verb__in=["zone.created", "zone.updated", "zone.deleted"]).count() == 3


def test_a_node_whose_address_changes_moves_to_the_zone_of_its_new_address(world, branch):
    node = node_create(org=world.org, address="127.0.9.5")

    node = node_update(node=node, address="127.0.1.9")

    assert node.zone_id == branch.pk


def test_a_node_chosen_by_hand_stays_pinned_until_given_back_to_its_address(world, branch):
    zone_create(org=world.org, name="Rack", networks=["127.0.1.128/25"])
    node = node_create(org=world.org, address="127.0.1.200")

    node = node_zone_set(node=node, zone=branch, by=world.owner)
    zone_create(org=world.org, name="Shelf", networks=["127.0.1.192/26"])  # even more specific
    assert zone_of(world.org, "127.0.1.200") == branch.pk

    node = node_zone_set(node=node, zone=AUTOMATIC)
    assert node.zone.name == "Shelf" and not node.zone_pinned


def test_a_node_cannot_be_pinned_to_a_zone_that_does_not_hold_it(world, branch):
    node = node_create(org=world.org, address="127.0.9.5")

    with pytest.raises(ValidationError, match="does not hold 127.0.9.5"):
        node_zone_set(node=node, zone=branch)

    node.refresh_from_db()
    assert node.zone_id is None and not node.zone_pinned


def test_a_pin_its_zone_no_longer_holds_is_released(world, branch):
    node = node_create(org=world.org, address="127.0.1.5")
    node_zone_set(node=node, zone=branch)

    zone_update(zone=branch, networks=["127.0.2.0/24"])

    node.refresh_from_db()
    assert node.zone_id is None and not node.zone_pinned


# --- console -----------------------------------------------------------------------------------


def test_every_member_reads_the_zones_and_their_workers(client, world, branch):
    WorkerHeartbeat.objects.create(hostname="branch-1@vm", zone=branch, queues=[branch.queue])
    node_create(org=world.org, address="127.0.1.5")
    client.force_login(world.viewer)

    listing = client.get(f"/o/{world.org.slug}/zones/")
    page = client.get(f"/o/{world.org.slug}/zones/{branch.pk}/")

    assert listing.status_code == 200 and "Branch" in listing.content.decode()
    assert "Add a zone" not in listing.content.decode()
    body = page.content.decode()
    assert page.status_code == 200 and "branch-1@vm" in body and f"WATCHPOST_ZONE={branch.pk}" in body
    assert ">1</a>" in body  # one node


def test_an_owner_adds_a_zone_from_the_console(client, world):
    client.force_login(world.owner)

    response = client.post(f"/o/{world.org.slug}/zones/", {"name": "Branch", "networks": "127.0.1.0/24\n127.0.3.0/24"})

    zone = Zone.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/o/{world.org.slug}/zones/{zone.pk}/"
    assert zone.networks == ["127.0.1.0/24", "127.0.3.0/24"]


def test_a_console_zone_outside_the_scope_is_refused_with_the_reason(client, world):
    client.force_login(world.admin)

    response = client.post(f"/o/{world.org.slug}/zones/", {"name": "Far", "networks": "10.0.0.0/8"})

    assert response.status_code == 400
    assert "10.0.0.0/8 is outside the organization&#x27;s scope" in response.content.decode()
    assert not Zone.objects.exists()


def test_analysts_and_viewers_cannot_change_zones(client, world, branch):
    for user in (world.analyst, world.viewer):
        client.force_login(user)
        assert client.post(f"/o/{world.org.slug}/zones/", {"name": "X", "networks": "127.0.5.0/24"}).status_code == 403
        assert client.post(f"/o/{world.org.slug}/zones/{branch.pk}/", {"name": "X"}).status_code == 403
        assert client.post(f"/o/{world.org.slug}/zones/{branch.pk}/delete/").status_code == 403
    assert list(Zone.objects.values_list("name", flat=True)) == ["Branch"]


def test_another_organization_s_zone_is_not_found_and_anonymous_is_sent_to_log_in(client, world):
    world.other_org.scope_networks = ["127.0.0.0/8"]
    world.other_org.save(update_fields=["scope_networks"])
    theirs = zone_create(org=world.other_org, name="Theirs", networks=["127.0.7.0/24"])

    assert client.get(f"/o/{world.org.slug}/zones/").status_code == 302
    client.force_login(world.owner)
    assert client.get(f"/o/{world.org.slug}/zones/{theirs.pk}/").status_code == 404
    assert client.post(f"/o/{world.org.slug}/zones/{theirs.pk}/delete/").status_code == 404
    assert Zone.objects.filter(pk=theirs.pk).exists()


def test_an_owner_deletes_a_zone_and_its_nodes_return_to_the_default_zone(client, world, branch):
    node_create(org=world.org, address="127.0.1.5")
    client.force_login(world.owner)

    response = client.post(f"/o/{world.org.slug}/zones/{branch.pk}/delete/")

    assert response.status_code == 302 and not Zone.objects.exists()
    assert zone_of(world.org, "127.0.1.5") is None


def test_the_node_list_filters_by_zone_and_shows_each_node_s_zone(client, world, branch):
    node_create(org=world.org, address="127.0.1.5")
    node_create(org=world.org, address="127.0.9.5")
    client.force_login(world.viewer)

    in_zone = client.get(f"/o/{world.org.slug}/nodes/?zone={branch.pk}").content.decode()
    default = client.get(f"/o/{world.org.slug}/nodes/?zone=default").content.decode()

    assert "127.0.1.5" in in_zone and "127.0.9.5" not in in_zone and "zone <a" in in_zone
    assert "127.0.9.5" in default and "127.0.1.5" not in default


def test_a_writer_pins_a_node_to_a_zone_from_its_page_and_a_viewer_cannot(client, world, branch):
    node = node_create(org=world.org, address="127.0.1.5")
    client.force_login(world.viewer)
    assert client.post(f"/o/{world.org.slug}/nodes/{node.pk}/zone/", {"zone": "default"}).status_code == 403

    client.force_login(world.analyst)
    client.post(f"/o/{world.org.slug}/nodes/{node.pk}/zone/", {"zone": "default"})
    node.refresh_from_db()
    assert node.zone_id is None and node.zone_pinned
    page = client.get(f"/o/{world.org.slug}/nodes/{node.pk}/").content.decode()
    assert "chosen by hand" in page


# --- API ---------------------------------------------------------------------------------------


@pytest.fixture
def owner_api(world):
    client = APIClient()
    client.force_login(world.owner)
    client.credentials(HTTP_X_WATCHPOST_ORG=world.org.slug)
    return client


def test_the_api_adds_lists_changes_and_deletes_zones(owner_api, world, settings):
    settings.WATCHPOST_API_THROTTLE_RATE = "off"
    node_create(org=world.org, address="127.0.2.5")

    created = owner_api.post("/api/v1/zones/", {"name": "B", "networks": ["127.0.2.0/24"]}, format="json")
    assert created.status_code == 201, created.content
    zone_id = created.json()["id"]
    assert created.json() | {"created_at": None} == {
        "id": zone_id, "name": "B", "networks": ["127.0.2.0/24"], "hostnames": [], "queue": f"zone-{zone_id}",
        "nodes_count": 1, "workers_alive": 0, "created_at": None}

    assert owner_api.get("/api/v1/zones/").json()["count"] == 1
    changed = owner_api.patch(f"/api/v1/zones/{zone_id}/", {"networks": ["127.0.3.0/24"]}, format="json")
    assert changed.status_code == 200 and changed.json()["nodes_count"] == 0
    assert owner_api.delete(f"/api/v1/zones/{zone_id}/").status_code == 204
    assert not Zone.objects.exists()


def test_the_api_refuses_a_zone_outside_the_scope_or_overlapping_with_a_400(owner_api, world, branch, settings):
    settings.WATCHPOST_API_THROTTLE_RATE = "off"

    outside = owner_api.post("/api/v1/zones/", {"name": "Far", "networks": ["10.0.0.0/8"]}, format="json")
    overlap = owner_api.post("/api/v1/zones/", {"name": "Twin", "networks": ["127.0.1.0/24"]}, format="json")

    assert outside.status_code == 400 and "outside the organization's scope" in outside.content.decode()
    assert overlap.status_code == 400 and "already a network of zone 'Branch'" in overlap.content.decode()
    assert Zone.objects.count() == 1


def test_tokens_read_zones_but_only_owners_and_admins_change_them(world, branch, settings):
    settings.WATCHPOST_API_THROTTLE_RATE = "off"
    _, secret = api_token_create(org=world.org, name="ci", access="read_write")
    token = APIClient()
    token.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    viewer = APIClient()
    viewer.force_login(world.viewer)

    assert token.get("/api/v1/zones/").json()["results"][0]["name"] == "Branch"
    assert token.post("/api/v1/zones/", {"name": "X", "networks": ["127.0.5.0/24"]}, format="json").status_code == 403
    assert viewer.delete(f"/api/v1/zones/{branch.pk}/", HTTP_X_WATCHPOST_ORG=world.org.slug).status_code == 403
    assert APIClient().get("/api/v1/zones/").status_code == 401


def test_the_api_does_not_reveal_another_organization_s_zone(owner_api, world, settings):
    settings.WATCHPOST_API_THROTTLE_RATE = "off"
    world.other_org.scope_networks = ["127.0.0.0/8"]
    world.other_org.save(update_fields=["scope_networks"])
    theirs = zone_create(org=world.other_org, name="Theirs", networks=["127.0.7.0/24"])

    assert owner_api.get(f"/api/v1/zones/{theirs.pk}/").status_code == 404
    assert owner_api.delete(f"/api/v1/zones/{theirs.pk}/").status_code == 404
