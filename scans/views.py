"""Console pages of the scans app: the organization's dashboard, sessions (list, start, detail with live progress, cancel) and
findings (list with filters, detail, triage one at a time and in bulk); "Scan this node now" on a
node's page, which starts a session.

Each view: an access helper, a form, one service, render or redirect. htmx requests get the
page's own fragment (``templates/scans/partials/``).
"""

from __future__ import annotations

import dataclasses
import json

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from config.console import outcome_told
from nodes.access import node_for
from nodes.models import Node
from orgs.access import client_ip, membership_for, writable_membership_for
from orgs.concurrency import StaleVersionError
from orgs.console import org_page, org_view
from scans.access import (
    finding_for,
    import_request_for,
    saved_view_for,
    saved_view_list_for,
    session_for,
    writable_saved_view_for,
)
from scans.fields import FINDING_ROW
from scans.findings import remediation
from scans.findings.charts import finding_charts
from scans.findings.export import KINDS as EXPORT_KINDS
from scans.findings.export import export_response
from scans.findings.import_requests import import_formats, import_request_create
from scans.findings.priority import PRIORITIES
from scans.findings.saved_views import saved_view_create, saved_view_delete
from scans.findings.triage import (
    BULK_TRIAGE_LIMIT,
    finding_confirm,
    finding_dismiss,
    finding_triage,
    findings_matching_count,
    findings_triage_bulk,
)
from scans.forms import (
    ImportUploadForm,
    SCOPE_NODES,
    SCOPE_TAG,
    AssignForm,
    BulkRemediationForm,
    BulkTriageForm,
    CommentForm,
    TicketForm,
    CertaintyForm,
    GroupTriageForm,
    SavedViewForm,
    SessionStartForm,
    TriageForm,
    triage_actions_for,
)
from scans.models import SEVERITIES, Finding, ScanSession
from scans.pipeline.profiles import DEFAULT_PROFILE
from scans.pipeline.sessions import SessionError, session_cancel, session_start
from scans.pipeline.windows import session_window_text
from scans.pipeline.zones import session_zones_waiting
from scans.selectors import (
    COUNT_CAP,
    assignee_choices,
    finding_comments,
    FINDING_SORTS,
    UNSORTABLE,
    dashboard_for_org,
    finding_detail,
    finding_filter_errors,
    finding_filter_problems,
    finding_filters_from,
    finding_group_list_for_org,
    finding_list_params,
    finding_page,
    finding_severity_counts,
    finding_trends_for_org,
    import_requests_for_org,
    node_tags_for_org,
    profile_choices_for_org,
    running_sessions_for_org,
    session_finding_changes,
    session_job_counts,
    session_jobs,
    session_list_for_org,
    session_stages,
    session_targets_for,
)

SESSIONS_PER_PAGE = 25
IMPORTS_PER_PAGE = 25
MULTIPART_ENVELOPE = 64 * 1024  # the form's fields and boundaries around an upload
JOBS_PER_PAGE = 25
FINDINGS_PER_PAGE = 50
GROUPS_PER_PAGE = 50
MAX_SELECTED_NODES = 500  # a selection beyond this is a tag or "every enabled node" (Django caps a request at 1,000 fields)
DONE = {"false_positive": "marked a false positive", "risk_accepted": "accepted as a risk", "open": "reopened"}
CERTAINTY_DONE = {"confirm": "confirmed: it counts in grades, scores and reports",
                  "dismiss": "dismissed as a false positive"}


# -- dashboard ---------------------------------------------------------------------


@org_view("GET")
def dashboard(request, membership):
    data = dashboard_for_org(org=membership.org, user=request.user)
    # The trend charts' sessions include the last finished one: "since the last session" reads it from there.
    trends = finding_trends_for_org(org=membership.org)
    # The navigation's count is the same number: reuse it rather than count twice.
    context = {"org": membership.org, "membership": membership, "nav_open_interventions": data["open_intervention_count"],
               **data, "last_session": trends["last_session"], "charts": finding_charts(trends),
               **running_sessions_for_org(org=membership.org)}
    return render(request, "scans/dashboard.html", context)


@org_view("GET")
def dashboard_running(request, membership):
    """The running-sessions fragment, polled every 2 s while a session runs; the idle one stops the polling."""
    context = {"org": membership.org, "membership": membership, "polled": True,
               **running_sessions_for_org(org=membership.org)}
    return render(request, "scans/partials/running_sessions.html", context)


