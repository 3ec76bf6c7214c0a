"""The members page: who sees it, who may change it, and what a change leaves behind."""

import pytest
from django.urls import reverse

from orgs.models import AuditEvent, Membership, Role

pytestmark = pytest.mark.django_db


def members_url(org):
    return reverse("orgs:members", args=[org.slug])


def test_a_member_sees_the_members_of_their_organization(world, login):
    response = login(world.viewer).get(members_url(world.org))
    assert response.status_code == 200
    assert b"acme-owner" in response.content and b"acme-viewer" in response.content
    assert b"globex-owner" not in response.content


def test_a_viewer_sees_no_controls_to_change_members(world, login):
    response = login(world.viewer).get(members_url(world.org))
    assert b"Invite a member" not in response.content
    assert b"Change role" not in response.content


def test_an_outsider_gets_404_on_another_organizations_members_page(world, login):
    assert login(world.outsider).get(members_url(world.org)).status_code == 404


def test_an_anonymous_visitor_is_sent_to_login(world, client):
    response = client.get(members_url(world.org))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_old_add_by_username_endpoint_is_gone(world, login):
    # It revealed whether an account existed and attached other tenants' users without consent.
    response = login(world.owner).post(f"/o/{world.org.slug}/members/add/", {"identifier": "globex-owner", "role": "viewer"})
    assert response.status_code == 404
    assert not Membership.objects.filter(org=world.org, user=world.outsider).exists()


def test_the_members_page_refuses_post(world, login):
    assert login(world.owner).post(members_url(world.org)).status_code == 405


def test_changing_a_role_enforces_csrf(world):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner)
    target = Membership.objects.get(org=world.org, user=world.viewer)
    assert client.post(role_url(world.org, target), {"role": "analyst"}).status_code == 403
    target.refresh_from_db()
    assert target.role == Role.VIEWER


def test_changing_a_role_requires_post(world, login):
    target = Membership.objects.get(org=world.org, user=world.viewer)
    assert login(world.owner).get(role_url(world.org, target)).status_code == 405


def test_removing_a_member_requires_post(world, login):
    target = Membership.objects.get(org=world.org, user=world.viewer)
    assert login(world.owner).get(remove_url(world.org, target)).status_code == 405


def test_removing_a_member_enforces_csrf(world):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner)
    target = Membership.objects.get(org=world.org, user=world.viewer)
    assert client.post(remove_url(world.org, target)).status_code == 403
    assert Membership.objects.filter(pk=target.pk).exists()


def role_url(org, membership):
    return reverse("orgs:member_change_role", args=[org.slug, membership.pk])


def test_an_owner_changes_a_role_and_it_is_audited(world, login):
    target = Membership.objects.get(org=world.org, user=world.viewer)
    login(world.owner).post(role_url(world.org, target), {"role": "analyst"})
    target.refresh_from_db()
    assert target.role == Role.ANALYST
    assert AuditEvent.objects.get(verb="membership.role_changed").changes == {"role": ["viewer", "analyst"]}


def test_a_viewer_gets_403_when_changing_a_role(world, login):
    target = Membership.objects.get(org=world.org, user=world.analyst)
    assert login(world.viewer).post(role_url(world.org, target), {"role": "owner"}).status_code == 403
    target.refresh_from_db()
    assert target.role == Role.ANALYST


def test_an_admin_cannot_make_anyone_an_owner(world, login):
    target = Membership.objects.get(org=world.org, user=world.viewer)
    login(world.admin).post(role_url(world.org, target), {"role": "owner"})
    target.refresh_from_db()
    assert target.role == Role.VIEWER


def test_the_last_owner_cannot_be_demoted(world, login):
    target = Membership.objects.get(org=world.org, user=world.owner)
    response = login(world.owner).post(role_url(world.org, target), {"role": "viewer"}, follow=True)
    assert b"at least one owner" in response.content
    target.refresh_from_db()
    assert target.role == Role.OWNER


def test_changing_a_role_of_another_organizations_member_is_404(world, login):
    foreign = Membership.objects.get(org=world.other_org, user=world.outsider)
    assert login(world.owner).post(role_url(world.org, foreign), {"role": "viewer"}).status_code == 404
    foreign.refresh_from_db()
    assert foreign.role == Role.OWNER


def test_an_invalid_role_is_refused_without_change(world, login):
    target = Membership.objects.get(org=world.org, user=world.viewer)
    login(world.owner).post(role_url(world.org, target), {"role": "superuser"})
    target.refresh_from_db()
    assert target.role == Role.VIEWER


def test_an_anonymous_role_change_is_sent_to_login(world, client):
    target = Membership.objects.get(org=world.org, user=world.viewer)
    response = client.post(role_url(world.org, target), {"role": "owner"})
    assert response.status_code == 302 and reverse("login") in response["Location"]


def remove_url(org, membership):
    return reverse("orgs:member_remove", args=[org.slug, membership.pk])


def test_an_admin_removes_a_member_and_it_is_audited(world, login):
    target = Membership.objects.get(org=world.org, user=world.analyst)
    login(world.admin).post(remove_url(world.org, target))
    assert not Membership.objects.filter(pk=target.pk).exists()
    assert AuditEvent.objects.filter(verb="membership.removed", org=world.org).count() == 1


def test_a_viewer_gets_403_when_removing_a_member(world, login):
    target = Membership.objects.get(org=world.org, user=world.analyst)
    assert login(world.viewer).post(remove_url(world.org, target)).status_code == 403
    assert Membership.objects.filter(pk=target.pk).exists()


def test_an_admin_cannot_remove_an_owner(world, login):
    target = Membership.objects.get(org=world.org, user=world.owner)
    login(world.admin).post(remove_url(world.org, target))
    assert Membership.objects.filter(pk=target.pk).exists()


def test_removing_another_organizations_member_is_404(world, login):
    foreign = Membership.objects.get(org=world.other_org, user=world.outsider)
    assert login(world.owner).post(remove_url(world.org, foreign)).status_code == 404
    assert Membership.objects.filter(pk=foreign.pk).exists()


def test_an_anonymous_removal_is_sent_to_login(world, client):
    target = Membership.objects.get(org=world.org, user=world.viewer)
    assert client.post(remove_url(world.org, target)).status_code == 302
    assert Membership.objects.filter(pk=target.pk).exists()
