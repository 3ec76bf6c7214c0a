"""A staff operator opens the feeds page from the deployment navigation and reads which feed is stale."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import PASSWORD
from scans.models import FeedState
from tests.e2e.browser import no_horizontal_scroll, overflowing, shot
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_staff_operator_reaches_the_feeds_page_and_sees_the_stale_feed(page, live_server, world):
    operator = UserFactory(username="operator", is_staff=True)
    MembershipFactory(user=operator, org=world.org, role="owner")
    now = timezone.now()
    FeedState.objects.create(feed="kev", last_attempt_at=now, last_success_at=now - timedelta(hours=3), records=1484,
                             source_date=now - timedelta(hours=15))
    FeedState.objects.create(feed="epss", last_attempt_at=now, last_success_at=now - timedelta(days=4), records=296330,
                             source_date=now - timedelta(days=5),
                             last_error="EPSS feed: HTTP 503 Service Unavailable from https://epss.empiricalsecurity.com"
                                        "/epss_scores-current.csv.gz; gave up after 5 attempts")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/o/acme/")
    page.click("nav[aria-label=Deployment] >> text=Feeds")
    page.wait_for_url(f"{live_server.url}/feeds/")
    assert page.locator("#feed-epss").inner_text().count("stale") >= 1
    assert "current" in page.locator("#feed-kev").inner_text()
    assert "never attempted" in page.locator("#feed-nvd").inner_text()
    shot(page, "feeds")
    page.set_viewport_size({"width": 390, "height": 844})
    assert no_horizontal_scroll(page), overflowing(page)