# -- sessions ------------------------------------------------------------------------


@org_view("GET")
def session_list(request, membership):
    page = Paginator(session_list_for_org(org=membership.org), SESSIONS_PER_PAGE).get_page(request.GET.get("page"))
    for session in page.object_list:
        session.duration_seconds = _duration(session)
    context = {"org": membership.org, "membership": membership, "page": page}
    return render(request, "scans/session_list.html", context)


def _session_form(membership, data=None, initial=None, node_ids=()):
    org = membership.org
    # The nodes sent, to show them ticked; an id naming none of the organization's is refused by session_targets_for.
    nodes = Node.objects.filter(org=org, pk__in=list(node_ids)).order_by("address") if node_ids else []
    form = SessionStartForm(data, initial=initial, profiles=profile_choices_for_org(org=org),
                            tags=node_tags_for_org(org=org), nodes=nodes, may_override=membership.can_manage)
    if data is not None and len(node_ids) > MAX_SELECTED_NODES:
        form.add_error(None, f"{len(node_ids):,} nodes selected: pick at most {MAX_SELECTED_NODES:,} here, "
                             "or scan a tag or every enabled node.")
    return form


def _node_ids(values) -> list[int]:
    return list(dict.fromkeys(int(v) for v in values if str(v).isdigit() and len(str(v)) < 19))


@org_view("GET", "POST", access=writable_membership_for)
def session_new(request, membership):
    org = membership.org
    if request.method == "GET":
        # The nodes page sends its selection as ?node=<id>&node=<id>.
        node_ids = _node_ids(request.GET.getlist("node"))
        if len(node_ids) > MAX_SELECTED_NODES:
            messages.warning(request, f"{len(node_ids):,} nodes selected: the first {MAX_SELECTED_NODES:,} are "
                                      "ticked. To scan more, scan a tag or every enabled node.")
            node_ids = node_ids[:MAX_SELECTED_NODES]
        initial = {"profile": org.default_profile.slug if org.default_profile_id else DEFAULT_PROFILE,
                   "scope": SCOPE_NODES if node_ids else "all", "node": node_ids}
        form = _session_form(membership, initial=initial, node_ids=node_ids)
        return render(request, "scans/session_new.html", {"org": org, "membership": membership, "form": form})

    form = _session_form(membership, data=request.POST, node_ids=_node_ids(request.POST.getlist("node")))
    if form.is_valid():
        data = form.cleaned_data
        scope = data["scope"]
        try:
            targets = session_targets_for(org=org, tag=data["tag"] if scope == SCOPE_TAG else None,
                                          node_ids=data["node"] if scope == SCOPE_NODES else None)
        except ValidationError as error:
            form.add_error("tag" if scope == SCOPE_TAG else "node", error)
        if form.is_valid():
            try:
                session = session_start(org=org, trigger=ScanSession.Trigger.CONSOLE, requested_by=request.user,
                                        targets=targets, profile=data["profile"],
                                        outside_window=data.get("outside_window", False), rights=membership)
            except SessionError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, f"Session {session.pk} started.")
                return redirect("scans:session_detail", slug=membership.org.slug, session_id=session.pk)
    return render(request, "scans/session_new.html", {"org": org, "membership": membership, "form": form},
                  status=400)


def _duration(session: ScanSession) -> float | None:
    if session.started_at is None:
        return None
    return ((session.finished_at or timezone.now()) - session.started_at).total_seconds()


def _progress_context(session: ScanSession) -> dict:
    stages = []
    timings = session.stage_timings or {}
    for stage in session_stages(session):
        state = stage.state
        # A session that ended before "done" (failed or cancelled) stopped at its current stage.
        if session.is_finished and state == "current":
            state = "failed"
        # A queued session has not started its first stage yet: the stage waits, as the status says.
        elif session.status == ScanSession.Status.QUEUED and state == "current":
            state = "queued"
        entry = timings.get(stage.name) or {}
        stages.append({"name": stage.name, "label": stage.label, "state": state, "done": stage.done,
                       "total": stage.total, "seconds": entry.get("seconds"),
                       "started_at": entry.get("started_at")})
    return {"session": session, "stages": stages, "duration_seconds": _duration(session)}


