"""Console pages for nodes: the list, add (one or many), detail, edit, enable/disable.

"Scan this node now" starts a session: the scans app serves it (scans.views.node_scan), and the
detail page's findings and jobs come from its template library ``node_scans``.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers

from nodes import services
from nodes.access import node_for, nodes_for
from nodes.display import detections_for_display
from nodes.forms import (
    PAGE_SIZES,
    NodeAddForm,
    NodeBudgetsForm,
    NodeBulkForm,
    NodeCriticalityForm,
    NodeEditForm,
    NodeFilterForm,
)
from nodes.models import DEFAULT_ZONE
from nodes.placement import AUTOMATIC, node_zone_set
from nodes.selectors import (
    NODE_SORTS,
    node_count_for_org,
    node_detail_for_org,
    node_table_for_org,
    zone_choices_for_org,
)
from orgs.access import client_ip, managing_membership_for, writable_membership_for
from orgs.console import org_view


def _is_partial(request) -> bool:
    # A history restore (back button after the cache expired) needs the whole page.
    return bool(request.htmx) and not request.htmx.history_restore_request


@org_view("GET")
def node_list(request, membership):
    zones = zone_choices_for_org(org=membership.org)
    form = NodeFilterForm(request.GET, zones=zones)
    filters, sort, descending, per = form.criteria()
    rows = node_table_for_org(org=membership.org, filters=filters, sort=sort, descending=descending)
    paginator = Paginator(rows, per)
    if not any(filters.get(key) not in (None, "") for key in ("q", "protocol", "tag", "state", "enabled", "grade",
                                                              "zone")):
        # Unfiltered, the count needs no join with the nodes: one index-only count of snapshots.
        paginator.count = node_count_for_org(org=membership.org)
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "org": membership.org, "membership": membership, "form": form, "page": page, "zones": zones,
        "filtered": any(value not in (None, "") for value in filters.values()),
        "sort_value": f"-{sort}" if descending else sort, "per": per, "page_sizes": PAGE_SIZES,
        "columns": [{"key": key, "label": label, "num": num, "title": title, **_sort_link(key, sort, descending)}
                    for key, label, num, title in COLUMNS],
    }
    template = "nodes/partials/table.html" if _is_partial(request) else "nodes/list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


# The table's columns, in order: sort key (nodes.selectors.NODE_SORTS), header, numeric, full name.
COLUMNS = (
    ("address", "Address", False, ""), ("name", "Name", False, ""), ("score", "Score", True, ""),
    ("grade", "Grade", False, ""), ("findings", "Findings", True, "Open findings"),
    ("critical", "Crit.", True, "Critical"), ("high", "High", True, ""), ("medium", "Med.", True, "Medium"),
    ("low", "Low", True, ""), ("protocols", "Protocols", False, ""), ("tags", "Tags", False, ""),
    ("state", "State", False, ""), ("enabled", "Enabled", False, ""), ("last_scan", "Last scan", False, ""),
    ("interventions", "Interv.", True, "Open interventions"),
)
assert {c[0] for c in COLUMNS} == set(NODE_SORTS), "every column sorts, every sort is a column"


def _sort_link(key: str, current: str, descending: bool) -> dict:
    """The next sort value of a column header, and its aria-sort when it is the current one."""
    if key != current:
        return {"value": key, "aria": None}
    return {"value": key if descending else f"-{key}", "aria": "descending" if descending else "ascending"}


@org_view("GET", "POST", access=writable_membership_for)
def node_add(request, membership):
    form = NodeAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            node = services.node_create(org=membership.org, by=request.user, ip=client_ip(request), **form.cleaned_data)
        except ValidationError as error:
            form.add_error("address" if error.code in ("scope", "duplicate") else None, error)
        else:
            messages.success(request, f"{node.address} added. Scan it now or wait for the next scheduled session.")
            return redirect("nodes:detail", slug=membership.org.slug, node_id=node.pk)
    status = 400 if form.is_bound else 200
    return render(request, "nodes/add.html", {"org": membership.org, "membership": membership, "form": form},
                  status=status)


@org_view("GET", access=writable_membership_for)
def node_validate(request, membership):
    """The scope guard's verdict on the address being typed (htmx, on change): accepted, or refused and why."""
    node = node_for(membership, request.GET["node"]) if request.GET.get("node") else None
    address = request.GET.get("address", "").strip()
    verdict, reason = None, ""
    if address and (node is None or address != node.address):
        try:
            checked = services.node_address_validate(org=membership.org, address=address,
                                                     exclude_pk=node.pk if node else None)
        except ValidationError as error:
            verdict, reason = "refused", " ".join(error.messages)
        else:
            verdict = "accepted"
            reason = f"{checked.hostname} resolves to {', '.join(checked.addresses)}" if checked.hostname else ""
    return render(request, "nodes/partials/address_check.html",
                  {"org": membership.org, "verdict": verdict, "reason": reason, "address": address})


@org_view("GET", "POST", access=writable_membership_for)
def node_bulk_add(request, membership):
    form = NodeBulkForm(request.POST or None, request.FILES or None, org=membership.org)
    report = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data.get("file")
        source = {"csv_file": upload.read()} if upload else {"text": form.cleaned_data["text"]}
        try:
            report = services.nodes_bulk_add(org=membership.org, by=request.user, ip=client_ip(request), **source)
        except ValidationError as error:
            form.add_error("file" if upload else "text", error)
        else:
            messages.success(request, f"{report.added} added, {report.duplicates} skipped as duplicates, "
                                      f"{report.refused} refused.")
            form = NodeBulkForm(org=membership.org)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "nodes/bulk.html",
                  {"org": membership.org, "membership": membership, "form": form, "report": report}, status=status)


