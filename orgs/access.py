"""Access helpers: the one way views, partials and API endpoints reach an organization.

Another organization's object is a 404 (its existence is not revealed); a read-only
member's write is a 403.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from orgs.models import ApiToken, Invitation, Membership, Zone


def membership_for(user, slug: str) -> Membership:
    """The user's membership of the organization ``slug``, or 404."""
    if not user.is_authenticated:
        raise Http404
    try:
        return Membership.objects.select_related("org").get(user=user, org__slug=slug)
    except Membership.DoesNotExist:
        raise Http404("No such organization") from None


def writable_membership_for(user, slug: str) -> Membership:
    membership = membership_for(user, slug)
    if not membership.can_write:
        raise PermissionDenied("Your role in this organization is read-only.")
    return membership


def managing_membership_for(user, slug: str) -> Membership:
    membership = membership_for(user, slug)
    if not membership.can_manage:
        raise PermissionDenied("Only owners and admins manage this organization.")
    return membership


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


# Every app's access helpers are built on these two: a URL's id, then the one row it names.


def pk_or_404(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("No such object") from None


def one_or_404(queryset, what: str):
    """The row of a primary-key lookup, or 404 naming ``what``.

    ``get()`` rather than ``first()``: no ORDER BY to compile and run for a single row — this
    is on every detail page and detail call.
    """
    try:
        return queryset.get()
    except queryset.model.DoesNotExist:
        raise Http404(f"No such {what}") from None


# The organization's own rows that its pages name by id: another organization's is a 404.


def member_for(membership: Membership, member_id) -> Membership:
    """A membership of the organization ``membership`` belongs to (the member acted on)."""
    return one_or_404(Membership.objects.select_related("user").filter(org=membership.org, pk=pk_or_404(member_id)),
                      "member")


def invitation_for(membership: Membership, invitation_id) -> Invitation:
    return one_or_404(Invitation.objects.select_related("org").filter(org=membership.org, pk=pk_or_404(invitation_id)),
                      "invitation")


def api_token_for(membership: Membership, token_id) -> ApiToken:
    return one_or_404(ApiToken.objects.select_related("org").filter(org=membership.org, pk=pk_or_404(token_id)),
                      "token")


def zone_for(membership, zone_id) -> Zone:
    """A zone of the organization (a membership, or an API principal): another organization's is a 404."""
    return one_or_404(Zone.objects.select_related("org").filter(org=membership.org, pk=pk_or_404(zone_id)), "zone")
