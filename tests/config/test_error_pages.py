"""Error pages are console pages: navigation, the reason, a way back."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_a_forbidden_page_says_why_inside_the_console(client, world):
    client.force_login(world.owner)
    response = client.get(reverse("status"))
    assert response.status_code == 403
    content = response.content.decode()
    assert "for its operators" in content and 'href="/"' in content and "Log out" in content


def test_a_missing_page_does_not_say_whether_it_belongs_to_someone_else(client, world):
    client.force_login(world.owner)
    response = client.get("/o/globex/")
    assert response.status_code == 404
    assert "not a member of" in response.content.decode() and "Globex" not in response.content.decode()


def test_the_favicon_is_served_where_browsers_look_for_it(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
