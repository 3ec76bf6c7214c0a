"""Reads about organizations and members, always scoped to a user or an organization."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from orgs.models import Membership, Organization


def organization_list_for_user(*, user):
    if not user.is_authenticated:
        return Organization.objects.none()
    return Organization.objects.filter(memberships__user=user).order_by("name")


def membership_list_for_org(*, org):
    return Membership.objects.filter(org=org).select_related("user").order_by("user__username")


def membership_get(*, org, membership_id: int) -> Membership:
    """A membership of ``org``; one of another organization is a DoesNotExist (404 upstream)."""
    return Membership.objects.select_related("user").get(org=org, pk=membership_id)


def user_find(*, identifier: str):
    """An existing user by username or e-mail, or None."""
    User = get_user_model()
    identifier = identifier.strip()
    return User.objects.filter(username__iexact=identifier).first() or User.objects.filter(email__iexact=identifier).first()
