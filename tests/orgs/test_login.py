"""Logging in and out of the console."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_login_page_renders_a_form(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="password"' in response.content


def test_the_right_password_opens_the_members_dashboard(client, world):
    response = client.post(reverse("login"), {"username": "acme-owner", "password": "correct horse battery staple"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("orgs:dashboard", args=["acme"])
    assert b"Acme" in response.content


def test_a_wrong_password_is_refused_with_a_message(client, world):
    response = client.post(reverse("login"), {"username": "acme-owner", "password": "nope"})
    assert response.status_code == 200
    assert b"didn't match" in response.content
    assert "_auth_user_id" not in client.session


def test_logging_out_ends_the_session_and_returns_to_login(client, world):
    client.force_login(world.owner)
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert client.get(reverse("orgs:dashboard", args=["acme"])).status_code == 302


def test_the_login_form_requires_the_csrf_token(world):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("login"), {"username": "acme-owner", "password": "correct horse battery staple"})
    assert response.status_code == 403