def _detail_context(request, membership, session) -> dict:
    """Everything on the session page that changes while the session runs: the page renders it
    once, the polled fragment renders it again (the same template), so nothing goes stale."""
    job_counts = session_job_counts(session=session)
    paginator = Paginator(session_jobs(session=session), JOBS_PER_PAGE)
    # The grouped counts already add up to every job: no second COUNT(*) for the paginator.
    paginator.count = sum(group["total"] for group in job_counts.values())
    jobs = paginator.get_page(request.GET.get("jobs_page"))
    return {"org": membership.org, "membership": membership, "jobs": jobs, "job_counts": job_counts,
            "window_text": session_window_text(session),
            "nodes_url": f"/o/{membership.org.slug}/nodes/", "changes": session_finding_changes(session=session),
            "zones_waiting": session_zones_waiting(session), **_progress_context(session)}


@org_view("GET")
def session_detail(request, membership, session_id, live_only=False):
    """The session's page; with ``live_only`` (its ``progress/`` address) the page's whole live part alone, the
    fragment it polls: that carries ``hx-trigger="every 2s"`` only while the session runs, so the finished
    fragment stops the polling."""
    session = session_for(membership, session_id)
    template = "scans/partials/session_live.html" if live_only else "scans/session_detail.html"
    return render(request, template, _detail_context(request, membership, session))


@org_view("POST", access=writable_membership_for)
def session_cancel_view(request, membership, session_id):
    session = session_for(membership, session_id)
    with outcome_told(request, success=f"Session {session.pk}: cancelling; running jobs end on their own.",
                      refusals=(SessionError,)):
        session_cancel(session=session, by=request.user)
    return redirect("scans:session_detail", slug=membership.org.slug, session_id=session.pk)


@org_view("POST", access=writable_membership_for)
def node_scan(request, membership, node_id):
    """Start a console session over this one node, then follow it on the session's page."""
    node = node_for(membership, node_id)
    try:
        session = session_start(org=membership.org, trigger=ScanSession.Trigger.CONSOLE, requested_by=request.user,
                                targets=[node.address])
    except SessionError as error:
        messages.error(request, f"The scan did not start: {error}")
        return redirect("nodes:detail", slug=membership.org.slug, node_id=node.pk)
    messages.success(request, f"Session {session.pk} started for {node}.")
    return redirect("scans:session_detail", slug=membership.org.slug, session_id=session.pk)


# -- findings ------------------------------------------------------------------------


