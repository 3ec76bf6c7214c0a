"""Saved views: named filters of the findings list, personal or shared, in the console, the navigation and the API."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from orgs.models import AuditEvent
from scans.models import SavedView
from tests.factories import FindingFactory, NodeFactory

pytestmark = pytest.mark.django_db


def url(name, *args, slug="acme"):
    return reverse(f"scans:{name}", args=[slug, *args])


@pytest.fixture
def views(world):
    """The analyst's personal view, the owner's shared one, the admin's personal one."""
    return {
        "mine": SavedView.objects.create(org=world.org, name="My criticals", query="severity=critical&status=open",
                                         owner=world.analyst),
        "shared": SavedView.objects.create(org=world.org, name="Team nuclei", query="source=nuclei&status=all",
                                           owner=world.owner, shared=True),
        "private": SavedView.objects.create(org=world.org, name="Admin only", query="status=fixed",
                                            owner=world.admin),
    }


def test_the_list_saves_its_current_filter_as_a_view(world, login):
    client = login(world.analyst)
    page = client.get(url("finding_list"), {"severity": "high"}).content.decode()
    assert 'name="query" value="severity=high&amp;status=open"' in page
    response = client.post(url("saved_view_new"), {"name": "Highs", "query": "severity=high&status=open",
                                                   "shared": "on"})
    view = SavedView.objects.get(name="Highs")
    assert (view.owner, view.shared, view.query) == (world.analyst, True, "severity=high&status=open")
    assert response.status_code == 302 and response["Location"] == url("saved_view_open", view.pk)
    opened = client.get(response["Location"])
    assert opened.status_code == 302 and opened["Location"] == url("finding_list") + "?severity=high&status=open"
    assert AuditEvent.objects.filter(verb="saved_view.created", target_id=str(view.pk)).exists()


def test_a_view_with_a_filter_that_does_not_parse_is_refused_and_nothing_is_saved(world, login):
    client = login(world.analyst)
    response = client.post(url("saved_view_new"), {"name": "Bad", "query": "severity=urgent&colour=red"})
    assert response.status_code == 400
    text = response.content.decode()
    assert "does not parse" in text and "&#x27;urgent&#x27; is not one of" in text and "colour" in text
    assert not SavedView.objects.filter(name="Bad").exists()
    assert client.post(url("saved_view_new"), {"name": "", "query": ""}).status_code == 400
    assert not SavedView.objects.exists()


def test_a_saved_view_whose_filter_stopped_parsing_opens_with_a_message_and_no_list(world, login, views):
    FindingFactory(node=NodeFactory(org=world.org), title="Should not show")
    broken = SavedView.objects.create(org=world.org, name="Old", query="status=wontfix&first_seen_from=2024-13-40",
                                      owner=world.analyst)
    response = login(world.analyst).get(url("saved_view_open", broken.pk))
    text = response.content.decode()
    assert response.status_code == 200 and "no longer parses" in text
    assert "&#x27;wontfix&#x27; is not one of" in text and "not a day" in text
    assert "Should not show" not in text and "Delete this view" in text
    broken.refresh_from_db()
    assert broken.query == "status=wontfix&first_seen_from=2024-13-40"


def test_each_member_sees_their_own_views_and_the_shared_ones(world, login, views):
    listed = [v.name for v in login(world.analyst).get(url("saved_view_list")).context["views"]]
    assert listed == ["My criticals", "Team nuclei"]
    menu = login(world.viewer).get(url("saved_view_menu")).content.decode()
    assert "Team nuclei" in menu and "My criticals" not in menu and "Admin only" not in menu
    assert login(world.analyst).get(url("saved_view_open", views["private"].pk)).status_code == 404


def test_the_navigation_fetches_the_menu_when_it_opens_and_no_page_pays_for_it(world, login, views):
    page = login(world.analyst).get(reverse("orgs:dashboard", args=["acme"])).content.decode()
    assert 'hx-get="/o/acme/findings/views/menu/"' in page and 'hx-trigger="toggle once from:closest details"' in page
    assert "My criticals" not in page
    assert 'href="/o/acme/findings/groups/"' in page and 'href="/o/acme/findings/?status=all"' in page


