"""Headers the penetration test asked for: no-store on a person's data, Retry-After on the lockout,
and the same CSP and frame headers on the pages Django draws itself (bad host, DEBUG's 404)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from orgs.models import ApiToken
from orgs.services import api_token_create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["orgs:dashboard", "scans:finding_list", "orgs:audit_export", "orgs:tokens"])
def test_console_pages_of_a_signed_in_person_are_not_stored(world, login, name):
    response = login(world.owner).get(reverse(name, args=["acme"]))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/api/v1/nodes/", "/api/v1/findings/", "/api/v1/nodes/999999/"])
def test_api_answers_are_not_stored_errors_included(world, path):
    _, key = api_token_create(org=world.org, name="ci", access=ApiToken.Access.READ)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = client.get(path)
    assert response.status_code in (200, 404)
    assert response["Cache-Control"] == "no-store"


def test_static_files_signed_in_or_not_keep_their_own_caching(world, settings):
    settings.WHITENOISE_USE_FINDERS = settings.WHITENOISE_AUTOREFRESH = True  # served as under DEBUG
    signed_in = Client()
    signed_in.force_login(world.owner)
    for client in (Client(), signed_in):
        response = client.get("/static/css/watchpost.css")
        assert response.status_code == 200
        assert "no-store" not in response.get("Cache-Control", "")


def test_a_signed_out_request_is_not_marked(db):
    response = Client().get(reverse("orgs:dashboard", args=["acme"]))
    assert response.status_code == 302 and "Cache-Control" not in response


def test_a_view_that_chose_its_caching_keeps_it(db):
    response = Client().get("/healthz")
    assert "no-cache" in response["Cache-Control"]  # never_cache's own header, not replaced


def test_the_lockout_says_when_to_come_back(world, client, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": world.viewer.username, "password": "wrong"}, REMOTE_ADDR="127.0.0.9")
    response = client.post(reverse("login"), {"username": world.viewer.username, "password": "wrong"},
                           REMOTE_ADDR="127.0.0.9")
    assert response.status_code == 429
    assert response["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME * 3600))


def _same_headers_as_a_page(response, page):
    assert response["Content-Security-Policy"] == page["Content-Security-Policy"]
    assert response["X-Frame-Options"] == page["X-Frame-Options"] == "DENY"


def test_the_bad_host_page_carries_the_policy_and_frame_headers(db):
    page = Client().get(reverse("login"))
    response = Client().get(reverse("login"), HTTP_HOST="evil.invalid")
    assert response.status_code == 400
    _same_headers_as_a_page(response, page)


def test_the_debug_404_page_carries_the_policy_and_frame_headers(db, settings):
    page = Client().get(reverse("login"))
    settings.DEBUG = True
    response = Client().get("/no-such-page/")
    assert response.status_code == 404 and b"Page not found" in response.content
    _same_headers_as_a_page(response, page)
