"""A zone's own scan windows and budget: the form the zone's page includes, for owners and admins."""

from __future__ import annotations

import pytest
from django.urls import reverse

from orgs.models import AuditEvent, Zone

pytestmark = pytest.mark.django_db


@pytest.fixture
def zone(world):
    return Zone.objects.create(org=world.org, name="branch", networks=["127.0.80.0/24"])


def url(zone, slug="acme"):
    return reverse("orgs:zone_windows_budget", args=[slug, zone.pk])


def test_an_admin_sets_a_zones_windows_and_budget_and_it_is_audited(world, login, zone):
    response = login(world.admin).post(url(zone), {"scan_windows": "Sat-Sun all day",
                                                   "max_new_connections_per_second": "500"})
    assert response.status_code == 302 and response.url == reverse("orgs:zone", args=["acme", zone.pk])
    zone.refresh_from_db()
    assert zone.scan_windows == [{"days": [5, 6], "start": "00:00", "end": "24:00"}]
    assert zone.max_new_connections_per_second == 500
    assert AuditEvent.objects.get(verb="zone.windows_budget_changed").changes["max_new_connections_per_second"] == [
        None, 500]
    assert b"Sat-Sun all day" in login(world.admin).get(url(zone)).content


@pytest.mark.parametrize("values, message", [
    ({"scan_windows": "Mon 10:00-10:00", "max_new_connections_per_second": ""}, b"the end equals the start"),
    ({"scan_windows": "", "max_new_connections_per_second": "0"}, b"out of bounds"),
    ({"scan_windows": "", "max_new_connections_per_second": "1000000000"}, b"out of bounds"),
])
def test_a_bad_window_or_budget_is_refused_and_nothing_changes(world, login, zone, values, message):
    response = login(world.owner).post(url(zone), values)
    assert response.status_code == 400 and message in response.content
    zone.refresh_from_db()
    assert zone.scan_windows == [] and zone.max_new_connections_per_second is None
    assert not AuditEvent.objects.filter(verb="zone.windows_budget_changed").exists()


def test_analysts_viewers_outsiders_and_strangers_are_kept_out(world, login, client, zone):
    data = {"scan_windows": "", "max_new_connections_per_second": "5"}
    assert login(world.analyst).post(url(zone), data).status_code == 403
    assert login(world.viewer).get(url(zone)).status_code == 403
    assert login(world.outsider).post(url(zone), data).status_code == 404
    assert login(world.outsider).post(url(zone, slug="globex"), data).status_code == 404  # not globex's zone
    client.logout()
    assert client.post(url(zone), data).status_code == 302
    zone.refresh_from_db()
    assert zone.max_new_connections_per_second is None


def test_the_zones_page_holds_the_windows_and_budget_form_for_its_managers_only(world, login, zone):
    page = reverse("orgs:zone", args=["acme", zone.pk])
    assert url(zone).encode() in login(world.admin).get(page).content
    assert url(zone).encode() not in login(world.analyst).get(page).content
