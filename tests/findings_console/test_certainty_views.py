"""The finding page's certainty card: confirm or dismiss a potential finding; the list's certainty filter."""

from __future__ import annotations

import pytest
from django.urls import reverse

from scans.models import Finding
from tests.factories import FindingFactory, NodeFactory

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"scans:{name}", args=["acme", *args])


@pytest.fixture
def potential(world):
    return FindingFactory(node=NodeFactory(org=world.org, name="cache"), severity="critical",
                          title="CVE-2022-0543 in Redis 5.0.7", match_confidence=0.3,
                          match_reason="redis is listed without a version; only when running on debian_linux 9.0, "
                                       "which was not observed", evidence={"match_basis": "condition"})


def test_the_page_of_a_potential_finding_says_how_sure_and_why_and_offers_confirm_and_dismiss(world, login,
                                                                                               potential):
    page = login(world.analyst).get(url("finding_detail", potential.pk)).content.decode()

    assert "Potential" in page and "30%" in page and "a condition that was not observed" in page
    assert "which was not observed" in page
    assert 'value="confirm"' in page and 'value="dismiss"' in page


def test_an_analyst_confirms_with_htmx_and_gets_the_card_back(world, login, potential):
    response = login(world.analyst).post(url("finding_certainty", potential.pk),
                                         {"action": "confirm", "version": potential.version}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="certainty"' in body and "Confirmed" in body and 'value="confirm"' not in body
    # The heading's "Potential" mark goes out of band.
    assert 'id="finding-certainty-badge" hx-swap-oob="true"></span>' in body
    assert Finding.objects.get(pk=potential.pk).confirmed_at is not None


def test_an_analyst_dismisses_without_javascript_and_is_sent_back_to_the_page(world, login, potential):
    response = login(world.analyst).post(url("finding_certainty", potential.pk),
                                         {"action": "dismiss", "reason": "Not Debian's package",
                                          "version": potential.version})

    assert response.status_code == 302 and response.url == url("finding_detail", potential.pk)
    assert Finding.objects.get(pk=potential.pk).status == "false_positive"


def test_a_dismissal_without_a_reason_says_so_and_changes_nothing(world, login, potential):
    response = login(world.analyst).post(url("finding_certainty", potential.pk), {"action": "dismiss"},
                                         HTTP_HX_REQUEST="true")

    assert "Say why it is a false positive." in response.content.decode()
    assert Finding.objects.get(pk=potential.pk).status == "open"


def test_a_confirmation_from_a_stale_page_shows_the_current_state(world, login, potential):
    Finding.objects.filter(pk=potential.pk).update(version=potential.version + 1)

    response = login(world.analyst).post(url("finding_certainty", potential.pk),
                                         {"action": "confirm", "version": potential.version})

    assert response.status_code == 409 and "Someone changed this finding" in response.content.decode()
    assert Finding.objects.get(pk=potential.pk).confirmed_at is None


def test_a_viewer_cannot_confirm(world, login, potential):
    client = login(world.viewer)
    assert 'value="confirm"' not in client.get(url("finding_detail", potential.pk)).content.decode()
    assert client.post(url("finding_certainty", potential.pk), {"action": "confirm"}).status_code == 403
    assert Finding.objects.get(pk=potential.pk).confirmed_at is None


def test_another_organizations_member_gets_404(world, login, potential):
    response = login(world.outsider).post(url("finding_certainty", potential.pk), {"action": "confirm"})
    assert response.status_code == 404
    response = login(world.outsider).post(
        reverse("scans:finding_certainty", args=["globex", potential.pk]), {"action": "confirm"})
    assert response.status_code == 404


def test_an_anonymous_visitor_is_sent_to_log_in(client, world, potential):
    response = client.post(url("finding_certainty", potential.pk), {"action": "confirm"})
    assert response.status_code == 302 and "login" in response.url


def test_confirm_is_post_only(world, login, potential):
    assert login(world.analyst).get(url("finding_certainty", potential.pk)).status_code == 405


def test_the_list_marks_potential_findings_and_filters_by_certainty(world, login, potential):
    sure = FindingFactory(node=potential.node, severity="high", title="Redis without auth", match_confidence=1.0)
    client = login(world.analyst)

    every = client.get(url("finding_list")).content.decode()
    assert "certainty-potential" in every and sure.title in every and potential.title in every
    only_potential = client.get(url("finding_list"), {"certainty": "potential"}).content.decode()
    assert potential.title in only_potential and sure.title not in only_potential
    only_certain = client.get(url("finding_list"), {"certainty": "certain"}).content.decode()
    assert sure.title in only_certain and potential.title not in only_certain


def test_the_node_page_marks_a_potential_finding(world, login, potential):
    page = login(world.viewer).get(reverse("nodes:detail", args=["acme", potential.node_id])).content.decode()
    assert potential.title in page and "certainty-potential" in page