def _list_context(request, membership) -> dict:
    org = membership.org
    params = finding_list_params(request.GET)
    filters = finding_filters_from(params, user=request.user)
    counts = finding_severity_counts(org=org, filters=filters)
    # Above the cap a severity's count reads "10000+", the total is a lower bound and paging
    # stops at the cap: past it, a narrower filter finds the rest.
    capped = any(n > COUNT_CAP for n in counts.values())
    total = sum(min(n, COUNT_CAP) for n in counts.values())
    try:
        number = max(1, int(request.GET.get("page", 1)))
    except ValueError:
        number = 1
    pages = max(1, -(-min(total, COUNT_CAP if capped else total) // FINDINGS_PER_PAGE))
    number = min(number, pages)
    rows = finding_page(org=org, filters=filters, counts=counts, offset=(number - 1) * FINDINGS_PER_PAGE,
                        limit=FINDINGS_PER_PAGE)
    query = params.copy()
    query.pop("page", None)
    # With the status the list defaulted to: "every finding matching" and a saved view mean what is shown.
    filter_query = query.urlencode()
    node = Node.objects.filter(org=org, pk=filters.node).first() if filters.node is not None else None
    session = (ScanSession.objects.filter(org=org, pk=filters.session).only("id").first()
               if filters.session is not None else None)
    return {
        "org": org, "membership": membership, "filters": filters, "counts": counts, "total": total,
        "severity_counts": [(s, min(counts[s], COUNT_CAP), counts[s] > COUNT_CAP) for s in SEVERITIES],
        "capped": capped, "total_cap": COUNT_CAP,
        # Rows build their links from this prefix: fifty rows, three links each, no reverse() per link.
        "findings_url": reverse("scans:finding_list", args=[org.slug]),
        "rows": rows, "number": number, "pages": pages, "has_previous": number > 1, "has_next": number < pages,
        "filter_query": filter_query, "filter_node": node, "filter_session": session,
        "filter_errors": [(FILTER_LABELS.get(key, key), text)
                          for key, text in finding_filter_errors(request.GET).items()],
        "tab": "open" if filters.status == (Finding.Status.OPEN,) else "all" if not filters.status else "",
        "unfiltered": dataclasses.replace(filters, status=()).is_empty and filters.status in ((), (Finding.Status.OPEN,)),
        # What the folded filters hold besides the default (said on the phone's "Filters" button).
        "filter_count": sum(1 for f in dataclasses.fields(filters) if f.name not in ("sort", "status")
                            and getattr(filters, f.name) != f.default) + (filters.status not in ((Finding.Status.OPEN,),)),
        "saved_view_form": SavedViewForm(initial={"query": filter_query}),
        "sorts": FINDING_SORTS, "unsortable": UNSORTABLE, "statuses": _bulk_actions(filters), "status_choices": Finding.Status.choices,
        "priority_choices": PRIORITIES, "bulk_form": BulkTriageForm(),
        "bulk_limit": BULK_TRIAGE_LIMIT,
        # The bulk bar's assignees; read only for those who may change findings.
        "members": assignee_choices(org=org) if membership.can_write else (),
    }


FILTER_LABELS = {"first_seen_from": "First seen from", "first_seen_to": "First seen to",
                 "last_seen_from": "Last seen from", "last_seen_to": "Last seen to"}


def _bulk_actions(filters) -> list[tuple[str, str]]:
    """Every action for a mixed selection; no "Reopen" when the filter shows untriaged findings only."""
    if filters.status and set(filters.status) <= {Finding.Status.OPEN, Finding.Status.FIXED}:
        return [(value, label) for value, label in TriageForm.ACTIONS if value != Finding.Status.OPEN]
    return TriageForm.ACTIONS


@org_view("GET")
def finding_list(request, membership):
    context = _list_context(request, membership)
    if request.htmx and not request.htmx.boosted:
        return render(request, "scans/partials/finding_results.html", context)
    return render(request, "scans/finding_list.html", context)


@org_view("GET")
def finding_detail_view(request, membership, finding_id):
    finding = finding_for(membership, finding_id)
    form = TriageForm(initial={"version": finding.version})
    return _render_detail(request, membership, finding, form)


def _render_detail(request, membership, finding, form, *, stale=None, status=200, certainty_form=None,
                   certainty_stale=None, remediation=None):
    members = assignee_choices(org=membership.org)
    forms_ = {"assign_form": AssignForm(initial={"assignee": finding.assignee_id, "version": finding.version},
                                       members=members),
              "ticket_form": TicketForm(initial={"ticket_url": finding.ticket_url, "ticket_key": finding.ticket_key,
                                                 "version": finding.version}),
              "comment_form": CommentForm(), **(remediation or {})}
    context = {"org": membership.org, "membership": membership, "finding": finding, "form": form, "stale": stale,
               "comments": finding_comments(finding=finding), **forms_,
               "certainty_form": certainty_form or CertaintyForm(initial={"version": finding.version}),
               "certainty_stale": certainty_stale,
               "actions": triage_actions_for(finding.status),
               "accept_open": form.is_bound and form.data.get("status") == Finding.Status.RISK_ACCEPTED,
               "evidence_json": json.dumps(finding.evidence, indent=2, sort_keys=True, default=str),
               **finding_detail(finding=finding)}
    return render(request, "scans/finding_detail.html", context, status=status)


@org_view("GET", "POST", access=writable_membership_for)
def finding_triage_view(request, membership, finding_id):
    """Triage one finding, from its page or from its row in the list (htmx: the row comes back).

    GET is the list row's small triage form, fetched when someone opens it: fifty rows do not
    each render a form nobody uses (the link falls back to the detail page's form).
    """
    finding = finding_for(membership, finding_id)
    if request.method == "GET":
        return render(request, "scans/partials/finding_row_triage.html", {
            "org": membership.org, "membership": membership, "statuses": triage_actions_for(finding.status),
            "row": {"id": finding.pk, "version": finding.version, "status": finding.status},
            "findings_url": reverse("scans:finding_list", args=[membership.org.slug])})
    form = TriageForm(request.POST)
    in_list = request.POST.get("from") == "list"
    stale = None
    if form.is_valid():
        try:
            finding = finding_triage(
                finding=finding, status=form.cleaned_data["status"], by=request.user, reason=form.cleaned_data["reason"],
                until=form.until_datetime, ip=client_ip(request), expected_version=form.cleaned_data["version"],
            )
        except StaleVersionError as error:
            # Show what the finding is now; the form starts again from the current version.
            stale, finding = error, error.current
            form = TriageForm(initial={"version": finding.version, "reason": form.cleaned_data["reason"]})
        except ValidationError as error:
            form.add_error(None, error)
        else:
            if in_list and request.htmx:
                # The row shows its new status itself; a flash would only surface on the next page.
                return _render_row(request, membership, finding)
            messages.success(request, f"Finding {finding.pk} {DONE[finding.status]}.")
            return redirect("scans:finding_detail", slug=membership.org.slug, finding_id=finding.pk)
    if in_list and request.htmx:
        # 200 on purpose: htmx swaps only successful responses, and the row must show the conflict
        # or the error in place (the full page answers 409/400).
        return _render_row(request, membership, finding, form=form, stale=stale)
    return _render_detail(request, membership, finding, form, stale=stale, status=409 if stale else 400)


@org_view("POST", access=writable_membership_for)
def finding_certainty_view(request, membership, finding_id):
    """Confirm a potential finding or dismiss it, from its page (htmx: the certainty card comes back)."""
    finding = finding_for(membership, finding_id)
    form = CertaintyForm(request.POST)
    stale = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["action"] == "confirm":
                finding = finding_confirm(finding=finding, by=request.user, note=data["reason"],
                                          ip=client_ip(request), expected_version=data["version"])
            else:
                finding = finding_dismiss(finding=finding, by=request.user, reason=data["reason"],
                                          ip=client_ip(request), expected_version=data["version"])
        except StaleVersionError as error:
            stale, finding = error, finding_for(membership, finding_id)
            form = CertaintyForm(initial={"version": finding.version, "reason": data["reason"]})
        except ValidationError as error:
            form.add_error(None, error)
        else:
            if request.htmx:
                return _render_certainty(request, membership, finding, done=CERTAINTY_DONE[data["action"]])
            messages.success(request, f"Finding {finding.pk} {CERTAINTY_DONE[data['action']]}.")
            return redirect("scans:finding_detail", slug=membership.org.slug, finding_id=finding.pk)
    if request.htmx:
        # 200 on purpose: htmx swaps only successful responses, and the card must show the error in place.
        return _render_certainty(request, membership, finding, form=form, stale=stale)
    return _render_detail(request, membership, finding, TriageForm(initial={"version": finding.version}),
                          certainty_form=form, certainty_stale=stale, status=409 if stale else 400)


def _render_certainty(request, membership, finding, *, form=None, stale=None, done=""):
    context = {"org": membership.org, "membership": membership, "finding": finding, "certainty_stale": stale,
               "certainty_form": form or CertaintyForm(initial={"version": finding.version}), "done": done,
               "oob": True}
    return render(request, "scans/partials/finding_certainty.html", context)


def _render_row(request, membership, finding, *, form=None, stale=None, status=200):
    row = {**FINDING_ROW.values_of(finding), "status_label": finding.get_status_display(),
           "potential": finding.is_potential}
    context = {"org": membership.org, "membership": membership, "row": row, "row_form": form, "stale": stale,
               "accept_open": form is not None and form.data.get("status") == Finding.Status.RISK_ACCEPTED,
               "statuses": triage_actions_for(finding.status),
               "findings_url": reverse("scans:finding_list", args=[membership.org.slug])}
    return render(request, "scans/partials/finding_row.html", context, status=status)


@org_view("POST", access=writable_membership_for)
def finding_bulk_triage(request, membership):
    """Triage the selected rows, or every finding matching the list's filter (after a confirmation
    that says how many: the first post renders it, the confirmed one triages)."""
    form = BulkTriageForm(request.POST)

    def change(data, common):
        changed = findings_triage_bulk(status=data["status"], reason=data["reason"], until=form.until_datetime,
                                       **common)
        return changed, DONE[data["status"]]

    return _bulk_change(request, membership, form, change=change, confirm_template="scans/finding_bulk_confirm.html",
                        confirm=lambda data: {"form": form, "action": dict(TriageForm.ACTIONS)[data["status"]],
                                              "hidden": _confirm_fields(data)})


def _bulk_change(request, membership, form, *, change, confirm_template: str, confirm):
    """The bulk bars' one course. A form with errors goes back to the list, told why (the bar has no page of its
    own). A change to every finding matching the list's filter is confirmed first, on ``confirm_template`` saying
    how many (``confirm(data)`` adds the action's name and the fields to post again). Then ``change(data, common)``
    calls the service with ``common`` (organization, person, address, selection) and returns how many findings
    changed and what was done to them; the list comes back with its filter."""
    back = reverse("scans:finding_list", args=[membership.org.slug])
    if not form.is_valid():
        _form_errors_told(request, form)
        return redirect(f"{back}?{request.POST.get('filter', '')}")
    data = form.cleaned_data
    filters = finding_filters_from(QueryDict(data["filter"] or ""), user=request.user)
    if data["matching"] and not data["confirmed"]:
        # A bulk reopen counts only the triaged findings; remediation has no status and counts them all.
        count = findings_matching_count(org=membership.org, filters=filters, status=data.get("status", ""))
        context = {"org": membership.org, "membership": membership, "count": count, "limit": BULK_TRIAGE_LIMIT,
                   "filter_query": data["filter"], **confirm(data)}
        return render(request, confirm_template, context)
    selection = {"filters": filters} if data["matching"] else {"finding_ids": data["finding"]}
    with outcome_told(request) as told:
        changed, done = change(data, {"org": membership.org, "by": request.user, "ip": client_ip(request),
                                      **selection})
        told.success = f"{changed} finding{'s' if changed != 1 else ''} {done}."
    return redirect(f"{back}?{data['filter']}" if data["filter"] else back)


def _form_errors_told(request, form) -> None:
    for error in form.non_field_errors() + [e for field in form.errors.values() for e in field]:
        messages.error(request, error)


def _confirm_fields(data) -> list[tuple[str, str]]:
    until = data.get("until")
    return [("status", data["status"]), ("reason", data["reason"]), ("until", until.isoformat() if until else ""),
            ("filter", data["filter"]), ("matching", "on"), ("confirmed", "on")]



# -- imports -------------------------------------------------------------------------


def _import_form(data=None, files=None) -> ImportUploadForm:
    return ImportUploadForm(data, files, formats=import_formats(), max_bytes=settings.WATCHPOST_IMPORT_MAX_BYTES)


@org_view("GET", "POST", access={"GET": membership_for, "POST": writable_membership_for})
def import_list(request, membership):
    """Upload a scanner file (analysts and above) and the organization's imports, newest first.

    The upload takes the API's path (``import_request_create``): stored, queued, imported on a
    worker; a queued or running import's row polls its status until it finishes."""
    status = 200
    if request.method == "POST":
        limit = settings.WATCHPOST_IMPORT_MAX_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit + MULTIPART_ENVELOPE:
            # Refused before the body is read: nothing is written to disk.
            form = _import_form({}, {})
            form.is_valid()
            form.errors.clear()  # only the reason that counts, not the fields that were never read
            form.add_error("file", f"The file is larger than the limit of {limit:,} bytes.")
            status = 413
        else:
            form = _import_form(request.POST, request.FILES)
            if form.is_valid():
                try:
                    created = import_request_create(
                        org=membership.org, upload=form.cleaned_data["file"], fmt=form.cleaned_data["format"],
                        node_address=form.cleaned_data["node"], by=request.user, ip=client_ip(request))
                except ValidationError as error:
                    for field, problems in error.message_dict.items():
                        for problem in problems:
                            form.add_error(field if field in form.fields else None, problem)
                else:
                    messages.success(request, f"{created.filename} is queued for import as {created.format}.")
                    return redirect(reverse("scans:import_list", args=[membership.org.slug]))
            status = 400
    else:
        form = _import_form()
    page = Paginator(import_requests_for_org(org=membership.org), IMPORTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"org": membership.org, "membership": membership, "form": form, "page": page,
               "max_bytes": settings.WATCHPOST_IMPORT_MAX_BYTES}
    return render(request, "scans/imports.html", context, status=status)


@org_view("GET")
def import_row(request, membership, import_id):
    """One import's row, polled while it is queued or running; the finished row stops the polling."""
    context = {"org": membership.org, "membership": membership, "i": import_request_for(membership, import_id)}
    return render(request, "scans/partials/import_row.html", context)
# -- ownership: assignee, ticket link, comments ------------------------------------------------------

OWNERSHIP_DONE = {"assign": "assigned", "ticket": "linked to the ticket", "comment": "commented"}


def _ownership_post(request, membership, finding_id, *, make_form, change, done: str, key: str):
    """One finding's assignee, ticket or comment from its page: validate, call the service, redirect; the
    page again with the error (400) or the current state (409) otherwise."""
    finding = finding_for(membership, finding_id)
    form = make_form(membership, request.POST)
    stale = None
    if form.is_valid():
        try:
            change(finding=finding, data=form.cleaned_data, by=request.user, ip=client_ip(request))
        except StaleVersionError as error:
            stale, finding = error, error.current
            form = make_form(membership, None)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Finding {finding.pk} {done}.")
            return redirect(f"{reverse('scans:finding_detail', args=[membership.org.slug, finding.pk])}#ownership")
    return _render_detail(request, membership, finding, TriageForm(initial={"version": finding.version}),
                          status=409 if stale else 400,
                          remediation={key: form, "ownership_stale": stale})


@org_view("POST", access=writable_membership_for)
def finding_assign_view(request, membership, finding_id):
    def change(*, finding, data, by, ip):
        remediation.finding_assign(finding=finding, assignee=data["assignee"], by=by, ip=ip,
                                   expected_version=data["version"])

    return _ownership_post(request, membership, finding_id, done="assigned", key="assign_form", change=change,
                           make_form=lambda m, d: AssignForm(d, members=assignee_choices(org=m.org)))


@org_view("POST", access=writable_membership_for)
def finding_ticket_view(request, membership, finding_id):
    def change(*, finding, data, by, ip):
        remediation.finding_ticket_set(finding=finding, url=data["ticket_url"], key=data["ticket_key"], by=by,
                                       ip=ip, expected_version=data["version"])

    return _ownership_post(request, membership, finding_id, done="linked to its ticket", key="ticket_form",
                           change=change, make_form=lambda m, d: TicketForm(d))


@org_view("POST", access=writable_membership_for)
def finding_comment_view(request, membership, finding_id):
    def change(*, finding, data, by, ip):
        remediation.finding_comment_add(finding=finding, body=data["body"], by=by, ip=ip)

    return _ownership_post(request, membership, finding_id, done="commented", key="comment_form", change=change,
                           make_form=lambda m, d: CommentForm(d))


@org_view("POST", access=writable_membership_for)
def finding_bulk_remediate(request, membership):
    """The bulk bar's assign / link ticket / comment on the ticked rows, or on every finding matching the
    list's filter (after a confirmation that says how many, as bulk triage)."""

    def change(data, common):
        action = data["action"]
        if action == "assign":
            changed = remediation.findings_assign_bulk(assignee=data["assignee"] or None, **common)
        elif action == "ticket":
            changed = remediation.findings_ticket_bulk(url=data["ticket_url"], key=data["ticket_key"], **common)
        else:
            changed = remediation.findings_comment_bulk(body=data["comment"], **common)
        return changed, OWNERSHIP_DONE[action]

    def confirm(data):
        hidden = [(name, data[name] if not isinstance(data[name], bool) else "on")
                  for name in ("action", "assignee", "ticket_url", "ticket_key", "comment", "filter")]
        return {"action": dict(BulkRemediationForm.ACTIONS)[data["action"]],
                "hidden": hidden + [("matching", "on"), ("confirmed", "on")]}

    return _bulk_change(request, membership, BulkRemediationForm(request.POST), change=change, confirm=confirm,
                        confirm_template="scans/finding_bulk_remediation_confirm.html")


# -- by vulnerability ------------------------------------------------------------------


@org_view("GET")
def finding_groups(request, membership):
    """Open findings grouped by rule (a CVE, a scanner's check), most urgent first, then the largest."""
    org = membership.org
    q = (request.GET.get("q") or "").strip()[:200]
    page = Paginator(finding_group_list_for_org(org=org, q=q), GROUPS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"org": org, "membership": membership, "page": page, "q": q, "tab": "groups",
               "findings_url": reverse("scans:finding_list", args=[org.slug]),
               "bulk_form": GroupTriageForm(), "statuses": _bulk_actions(finding_filters_from({"status": "open"}))}
    if request.htmx and not request.htmx.boosted:
        return render(request, "scans/partials/finding_groups.html", context)
    return render(request, "scans/finding_groups.html", context)


@org_view("POST", access=writable_membership_for)
def finding_group_triage(request, membership):
    """Triage every open finding of the groups ticked: the confirmation of a bulk triage by filter
    (``status=open&rule=...``), which says how many and posts to ``finding_bulk_triage``."""
    org = membership.org
    form = GroupTriageForm(request.POST)
    if not form.is_valid():
        _form_errors_told(request, form)
        return redirect("scans:finding_groups", slug=membership.org.slug)
    data = form.cleaned_data
    query = QueryDict(mutable=True)
    query["status"] = Finding.Status.OPEN
    query.setlist("rule", data["rule"])
    filter_query = query.urlencode()
    count = findings_matching_count(org=org, filters=finding_filters_from(query), status=data["status"])
    context = {"org": org, "membership": membership, "form": form, "count": count, "limit": BULK_TRIAGE_LIMIT,
               "filter_query": filter_query, "action": dict(TriageForm.ACTIONS)[data["status"]],
               "hidden": _confirm_fields({**data, "filter": filter_query})}
    return render(request, "scans/finding_bulk_confirm.html", context)


# -- export ------------------------------------------------------------------------------


@org_view("GET")
def finding_export_view(request, membership, kind):
    """The list's current filter (the same parameters, open findings by default) as a streamed file."""
    if kind not in EXPORT_KINDS:
        raise Http404("No such export format")
    filters = finding_filters_from(finding_list_params(request.GET), user=request.user)
    return export_response(org=membership.org, filters=filters, kind=kind)


# -- saved views -------------------------------------------------------------------------


def _saved_views_context(membership, form=None) -> dict:
    return {"org": membership.org, "membership": membership,
            "views": list(saved_view_list_for(membership).select_related("owner")),
            "form": form or SavedViewForm(), "findings_url": reverse("scans:finding_list", args=[membership.org.slug])}


saved_view_list = org_page("scans/saved_views.html", _saved_views_context)
# The navigation's findings menu's saved views, fetched when the menu opens (no query on other pages).
saved_view_menu = org_page("scans/partials/saved_view_menu.html", _saved_views_context)


@org_view("POST", access=writable_membership_for)
def saved_view_new(request, membership):
    """Save the list's current filter under a name; a filter that does not parse is refused and nothing saved."""
    form = SavedViewForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            view = saved_view_create(org=membership.org, name=data["name"], query=data["query"],
                                     shared=data["shared"], by=request.user, ip=client_ip(request))
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"View \u201c{view.name}\u201d saved"
                                      f"{' and shared with the organization' if view.shared else ''}.")
            return redirect("scans:saved_view_open", slug=membership.org.slug, view_id=view.pk)
    return render(request, "scans/saved_views.html", _saved_views_context(membership, form), status=400)


@org_view("GET")
def saved_view_open(request, membership, view_id):
    """The list with the view's filter; a filter that no longer parses is said, and nothing is shown or changed."""
    view = saved_view_for(membership, view_id)
    problems = finding_filter_problems(QueryDict(view.query))
    if problems:
        context = {**_saved_views_context(membership), "broken": view, "problems": problems,
                   "can_change": _can_change(membership, view)}
        return render(request, "scans/saved_view_broken.html", context)
    target = reverse("scans:finding_list", args=[membership.org.slug])
    return redirect(f"{target}?{view.query}" if view.query else target)


def _can_change(membership, view) -> bool:
    try:
        writable_saved_view_for(membership, view.pk)
    except PermissionDenied:
        return False
    return True


@org_view("POST")
def saved_view_delete_view(request, membership, view_id):
    view = writable_saved_view_for(membership, view_id)
    saved_view_delete(view=view, by=request.user, ip=client_ip(request))
    messages.success(request, f"View \u201c{view.name}\u201d deleted.")
    return redirect("scans:saved_view_list", slug=membership.org.slug)
