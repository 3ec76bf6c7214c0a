"""What every browser test does: log in through the form, look for sideways scroll, save a screenshot."""

from __future__ import annotations

from pathlib import Path

from conftest import PASSWORD

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def log_in(page, live_server, username: str = "acme-owner") -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/o/acme/")


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def overflowing(page) -> list[str]:
    """The elements sticking out to the right, for the failure message."""
    return page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('table'))
        .slice(0, 8).concat([document.documentElement]).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right) + '/' + e.scrollWidth)""")


def shot(page, name: str) -> None:
    """A full-page screenshot into artifacts/screenshots/ (the run's artifacts folder)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    file_name = name if name.endswith(".png") else f"{name}.png"
    # caret="initial": hiding the caret injects an inline style, which the CSP (rightly) blocks.
    page.screenshot(path=str(SHOTS / file_name), full_page=True, caret="initial")