def test_only_the_author_deletes_a_personal_view_and_owners_and_admins_a_shared_one(world, login, views):
    assert login(world.analyst).post(url("saved_view_delete", views["shared"].pk)).status_code == 403
    assert login(world.viewer).post(url("saved_view_delete", views["shared"].pk)).status_code == 403
    assert login(world.admin).post(url("saved_view_delete", views["mine"].pk)).status_code == 404
    assert login(world.analyst).post(url("saved_view_delete", views["mine"].pk)).status_code == 302
    assert login(world.admin).post(url("saved_view_delete", views["shared"].pk)).status_code == 302
    assert list(SavedView.objects.values_list("name", flat=True)) == ["Admin only"]


def test_saved_views_keep_each_caller_in_their_place(world, client, login, views):
    pages = [("get", url("saved_view_list")), ("get", url("saved_view_menu")), ("post", url("saved_view_new")),
             ("get", url("saved_view_open", views["shared"].pk)), ("post", url("saved_view_delete", views["shared"].pk))]
    for method, page in pages:
        response = getattr(Client(), method)(page)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], page
        assert getattr(login(world.outsider), method)(page).status_code == 404, page
    viewer = login(world.viewer)
    assert viewer.post(url("saved_view_new"), {"name": "Mine", "query": ""}).status_code == 403
    assert b"Save view" not in viewer.get(url("finding_list")).content
    assert login(world.outsider).get(url("saved_view_open", views["shared"].pk, slug="globex")).status_code == 404
    assert SavedView.objects.count() == 3


# -- API -------------------------------------------------------------------------------


def test_the_api_lists_the_callers_views_and_the_shared_ones(world, api, session_api, views):
    names = [v["name"] for v in session_api(world.analyst).get("/api/v1/saved-views/").json()["results"]]
    assert names == ["My criticals", "Team nuclei"]
    assert [v["name"] for v in api("read").get("/api/v1/saved-views/").json()["results"]] == ["Team nuclei"]
    assert api("other").get("/api/v1/saved-views/").json()["count"] == 0
    assert api("other").get(f"/api/v1/saved-views/{views['shared'].pk}/").status_code == 404
    assert api("read").get(f"/api/v1/saved-views/{views['mine'].pk}/").status_code == 404


def test_a_token_saves_edits_and_deletes_its_own_view(world, api):
    client = api("read_write")
    response = client.post("/api/v1/saved-views/", {"name": "CI", "query": "?priority=P1&status=open"},
                           format="json")
    assert response.status_code == 201
    created = response.json()
    assert created["query"] == "priority=P1&status=open" and created["mine"] and created["owner"] is None
    response = client.patch(f"/api/v1/saved-views/{created['id']}/", {"shared": True}, format="json")
    assert response.status_code == 200 and response.json()["shared"] is True
    assert client.delete(f"/api/v1/saved-views/{created['id']}/").status_code == 204
    assert not SavedView.objects.exists()


def test_the_api_refuses_a_filter_that_does_not_parse_and_saves_nothing(world, api, session_api, views):
    response = api("read_write").post("/api/v1/saved-views/", {"name": "Bad", "query": "severity=urgent"},
                                      format="json")
    assert response.status_code == 400 and "'urgent' is not one of" in str(response.json()["errors"])
    response = session_api(world.analyst).patch(f"/api/v1/saved-views/{views['mine'].pk}/",
                                                {"query": "node=abc"}, format="json")
    assert response.status_code == 400 and "not a number" in str(response.json()["errors"])
    views["mine"].refresh_from_db()
    assert views["mine"].query == "severity=critical&status=open" and SavedView.objects.count() == 3


def test_shared_views_are_changed_by_their_author_owners_and_admins_only(world, api, session_api, views):
    shared = f"/api/v1/saved-views/{views['shared'].pk}/"
    assert api("read").patch(shared, {"name": "x"}, format="json").status_code == 403
    assert api("read_write").patch(shared, {"name": "x"}, format="json").status_code == 403
    assert session_api(world.analyst).patch(shared, {"name": "x"}, format="json").status_code == 403
    assert session_api(world.viewer).delete(shared).status_code == 403
    response = session_api(world.admin).patch(shared, {"name": "Team: nuclei"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Team: nuclei"
    assert api("read").post("/api/v1/saved-views/", {"name": "R"}, format="json").status_code == 403
