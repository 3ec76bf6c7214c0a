"""The feeds page (staff) and GET /api/v1/feeds/ (any organization's token or member): each feed's state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from orgs.models import ApiToken
from orgs.services import api_token_create
from scans.models import FeedState
from tests.api.conftest import problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("operator", is_staff=True)


@pytest.fixture
def feed_rows(db):
    now = timezone.now()
    FeedState.objects.create(feed="kev", last_attempt_at=now, last_success_at=now - timedelta(hours=2), records=1484,
                             source_date=now - timedelta(hours=14))
    FeedState.objects.create(feed="epss", last_attempt_at=now, last_success_at=now - timedelta(days=5),
                             records=296330, last_error="EPSS feed: HTTP 503 Service Unavailable; gave up")


def test_staff_see_every_feed_with_its_last_success_records_and_error(client, staff, feed_rows):
    client.force_login(staff)
    content = client.get(reverse("feeds")).content.decode()
    assert 'id="feed-nvd"' in content and "never attempted" in content  # written by NVD's sync; none yet
    assert "1484" in content and "296330" in content
    assert "EPSS feed: HTTP 503 Service Unavailable; gave up" in content
    assert "EPSS feed stale: last success" in content and "current</span>" in content


def test_the_deployment_navigation_links_the_feeds_page_for_staff_only(client, staff, world):
    client.force_login(staff)
    assert f'href="{reverse("feeds")}"' in client.get(reverse("status")).content.decode()
    client.force_login(world.owner)
    dashboard = client.get(reverse("orgs:dashboard", args=[world.org.slug])).content.decode()
    assert f'href="{reverse("feeds")}"' not in dashboard


def test_members_who_are_not_staff_are_refused_the_page(client, world):
    client.force_login(world.owner)
    assert client.get(reverse("feeds")).status_code == 403


def test_anonymous_visitors_are_sent_to_login_from_the_page(client, db):
    response = client.get(reverse("feeds"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_page_refuses_post(client, staff):
    client.force_login(staff)
    assert client.post(reverse("feeds")).status_code == 405


def test_the_page_reads_the_feeds_in_one_query(client, staff, feed_rows, django_assert_max_num_queries):
    client.force_login(staff)
    with django_assert_max_num_queries(6) as captured:
        assert client.get(reverse("feeds")).status_code == 200
    assert sum("scans_feedstate" in q["sql"] for q in captured.captured_queries) == 1


# --- the API ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_throttle(settings):
    settings.WATCHPOST_API_THROTTLE_RATE = "off"


def _token_client(org, access=ApiToken.Access.READ) -> APIClient:
    _, key = api_token_create(org=org, name="feeds", access=access)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_a_read_token_of_any_organization_reads_every_feed(world, feed_rows):
    for org in (world.org, world.other_org):
        response = _token_client(org).get("/api/v1/feeds/")
        assert response.status_code == 200
        feeds = {f["feed"]: f for f in response.json()}
        assert list(feeds) == ["nvd", "kev", "epss"]
        assert feeds["epss"]["stale"] is True and feeds["epss"]["records"] == 296330
        assert feeds["epss"]["last_error"].startswith("EPSS feed: HTTP 503")
        assert feeds["kev"]["stale"] is False and 7000 <= feeds["kev"]["age_seconds"] <= 7300
        assert feeds["nvd"]["last_success_at"] is None and feeds["nvd"]["age_seconds"] is None


def test_a_member_with_a_session_reads_the_feeds_without_naming_an_organization(world, feed_rows):
    client = APIClient()
    client.force_login(world.viewer)
    assert client.get("/api/v1/feeds/").status_code == 200


def test_staff_without_an_organization_read_the_feeds(staff, feed_rows):
    client = APIClient()
    client.force_login(staff)
    assert client.get("/api/v1/feeds/").status_code == 200


def test_an_account_in_no_organization_is_refused_the_feeds(django_user_model):
    client = APIClient()
    client.force_login(django_user_model.objects.create_user("drifter"))
    body = problem(client.get("/api/v1/feeds/"), 403, "permission_denied")
    assert body["detail"] == "Feed status is for members of an organization and for staff."


def test_anonymous_callers_get_a_401_from_the_feeds_endpoint(db):
    response = APIClient().get("/api/v1/feeds/")
    problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Bearer"


def test_the_feeds_endpoint_writes_nothing(world):
    response = _token_client(world.org, ApiToken.Access.READ_WRITE).post("/api/v1/feeds/", {}, format="json")
    assert response.status_code == 405
