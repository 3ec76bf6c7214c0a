"""Every write about organizations, members and API tokens. Each one is audited."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from orgs import budgets, windows
from orgs.audit import audit_record
from orgs.events import SETTINGS_CHANGED, event_publish
from orgs.models import ApiToken, Invitation, Membership, Organization, Role, Zone, secret_digest, secret_new


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
    *, org, name: str, access: str, by=None, expires_at: datetime | None = None, ip: str | None = None,
    via: str = "",
) -> tuple[ApiToken, str]:
    """Create a token; the raw key is returned once and never stored. ``via`` names a tool (a command)."""
    key = secret_new(prefix="wp_")
    token = ApiToken.objects.create(
        org=org, name=name, access=access, created_by=by, expires_at=expires_at,
        prefix=key[: ApiToken.PREFIX_LENGTH], key_hash=secret_digest(key),
    )
    changes = {"access": access, **({"via": via} if via else {})}
    audit_record(org=org, verb="api_token.created", target=token, changes=changes, actor=by, ip=ip)
    return token, key


@transaction.atomic
def api_token_revoke(*, token: ApiToken, by=None, ip: str | None = None) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(org=token.org, verb="api_token.revoked", target=token, actor=by, ip=ip)
    return token


# -- settings ----------------------------------------------------------------------

SLA_FIELDS = ("sla_p1_days", "sla_p2_days", "sla_p3_days", "sla_p4_days")
SLA_DAYS_MIN, SLA_DAYS_MAX = 1, 3650  # a day to ten years
SETTINGS_FIELDS = ("scope_networks", "scope_hostnames", "schedule_crontab", "schedule_timezone", "default_profile",
                   "max_concurrent_jobs", "node_cooldown_minutes", "potential_threshold", "scan_windows", *SLA_FIELDS)


def sla_days_check(values: dict) -> None:
    """A ``ValidationError`` naming the first SLA that is not a whole number of days from 1 to 3,650."""
    for n, field in enumerate(SLA_FIELDS, start=1):
        value = values.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not SLA_DAYS_MIN <= value <= SLA_DAYS_MAX:
            raise ValidationError(f"The SLA for P{n} is {value!r} days: give a whole number of days from "
                                  f"{SLA_DAYS_MIN} to {SLA_DAYS_MAX:,}.", code="sla_days")


def _audit_value(value):
    # Profiles are recorded by slug: the audit trail stays readable after the row changes.
    return getattr(value, "slug", value)


@transaction.atomic
def organization_update_settings(*, org: Organization, by, ip: str | None = None, **values) -> Organization:
    """Change any of the organization's settings; one audit event with before/after of what changed.

    A changed schedule re-syncs its beat row in the same transaction, so beat never runs
    a schedule the organization no longer has. The apps above hear of the change
    (``SETTINGS_CHANGED``): a new certainty threshold re-scores the organization, a new SLA moves
    the due dates of its open findings.
    """
    from orgs.schedules import ScheduleError, organization_schedule_sync

    unknown = set(values) - set(SETTINGS_FIELDS)
    if unknown:
        raise TypeError(f"not a setting: {', '.join(sorted(unknown))}")
    sla_days_check(values)
    threshold = values.get("potential_threshold")
    if threshold is not None and not 0 <= threshold <= 1:
        raise ValidationError("The certainty threshold is a number between 0 and 1.")
    if "scan_windows" in values:
        try:
            values["scan_windows"] = windows.to_json(windows.ranges_from_json(values["scan_windows"]))
        except windows.WindowError as error:
            raise ValidationError(f"Scan windows: {error}") from None
    org = Organization.objects.select_for_update(of=("self",)).select_related("default_profile").get(pk=org.pk)
    changes = {}
    for field, value in values.items():
        before = getattr(org, field)
        if before != value:
            changes[field] = [_audit_value(before), _audit_value(value)]
            setattr(org, field, value)
    if not changes:
        return org
    org.save(update_fields=list(changes))
    if "schedule_crontab" in changes or "schedule_timezone" in changes:
        try:
            organization_schedule_sync(org=org)
        except ScheduleError as error:
            # Raised inside the transaction: the settings roll back with the beat row.
            raise ValidationError(str(error)) from None
    actor = getattr(by, "user", by)
    audit_record(org=org, verb="organization.settings_changed", target=org, changes=changes, actor=actor, ip=ip)
    event_publish(SETTINGS_CHANGED, org=org, changes=changes)
    return org


# -- zones: scan windows and budget ------------------------------------------------


@transaction.atomic
def zone_set_windows_budget(*, zone: Zone, scan_windows, max_new_connections_per_second, by,
                            ip: str | None = None) -> Zone:
    """A zone's own scan windows (empty: the organization's) and its budget of new connections per second for
    all its workers (None: no limit). Refused with the reason, changing nothing, when either cannot be read."""
    try:
        scan_windows = windows.to_json(windows.ranges_from_json(scan_windows or []))
    except windows.WindowError as error:
        raise ValidationError(f"Scan windows: {error}", code="scan_windows") from None
    rate = budgets.new_per_second_clean(max_new_connections_per_second)
    zone = Zone.objects.select_for_update().get(pk=zone.pk)
    changes = {}
    for field, value in (("scan_windows", scan_windows), ("max_new_connections_per_second", rate)):
        if getattr(zone, field) != value:
            changes[field] = [getattr(zone, field), value]
            setattr(zone, field, value)
    if changes:
        zone.save(update_fields=list(changes))
        audit_record(org=zone.org, verb="zone.windows_budget_changed", target=zone, changes=changes,
                     actor=getattr(by, "user", by), ip=ip)
    return zone


# -- invitations -------------------------------------------------------------------


@transaction.atomic
def invitation_create(
    *, org: Organization, email: str, role: str, by: Membership, accept_url: str, ip: str | None = None
) -> tuple[Invitation, str]:
    """Invite ``email``; the e-mail with the link leaves after commit. Returns the row and the raw token.

    Nothing here looks at whether an account exists for the address: the inviter learns
    nothing about other tenants' users, and nobody joins without following the link.
    ``accept_url`` is the absolute URL with ``{token}`` in place of the token.
    """
    _check_may_touch(by=by, target_role=role)
    email = email.strip().lower()
    # A fresh invitation replaces a pending one to the same address: one live link per person.
    for old in Invitation.objects.pending().select_for_update().filter(org=org, email=email):
        old.revoked_at = timezone.now()
        old.save(update_fields=["revoked_at"])
        audit_record(org=org, verb="invitation.revoked", target=old, changes={"reason": "replaced"},
                     actor=by.user, ip=ip)
    token = secret_new()
    invitation = Invitation.objects.create(
        org=org, email=email, role=role, token_hash=secret_digest(token), invited_by=by.user,
        expires_at=timezone.now() + timedelta(days=Invitation.VALID_DAYS),
    )
    audit_record(org=org, verb="invitation.created", target=invitation, changes={"email": email, "role": role},
                 actor=by.user, ip=ip)
    link = accept_url.replace("{token}", token)
    inviter = by.user.get_full_name() or by.user.username
    subject = f"{inviter} invites you to {org.name} on Watchpost"
    body = (f"{inviter} invites you to join the organization {org.name} on Watchpost as {role}.\n\n"
            f"Accept the invitation here (valid for {Invitation.VALID_DAYS} days, usable once):\n{link}\n\n"
            "If you did not expect this e-mail, ignore it: nothing happens unless you follow the link.\n")
    transaction.on_commit(lambda: send_mail(subject, body, None, [email]))
    return invitation, token


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user, ip: str | None = None) -> Membership:
    """The invitee joins with the invited role. Single use: a second accept is refused."""
    invitation = Invitation.objects.select_for_update().select_related("org").get(pk=invitation.pk)
    if not invitation.is_pending:
        raise ValidationError(f"This invitation is {invitation.state} and can no longer be used.")
    org = invitation.org
    if Membership.objects.filter(org=org, user=user).exists():
        raise ValidationError(f"You are already a member of {org.name}.")
    membership = Membership.objects.create(org=org, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(org=org, verb="invitation.accepted", target=invitation,
                 changes={"email": invitation.email, "user": user.username}, actor=user, ip=ip)
    audit_record(org=org, verb="membership.added", target=membership,
                 changes={"role": invitation.role, "invitation": invitation.pk}, actor=user, ip=ip)
    return membership


ACCOUNT_EXISTS = "An account already uses {email}: log in with it to accept the invitation."


@transaction.atomic
def invitation_signup(*, invitation: Invitation, password: str, ip: str | None = None) -> Membership:
    """A visitor with a valid invitation creates an account and joins.

    The account's name is the invited e-mail address (lower-cased): the visitor never chooses a
    name, so sign-up can never answer that a name is taken, in this organization, another one or
    anywhere (a name oracle across tenants). An address that already has an account is told to
    log in; that speaks only of the address the link was mailed to, which its reader owns.
    """
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not locked.is_pending:
        raise ValidationError(f"This invitation is {locked.state} and can no longer be used.")
    User = get_user_model()
    name = locked.email.strip().lower()
    if len(name) > User._meta.get_field("username").max_length:
        raise ValidationError(f"{name} is too long to name an account; ask for an invitation to a shorter address.")
    if User.objects.filter(Q(username__iexact=name) | Q(email__iexact=name)).exists():
        raise ValidationError(ACCOUNT_EXISTS.format(email=name))
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=name, email=name, password=password)
    except IntegrityError:  # the same address signed up a moment ago
        raise ValidationError(ACCOUNT_EXISTS.format(email=name)) from None
    audit_record(org=invitation.org, verb="user.signed_up", target=user, changes={"email": user.email},
                 actor=user, ip=ip)
    return invitation_accept(invitation=locked, user=user, ip=ip)


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, by: Membership, ip: str | None = None) -> Invitation:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    _check_may_touch(by=by, target_role=invitation.role)
    if invitation.is_pending:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(org=invitation.org, verb="invitation.revoked", target=invitation,
                     changes={"email": invitation.email}, actor=by.user, ip=ip)
    return invitation
