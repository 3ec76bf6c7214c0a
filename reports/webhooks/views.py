"""Console pages for webhooks under /o/<slug>/settings/webhooks/: owners and admins manage endpoints.

The list and its form are the signed webhooks'; an endpoint's page serves every notification
channel kind (``reports.notifications``): its delivery log, pause, resume, edit and delete.

Every view: access helper, form, one service (reports.webhooks.services), render or redirect.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render

from config.console import render_secret
from orgs.access import client_ip, managing_membership_for
from orgs.console import org_page, org_view
from reports.models import WebhookDelivery, WebhookEndpoint
from reports.notifications.forms import ChannelForm
from reports.webhooks import services

DELIVERIES_PAGE_SIZE = 25


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https",
                         help_text="Must lie in the organization's scope and the deployment's allowed networks.")
    description = forms.CharField(label="Description", max_length=200, required=False,
                                  help_text="What receives it, e.g. the SOAR intake.")
    events = forms.MultipleChoiceField(label="Events", choices=WebhookEndpoint.Event.choices,
                                       widget=forms.CheckboxSelectMultiple,
                                       initial=[WebhookEndpoint.Event.SESSION_FINISHED])
    min_severity = forms.ChoiceField(label="Minimum severity for new findings", initial="high",
                                     choices=[(s, s.capitalize()) for s in services.SEVERITIES])


class WebhookPauseForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=300, required=False,
                             help_text="Shown on the endpoint while it is paused.")


def _list_context(membership, **extra):
    return {"org": membership.org, "membership": membership,
            "endpoints": services.webhook_endpoint_list_for_org(org=membership.org, kinds=[WebhookEndpoint.Kind.WEBHOOK]),
            "form": extra.pop("form", None) or WebhookEndpointForm(), **extra}


def _detail_context(request, membership, endpoint, **extra):
    status = request.GET.get("status", "")
    if status not in WebhookDelivery.Status.values:
        status = ""
    deliveries = services.webhook_delivery_list(endpoint=endpoint, status=status)
    page = Paginator(deliveries, DELIVERIES_PAGE_SIZE).get_page(request.GET.get("page"))
    form = extra.pop("form", None) or ChannelForm(org=membership.org, kind=endpoint.kind,
                                                  initial=ChannelForm.initial_for(endpoint))
    return {"org": membership.org, "membership": membership, "endpoint": endpoint, "form": form,
            "pause_form": WebhookPauseForm(), "page": page, "status": status,
            "statuses": WebhookDelivery.Status.choices, **extra}


webhooks_list = org_page("reports/webhooks.html", _list_context, access=managing_membership_for)


@org_view("POST", access=managing_membership_for)
def webhook_create(request, membership):
    form = WebhookEndpointForm(request.POST)
    if form.is_valid():
        try:
            endpoint, secret = services.webhook_endpoint_create(
                org=membership.org, url=form.cleaned_data["url"], events=form.cleaned_data["events"],
                min_severity=form.cleaned_data["min_severity"], description=form.cleaned_data["description"],
                by=request.user, ip=client_ip(request))
        except services.WebhookError as exc:
            form.add_error(exc.field, str(exc))
        else:
            return render_secret(request, "reports/webhooks.html",
                                 _list_context(membership, new_endpoint=endpoint, new_secret=secret))
    return render(request, "reports/webhooks.html", _list_context(membership, form=form), status=400)


@org_view("GET", access=managing_membership_for)
def webhook_detail(request, membership, endpoint_id):
    """The endpoint and its delivery log; htmx filtering and paging get the log fragment alone."""
    endpoint = services.webhook_endpoint_for(membership, endpoint_id)
    context = _detail_context(request, membership, endpoint)
    if request.htmx and request.htmx.target == "webhook-deliveries":
        return render(request, "reports/partials/webhook_deliveries.html", context)
    return render(request, "reports/webhook_detail.html", context)


@org_view("POST", access=managing_membership_for)
def webhook_update(request, membership, endpoint_id):
    endpoint = services.webhook_endpoint_for(membership, endpoint_id)
    form = ChannelForm(request.POST, org=membership.org, kind=endpoint.kind)
    if form.is_valid():
        try:
            services.webhook_endpoint_update(endpoint=endpoint, **form.service_arguments(), by=request.user,
                                             ip=client_ip(request))
        except services.WebhookError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, "Webhook endpoint saved." if endpoint.kind == WebhookEndpoint.Kind.WEBHOOK
                             else "Channel saved.")
            return redirect("orgs:webhook_detail", slug=membership.org.slug, endpoint_id=endpoint.pk)
    endpoint.refresh_from_db()
    return render(request, "reports/webhook_detail.html", _detail_context(request, membership, endpoint, form=form),
                  status=400)


@org_view("POST", access=managing_membership_for)
def webhook_pause(request, membership, endpoint_id):
    endpoint = services.webhook_endpoint_for(membership, endpoint_id)
    form = WebhookPauseForm(request.POST)
    reason = (form.cleaned_data["reason"] if form.is_valid() else "") or f"Paused by {request.user.username}."
    paused = services.webhook_endpoint_pause(endpoint=endpoint, reason=reason, by=request.user, ip=client_ip(request))
    return _back_to_endpoint(request, endpoint, done=paused,
                             success="Webhook endpoint paused: new deliveries are held until it is resumed.",
                             nothing_done="The endpoint was already paused.")


@org_view("POST", access=managing_membership_for)
def webhook_resume(request, membership, endpoint_id):
    endpoint = services.webhook_endpoint_for(membership, endpoint_id)
    was_paused = endpoint.is_paused
    released = services.webhook_endpoint_resume(endpoint=endpoint, by=request.user, ip=client_ip(request))
    return _back_to_endpoint(request, endpoint, done=was_paused,
                             success=f"Webhook endpoint resumed; {released} held deliveries are on their way.",
                             nothing_done="The endpoint was not paused.")


@org_view("POST", access=managing_membership_for)
def webhook_delete(request, membership, endpoint_id):
    endpoint = services.webhook_endpoint_for(membership, endpoint_id)
    label = str(endpoint)
    services.webhook_endpoint_delete(endpoint=endpoint, by=request.user, ip=client_ip(request))
    if endpoint.kind == WebhookEndpoint.Kind.WEBHOOK:
        messages.success(request, f"Webhook endpoint {label} deleted.")
        return redirect("orgs:webhooks", slug=membership.org.slug)
    messages.success(request, f"Channel {label} deleted.")
    return redirect("orgs:notifications", slug=membership.org.slug)


@org_view("POST", access=managing_membership_for)
def webhook_redeliver(request, membership, endpoint_id, delivery_id):
    endpoint = services.webhook_endpoint_for(membership, endpoint_id)
    delivery = services.webhook_delivery_for(endpoint, delivery_id)
    queued = services.webhook_delivery_redeliver(delivery=delivery, by=request.user, ip=client_ip(request))
    return _back_to_endpoint(request, endpoint, done=queued,
                             success="The delivery is queued again, with the same id and body.",
                             nothing_done="Only a failed delivery can be sent again.")


def _back_to_endpoint(request, endpoint, *, done: bool, success: str, nothing_done: str):
    """The endpoint's page, saying what the action did, or why it had nothing to do (an info, not an error)."""
    if done:
        messages.success(request, success)
    else:
        messages.info(request, nothing_done)
    return redirect("orgs:webhook_detail", slug=endpoint.org.slug, endpoint_id=endpoint.pk)
