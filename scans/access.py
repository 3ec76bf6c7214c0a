"""The one way views, partials and API endpoints reach sessions and findings (see orgs/access.py)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from orgs.access import one_or_404, pk_or_404
from scans.models import Finding, ImportRequest, SavedView, ScanSession


def session_for(membership, session_id) -> ScanSession:
    return one_or_404(ScanSession.objects.select_related("profile").filter(org=membership.org, pk=pk_or_404(session_id)),
                      "session")


def finding_for(membership, finding_id) -> Finding:
    return one_or_404(Finding.objects.select_related("node", "org").filter(org=membership.org, pk=pk_or_404(finding_id)),
                      "finding")


def import_request_for(membership, import_id) -> ImportRequest:
    return one_or_404(ImportRequest.objects.filter(org=membership.org, pk=pk_or_404(import_id)), "import")


def principal_user_id(principal) -> int | None:
    """The person behind a console membership or an API principal (None for a token)."""
    user_id = getattr(principal, "user_id", None)  # a Membership: no query for its user
    if user_id is None and getattr(principal, "user", None) is not None:
        user_id = principal.user.pk
    return user_id


def saved_view_owned_by(view: SavedView, principal) -> bool:
    """Saved by this member or this token."""
    token = getattr(principal, "token", None)
    if token is not None:
        return view.token_id == token.pk
    user_id = principal_user_id(principal)
    return user_id is not None and view.owner_id == user_id


def saved_view_list_for(principal) -> QuerySet[SavedView]:
    """The saved views ``principal`` (a membership or an API principal) sees: its own and the shared ones."""
    token = getattr(principal, "token", None)
    user_id = principal_user_id(principal)
    own = Q(token=token) if token is not None else Q(owner_id=user_id) if user_id is not None else Q(pk__in=[])
    return SavedView.objects.filter(Q(shared=True) | own, org=principal.org).order_by("name", "id")


def saved_view_for(principal, view_id) -> SavedView:
    """One view ``principal`` sees; another member's personal view is a 404, as another organization's."""
    return one_or_404(saved_view_list_for(principal).filter(pk=pk_or_404(view_id)).select_related("org"),
                      "saved view")


def writable_saved_view_for(principal, view_id) -> SavedView:
    """A view ``principal`` may change: its own (analysts and above), or a shared one (owners and admins)."""
    view = saved_view_for(principal, view_id)
    if not principal.can_write or not (saved_view_owned_by(view, principal) or (view.shared and principal.can_manage)):
        raise PermissionDenied("Only its author changes a saved view; owners and admins change the shared ones too.")
    return view
