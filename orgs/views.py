"""Console pages for an organization: the dashboard and the members page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from nodes.selectors import dashboard_for_org
from orgs import services
from orgs.access import client_ip, managing_membership_for, membership_for
from orgs.forms import MemberAddForm, MemberRoleForm
from orgs.models import Membership
from orgs.selectors import membership_get, membership_list_for_org, organization_list_for_user, user_find


@login_required
@require_GET
def home(request):
    org = organization_list_for_user(user=request.user).first()
    if org is not None:
        return redirect("orgs:dashboard", slug=org.slug)
    return render(request, "orgs/no_organization.html")


@login_required
@require_GET
def dashboard(request, slug):
    membership = membership_for(request.user, slug)
    context = {"org": membership.org, "membership": membership, **dashboard_for_org(org=membership.org)}
    return render(request, "orgs/dashboard.html", context)


@login_required
@require_GET
def members(request, slug):
    membership = membership_for(request.user, slug)
    return render(request, "orgs/members.html", _members_context(membership, add_form=MemberAddForm()))


def _members_context(membership: Membership, **extra):
    return {
        "org": membership.org,
        "membership": membership,
        "members": membership_list_for_org(org=membership.org),
        "role_form": MemberRoleForm(),
        **extra,
    }


def _target_membership(membership: Membership, member_id: int) -> Membership:
    try:
        return membership_get(org=membership.org, membership_id=member_id)
    except Membership.DoesNotExist:
        raise Http404("No such member") from None


@login_required
@require_POST
def member_add(request, slug):
    membership = managing_membership_for(request.user, slug)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        user = user_find(identifier=form.cleaned_data["identifier"])
        if user is None:
            form.add_error("identifier", "No user with that username or e-mail. Ask an administrator to create the account first.")
        else:
            try:
                services.membership_add(
                    org=membership.org, user=user, role=form.cleaned_data["role"], by=membership, ip=client_ip(request)
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, f"{user.username} added as {form.cleaned_data['role']}.")
                return redirect("orgs:members", slug=slug)
    return render(request, "orgs/members.html", _members_context(membership, add_form=form), status=400)


@login_required
@require_POST
def member_change_role(request, slug, member_id):
    membership = managing_membership_for(request.user, slug)
    target = _target_membership(membership, member_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
        return redirect("orgs:members", slug=slug)
    try:
        services.membership_change_role(membership=target, role=form.cleaned_data["role"], by=membership, ip=client_ip(request))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{target.user.username} is now {form.cleaned_data['role']}.")
    return redirect("orgs:members", slug=slug)


@login_required
@require_POST
def member_remove(request, slug, member_id):
    membership = managing_membership_for(request.user, slug)
    target = _target_membership(membership, member_id)
    try:
        services.membership_remove(membership=target, by=membership, ip=client_ip(request))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{target.user.username} removed.")
    if target.user_id == request.user.id:
        return redirect("home")
    return redirect("orgs:members", slug=slug)
