"""The one way a view, an htmx partial or an API endpoint reaches a node (see orgs/access.py)."""

from __future__ import annotations

from django.http import Http404

from nodes.models import Node
from orgs.access import one_or_404, pk_or_404

NODES_AT_ONCE = 10_000


def node_for(membership, node_id) -> Node:
    """A node of the membership's organization, or 404 (another tenant's node is not revealed).

    ``membership`` is anything with an ``org``: a console Membership or the API token's principal.
    """
    return one_or_404(Node.objects.select_related("snapshot").filter(org=membership.org, pk=pk_or_404(node_id)), "node")


def nodes_for(membership, node_ids) -> list[Node]:
    """Several nodes of the membership's organization, in address order; 404 when any id names none of them
    (another tenant's node is not revealed), when none is given, or when more than ``NODES_AT_ONCE`` are."""
    ids = {pk_or_404(pk) for pk in node_ids}
    if not ids or len(ids) > NODES_AT_ONCE or any(not 0 < pk < 2**63 for pk in ids):
        raise Http404("No such node")
    nodes = list(Node.objects.filter(org=membership.org, pk__in=ids).only("id", "address", "name", "criticality")
                 .order_by("address"))
    if len(nodes) != len(ids):
        raise Http404("No such node")
    return nodes
