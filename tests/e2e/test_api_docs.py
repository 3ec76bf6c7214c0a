"""The API's documentation pages in a real browser: all from this origin, nothing blocked, linked from the console."""

from __future__ import annotations

import pytest

from tests.e2e.browser import SHOTS, log_in

pytestmark = pytest.mark.e2e


def first_screen(page, name: str) -> None:
    """The first 1280 px wide screen (a whole Redoc page is some 46,000 px tall)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), caret="initial")


def watch_requests(page, live_server) -> tuple[list[str], list[str]]:
    """(requests to another origin, requests that failed), filled while the page loads."""
    foreign, failed = [], []
    page.on("request", lambda request: foreign.append(request.url)
            if not request.url.startswith((live_server.url, "blob:", "data:")) else None)
    page.on("requestfailed", lambda request: failed.append(f"{request.url} {request.failure}"))
    return foreign, failed


def test_swagger_ui_renders_the_schema_from_this_origin_alone(page, live_server, world):
    foreign, failed = watch_requests(page, live_server)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"{live_server.url}/api/v1/schema/swagger/")

    page.locator(".swagger-ui .info .title").filter(has_text="Watchpost API").wait_for()
    page.locator(".opblock-tag", has_text="nodes").first.wait_for()
    page.wait_for_load_state("networkidle")
    first_screen(page, "api-docs-swagger-1280")
    assert foreign == [] and failed == []


def test_redoc_renders_the_schema_from_this_origin_alone(page, live_server, world):
    foreign, failed = watch_requests(page, live_server)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"{live_server.url}/api/v1/schema/redoc/")

    page.get_by_role("heading", name="Watchpost API").first.wait_for()
    page.get_by_role("heading", name="Add many nodes").first.wait_for()
    page.wait_for_load_state("networkidle")
    first_screen(page, "api-docs-redoc-1280")
    assert foreign == [] and failed == []


def test_the_console_links_to_the_api_documentation(page, live_server, world):
    log_in(page, live_server, "acme-viewer")

    page.get_by_role("link", name="API documentation").click()

    page.wait_for_url(f"{live_server.url}/api/v1/schema/redoc/")
    page.get_by_role("heading", name="Watchpost API").first.wait_for()
