"""Every write about organizations, members and API tokens. Each one is audited."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from orgs.audit import audit_record
from orgs.models import ApiToken, Membership, Organization, Role


@transaction.atomic
def organization_create(*, name: str, slug: str, owner=None, scope_networks=None, scope_hostnames=None) -> Organization:
    org = Organization.objects.create(
        name=name, slug=slug, scope_networks=list(scope_networks or []), scope_hostnames=list(scope_hostnames or [])
    )
    if owner is not None:
        Membership.objects.create(org=org, user=owner, role=Role.OWNER)
    audit_record(org=org, verb="organization.created", target=org, actor=owner)
    return org


def _owners_left(org, excluding: Membership) -> int:
    return Membership.objects.filter(org=org, role=Role.OWNER).exclude(pk=excluding.pk).count()


def _check_may_touch(*, by: Membership, target_role: str) -> None:
    # Admins manage everyone but owners; only an owner makes or unmakes an owner.
    if target_role == Role.OWNER and by.role != Role.OWNER:
        raise ValidationError("Only an owner can grant, change or remove the owner role.")


@transaction.atomic
def membership_add(*, org, user, role: str, by: Membership, ip: str | None = None) -> Membership:
    _check_may_touch(by=by, target_role=role)
    if Membership.objects.filter(org=org, user=user).exists():
        raise ValidationError(f"{user.username} is already a member of {org.name}.")
    membership = Membership.objects.create(org=org, user=user, role=role)
    audit_record(org=org, verb="membership.added", target=membership, changes={"role": role}, actor=by.user, ip=ip)
    return membership


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, by: Membership, ip: str | None = None) -> Membership:
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    _check_may_touch(by=by, target_role=membership.role)
    _check_may_touch(by=by, target_role=role)
    if membership.role == Role.OWNER and role != Role.OWNER and _owners_left(membership.org, membership) == 0:
        raise ValidationError("An organization keeps at least one owner.")
    old = membership.role
    if old == role:
        return membership
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        org=membership.org, verb="membership.role_changed", target=membership,
        changes={"role": [old, role]}, actor=by.user, ip=ip,
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, by: Membership, ip: str | None = None) -> None:
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    _check_may_touch(by=by, target_role=membership.role)
    if membership.role == Role.OWNER and _owners_left(membership.org, membership) == 0:
        raise ValidationError("An organization keeps at least one owner.")
    audit_record(
        org=membership.org, verb="membership.removed", target=membership,
        changes={"user": membership.user.username, "role": membership.role}, actor=by.user, ip=ip,
    )
    membership.delete()


@transaction.atomic
def api_token_create(
    *, org, name: str, access: str, by=None, expires_at: datetime | None = None, ip: str | None = None
) -> tuple[ApiToken, str]:
    """Create a token; the raw key is returned once and never stored."""
    key = ApiToken.generate_key()
    token = ApiToken.objects.create(
        org=org, name=name, access=access, created_by=by, expires_at=expires_at,
        prefix=key[: ApiToken.PREFIX_LENGTH], key_hash=ApiToken.hash_key(key),
    )
    audit_record(org=org, verb="api_token.created", target=token, changes={"access": access}, actor=by, ip=ip)
    return token, key


@transaction.atomic
def api_token_revoke(*, token: ApiToken, by=None, ip: str | None = None) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(org=token.org, verb="api_token.revoked", target=token, actor=by, ip=ip)
    return token
