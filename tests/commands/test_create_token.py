"""``manage.py create_token``: the secret printed once, the token usable, clear errors."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from orgs.models import ApiToken, AuditEvent, secret_digest

pytestmark = pytest.mark.django_db


def create_token(*args):
    out, err = StringIO(), StringIO()
    call_command("create_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_prints_the_secret_once_and_stores_only_its_hash(world):
    out, err = create_token("--org", "acme", "--name", "ci", "--access", "read_write")
    key = out.strip()
    assert key.startswith("wp_") and len(out.splitlines()) == 1  # stdout is the secret alone, for scripts
    token = ApiToken.objects.get(org=world.org, name="ci")
    assert token.key_hash == secret_digest(key) and key not in (token.prefix, token.key_hash)
    assert token.access == "read_write" and token.expires_at is None and token.is_usable
    assert "shown once" in err and token.prefix in err


def test_the_printed_secret_authenticates_as_the_token(world, client):
    from rest_framework.test import APIRequestFactory

    from orgs.authentication import ApiTokenAuthentication

    key = create_token("--org", "acme", "--name", "ci", "--access", "read")[0].strip()
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {key}")
    _, token = ApiTokenAuthentication().authenticate(request)
    assert token.org == world.org and not token.can_write


def test_it_sets_an_expiry_in_days(world):
    create_token("--org", "acme", "--name", "short", "--access", "read", "--expires-days", "7")
    token = ApiToken.objects.get(name="short")
    assert abs((token.expires_at - timezone.now()).total_seconds() - 7 * 86400) < 60


def test_the_creation_is_audited_as_made_by_the_command(world):
    create_token("--org", "acme", "--name", "ci", "--access", "read")
    event = AuditEvent.objects.get(verb="api_token.created")
    assert event.org == world.org and event.actor is None
    assert event.changes == {"access": "read", "via": "manage.py create_token"}


def test_an_unknown_organization_is_a_clear_error(world):
    with pytest.raises(CommandError, match="No organization with slug 'nope'.*acme"):
        create_token("--org", "nope", "--name", "ci", "--access", "read")
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("access", ["write", "admin", "READ", ""])
def test_a_bad_access_is_a_clear_error(world, access):
    with pytest.raises(CommandError, match="--access must be one of read, read_write"):
        create_token("--org", "acme", "--name", "ci", "--access", access)
    assert not ApiToken.objects.exists()


def test_a_non_positive_expiry_is_refused(world):
    with pytest.raises(CommandError, match="positive"):
        create_token("--org", "acme", "--name", "ci", "--access", "read", "--expires-days", "0")


def test_the_options_are_required(world):
    with pytest.raises(CommandError, match="required"):
        create_token("--org", "acme")
