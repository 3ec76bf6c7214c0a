"""Console pages of an organization: dashboard, members and invitations, settings, API tokens, audit log.

Every view: access helper, form, one service, render or redirect.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from config.console import outcome_told, render_secret
from config.operations import WORKER_ALIVE_WITHIN
from orgs import services, windows
from orgs.access import (
    api_token_for,
    client_ip,
    invitation_for,
    managing_membership_for,
    member_for,
    membership_for,
    zone_for,
)
from orgs.console import org_page, org_view
from orgs.forms import (
    ApiTokenForm,
    AuditFilterForm,
    InvitationForm,
    InvitationSignupForm,
    MemberRoleForm,
    SettingsForm,
    ZoneForm,
    ZoneWindowsBudgetForm,
)
from orgs.models import Membership
from orgs.schedules import ScheduleError
from orgs.selectors import (
    api_token_list_for_org,
    audit_change_lines,
    audit_target_url,
    audit_csv_rows,
    audit_event_list,
    invitation_for_token,
    invitation_list_pending,
    membership_list_for_org,
    organization_list_for_user,
    schedule_describe,
    schedule_next_runs,
    zone_list_for_org,
    zone_queue_depths,
    zone_workers_alive,
)
from orgs.throttling import throttle
from orgs.zones import zone_create, zone_delete, zone_update

AUDIT_PAGE_SIZE = 50


@login_required
@require_GET
def home(request):
    org = organization_list_for_user(user=request.user).first()
    if org is not None:
        return redirect("orgs:dashboard", slug=org.slug)
    return render(request, "orgs/no_organization.html")


# -- members and invitations -------------------------------------------------------


def _members_context(membership: Membership, **extra):
    return {
        "org": membership.org,
        "membership": membership,
        "members": membership_list_for_org(org=membership.org),
        "invitations": invitation_list_pending(org=membership.org) if membership.can_manage else [],
        "role_form": MemberRoleForm(),
        "invite_form": InvitationForm(),
        **extra,
    }


members = org_page("orgs/members.html", _members_context)


@org_view("POST", access=managing_membership_for)
def member_change_role(request, membership, member_id):
    target = member_for(membership, member_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
        return redirect("orgs:members", slug=membership.org.slug)
    role = form.cleaned_data["role"]
    with outcome_told(request, success=f"{target.user.username} is now {role}."):
        services.membership_change_role(membership=target, role=role, by=membership, ip=client_ip(request))
    return redirect("orgs:members", slug=membership.org.slug)


@org_view("POST", access=managing_membership_for)
def member_remove(request, membership, member_id):
    target = member_for(membership, member_id)
    with outcome_told(request, success=f"{target.user.username} removed."):
        services.membership_remove(membership=target, by=membership, ip=client_ip(request))
    if target.user_id == request.user.id:
        return redirect("home")
    return redirect("orgs:members", slug=membership.org.slug)


@org_view("POST", access=managing_membership_for)
@throttle("invitation_create")
def invitation_create(request, membership):
    form = InvitationForm(request.POST)
    if form.is_valid():
        accept_url = request.build_absolute_uri(reverse("invitation_accept", args=["TOKEN"])).replace("TOKEN", "{token}")
        try:
            services.invitation_create(org=membership.org, email=form.cleaned_data["email"], role=form.cleaned_data["role"],
                                       by=membership, accept_url=accept_url, ip=client_ip(request))
        except ValidationError as error:
            form.add_error("role", error)
        else:
            # The same words whether or not an account exists for the address.
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect("orgs:members", slug=membership.org.slug)
    return render(request, "orgs/members.html", _members_context(membership, invite_form=form), status=400)


@org_view("POST", access=managing_membership_for)
def invitation_revoke(request, membership, invitation_id):
    invitation = invitation_for(membership, invitation_id)
    with outcome_told(request, success=f"Invitation to {invitation.email} revoked."):
        services.invitation_revoke(invitation=invitation, by=membership, ip=client_ip(request))
    return redirect("orgs:members", slug=membership.org.slug)


def _invitation_page(view):
    """A page behind an invitation link (GET and POST, throttled per person or address: the token is a secret
    worth guessing), called with the invitation of a usable token; any other token is answered with why."""

    @require_http_methods(["GET", "POST"])
    @throttle("invitation_token", methods=("GET", "POST"))
    @wraps(view)
    def with_invitation(request, token):
        invitation = invitation_for_token(token)
        if invitation is None:
            return render(request, "orgs/invitation_invalid.html", {"state": "unknown"}, status=404)
        if not invitation.is_pending:
            return render(request, "orgs/invitation_invalid.html", {"state": invitation.state}, status=410)
        return view(request, invitation, token)

    return with_invitation


@_invitation_page
def invitation_accept(request, invitation, token):
    """Shown to anyone holding the link; accepting needs an account (log in, or sign up here)."""
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            services.invitation_accept(invitation=invitation, user=request.user, ip=client_ip(request))
        except ValidationError as error:
            return render(request, "orgs/invitation_accept.html",
                          {"invitation": invitation, "errors": error.messages}, status=400)
        messages.success(request, f"Welcome to {invitation.org.name}.")
        return redirect("orgs:dashboard", slug=invitation.org.slug)
    return render(request, "orgs/invitation_accept.html", {"invitation": invitation, "token": token})


@_invitation_page
def invitation_signup(request, invitation, token):
    """A new account for the invitee; only reachable with a valid invitation token."""
    if request.user.is_authenticated:
        return redirect("invitation_accept", token=token)
    form = InvitationSignupForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            membership = services.invitation_signup(invitation=invitation, password=form.cleaned_data["password1"],
                                                    ip=client_ip(request))
        except ValidationError as error:
            form.add_error(None, error)
        else:
            auth_login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to {invitation.org.name}.")
            return redirect("orgs:dashboard", slug=invitation.org.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "orgs/invitation_signup.html", {"invitation": invitation, "form": form, "token": token},
                  status=status)


# -- settings ----------------------------------------------------------------------


def _preview(crontab: str, tz: str, windows_text: str | None = None, org=None) -> dict:
    """The next runs of a schedule, each with when its scan window lets it begin (the windows typed, else the
    organization's; windows that cannot be read yet are left out of the preview, the form says why)."""
    if not crontab:
        return {"preview_off": True}
    try:
        runs = schedule_next_runs(crontab=crontab, tz=tz)
    except ScheduleError as error:
        return {"preview_error": str(error)}
    try:
        ranges = (windows.parse_text(windows_text) if windows_text is not None
                  else windows.ranges_from_json(org.scan_windows if org is not None else []))
        window = windows.Window(ranges, tz)
    except windows.WindowError:
        window = windows.Window((), tz)
    return {"preview_runs": runs, "preview_windowed": [{"at": run, "opens": opens} for run, opens in window.runs_allowed(runs)],
            "preview_description": schedule_describe(crontab), "preview_timezone": tz,
            "preview_windows": window.describe() if not window.always else ""}


@org_view("GET", "POST", access=managing_membership_for)
def settings(request, membership):
    org = membership.org
    if request.method == "POST":
        form = SettingsForm(request.POST, org=org)
        if form.is_valid():
            try:
                services.organization_update_settings(org=org, by=membership, ip=client_ip(request), **form.cleaned_data)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, "Settings saved.")
                return redirect("orgs:settings", slug=membership.org.slug)
        crontab, tz = request.POST.get("schedule_crontab", "").strip(), request.POST.get("schedule_timezone", "UTC").strip()
        windows_text = request.POST.get("scan_windows", "")
    else:
        form = SettingsForm(initial=SettingsForm.initial_for(org), org=org)
        crontab, tz, windows_text = org.schedule_crontab, org.schedule_timezone, None
    context = {"org": org, "membership": membership, "form": form, "zones": zone_list_for_org(org=org),
               **_preview(crontab, tz, windows_text, org)}
    return render(request, "orgs/settings.html", context, status=400 if form.is_bound else 200)


