"""The one way a view, an htmx partial or an API endpoint reaches a node (see orgs/access.py)."""

from __future__ import annotations

from nodes.models import Node
from orgs.access import one_or_404, pk_or_404


def node_for(membership, node_id) -> Node:
    """A node of the membership's organization, or 404 (another tenant's node is not revealed).

    ``membership`` is anything with an ``org``: a console Membership or the API token's principal.
    """
    return one_or_404(Node.objects.select_related("snapshot").filter(org=membership.org, pk=pk_or_404(node_id)), "node")
