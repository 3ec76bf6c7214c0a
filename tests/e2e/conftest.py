"""Browser tests: Playwright drives Debian's Chromium against a live server.

Skipped, with the reason, where no Chromium is installed (`.ci/run` installs it).
"""

import os
import shutil

import pytest

# Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
# still synchronous, which Django must be told is safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None:
        pytest.skip("browser tests need Chromium (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
