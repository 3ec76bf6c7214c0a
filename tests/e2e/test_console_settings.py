"""Settings in a browser: an API token created (secret shown once) and revoked; a member invited and accepting
in a second browser; the settings page at phone width."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from conftest import PASSWORD
from orgs.models import ApiToken, Membership, Role, secret_digest
from tests.e2e.browser import log_in, no_horizontal_scroll, overflowing, shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_owner_creates_an_api_token_sees_its_secret_once_and_revokes_it(page, live_server, world):
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server)
    page.click("nav.orgnav >> text=Settings")
    page.click("text=API tokens")
    page.wait_for_url(f"{live_server.url}/o/acme/settings/tokens/")
    page.fill("#id_name", "ci-pipeline")
    page.select_option("#id_access", "read_write")
    page.fill("#id_expires_in_days", "30")
    page.click("#create-token button[type=submit]")
    secret = page.locator("#token-secret").inner_text().strip()
    token = ApiToken.objects.get(org=world.org, name="ci-pipeline")
    assert token.key_hash == secret_digest(secret)
    assert secret not in page.url
    shot(page, "tokens-created-1280.png")

    page.set_viewport_size({"width": 390, "height": 844})
    assert no_horizontal_scroll(page), overflowing(page)
    shot(page, "tokens-created-390.png")

    # Shown once: the list page never shows it again.
    page.goto(f"{live_server.url}/o/acme/settings/tokens/")
    assert secret not in page.content() and token.prefix in page.content()

    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#token-{token.pk} button.danger")
    page.get_by_text("revoked.").first.wait_for()
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert page.locator(f"#token-{token.pk}").get_by_text("revoked").is_visible()
    assert no_horizontal_scroll(page), overflowing(page)
    shot(page, "tokens-revoked-390.png")


def test_an_admin_invites_a_member_who_signs_up_and_joins_in_a_second_browser(page, browser, live_server, world):
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server, "acme-admin")
    page.goto(f"{live_server.url}/o/acme/members/")
    page.fill("#id_email", "new.analyst@example.test")
    page.select_option("#id_role", "analyst")
    page.click("#invite button[type=submit]")
    page.get_by_text("Invitation sent to new.analyst@example.test").wait_for()
    assert page.locator("#invitations").get_by_text("new.analyst@example.test").is_visible()
    shot(page, "members-invited-1280.png")

    link = re.search(r"http://\S+/invitations/\S+/", mail.outbox[-1].body).group(0)
    invitee = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        other = invitee.new_page()
        other.set_default_timeout(15_000)
        other.goto(link)
        assert "Join Acme" in other.locator("h1").inner_text()
        assert no_horizontal_scroll(other), overflowing(other)
        shot(other, "invitation-390.png")
        other.click("text=Create an account")
        # The account is the invited address: the page names it, and asks only for a password.
        assert "Your account is new.analyst@example.test" in other.locator("main").inner_text()
        assert other.locator("#id_username").count() == 0
        other.fill("#id_password1", "a long enough passphrase 42")
        other.fill("#id_password2", "a long enough passphrase 42")
        shot(other, "invitation-signup-390.png")
        other.click("button[type=submit]")
        other.wait_for_url(f"{live_server.url}/o/acme/")
        assert no_horizontal_scroll(other), overflowing(other)
        shot(other, "invitation-joined-390.png")
    finally:
        invitee.close()
    assert Membership.objects.get(org=world.org, user__username="new.analyst@example.test").role == Role.ANALYST
    page.reload()
    assert page.locator("#members").get_by_text("new.analyst@example.test").first.is_visible()
    assert page.locator("#invitations").get_by_text("new.analyst@example.test").count() == 0


def test_an_existing_user_logs_in_from_the_invitation_and_accepts(page, browser, live_server, world, django_user_model):
    django_user_model.objects.create_user("returning", email="returning@example.test", password=PASSWORD)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server)
    page.goto(f"{live_server.url}/o/acme/members/")
    page.fill("#id_email", "returning@example.test")
    page.click("#invite button[type=submit]")
    page.get_by_text("Invitation sent to").wait_for()
    link = re.search(r"http://\S+/invitations/\S+/", mail.outbox[-1].body).group(0)

    invitee = browser.new_context()
    try:
        other = invitee.new_page()
        other.set_default_timeout(15_000)
        other.goto(link)
        other.click("#invitation a.button:has-text('Log in')")
        other.fill("#id_username", "returning")
        other.fill("#id_password", PASSWORD)
        other.click("button[type=submit]")
        other.wait_for_url(link)
        other.click("text=Accept and join")
        other.wait_for_url(f"{live_server.url}/o/acme/")
    finally:
        invitee.close()
    assert Membership.objects.get(org=world.org, user__username="returning").role == Role.VIEWER


def test_the_settings_page_previews_the_schedule_and_fits_a_phone(page, live_server, world):
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server)
    page.goto(f"{live_server.url}/o/acme/settings/")
    page.fill("#id_schedule_timezone", "Europe/Paris")
    page.fill("#id_schedule_crontab", "0 3 * * 1-5")
    page.locator("#schedule-preview").get_by_text("Monday through Friday").wait_for()
    assert page.locator("#schedule-preview ol.next-runs li").count() == 5
    shot(page, "settings-preview-1280.png")
    page.fill("#id_scope_networks", "127.0.10.0/24\nnot a cidr")
    page.click("#settings-form button[type=submit]")
    page.get_by_text("'not a cidr' is not a network").wait_for()
    page.fill("#id_scope_networks", "127.0.10.0/24")
    page.click("#settings-form button[type=submit]")
    page.get_by_text("Settings saved.").wait_for()
    world.org.refresh_from_db()
    assert (world.org.schedule_crontab, world.org.schedule_timezone) == ("0 3 * * 1-5", "Europe/Paris")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert no_horizontal_scroll(page), overflowing(page)
    shot(page, "settings-390.png")
