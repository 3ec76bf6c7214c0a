"""Console pages for interventions: the queue, one intervention, and the four actions done in place.

An action posted by htmx answers with the intervention's row (swapped in place), the
navigation's open count and the flash messages out of band; without JavaScript the same
form posts and is redirected back to where it came from.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme

from interventions import services
from interventions.access import intervention_for
from interventions.forms import InterventionActionForm, InterventionFilterForm
from interventions.models import Intervention
from interventions.selectors import intervention_queue_for_org
from orgs.access import writable_membership_for
from orgs.concurrency import StaleVersionError
from orgs.console import org_view

# Rows fetch their action forms on demand (intervention_actions): most rows are only read, and rendering
# every row's forms would weigh on the whole list.
PAGE_SIZE = 25


@org_view("GET")
def intervention_list(request, membership):
    form = InterventionFilterForm(request.GET)
    criteria = form.criteria()
    page = Paginator(intervention_queue_for_org(org=membership.org, **criteria), PAGE_SIZE).get_page(
        request.GET.get("page"))
    context = {"org": membership.org, "membership": membership, "form": form, "page": page,
               "filtered": any(criteria.values()), "next": request.get_full_path()}
    partial = request.htmx and not request.htmx.history_restore_request
    response = render(request, "interventions/partials/queue.html" if partial else "interventions/list.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@org_view("GET")
def intervention_detail(request, membership, intervention_id):
    intervention = intervention_for(membership, intervention_id)
    return render(request, "interventions/detail.html",
                  {"org": membership.org, "membership": membership, "i": intervention})


@org_view("GET", access=writable_membership_for)
def intervention_actions(request, membership, intervention_id):
    """A queue row's action forms, fetched when the person opens the row's actions (htmx GET).

    Only people who may act get the forms (viewers 403); the forms come back to the queue page
    the person is on (htmx's current URL), so filters and page survive the action.
    """
    intervention = intervention_for(membership, intervention_id)
    current = request.htmx.current_url if request.htmx else ""
    context = {"org": membership.org, "membership": membership, "i": intervention, "pk": str(intervention.pk),
               "next": _safe_next(request, membership.org.slug, _path_of(current))}
    response = render(request, "interventions/partials/row_actions.html", context)
    patch_vary_headers(response, ("HX-Request", "HX-Current-URL"))
    return response


def _path_of(url: str | None) -> str:
    """The path and query of an absolute URL (htmx sends the page's full address)."""
    if not url:
        return ""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@org_view("POST", access=writable_membership_for)
def intervention_act(request, membership, intervention_id, action: str):
    """Acknowledge, resolve, dismiss or retry (``action``, named by the URL): the four share their
    steps: access, form, one service, answer (the row in place, or a redirect)."""
    intervention = intervention_for(membership, intervention_id)
    form = InterventionActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "This action needs the version of the intervention you saw; reload the page.")
        return _answer(request, membership, intervention)
    by, version, note = request.user, form.cleaned_data["version"], form.cleaned_data["note"]
    try:
        if action == "acknowledge":
            services.intervention_acknowledge(intervention=intervention, by=by, note=note, expected_version=version)
            messages.success(request, f"Intervention #{intervention.pk} acknowledged{_noted(note)}.")
        elif action == "resolve":
            services.intervention_resolve(intervention=intervention, by=by, note=note, expected_version=version)
            messages.success(request, f"Intervention #{intervention.pk} resolved{_noted(note)}.")
        elif action == "dismiss":
            services.intervention_dismiss(intervention=intervention, by=by, note=note, expected_version=version)
            messages.success(request, f"Intervention #{intervention.pk} dismissed{_noted(note)}.")
        else:
            services.intervention_retry(intervention=intervention, by=by, expected_version=version)
            messages.success(request, f"Intervention #{intervention.pk}: {_requeued(intervention)} It resolves "
                                      "itself when that work succeeds.")
    except StaleVersionError as error:
        fresh = intervention_for(membership, intervention.pk)
        messages.warning(request, f"Intervention #{intervention.pk} changed since you loaded it: it is now "
                                  f"{fresh.get_state_display().lower()}. Nothing was done; here is its current state.")
        return _answer(request, membership, fresh, stale=error)
    except services.InterventionTransitionError as error:
        messages.error(request, str(error))
    return _answer(request, membership, intervention_for(membership, intervention.pk))


def _noted(note: str) -> str:
    """The note is optional; a person who left it empty is told so rather than left to wonder."""
    return " with your note" if note else ", without a note"


def _requeued(intervention: Intervention) -> str:
    """What a retry put back in the queue, in the operator's words."""
    if intervention.job_id is not None and intervention.job is not None:
        job = intervention.job
        return (f"re-queued the {job.scanner} job on {job.node.address} (job #{job.pk}) "
                f"of session #{job.session_id}.")
    if intervention.session is not None:
        session = intervention.session
        return f"re-ran the {session.get_stage_display().lower()} stage of session #{session.pk}."
    return "re-queued its work."


def _answer(request, membership, intervention: Intervention, *, stale=None):
    if request.htmx:
        # Always 200: htmx swaps only 2xx answers by default, and a conflict must show the current row.
        context = {"org": membership.org, "membership": membership, "i": intervention, "stale": stale,
                   "next": _next_url(request, membership.org.slug)}
        return render(request, "interventions/partials/action_response.html", context)
    return redirect(_next_url(request, membership.org.slug))


def _next_url(request, slug: str) -> str:
    return _safe_next(request, slug, request.POST.get("next") or "")


def _safe_next(request, slug: str, candidate: str) -> str:
    default = f"/o/{slug}/interventions/"
    if candidate.startswith(default) and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return candidate
    return default
