"""Invitations: an owner or admin invites by e-mail; the invitee accepts after logging in or signing up."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orgs.models import AuditEvent, Invitation, Membership, Role, secret_digest

pytestmark = pytest.mark.django_db


def invite_url(slug="acme"):
    return reverse("orgs:invitation_create", args=[slug])


def invite(client, django_capture_on_commit_callbacks, email="new.person@example.test", role="analyst", slug="acme"):
    """Post the invitation form and return (response, raw token from the e-mail)."""
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(invite_url(slug), {"email": email, "role": role})
    token = None
    if mail.outbox:
        match = re.search(r"/invitations/([A-Za-z0-9_-]+)/", mail.outbox[-1].body)
        token = match.group(1) if match else None
    return response, token


def test_an_admin_invites_by_email_and_the_link_goes_by_email_only(world, login, django_capture_on_commit_callbacks):
    response, token = invite(login(world.admin), django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new.person@example.test"]
    assert "http://testserver/invitations/" in mail.outbox[0].body
    invitation = Invitation.objects.get()
    assert invitation.token_hash == secret_digest(token) and token not in str(invitation.__dict__)
    assert invitation.role == Role.ANALYST and invitation.invited_by == world.admin
    assert timedelta(days=6) < invitation.expires_at - timezone.now() <= timedelta(days=7)
    assert AuditEvent.objects.filter(verb="invitation.created", actor=world.admin, org=world.org).exists()


def test_the_answer_is_the_same_whether_or_not_an_account_exists(world, login, django_capture_on_commit_callbacks):
    client = login(world.owner)
    existing, _ = invite(client, django_capture_on_commit_callbacks, email=world.outsider.email)
    unknown, _ = invite(client, django_capture_on_commit_callbacks, email="nobody@example.test")
    assert existing.status_code == unknown.status_code == 302
    shown = [m.message for m in client.get(reverse("orgs:members", args=["acme"])).context["messages"]]
    assert shown == [] or all("Invitation sent to" in m for m in shown)
    # Nobody was attached without following the link.
    assert not Membership.objects.filter(org=world.org, user=world.outsider).exists()


def test_inviting_the_same_address_again_replaces_the_pending_invitation(world, login, django_capture_on_commit_callbacks):
    client = login(world.owner)
    _, first = invite(client, django_capture_on_commit_callbacks)
    _, second = invite(client, django_capture_on_commit_callbacks)
    assert Invitation.objects.pending().count() == 1
    assert client.get(reverse("invitation_accept", args=[first])).status_code == 410
    assert client.get(reverse("invitation_accept", args=[second])).status_code == 200


def test_only_an_owner_invites_an_owner(world, login, django_capture_on_commit_callbacks):
    response, _ = invite(login(world.admin), django_capture_on_commit_callbacks, role="owner")
    assert response.status_code == 400 and b"Only an owner" in response.content
    assert not Invitation.objects.exists() and not mail.outbox
    response, _ = invite(login(world.owner), django_capture_on_commit_callbacks, role="owner")
    assert response.status_code == 302


def test_a_logged_in_invitee_accepts_and_becomes_a_member_with_the_role(world, login, client, django_user_model,
                                                                        django_capture_on_commit_callbacks):
    _, token = invite(login(world.owner), django_capture_on_commit_callbacks)
    invitee = django_user_model.objects.create_user("invitee", email="new.person@example.test")
    client.force_login(invitee)
    page = client.get(reverse("invitation_accept", args=[token]))
    assert page.status_code == 200 and b"Accept and join" in page.content
    response = client.post(reverse("invitation_accept", args=[token]))
    assert response.status_code == 302 and response["Location"] == reverse("orgs:dashboard", args=["acme"])
    assert Membership.objects.get(org=world.org, user=invitee).role == Role.ANALYST
    invitation = Invitation.objects.get()
    assert invitation.accepted_by == invitee and invitation.accepted_at is not None
    assert set(AuditEvent.objects.filter(actor=invitee).values_list("verb", flat=True)) == {
        "invitation.accepted", "membership.added"}


def test_an_invitation_works_once(world, login, client, django_user_model, django_capture_on_commit_callbacks):
    _, token = invite(login(world.owner), django_capture_on_commit_callbacks)
    first = django_user_model.objects.create_user("first")
    second = django_user_model.objects.create_user("second")
    client.force_login(first)
    client.post(reverse("invitation_accept", args=[token]))
    client.force_login(second)
    response = client.post(reverse("invitation_accept", args=[token]))
    assert response.status_code == 410 and b"already been accepted" in response.content
    assert not Membership.objects.filter(user=second).exists()


def test_an_expired_or_revoked_invitation_cannot_be_used(world, login, client, django_user_model,
                                                         django_capture_on_commit_callbacks):
    owner = login(world.owner)
    _, expired = invite(owner, django_capture_on_commit_callbacks, email="a@example.test")
    Invitation.objects.filter(email="a@example.test").update(expires_at=timezone.now() - timedelta(minutes=1))
    _, revoked = invite(owner, django_capture_on_commit_callbacks, email="b@example.test")
    owner.post(reverse("orgs:invitation_revoke", args=["acme", Invitation.objects.get(email="b@example.test").pk]))
    client.force_login(django_user_model.objects.create_user("late"))
    assert b"expired" in client.post(reverse("invitation_accept", args=[expired])).content
    assert b"revoked" in client.post(reverse("invitation_accept", args=[revoked])).content
    assert not Membership.objects.filter(user__username="late").exists()


def test_an_unknown_token_is_404(world, client):
    assert client.get(reverse("invitation_accept", args=["not-a-token"])).status_code == 404
    assert client.get(reverse("invitation_signup", args=["not-a-token"])).status_code == 404


def test_accepting_twice_as_a_member_is_refused_clearly(world, login, client, django_capture_on_commit_callbacks):
    _, token = invite(login(world.owner), django_capture_on_commit_callbacks)
    client.force_login(world.viewer)
    response = client.post(reverse("invitation_accept", args=[token]))
    assert response.status_code == 400 and b"already a member" in response.content
    assert Membership.objects.get(org=world.org, user=world.viewer).role == Role.VIEWER


def test_a_visitor_sees_the_invitation_and_may_log_in_or_sign_up(world, login, django_capture_on_commit_callbacks):
    _, token = invite(login(world.owner), django_capture_on_commit_callbacks)
    visitor = Client()
    page = visitor.get(reverse("invitation_accept", args=[token])).content.decode()
    assert "Acme" in page and "Log in" in page and reverse("invitation_signup", args=[token]) in page
    # Accepting needs an account: an anonymous POST goes to the login page and back.
    response = visitor.post(reverse("invitation_accept", args=[token]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert "next=" in response["Location"] and token in response["Location"]


def test_a_visitor_signs_up_through_the_invitation_and_joins(world, login, django_capture_on_commit_callbacks):
    _, token = invite(login(world.owner), django_capture_on_commit_callbacks, role="viewer")
    visitor = Client()
    form = visitor.get(reverse("invitation_signup", args=[token]))
    assert "Your account is <strong>new.person@example.test</strong>" in form.content.decode()
    assert list(form.context["form"].fields) == ["password1", "password2"]
    response = visitor.post(reverse("invitation_signup", args=[token]), {
        "password1": "a-long-enough passphrase 42", "password2": "a-long-enough passphrase 42"})
    assert response.status_code == 302 and response["Location"] == reverse("orgs:dashboard", args=["acme"])
    membership = Membership.objects.get(org=world.org, user__username="new.person@example.test")
    assert membership.role == Role.VIEWER and membership.user.email == "new.person@example.test"
    assert visitor.get(reverse("orgs:dashboard", args=["acme"])).status_code == 200
    assert AuditEvent.objects.filter(verb="user.signed_up", org=world.org).exists()
    # The new account logs in with its address and password.
    again = Client()
    response = again.post(reverse("login"), {"username": "new.person@example.test",
                                             "password": "a-long-enough passphrase 42"}, REMOTE_ADDR="127.0.0.9")
    assert response.status_code == 302 and "_auth_user_id" in again.session


def test_signup_is_only_reachable_with_a_valid_invitation(world, login, client, django_capture_on_commit_callbacks):
    _, token = invite(login(world.owner), django_capture_on_commit_callbacks)
    Invitation.objects.update(revoked_at=timezone.now())
    visitor = Client()
    response = visitor.post(reverse("invitation_signup", args=[token]), {
        "password1": "a-long-enough passphrase 42", "password2": "a-long-enough passphrase 42"})
    assert response.status_code == 410
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="new.person@example.test").exists()


def test_an_invalid_signup_creates_nothing(world, login, django_capture_on_commit_callbacks):
    _, token = invite(login(world.owner), django_capture_on_commit_callbacks)
    response = Client().post(reverse("invitation_signup", args=[token]), {"password1": "short", "password2": "other"})
    assert response.status_code == 400
    assert Invitation.objects.get().accepted_at is None
    assert not Membership.objects.filter(user__username="new.person@example.test").exists()


def test_a_logged_in_user_on_the_signup_page_is_sent_to_accept(world, login, django_capture_on_commit_callbacks):
    client = login(world.owner)
    _, token = invite(client, django_capture_on_commit_callbacks)
    response = client.get(reverse("invitation_signup", args=[token]))
    assert response.status_code == 302 and response["Location"] == reverse("invitation_accept", args=[token])


def test_pending_invitations_are_listed_and_revocable_with_confirmation(world, login, django_capture_on_commit_callbacks):
    client = login(world.owner)
    invite(client, django_capture_on_commit_callbacks)
    invitation = Invitation.objects.get()
    page = client.get(reverse("orgs:members", args=["acme"])).content.decode()
    assert "new.person@example.test" in page and 'data-confirm="Revoke the invitation' in page
    response = client.post(reverse("orgs:invitation_revoke", args=["acme", invitation.pk]))
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert AuditEvent.objects.filter(verb="invitation.revoked", actor=world.owner).exists()
    assert list(client.get(reverse("orgs:members", args=["acme"])).context["invitations"]) == []


def test_an_admin_cannot_revoke_an_owner_invitation(world, login, django_capture_on_commit_callbacks):
    invite(login(world.owner), django_capture_on_commit_callbacks, role="owner")
    invitation = Invitation.objects.get()
    login(world.admin).post(reverse("orgs:invitation_revoke", args=["acme", invitation.pk]))
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


@pytest.mark.parametrize("role", ["analyst", "viewer"])
def test_analysts_and_viewers_cannot_invite_or_revoke(world, login, role, django_capture_on_commit_callbacks):
    invite(login(world.owner), django_capture_on_commit_callbacks)
    invitation = Invitation.objects.get()
    client = login(getattr(world, role))
    response, _ = invite(client, django_capture_on_commit_callbacks, email="other@example.test")
    assert response.status_code == 403
    assert client.post(reverse("orgs:invitation_revoke", args=["acme", invitation.pk])).status_code == 403
    assert Invitation.objects.pending().count() == 1
    assert b"Pending invitations" not in client.get(reverse("orgs:members", args=["acme"])).content


def test_another_organization_cannot_invite_or_revoke(world, login, django_capture_on_commit_callbacks):
    invite(login(world.owner), django_capture_on_commit_callbacks)
    invitation = Invitation.objects.get()
    client = login(world.outsider)
    assert client.post(invite_url("acme"), {"email": "x@example.test", "role": "viewer"}).status_code == 404
    assert client.post(reverse("orgs:invitation_revoke", args=["globex", invitation.pk])).status_code == 404
    assert client.post(reverse("orgs:invitation_revoke", args=["acme", invitation.pk])).status_code == 404
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


def test_anonymous_invite_and_revoke_go_to_login(world, client):
    for url in (invite_url(), reverse("orgs:invitation_revoke", args=["acme", 1])):
        response = client.post(url, {"email": "x@example.test", "role": "viewer"})
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_wrong_methods_are_405(world, login):
    client = login(world.owner)
    assert client.get(invite_url()).status_code == 405
    assert client.get(reverse("orgs:invitation_revoke", args=["acme", 1])).status_code == 405
    assert client.put(reverse("invitation_accept", args=["x"])).status_code == 405
    assert client.delete(reverse("invitation_signup", args=["x"])).status_code == 405


def test_invitation_writes_enforce_csrf(world, login, django_capture_on_commit_callbacks):
    invite(login(world.owner), django_capture_on_commit_callbacks)
    token_holder = Client(enforce_csrf_checks=True)
    token_holder.force_login(world.owner)
    assert token_holder.post(invite_url(), {"email": "y@example.test", "role": "viewer"}).status_code == 403
    invitation = Invitation.objects.get()
    assert token_holder.post(reverse("orgs:invitation_revoke", args=["acme", invitation.pk])).status_code == 403
    assert Invitation.objects.pending().count() == 1


def test_accepting_enforces_csrf(world, login, django_user_model, django_capture_on_commit_callbacks):
    _, token = invite(login(world.owner), django_capture_on_commit_callbacks)
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_user("invitee"))
    assert client.post(reverse("invitation_accept", args=[token])).status_code == 403
    assert client.post(reverse("invitation_signup", args=[token])).status_code in (302, 403)
    assert not Membership.objects.filter(user__username="invitee").exists()


@pytest.mark.parametrize("rows", [10, 1000])
def test_the_members_page_reads_the_same_number_of_queries_with_10_and_1000_invitations(
        world, login, rows, django_assert_num_queries):
    expires = timezone.now() + timedelta(days=7)
    Invitation.objects.bulk_create(Invitation(org=world.org, email=f"p{i}@example.test", token_hash=f"{i:064x}",
                                              expires_at=expires, invited_by=world.owner) for i in range(rows))
    client = login(world.owner)
    with django_assert_num_queries(7):
        assert client.get(reverse("orgs:members", args=["acme"])).status_code == 200
