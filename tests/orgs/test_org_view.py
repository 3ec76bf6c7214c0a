"""org_view: one role check per view, or one per method where a page shows to all and changes for some."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from orgs.access import membership_for
from orgs.console import org_view


def test_a_view_with_a_method_that_has_no_access_helper_is_refused_when_declared():
    with pytest.raises(ImproperlyConfigured, match="no access helper for POST"):
        org_view("GET", "POST", access={"GET": membership_for})


@pytest.mark.django_db
def test_a_viewer_sees_the_zones_page_that_only_owners_and_admins_change(client, world):
    client.force_login(world.viewer)

    assert client.get(f"/o/{world.org.slug}/zones/").status_code == 200
    assert client.post(f"/o/{world.org.slug}/zones/", {"name": "X", "networks": "127.0.5.0/24"}).status_code == 403

