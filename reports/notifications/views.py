"""Console pages for notifications under /o/<slug>/settings/notifications/.

The channels page is an organization setting: owners and admins (as webhooks). A channel opens on
the endpoint page of ``reports.webhooks.views`` (its delivery log, pause, resume, edit, delete),
which serves every kind. The digest page is each member's own setting, whatever their role.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render

from config.console import render_secret
from orgs.access import client_ip, managing_membership_for
from orgs.console import org_page, org_view
from orgs.models import Membership
from reports.notifications.digest import digest_for, due_within
from reports.notifications.forms import ChannelForm, DigestForm
from reports.notifications.services import membership_digest_set
from reports.webhooks import services as channels


def _page_context(membership, **extra):
    org = membership.org
    return {"org": org, "membership": membership,
            "channels": channels.webhook_endpoint_list_for_org(org=org).prefetch_related("email_members"),
            "members": Membership.objects.filter(org=org).select_related("user").order_by("user__username"),
            "form": extra.pop("form", None) or ChannelForm(org=org), **extra}


notifications_page = org_page("reports/notifications.html", _page_context, access=managing_membership_for)


@org_view("POST", access=managing_membership_for)
def notification_channel_create(request, membership):
    form = ChannelForm(request.POST, org=membership.org)
    if form.is_valid():
        try:
            endpoint, secret = channels.webhook_endpoint_create(
                org=membership.org, kind=form.cleaned_data["kind"], **form.service_arguments(),
                by=request.user, ip=client_ip(request))
        except channels.WebhookError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            if secret:  # a signed webhook: its secret is shown once, on this response only
                return render_secret(request, "reports/notifications.html",
                                     _page_context(membership, new_endpoint=endpoint, new_secret=secret))
            messages.success(request, f"Channel {endpoint} added.")
            return redirect("orgs:notifications", slug=membership.org.slug)
    return render(request, "reports/notifications.html", _page_context(membership, form=form), status=400)


@org_view("GET", "POST")
def notification_digest(request, membership):
    """The member's own daily digest: what it would say today, and the switch."""
    if request.method == "POST":
        form = DigestForm(request.POST)
        form.is_valid()  # a missing box is "off"; nothing else can be wrong
        enabled = form.cleaned_data.get("enabled", False)
        membership_digest_set(membership=membership, enabled=enabled, by=request.user, ip=client_ip(request))
        messages.success(request, "Daily digest turned on." if enabled else "Daily digest turned off.")
        return redirect("orgs:notification_digest", slug=membership.org.slug)
    digest = digest_for(membership=membership)
    return render(request, "reports/notification_digest.html", {
        "org": membership.org, "membership": membership, "digest": digest, "days": due_within().days,
        "form": DigestForm(initial={"enabled": membership.digest_enabled})})
