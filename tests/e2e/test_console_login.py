"""A person logs in with a browser and reaches their organization's dashboard."""

import pytest

from tests.factories import NodeFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_owner_logs_in_and_sees_the_dashboard_then_the_members_page(page, live_server, world):
    NodeFactory(org=world.org, name="web-1")
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "acme-owner")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/o/acme/")
    assert page.locator("h1").inner_text() == "Acme"
    assert page.locator("#org-switcher").is_visible()

    page.click("text=Members")
    page.wait_for_url(f"{live_server.url}/o/acme/members/")
    assert page.locator("#members tbody tr").count() == 4


def test_a_wrong_password_keeps_the_visitor_on_the_login_page(page, live_server, world):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "acme-owner")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert page.locator(".error").inner_text().startswith("Your username and password didn't match")
