"""Who is calling the API, for which organization, with which role.

The API is organization-scoped. A bearer token belongs to one organization and acts with
a role derived from its access: a ``read`` token is a viewer, a ``read_write`` token an
analyst (it starts scans, triages, acts on interventions; it never manages members,
tokens or settings). A console user calling with their session names the organization
with the ``X-Watchpost-Org: <slug>`` header (or ``?org=<slug>``); a user with a single
membership may omit it. Their membership's role applies.

The resulting :class:`ApiPrincipal` has an ``org`` like a ``Membership``, so the access
helpers (``node_for(principal, id)``...) work on it unchanged: another organization's
object is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404
from rest_framework import exceptions, permissions

from orgs.models import ApiToken, Membership, Organization, Role, RoleRights

ORG_HEADER = "HTTP_X_WATCHPOST_ORG"
ORG_QUERY = "org"


@dataclass(frozen=True, slots=True)
class ApiPrincipal(RoleRights):
    org: Organization
    role: str
    token: ApiToken | None = None
    user: object | None = None  # the console user (session auth); None for a token

    @property
    def can_read_audit(self) -> bool:
        """Owners and admins; of tokens, only read_write ones (a read token is a viewer, not an admin)."""
        if self.token is not None:
            return self.token.can_write
        return self.can_manage

    @property
    def key(self) -> str:
        """Who this is, for throttling and idempotency keys: one key space per token or user."""
        return f"token:{self.token.pk}" if self.token is not None else f"user:{self.user.pk}"

    @property
    def actor(self):
        """What services take as ``by``: the user, or None for a token (which they take as ``token=``)."""
        return self.user


def principal_for(request) -> ApiPrincipal:
    """The caller's principal; 401 when anonymous, 404 for an organization the user is not in."""
    cached = getattr(request, "_watchpost_principal", None)
    if cached is not None:
        return cached
    token = request.auth if isinstance(request.auth, ApiToken) else None
    if token is not None:
        role = Role.ANALYST if token.can_write else Role.VIEWER
        principal = ApiPrincipal(org=token.org, role=role, token=token)
    elif request.user is not None and request.user.is_authenticated:
        principal = _session_principal(request)
    else:
        raise exceptions.NotAuthenticated("Send 'Authorization: Bearer <token>' (or log in to the console).")
    request._watchpost_principal = principal
    return principal


def organization_rows(view, model):
    """``model``'s rows of the caller's organization: what a viewset lists and finds by id.

    None for drf-spectacular, which builds the schema with no caller (``swagger_fake_view``).
    """
    if getattr(view, "swagger_fake_view", False):
        return model.objects.none()
    return model.objects.filter(org=principal_for(view.request).org)


def _session_principal(request) -> ApiPrincipal:
    slug = request.META.get(ORG_HEADER) or request.query_params.get(ORG_QUERY)
    memberships = Membership.objects.select_related("org").filter(user=request.user)
    if slug:
        membership = memberships.filter(org__slug=slug).first()
        if membership is None:
            raise Http404("No such organization")
    else:
        found = list(memberships[:2])
        if len(found) != 1:
            raise exceptions.ValidationError(
                {"org": ["Name the organization: send the 'X-Watchpost-Org: <slug>' header or '?org=<slug>'."]}
            )
        membership = found[0]
    return ApiPrincipal(org=membership.org, role=membership.role, user=request.user)


class OrganizationMember(permissions.BasePermission):
    """The default for every API view: a principal is required; writes need a writing role."""

    message = "Your access to this organization is read-only."

    def has_permission(self, request, view) -> bool:
        principal = principal_for(request)
        if request.method in permissions.SAFE_METHODS:
            return True
        if not principal.can_write:
            if principal.token is not None:
                raise exceptions.PermissionDenied("This token is read-only; a read_write token is needed to write.")
            raise exceptions.PermissionDenied("Your role in this organization is read-only.")
        return True


class CanReadAudit(permissions.BasePermission):
    message = "Only owners and admins (or a read_write token) read the audit log."

    def has_permission(self, request, view) -> bool:
        return principal_for(request).can_read_audit