@org_view("GET", access=managing_membership_for)
def schedule_preview(request, membership):
    """The next five runs of the crontab being typed, in the timezone being typed (htmx)."""
    crontab = " ".join(request.GET.get("schedule_crontab", "").split())
    tz = request.GET.get("schedule_timezone", "").strip() or membership.org.schedule_timezone
    windows_text = request.GET.get("scan_windows")
    return render(request, "orgs/partials/schedule_preview.html",
                  {"org": membership.org, **_preview(crontab, tz, windows_text, membership.org)})


@org_view("GET", "POST", access=managing_membership_for)
def zone_windows_budget(request, membership, zone_id):
    """A zone's scan windows and budget: the form the zone's page includes, and where it posts."""
    zone = zone_for(membership, zone_id)
    form = (ZoneWindowsBudgetForm(request.POST) if request.method == "POST"
            else ZoneWindowsBudgetForm(initial=ZoneWindowsBudgetForm.initial_for(zone)))
    if request.method == "POST" and form.is_valid():
        try:
            services.zone_set_windows_budget(zone=zone, by=membership, ip=client_ip(request), **form.cleaned_data)
        except ValidationError as error:
            form.add_error("scan_windows" if error.code == "scan_windows" else "max_new_connections_per_second",
                           error)
        else:
            messages.success(request, f"Scan windows and budget of zone {zone.name} saved.")
            return redirect("orgs:zone", slug=membership.org.slug, zone_id=zone.pk)
    return render(request, "orgs/zone_windows_budget.html", {"org": membership.org, "membership": membership,
                                                             "zone": zone, "form": form},
                  status=400 if form.is_bound else 200)


