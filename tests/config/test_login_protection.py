"""Login protection: repeated wrong passwords lock the account and the address out, each failure audited."""

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.urls import reverse

from conftest import PASSWORD
from orgs.models import AuditEvent

pytestmark = pytest.mark.django_db


def _try(client, username, password, ip="127.0.0.9"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_the_right_password_logs_in(client, world):
    response = _try(client, world.viewer.username, PASSWORD)
    assert response.status_code == 302


def test_after_five_wrong_passwords_even_the_right_one_is_refused(client, world, settings):
    for _ in range(5):
        assert _try(client, world.viewer.username, "wrong").status_code in (200, 429)
    response = _try(client, world.viewer.username, PASSWORD)
    assert response.status_code == 429
    assert b"Too many failed log-ins" in response.content
    assert "_auth_user_id" not in client.session


def test_fifty_wrong_passwords_in_a_row_are_not_all_answered_as_ordinary_failures(client, world):
    statuses = [_try(client, world.viewer.username, f"guess-{n}").status_code for n in range(50)]
    assert statuses.count(429) >= 45


def test_one_address_trying_many_accounts_is_locked_out_too(client, world, django_user_model):
    for n in range(5):
        _try(client, f"nobody-{n}", "wrong", ip="127.0.0.77")
    assert _try(client, world.viewer.username, PASSWORD, ip="127.0.0.77").status_code == 429
    # Another address is not affected by that address's lockout.
    assert _try(client, world.analyst.username, PASSWORD, ip="127.0.0.78").status_code == 302


def test_each_failure_and_the_lockout_are_audit_events(client, world):
    for _ in range(5):
        _try(client, world.viewer.username, "wrong")
    failures = AuditEvent.objects.filter(verb="login.failed")
    assert failures.count() == 5
    assert failures.first().changes == {"username": world.viewer.username} and failures.first().ip == "127.0.0.9"
    assert AuditEvent.objects.filter(verb="login.locked_out", changes__username=world.viewer.username).exists()


def test_an_admin_unlocks_an_account_before_the_cool_off(client, world):
    for _ in range(5):
        _try(client, world.viewer.username, "wrong")
    assert _try(client, world.viewer.username, PASSWORD).status_code == 429
    call_command("axes_reset")
    assert not AccessAttempt.objects.exists()
    assert _try(client, world.viewer.username, PASSWORD).status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, world, settings):
    from datetime import timedelta

    from django.utils import timezone

    for _ in range(5):
        _try(client, world.viewer.username, "wrong")
    assert _try(client, world.viewer.username, PASSWORD).status_code == 429
    # Age the recorded attempts past the cool-off instead of waiting for it.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(hours=1))
    assert _try(client, world.viewer.username, PASSWORD).status_code == 302
