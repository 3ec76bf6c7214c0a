"""The one way a view, an htmx partial or an API endpoint reaches a node (see orgs/access.py)."""

from __future__ import annotations

from django.http import Http404

from nodes.models import Node


def node_for(membership, node_id) -> Node:
    """A node of the membership's organization, or 404 (another tenant's node is not revealed).

    ``membership`` is anything with an ``org``: a console Membership or the API token's principal.
    """
    return one_or_404(Node.objects.select_related("snapshot").filter(org=membership.org, pk=pk_or_404(node_id)), "node")


def pk_or_404(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("No such object") from None


def one_or_404(queryset, what: str):
    """The row of a primary-key lookup, or 404 naming ``what``.

    ``get()`` rather than ``first()``: no ORDER BY to compile and run for a single row — this
    is on every detail page and detail call.
    """
    try:
        return queryset.get()
    except queryset.model.DoesNotExist:
        raise Http404(f"No such {what}") from None