# -- API tokens --------------------------------------------------------------------


def _tokens_context(membership: Membership, **extra):
    return {"org": membership.org, "membership": membership, "tokens": api_token_list_for_org(org=membership.org),
            "form": ApiTokenForm(), **extra}


tokens = org_page("orgs/tokens.html", _tokens_context, access=managing_membership_for)


@org_view("POST", access=managing_membership_for)
@throttle("token_create")
def token_create(request, membership):
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return render(request, "orgs/tokens.html", _tokens_context(membership, form=form), status=400)
    token, secret = services.api_token_create(
        org=membership.org, name=form.cleaned_data["name"], access=form.cleaned_data["access"], by=request.user,
        expires_at=form.expires_at(), ip=client_ip(request),
    )
    return render_secret(request, "orgs/tokens.html", _tokens_context(membership, new_token=token, new_secret=secret))


@org_view("POST", access=managing_membership_for)
def token_revoke(request, membership, token_id):
    token = api_token_for(membership, token_id)
    services.api_token_revoke(token=token, by=request.user, ip=client_ip(request))
    messages.success(request, f"Token {token.name} ({token.prefix}…) revoked.")
    return redirect("orgs:tokens", slug=membership.org.slug)


# -- audit log ---------------------------------------------------------------------


@org_view("GET", access=managing_membership_for)
def audit(request, membership):
    org = membership.org
    form, events = _audit_events_filtered(request, membership)
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    for event in page.object_list:
        event.change_lines = audit_change_lines(event.changes, event.verb)
        event.target_url = audit_target_url(event, org.slug)
    return render(request, "orgs/audit.html", {"org": org, "membership": membership, "form": form, "page": page,
                                               "export_query": request.GET.urlencode()})


def _audit_events_filtered(request, membership):
    """The filter form (bound to the query string) and the events it selects: shared by the page and its export."""
    form = AuditFilterForm(request.GET or None, members=membership_list_for_org(org=membership.org),
                           tokens=api_token_list_for_org(org=membership.org))
    filters = form.cleaned_data if form.is_valid() else {}
    events = audit_event_list(org=membership.org, actor=filters.get("actor") or "",
                              verb=(filters.get("verb") or "").strip(), since=filters.get("since"),
                              until=filters.get("until"))
    return form, events


