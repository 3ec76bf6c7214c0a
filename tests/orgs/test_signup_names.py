"""Signing up through an invitation says nothing about the names of other users, of any organization.

Precisely: the sign-up form asks for a password only, and the account is named by the invited
e-mail address. Whatever ``username`` a request carries (a user of another organization, of this
one, or a name nobody has) changes nothing in the answer: the same status, the same page byte for
byte (the CSRF token aside) when the passwords are refused, the same redirect when they are
accepted, and the account's name is always the invited address. The one answer that depends on
existing accounts is "an account already uses <the invited address>", which speaks only of the
address the link was mailed to.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orgs.models import Invitation, Membership, Role, secret_digest

pytestmark = pytest.mark.django_db

PASSPHRASE = "a-long-enough passphrase 42"


def _invitation(world, email: str) -> str:
    token = f"token-{email}"
    Invitation.objects.create(org=world.org, email=email, role=Role.VIEWER, token_hash=secret_digest(token),
                              invited_by=world.owner, expires_at=timezone.now() + timezone.timedelta(days=1))
    return token


def _page(response) -> str:
    # Each client has its own CSRF token (64 letters and digits, in the form and in hx-headers).
    return re.sub(r"\b[A-Za-z0-9]{64}\b", "<csrf>", response.content.decode())


def test_a_refused_signup_reads_the_same_whoever_owns_the_name_typed(world):
    token = _invitation(world, "probe@example.test")
    url = reverse("invitation_signup", args=[token])
    answers = []
    for name in (world.outsider.username, world.viewer.username, "nobody-has-this-name"):
        response = Client().post(url, {"username": name, "password1": PASSPHRASE, "password2": "another one 42"})
        answers.append((response.status_code, _page(response)))
    assert answers[0][0] == 400
    assert answers[0] == answers[1] == answers[2]
    assert "already exists" not in answers[0][1] and "taken" not in answers[0][1]


def test_an_accepted_signup_ignores_a_typed_name_and_names_the_account_by_its_address(world):
    outsider_name = world.outsider.username
    for email, typed in (("first@example.test", outsider_name), ("second@example.test", "nobody-has-this-name")):
        response = Client().post(reverse("invitation_signup", args=[_invitation(world, email)]),
                                 {"username": typed, "password1": PASSPHRASE, "password2": PASSPHRASE})
        assert (response.status_code, response["Location"]) == (302, reverse("orgs:dashboard", args=["acme"]))
        assert Membership.objects.get(org=world.org, user__username=email).user.email == email
    users = get_user_model().objects
    assert users.filter(username=outsider_name).count() == 1
    assert not users.filter(username="nobody-has-this-name").exists()


@pytest.mark.parametrize("existing", ["username", "email"])
def test_an_address_that_already_has_an_account_is_told_to_log_in(world, existing):
    email = "Known.Person@example.test"
    get_user_model().objects.create_user(**({"username": email.lower()} if existing == "username"
                                            else {"username": "known", "email": email.lower()}))
    response = Client().post(reverse("invitation_signup", args=[_invitation(world, email)]),
                             {"password1": PASSPHRASE, "password2": PASSPHRASE})
    assert response.status_code == 400
    assert "An account already uses known.person@example.test: log in with it to accept" in response.content.decode()
    assert not Membership.objects.filter(org=world.org, role=Role.VIEWER).exclude(user=world.viewer).exists()