@org_view("GET")
def node_detail(request, membership, node_id):
    node = node_for(membership, node_id)
    return render(request, "nodes/detail.html", _detail_context(membership, node))


def _detail_context(membership, node) -> dict:
    zones = zone_choices_for_org(org=membership.org)
    if node.zone_id:
        node.zone = next((zone for zone in zones if zone.pk == node.zone_id), None)  # named without a query
    return {"org": membership.org, "membership": membership, "node": node, "snapshot": node.snapshot,
            "detections": detections_for_display(node.discovery_evidence), **node_detail_for_org(node=node),
            "zones": zones, "zone_automatic": AUTOMATIC}


@org_view("POST", access=writable_membership_for)
def node_zone(request, membership, node_id):
    """Choose the node's zone by hand (pinned), or give it back to placement by its address."""
    node = node_for(membership, node_id)
    choice = request.POST.get("zone", "")
    zones = {str(zone.pk): zone for zone in zone_choices_for_org(org=membership.org)}
    if choice not in (AUTOMATIC, DEFAULT_ZONE, *zones):
        messages.error(request, "Choose a zone of this organization, the default zone, or automatic placement.")
        return redirect("nodes:detail", slug=membership.org.slug, node_id=node.pk)
    zone = AUTOMATIC if choice == AUTOMATIC else zones.get(choice)
    try:
        node = node_zone_set(node=node, zone=zone, by=request.user, ip=client_ip(request))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        where = node.zone.name if node.zone_id else "the default zone"
        messages.success(request, f"{node.address} is scanned by {where}"
                                  f"{' (pinned)' if node.zone_pinned else ' (placed by its address)'}.")
    return redirect("nodes:detail", slug=membership.org.slug, node_id=node.pk)


@org_view("GET", "POST", access=writable_membership_for)
def node_edit(request, membership, node_id):
    node = node_for(membership, node_id)
    form = NodeEditForm(request.POST) if request.method == "POST" else NodeEditForm.for_node(node)
    if request.method == "POST" and form.is_valid():
        try:
            services.node_update(node=node, by=request.user, ip=client_ip(request), **form.cleaned_data)
        except ValidationError as error:
            field = {"scope": "address", "duplicate": "address", "hostname": "hostname", "tags": "tags",
                     "name": "name", "criticality": "criticality"}.get(error.code)
            form.add_error(field, error)
        else:
            messages.success(request, f"{node} saved.")
            return redirect("nodes:detail", slug=membership.org.slug, node_id=node.pk)
    return render(request, "nodes/edit.html", {"org": membership.org, "membership": membership, "node": node,
                                               "form": form}, status=400 if form.is_bound else 200)


@org_view("POST", access=managing_membership_for)
def node_budgets(request, membership, node_id):
    """Owners and admins set the node's connection budgets (its page shows them)."""
    node = node_for(membership, node_id)
    form = NodeBudgetsForm(request.POST)
    if not form.is_valid():
        return _budgets_not_saved(request, membership, node, "; ".join(
            f"{form.fields[name].label}: {msgs[0]}" for name, msgs in form.errors.items()))
    try:
        services.node_set_budgets(node=node, new_per_second=form.cleaned_data["new_per_second"],
                                  at_once=form.cleaned_data["at_once"], by=request.user, ip=client_ip(request))
    except ValidationError as exc:
        return _budgets_not_saved(request, membership, node, exc.messages[0])
    messages.success(request, f"Connection budgets of {node} saved.")
    return redirect("nodes:detail", slug=membership.org.slug, node_id=node.pk)


def _budgets_not_saved(request, membership, node, error: str):
    """The node's page again, its budgets as stored, saying why the new ones were refused."""
    node.refresh_from_db()
    return render(request, "nodes/detail.html", {**_detail_context(membership, node),
                                                 "budgets_error": f"Budgets not saved: {error}"}, status=400)


@org_view("POST", access=writable_membership_for)
def node_enable(request, membership, node_id):
    node = node_for(membership, node_id)
    enabled = request.POST.get("enabled") == "1"
    services.node_set_enabled(node=node, enabled=enabled, by=request.user, ip=client_ip(request))
    messages.success(request, f"{node} {'enabled' if enabled else 'disabled: sessions leave it out'}.")
    return redirect("nodes:detail", slug=membership.org.slug, node_id=node.pk)


@org_view("GET", "POST", access=writable_membership_for)
def node_criticality(request, membership):
    """Set the criticality of the nodes ticked on the list ("Set criticality…"), or of one node from its page."""
    data = request.POST if request.method == "POST" else request.GET
    nodes = nodes_for(membership, data.getlist("node"))
    form = NodeCriticalityForm(request.POST or None, nodes=nodes,
                               initial={"node": [n.pk for n in nodes],
                                        "criticality": nodes[0].criticality if len(nodes) == 1 else None})
    if request.method == "POST" and form.is_valid():
        try:
            changed = services.nodes_set_criticality(org=membership.org, node_ids=form.cleaned_data["node"],
                                                     criticality=form.cleaned_data["criticality"], by=request.user,
                                                     ip=client_ip(request))
        except ValidationError as error:
            form.add_error(None, error)
        else:
            label = dict(form.fields["criticality"].choices)[form.cleaned_data["criticality"]].lower()
            messages.success(request, f"Criticality {label}: {changed} node{'s' if changed != 1 else ''} changed; "
                                      "their findings' priorities follow.")
            if len(nodes) == 1:
                return redirect("nodes:detail", slug=membership.org.slug, node_id=nodes[0].pk)
            return redirect("nodes:list", slug=membership.org.slug)
    return render(request, "nodes/criticality.html", {"org": membership.org, "membership": membership,
                                                      "nodes": nodes, "form": form},
                  status=400 if form.is_bound else 200)