@org_view("GET", access=managing_membership_for)
def audit_export(request, membership):
    """The audit trail as CSV, with the page's filters, streamed row by row (flat memory at any size)."""
    form, events = _audit_events_filtered(request, membership)
    if form.errors:
        # The page shows the whole trail beside the error; a download must not pass for the filtered one.
        errors = "; ".join(f"{form.fields[name].label if name in form.fields else 'Filter'}: {' '.join(texts)}"
                           for name, texts in form.errors.items())
        return HttpResponseBadRequest(f"The export was not made: {errors}\n", content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(audit_csv_rows(events), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="audit-{membership.org.slug}-{stamp}.csv"'
    return response


# -- zones -------------------------------------------------------------------------


def _zone_form_error(form: ZoneForm, error: ValidationError) -> None:
    field = {"networks": "networks", "overlap": "networks", "hostnames": "hostnames", "name": "name"}.get(error.code)
    form.add_error(field, error)


def _zones_context(membership: Membership, **extra):
    zones = list(zone_list_for_org(org=membership.org))
    depths = zone_queue_depths(zones=zones)
    for zone in zones:
        zone.queue_depth = depths.get(zone.pk)
    return {"org": membership.org, "membership": membership, "zones": zones,
            "form": ZoneForm() if membership.can_manage else None, **extra}


_SHOWN_TO_MEMBERS_CHANGED_BY_MANAGERS = {"GET": membership_for, "POST": managing_membership_for}


@org_view("GET", "POST", access=_SHOWN_TO_MEMBERS_CHANGED_BY_MANAGERS)
def zones(request, membership):
    """The organization's zones; owners and admins add one here."""
    if request.method == "GET":
        return render(request, "orgs/zones.html", _zones_context(membership))
    form = ZoneForm(request.POST)
    if form.is_valid():
        try:
            zone = zone_create(org=membership.org, by=request.user, ip=client_ip(request), **form.cleaned_data)
        except ValidationError as error:
            _zone_form_error(form, error)
        else:
            messages.success(request, f"Zone {zone.name} added: its nodes were placed in it.")
            return redirect("orgs:zone", slug=membership.org.slug, zone_id=zone.pk)
    return render(request, "orgs/zones.html", _zones_context(membership, form=form), status=400)


@org_view("GET", "POST", access=_SHOWN_TO_MEMBERS_CHANGED_BY_MANAGERS)
def zone(request, membership, zone_id):
    """A zone: its networks, its nodes, its workers and queue; owners and admins change it here."""
    zone = zone_for(membership, zone_id)
    form = ZoneForm(initial=ZoneForm.initial_for(zone)) if membership.can_manage else None
    status = 200
    if request.method == "POST":
        form = ZoneForm(request.POST)
        if form.is_valid():
            try:
                zone_update(zone=zone, by=request.user, ip=client_ip(request), **form.cleaned_data)
            except ValidationError as error:
                _zone_form_error(form, error)
            else:
                messages.success(request, f"Zone {zone.name} saved.")
                return redirect("orgs:zone", slug=membership.org.slug, zone_id=zone.pk)
        status = 400
        zone.refresh_from_db()
    counted = zone_list_for_org(org=membership.org).get(pk=zone.pk)
    context = {"org": membership.org, "membership": membership, "zone": zone, "form": form,
               "nodes_count": counted.nodes_count, "workers": zone_workers_alive(zone=zone),
               "queue_depth": zone_queue_depths(zones=[zone]).get(zone.pk),
               "alive_within": int(WORKER_ALIVE_WITHIN.total_seconds()),
               "windows_form": ZoneWindowsBudgetForm(initial=ZoneWindowsBudgetForm.initial_for(zone))
               if membership.can_manage else None}
    return render(request, "orgs/zone.html", context, status=status)


@org_view("POST", access=managing_membership_for)
def zone_remove(request, membership, zone_id):
    zone = zone_for(membership, zone_id)
    zone_delete(zone=zone, by=request.user, ip=client_ip(request))
    messages.success(request, f"Zone {zone.name} deleted: its nodes went back to the zones that hold them, or to the "
                              "default zone.")
    return redirect("orgs:zones", slug=membership.org.slug)
