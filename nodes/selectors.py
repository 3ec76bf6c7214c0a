"""Reads about nodes, always scoped to an organization."""

from __future__ import annotations

from django.db.models import Count, Q, Sum

from nodes.models import Node, NodeSnapshot

GRADES = ("A", "B", "C", "D", "F")


def node_list_for_org(*, org):
    return Node.objects.for_org(org).select_related("snapshot")


def dashboard_for_org(*, org, worst: int = 20) -> dict:
    """What the dashboard shows, read from snapshots only: constant queries at any node count."""
    snapshots = NodeSnapshot.objects.filter(org=org)
    totals = snapshots.aggregate(
        nodes=Count("pk"),
        critical=Sum("critical"),
        high=Sum("high"),
        medium=Sum("medium"),
        low=Sum("low"),
        info=Sum("info"),
        interventions=Sum("open_interventions"),
        **{f"grade_{g}": Count("pk", filter=Q(grade=g)) for g in GRADES},
    )
    worst_nodes = (
        snapshots.exclude(score__isnull=True).select_related("node").order_by("score", "node__address")[:worst]
    )
    return {
        "node_count": Node.objects.for_org(org).count(),
        "totals": {k: v or 0 for k, v in totals.items()},
        "grades": [(g, totals[f"grade_{g}"] or 0) for g in GRADES],
        "worst_snapshots": list(worst_nodes),
        "latest_score": org.scores.first(),
    }
