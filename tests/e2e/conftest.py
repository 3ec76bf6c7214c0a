"""Browser tests: Playwright drives Debian's Chromium against a live server.

Skipped, with the reason, where no Chromium is installed (`.ci/run` installs it).
"""

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """One browser per module, stopped at its end: Playwright's sync API keeps an event loop
    running in this thread while it lives, which would break later tests' asyncio.run()."""
    if CHROMIUM is None:
        pytest.skip("browser tests need Chromium (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
    # While that loop runs, the test's own (synchronous) ORM calls must be allowed.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    # The console runs under a strict Content-Security-Policy: a violation (an inline script or
    # style, a CDN) shows only in the browser console, so every browser test fails on one.
    violations = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text else None)
    page.on("pageerror", lambda error: violations.append(f"page error: {error}"))
    yield page
    context.close()
    assert violations == [], f"the browser reported CSP violations or script errors: {violations}"
