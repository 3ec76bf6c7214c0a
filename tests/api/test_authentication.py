"""Bearer tokens: last use recorded at most once a minute; a malformed header is a 401 problem."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from orgs.models import ApiToken
from tests.api.conftest import problem


def test_the_first_use_is_recorded(api, world):
    api("read").get("/api/v1/organization/")
    assert ApiToken.objects.get(name="reader").last_used_at is not None


def test_last_use_is_written_at_most_once_a_minute(api, world):
    recent = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(name="reader").update(last_used_at=recent)

    api("read").get("/api/v1/organization/")
    assert ApiToken.objects.get(name="reader").last_used_at == recent

    ApiToken.objects.filter(name="reader").update(last_used_at=recent - timedelta(minutes=1))
    api("read").get("/api/v1/organization/")
    assert ApiToken.objects.get(name="reader").last_used_at > recent


def test_an_unknown_token_is_a_401_problem(world):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer wp_not-a-real-token")
    problem(client.get("/api/v1/organization/"), 401, "authentication_failed")


def test_a_malformed_authorization_header_is_a_401_problem(world):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer two parts")
    problem(client.get("/api/v1/organization/"), 401, "authentication_failed")
