"""API test fixtures: tokens of every kind for the world's organization, and clients that send them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from orgs.models import ApiToken
from orgs.services import api_token_create


@pytest.fixture(autouse=True)
def _no_throttle(settings):
    # Throttling has its own test; elsewhere it would only make test order matter.
    settings.WATCHPOST_API_THROTTLE_RATE = "off"


@pytest.fixture
def tokens(world):
    """Raw keys: read, read_write, revoked, expired (all of acme), and other (globex's read_write)."""
    keys = {}
    _, keys["read"] = api_token_create(org=world.org, name="reader", access=ApiToken.Access.READ)
    _, keys["read_write"] = api_token_create(org=world.org, name="ci", access=ApiToken.Access.READ_WRITE)
    revoked, keys["revoked"] = api_token_create(org=world.org, name="old", access=ApiToken.Access.READ_WRITE)
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    expired, keys["expired"] = api_token_create(org=world.org, name="expired", access=ApiToken.Access.READ_WRITE,
                                                expires_at=timezone.now() + timedelta(days=1))
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    _, keys["other"] = api_token_create(org=world.other_org, name="globex", access=ApiToken.Access.READ_WRITE)
    return keys


@pytest.fixture
def api(tokens):
    """``api("read_write")``: an APIClient sending that token."""

    def _client(kind: str = "read_write") -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[kind]}")
        return client

    return _client


@pytest.fixture
def session_api(world):
    """``session_api(user)``: an APIClient logged in as a console user, CSRF enforced, naming acme."""

    def _client(user, *, csrf: bool = False) -> APIClient:
        client = APIClient(enforce_csrf_checks=csrf)
        client.force_login(user)
        client.credentials(HTTP_X_WATCHPOST_ORG=world.org.slug)
        return client

    return _client


def problem(response, status: int, code: str | None = None) -> dict:
    """Assert an RFC 9457 body with this status (and type code); return it."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["status"] == status
    if code is not None:
        assert body["type"] == f"urn:watchpost:problem:{code}", body
    return body
