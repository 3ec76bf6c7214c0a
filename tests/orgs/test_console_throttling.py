"""Console endpoints that mint or take secrets are throttled: 429 with Retry-After past the rate."""

import pytest
from django.urls import reverse

from orgs.models import ApiToken, Invitation

pytestmark = pytest.mark.django_db


def test_creating_api_tokens_past_the_rate_is_refused_with_retry_after(world, login, settings):
    settings.WATCHPOST_CONSOLE_THROTTLE_RATES = {"token_create": "3/hour"}
    client = login(world.owner)
    url = reverse("orgs:token_create", args=["acme"])
    statuses = [client.post(url, {"name": f"t{n}", "access": "read", "expires_days": ""}).status_code
                for n in range(4)]
    assert statuses[:3] != [429] * 3 and statuses[3] == 429
    response = client.post(url, {"name": "again", "access": "read"})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert ApiToken.objects.filter(org=world.org).count() == 3


def test_the_token_limit_is_per_person(world, login, settings):
    settings.WATCHPOST_CONSOLE_THROTTLE_RATES = {"token_create": "1/hour"}
    url = reverse("orgs:token_create", args=["acme"])
    login(world.owner).post(url, {"name": "a", "access": "read"})
    assert login(world.owner).post(url, {"name": "b", "access": "read"}).status_code == 429
    assert login(world.admin).post(url, {"name": "c", "access": "read"}).status_code != 429


def test_sending_invitations_past_the_rate_is_refused(world, login, settings):
    settings.WATCHPOST_CONSOLE_THROTTLE_RATES = {"invitation_create": "2/hour"}
    client = login(world.owner)
    url = reverse("orgs:invitation_create", args=["acme"])
    statuses = [client.post(url, {"email": f"p{n}@example.test", "role": "viewer"}).status_code for n in range(3)]
    assert statuses[2] == 429
    assert Invitation.objects.filter(org=world.org).count() == 2


def test_guessing_invitation_links_from_one_address_is_throttled(client, db, settings):
    settings.WATCHPOST_CONSOLE_THROTTLE_RATES = {"invitation_token": "5/min"}
    statuses = [client.get(reverse("invitation_accept", args=[f"guess-{n}"]), REMOTE_ADDR="127.0.0.50").status_code
                for n in range(6)]
    assert 429 not in statuses[:5] and statuses[5] == 429
    # Another address is not held back by that one.
    assert client.get(reverse("invitation_accept", args=["x"]), REMOTE_ADDR="127.0.0.51").status_code != 429
