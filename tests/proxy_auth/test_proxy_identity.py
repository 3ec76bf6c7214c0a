"""Signed proxy identity: a gateway's signed user header logs the request in; anything else is refused and audited."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from orgs.models import AuditEvent
from orgs.proxy_auth import proxy_signature

pytestmark = pytest.mark.django_db

SECRET = "gateway-shared-secret-for-tests"


@pytest.fixture
def proxy_on(settings):
    settings.WATCHPOST_PROXY_AUTH_SECRET = SECRET
    return settings


def signed(user: str, *, timestamp: str | None = None, secret: str = SECRET) -> dict[str, str]:
    timestamp = timestamp or f"{time.time():.6f}"
    return {"HTTP_X_WATCHPOST_USER": user, "HTTP_X_WATCHPOST_TIMESTAMP": timestamp,
            "HTTP_X_WATCHPOST_SIGNATURE": proxy_signature(secret=secret, user=user, timestamp=timestamp)}


def dashboard():
    return reverse("orgs:dashboard", args=["acme"])


def refusals():
    return list(AuditEvent.objects.filter(verb="proxy_auth.refused").values_list("changes__reason", flat=True))


def test_a_validly_signed_user_sees_the_console_without_logging_in(world, client, proxy_on):
    response = client.get(dashboard(), **signed(world.viewer.username))
    assert response.status_code == 200 and b"Acme" in response.content
    assert refusals() == []


def test_the_signed_user_replaces_a_logged_in_session(world, client, proxy_on):
    client.force_login(world.outsider)
    assert client.get(dashboard(), **signed(world.viewer.username)).status_code == 200
    assert client.get(dashboard()).status_code == 404  # the session's own user, without the headers


def test_a_request_without_the_headers_goes_on_as_usual(world, client, proxy_on):
    response = client.get(dashboard())
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_it_is_off_by_default_and_ignores_the_headers(world, client, settings):
    settings.WATCHPOST_PROXY_AUTH_SECRET = ""
    response = client.get(dashboard(), **signed(world.viewer.username))
    assert response.status_code == 302 and refusals() == []


def test_an_unsigned_user_header_is_refused_and_audited(world, client, proxy_on):
    response = client.get(dashboard(), HTTP_X_WATCHPOST_USER=world.owner.username)
    assert response.status_code == 403
    assert refusals() == ["unsigned"]
    event = AuditEvent.objects.get(verb="proxy_auth.refused")
    assert event.changes["user"] == world.owner.username and event.ip == "127.0.0.1"


def test_a_bad_signature_is_refused_and_audited(world, client, proxy_on):
    headers = signed(world.owner.username, secret="not-the-gateway")
    assert client.get(dashboard(), **headers).status_code == 403
    assert refusals() == ["bad signature"]


def test_a_signature_for_another_user_is_refused(world, client, proxy_on):
    headers = {**signed(world.viewer.username), "HTTP_X_WATCHPOST_USER": world.owner.username}
    assert client.get(dashboard(), **headers).status_code == 403
    assert refusals() == ["bad signature"]


def test_a_stale_signature_is_refused_and_audited(world, client, proxy_on):
    headers = signed(world.viewer.username, timestamp=f"{time.time() - 61:.6f}")
    assert client.get(dashboard(), **headers).status_code == 403
    [reason] = refusals()
    assert reason.startswith("stale")


def test_a_signature_from_the_future_is_refused_and_audited(world, client, proxy_on):
    headers = signed(world.viewer.username, timestamp=f"{time.time() + 30:.6f}")
    assert client.get(dashboard(), **headers).status_code == 403
    [reason] = refusals()
    assert reason.startswith("from the future")


def test_a_small_clock_skew_is_tolerated(world, client, proxy_on):
    headers = signed(world.viewer.username, timestamp=f"{time.time() + 2:.6f}")
    assert client.get(dashboard(), **headers).status_code == 200


def test_a_replayed_signature_is_refused_and_audited(world, client, proxy_on):
    headers = signed(world.viewer.username)
    assert client.get(dashboard(), **headers).status_code == 200
    assert client.get(dashboard(), **headers).status_code == 403
    assert refusals() == ["replayed"]


def test_an_unknown_or_inactive_user_is_refused(world, client, proxy_on):
    world.analyst.is_active = False
    world.analyst.save(update_fields=["is_active"])
    assert client.get(dashboard(), **signed("nobody")).status_code == 403
    assert client.get(dashboard(), **signed(world.analyst.username)).status_code == 403
    assert refusals() == ["unknown or inactive user", "unknown or inactive user"]


def test_a_malformed_timestamp_is_refused(world, client, proxy_on):
    headers = signed(world.viewer.username, timestamp="yesterday")
    assert client.get(dashboard(), **headers).status_code == 403
    assert refusals() == ["malformed timestamp"]



def test_a_signed_user_posts_a_console_form_with_its_csrf_token_and_not_without(world, proxy_on):
    import re

    from django.test import Client

    from reports.models import WebhookEndpoint

    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("orgs:webhooks", args=["acme"]), **signed(world.owner.username))
    assert page.status_code == 200
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()
    form = {"url": "http://127.0.95.1/in", "events": ["session.finished"], "min_severity": "high"}
    url = reverse("orgs:webhook_create", args=["acme"])
    assert client.post(url, form, **signed(world.owner.username)).status_code == 403
    assert client.post(url, {**form, "csrfmiddlewaretoken": token}, **signed(world.owner.username)).status_code == 201
    assert WebhookEndpoint.objects.get().created_by == world.owner


def test_a_signed_viewer_is_still_only_a_viewer(world, client, proxy_on):
    assert client.get(reverse("orgs:webhooks", args=["acme"]), **signed(world.viewer.username)).status_code == 403
