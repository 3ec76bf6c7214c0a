"""Per-token throttling in the cache: over the rate → 429 with Retry-After, as a problem."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.api.conftest import problem


@pytest.fixture
def three_a_minute(settings):
    settings.WATCHPOST_API_THROTTLE_RATE = "3/min"
    # The configured cache (Redis in CI), under a prefix of this test's own: no count carried
    # over from another test, and nothing flushed that others (the broker) keep there.
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"throttle-test-{uuid.uuid4().hex}"}}


def test_the_fourth_request_in_a_minute_is_429_with_retry_after(api, three_a_minute):
    client = api("read")
    for _ in range(3):
        assert client.get("/api/v1/organization/").status_code == 200

    response = client.get("/api/v1/organization/")

    body = problem(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert body["retry_after"] == int(response["Retry-After"])


def test_each_token_has_its_own_budget(api, three_a_minute):
    for _ in range(4):
        api("read").get("/api/v1/organization/")

    assert api("read_write").get("/api/v1/organization/").status_code == 200


def test_the_count_lives_in_the_configured_cache(api, three_a_minute):
    from django.core.cache import cache

    from orgs.models import ApiToken

    api("read").get("/api/v1/organization/")

    token = ApiToken.objects.get(name="reader")
    window = int(time.time() // 60) * 60
    counted = cache.get(f"api-throttle:token:{token.pk}:60:{window}") or cache.get(
        f"api-throttle:token:{token.pk}:60:{window - 60}")  # the minute may have turned meanwhile
    assert counted == 1


def test_an_unreachable_cache_lets_requests_through(api, settings):
    # A Redis nobody listens on (port 1 on loopback): the API keeps answering, unthrottled.
    settings.WATCHPOST_API_THROTTLE_RATE = "3/min"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}
    client = api("read")
    assert [client.get("/api/v1/organization/").status_code for _ in range(5)] == [200] * 5
