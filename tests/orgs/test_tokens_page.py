"""API tokens in the settings: created with the secret shown once, listed, revoked; owners and admins only."""

import pytest
from django.test import Client
from django.urls import reverse

from orgs.models import ApiToken, AuditEvent, secret_digest
from orgs.services import api_token_create

pytestmark = pytest.mark.django_db


def tokens_url(slug="acme"):
    return reverse("orgs:tokens", args=[slug])


def create_url(slug="acme"):
    return reverse("orgs:token_create", args=[slug])


def revoke_url(token, slug="acme"):
    return reverse("orgs:token_revoke", args=[slug, token.pk])


def test_creating_a_token_shows_its_secret_once_and_stores_only_its_hash(world, login):
    client = login(world.admin)
    response = client.post(create_url(), {"name": "ci", "access": "read_write", "expires_in_days": "30"})
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    secret = response.context["new_secret"]
    assert secret.encode() in response.content
    token = ApiToken.objects.get(org=world.org, name="ci")
    assert token.key_hash == secret_digest(secret) and token.prefix == secret[:8]
    assert token.access == "read_write" and token.created_by == world.admin
    assert 29 <= (token.expires_at - token.created_at).days <= 30
    # Never again: not on the list page, not in any URL.
    again = client.get(tokens_url())
    assert secret.encode() not in again.content and token.prefix.encode() in again.content
    assert AuditEvent.objects.filter(verb="api_token.created", actor=world.admin).exists()


def test_a_token_without_expiry_never_expires(world, login):
    login(world.owner).post(create_url(), {"name": "forever", "access": "read", "expires_in_days": ""})
    assert ApiToken.objects.get(name="forever").expires_at is None


def test_an_invalid_token_form_is_refused_without_creating_anything(world, login):
    response = login(world.owner).post(create_url(), {"name": "", "access": "root", "expires_in_days": "-3"})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_the_list_shows_prefix_access_creator_last_use_expiry_and_state(world, login):
    active, _ = api_token_create(org=world.org, name="active-one", access="read", by=world.owner)
    revoked, _ = api_token_create(org=world.org, name="revoked-one", access="read_write", by=world.owner)
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=revoked.created_at)
    api_token_create(org=world.other_org, name="globex-token", access="read")
    content = login(world.owner).get(tokens_url()).content.decode()
    assert active.prefix in content and "Read only" in content and "acme-owner" in content
    assert "revoked" in content and "never" in content
    assert "globex-token" not in content


def test_revoking_a_token_makes_it_unusable_and_is_audited(world, login):
    token, _ = api_token_create(org=world.org, name="ci", access="read")
    response = login(world.owner).post(revoke_url(token))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None and not token.is_usable
    assert AuditEvent.objects.filter(verb="api_token.revoked", actor=world.owner).exists()


def test_the_revoke_button_asks_for_confirmation(world, login):
    api_token_create(org=world.org, name="ci", access="read")
    assert b'data-confirm="Revoke the token ci?' in login(world.owner).get(tokens_url()).content


def test_another_organizations_token_cannot_be_revoked(world, login):
    token, _ = api_token_create(org=world.other_org, name="globex", access="read")
    assert login(world.owner).post(revoke_url(token)).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.parametrize("role", ["analyst", "viewer"])
def test_analysts_and_viewers_get_403_on_every_token_view(world, login, role):
    token, _ = api_token_create(org=world.org, name="ci", access="read")
    client = login(getattr(world, role))
    assert client.get(tokens_url()).status_code == 403
    assert client.post(create_url(), {"name": "x", "access": "read"}).status_code == 403
    assert client.post(revoke_url(token)).status_code == 403
    assert ApiToken.objects.count() == 1 and ApiToken.objects.get().revoked_at is None


def test_an_outsider_gets_404_on_every_token_view(world, login):
    token, _ = api_token_create(org=world.org, name="ci", access="read")
    client = login(world.outsider)
    assert client.get(tokens_url()).status_code == 404
    assert client.post(create_url(), {"name": "x", "access": "read"}).status_code == 404
    assert client.post(revoke_url(token)).status_code == 404


def test_an_anonymous_visitor_is_sent_to_login(world, client):
    token, _ = api_token_create(org=world.org, name="ci", access="read")
    for response in (client.get(tokens_url()), client.post(create_url(), {"name": "x", "access": "read"}),
                     client.post(revoke_url(token))):
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_wrong_methods_are_405(world, login):
    token, _ = api_token_create(org=world.org, name="ci", access="read")
    client = login(world.owner)
    assert client.post(tokens_url()).status_code == 405
    assert client.get(create_url()).status_code == 405
    assert client.get(revoke_url(token)).status_code == 405


def test_token_writes_enforce_csrf(world):
    token, _ = api_token_create(org=world.org, name="ci", access="read")
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner)
    assert client.post(create_url(), {"name": "x", "access": "read"}).status_code == 403
    assert client.post(revoke_url(token)).status_code == 403
    assert ApiToken.objects.count() == 1


@pytest.mark.parametrize("rows", [10, 1000])
def test_the_token_list_reads_the_same_number_of_queries_with_10_and_1000_tokens(world, login, rows,
                                                                                 django_assert_num_queries):
    ApiToken.objects.bulk_create(
        ApiToken(org=world.org, name=f"t{i}", prefix=f"wp_{i:05d}", key_hash=f"{i:064x}", created_by=world.owner)
        for i in range(rows))
    client = login(world.owner)
    with django_assert_num_queries(6):
        assert client.get(tokens_url()).status_code == 200
