"""The per-organization dashboard and the home redirect."""

import pytest
from django.urls import reverse

from nodes.models import NodeSnapshot
from tests.factories import NodeFactory

pytestmark = pytest.mark.django_db


def test_home_sends_a_member_to_their_organizations_dashboard(world, login):
    response = login(world.viewer).get(reverse("home"))
    assert response.status_code == 302 and response["Location"] == reverse("orgs:dashboard", args=["acme"])


def test_home_tells_a_user_without_organization_what_to_do(login, django_user_model, db):
    lonely = django_user_model.objects.create_user("lonely")
    response = login(lonely).get(reverse("home"))
    assert response.status_code == 200 and b"not a member of any organization" in response.content


def test_the_dashboard_shows_the_organization_and_its_switcher(world, login):
    response = login(world.viewer).get(reverse("orgs:dashboard", args=["acme"]))
    assert response.status_code == 200
    assert b"Acme" in response.content
    assert b'id="org-switcher"' in response.content
    assert b"No node has been scored yet" in response.content


def test_the_dashboard_lists_worst_nodes_first(world, login):
    good, bad = NodeFactory(org=world.org, name="good-node"), NodeFactory(org=world.org, name="bad-node")
    NodeSnapshot.objects.filter(node=good).update(score=95, grade="A")
    NodeSnapshot.objects.filter(node=bad).update(score=30, grade="F", critical=2)
    content = login(world.viewer).get(reverse("orgs:dashboard", args=["acme"])).content.decode()
    assert content.index("bad-node") < content.index("good-node")


def test_the_dashboard_reads_a_constant_number_of_queries_at_any_node_count(world, login, django_assert_max_num_queries):
    client = login(world.viewer)
    for n in range(60):
        NodeFactory(org=world.org)
    NodeSnapshot.objects.filter(org=world.org).update(score=50, grade="D")
    with django_assert_max_num_queries(10):
        assert client.get(reverse("orgs:dashboard", args=["acme"])).status_code == 200


def test_an_outsider_gets_404_on_another_organizations_dashboard(world, login):
    assert login(world.outsider).get(reverse("orgs:dashboard", args=["acme"])).status_code == 404


def test_an_unknown_organization_is_404(world, login):
    assert login(world.owner).get(reverse("orgs:dashboard", args=["nope"])).status_code == 404


def test_an_anonymous_visitor_is_sent_to_login_from_the_dashboard(world, client):
    response = client.get(reverse("orgs:dashboard", args=["acme"]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_dashboard_refuses_post(world, login):
    assert login(world.owner).post(reverse("orgs:dashboard", args=["acme"])).status_code == 405


def test_an_anonymous_visitor_of_home_is_sent_to_login(client, db):
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_home_refuses_post(world, login):
    assert login(world.owner).post(reverse("home")).status_code == 405
