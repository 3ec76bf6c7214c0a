"""Webhooks in a browser: an owner adds an endpoint (secret shown once), finds it paused by failures,
resumes it; the pages at desktop and phone width, under the Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import PASSWORD
from reports.models import WebhookDelivery, WebhookEndpoint
from reports.webhooks import services as webhooks
from tests.e2e.conftest import browser, page  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def log_in(page, live_server):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "acme-owner")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/o/acme/")


def check_width(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name


def test_an_owner_adds_an_endpoint_and_sees_its_secret_once(page, live_server, world):
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server)
    page.goto(f"{live_server.url}/o/acme/settings/")
    page.click("text=Webhooks")
    page.wait_for_url(f"{live_server.url}/o/acme/settings/webhooks/")
    page.fill("#id_url", "http://127.0.95.9:8080/hooks/watchpost")
    page.fill("#id_description", "SOAR intake")
    page.check("input[name=events][value='finding.new']")
    page.select_option("#id_min_severity", "critical")
    page.click("#create-webhook button[type=submit]")
    secret = page.locator("#webhook-secret").inner_text().strip()
    endpoint = WebhookEndpoint.objects.get(org=world.org)
    assert secret == endpoint.secret and endpoint.events == ["session.finished", "finding.new"]
    check_width(page, "webhooks-created-1280.png")
    page.set_viewport_size({"width": 390, "height": 844})
    check_width(page, "webhooks-created-390.png")

    page.click("text=Open the endpoint and its delivery log")
    assert secret not in page.content()


def test_a_paused_endpoint_is_resumed_from_its_page(page, live_server, world):
    endpoint, _ = webhooks.webhook_endpoint_create(org=world.org, url="http://127.0.95.9:8080/in",
                                                   events=["session.finished"], by=world.owner)
    webhooks.webhook_endpoint_pause(endpoint=endpoint, reason="5 deliveries in a row failed; the last: HTTP 503")
    WebhookDelivery.objects.create(endpoint=endpoint, event_type="session.finished", event_id="0" * 32,
                                   status=WebhookDelivery.Status.HELD)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server)
    page.goto(f"{live_server.url}/o/acme/settings/webhooks/{endpoint.pk}/")
    assert "HTTP 503" in page.locator("#webhook-paused").inner_text()
    check_width(page, "webhook-paused-390.png")

    page.click("#webhook-resume")
    page.wait_for_selector("text=1 held deliveries are on their way")
    endpoint.refresh_from_db()
    assert not endpoint.is_paused
    page.set_viewport_size({"width": 1280, "height": 900})
    check_width(page, "webhook-resumed-1280.png")
