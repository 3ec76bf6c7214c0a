"""The one way a view, an htmx partial or an API endpoint reaches a node (see orgs/access.py)."""

from __future__ import annotations

from django.http import Http404

from nodes.models import Node


def node_for(membership, node_id) -> Node:
    """A node of the membership's organization, or 404 (another tenant's node is not revealed).

    ``membership`` is anything with an ``org``: a console Membership or the API token's principal.
    """
    node = Node.objects.select_related("snapshot").filter(org=membership.org, pk=pk_or_404(node_id)).first()
    if node is None:
        raise Http404("No such node")
    return node


def pk_or_404(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("No such object") from None
