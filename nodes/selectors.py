"""Reads about nodes, always scoped to an organization."""

from __future__ import annotations

from typing import Any

from django.db.models import Case, F, Q, Value, When

from config import prepared
from config.fields import columns
from interventions.models import Intervention
from nodes.fields import NODE
from nodes.models import Node, NodeScore, NodeSnapshot, carries_tag, in_zone
from orgs.models import Zone

# --- the API's list ----------------------------------------------------------------------------

# The node as PostgreSQL writes it for the list: generated from the same fields as the API's
# representation of one node (nodes.fields), over the node (n) joined to its snapshot (sn).
_NODE_JSON = NODE.json_sql(columns(Node, {"": "n", "snapshot": "sn"}))
_NODES_PAGE = f"""
    SELECT coalesce(json_agg(j ORDER BY position), '[]')::text FROM (
      SELECT array_position(%(ids)s::bigint[], n.id) AS position, {_NODE_JSON} AS j
      FROM {Node._meta.db_table} n LEFT JOIN {NodeSnapshot._meta.db_table} sn ON sn.node_id = n.id
      WHERE n.org_id = %(org)s AND n.id = ANY(%(ids)s::bigint[])) page"""


def nodes_page_json(*, org, ids: list[int]) -> str:
    """The JSON array of these nodes of ``org`` (in this order), as ``NODE.represent`` writes each.

    The hot list endpoint: PostgreSQL writes the JSON in C and Python passes the text through
    (orjson.Fragment) instead of decoding timestamps and JSON columns per node and encoding
    them again, which is what bounds a web worker's requests per second.
    """
    return prepared.fetchone(_NODES_PAGE, {"org": org.pk, "ids": ids})[0]


# --- the nodes page ----------------------------------------------------------------------------

# Sort keys of the nodes table -> the columns they order by (a tie-break on the address keeps pages stable).
NODE_SORTS = {
    "address": ("node__address",),
    "name": ("node__name", "node__address"),
    "score": (F("score").asc(nulls_last=True), "node__address"),
    "grade": ("grade", "node__address"),
    "findings": ("open_total", "node__address"),
    "critical": ("critical", "node__address"),
    "high": ("high", "node__address"),
    "medium": ("medium", "node__address"),
    "low": ("low", "node__address"),
    "protocols": ("node__protocols", "node__address"),
    "tags": ("node__tags", "node__address"),
    "state": ("node__state", "node__address"),
    "enabled": ("node__enabled", "node__address"),
    "last_scan": (F("last_scan_at").asc(nulls_first=True), "node__address"),
    "interventions": ("open_interventions", "node__address"),
}


def node_count_for_org(*, org) -> int:
    """How many rows the unfiltered nodes table holds (one per snapshot)."""
    return NodeSnapshot.objects.filter(org=org).count()


def node_table_for_org(*, org, filters: dict[str, Any] | None = None, sort: str = "address", descending: bool = False):
    """The nodes page's rows: snapshots with their node, filtered and sorted in the database.

    ``filters`` keys (all optional): q (address, name or hostname contains), grade (A-F or
    "none" for not scored yet), protocol, tag, state, enabled (True/False). Unknown sort
    keys fall back to the address. One query per page of rows, whatever the node count.
    """
    filters = filters or {}
    rows = (
        # node__org as well: it lets PostgreSQL walk the node's (org, address) index in order and
        # stop after a page, instead of joining and sorting every node of the organization.
        NodeSnapshot.objects.filter(org=org, node__org=org)
        .select_related("node", "node__zone")
        .defer("node__services", "node__discovery_evidence")
        .annotate(open_total=F("critical") + F("high") + F("medium") + F("low") + F("info"))
    )
    if q := (filters.get("q") or "").strip():
        rows = rows.filter(Q(node__address__icontains=q) | Q(node__name__icontains=q) | Q(node__hostname__icontains=q))
    if grade := filters.get("grade"):
        rows = rows.filter(grade="") if grade == "none" else rows.filter(grade=grade)
    if protocol := filters.get("protocol"):
        rows = rows.filter(node__protocols__contains=[protocol])
    if tag := filters.get("tag"):
        rows = rows.filter(carries_tag(tag, tags="node__tags"))
    if state := filters.get("state"):
        rows = rows.filter(node__state=state)
    if filters.get("enabled") is not None:
        rows = rows.filter(node__enabled=filters["enabled"])
    if zone := filters.get("zone"):
        rows = rows.filter(in_zone(zone, prefix="node__"))
    order = NODE_SORTS.get(sort, NODE_SORTS["address"])
    if descending:
        order = tuple(_descending(o) for o in order[:1]) + order[1:]
    return rows.order_by(*order)


def _descending(expression):
    if isinstance(expression, str):
        return expression[1:] if expression.startswith("-") else f"-{expression}"
    # An OrderBy built with .asc(nulls_...): flip the direction, keep the unscored rows where they were.
    flipped = expression.copy()
    flipped.descending = not expression.descending
    return flipped


def node_detail_for_org(*, node, history: int = 60, interventions: int = 20) -> dict:
    """The node page's score history and interventions, each bounded (one query per list); its
    findings and jobs come from scans (``scans/templatetags/node_scans.py``).

    Filters use ``node.org_id``: reading ``node.org`` would cost a query of its own.
    """
    scores = NodeScore.objects.filter(node=node).order_by("-created_at").values_list("created_at", "score")
    return {
        "score_points": list(reversed(scores[:history])),
        "interventions": list(
            Intervention.objects.filter(org_id=node.org_id, node=node).order_by(_state_rank(), "-opened_at")[:interventions]
        ),
    }


def _state_rank():
    return Case(
        When(state=Intervention.State.OPEN, then=Value(0)),
        When(state=Intervention.State.ACKNOWLEDGED, then=Value(1)),
        default=Value(2),
    )


def zone_choices_for_org(*, org) -> list:
    """The organization's zones by name (id and name only): the zone filter's and the zone picker's choices."""
    return list(Zone.objects.filter(org=org).only("pk", "name", "org_id").order_by("name"))
