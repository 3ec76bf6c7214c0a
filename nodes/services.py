"""Writes about nodes."""

from __future__ import annotations

import ipaddress

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from nodes.models import Node, NodeSnapshot
from orgs.audit import audit_record


@transaction.atomic
def node_create(*, org, address: str, name: str = "", tags=None, by=None, token=None) -> Node:
    node = Node.objects.create(org=org, address=address.strip(), name=name, tags=list(tags or []),
                               resolved_ip=_literal_ip(address))
    NodeSnapshot.objects.create(node=node, org=org)
    if by is not None or token is not None:
        audit_record(org=org, verb="node.created", target=node, actor=by, token=token)
    return node


def node_get_or_create(*, org, address: str) -> tuple[Node, bool]:
    """The node at ``address``, created (with its snapshot) when new. Safe under concurrency."""
    address = address.strip()
    node = Node.objects.filter(org=org, address=address).first()
    if node is not None:
        return node, False
    with transaction.atomic():
        node, created = Node.objects.get_or_create(org=org, address=address, defaults={"resolved_ip": _literal_ip(address)})
        if created:
            NodeSnapshot.objects.get_or_create(node=node, defaults={"org": org})
    return node, created


def _literal_ip(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def node_snapshot_refresh(*, node: Node, score: int | None = None, grade: str = "", scan_status: str = "",
                          scanned_at=None) -> NodeSnapshot:
    """Rewrite the node's dashboard row from its current findings and interventions."""
    from interventions.models import Intervention
    from scans.models import Finding

    counts = Finding.objects.filter(node=node).active().aggregate(
        **{sev: Count("pk", filter=Q(severity=sev)) for sev in ("critical", "high", "medium", "low", "info")}
    )
    snapshot, _ = NodeSnapshot.objects.get_or_create(node=node, defaults={"org_id": node.org_id})
    snapshot.__dict__.update(counts)
    snapshot.open_ports = node.open_ports
    snapshot.protocols = list(node.protocols)
    snapshot.open_interventions = Intervention.objects.filter(node=node).unresolved().count()
    fields = [*counts, "open_ports", "protocols", "open_interventions", "updated_at"]
    if score is not None:
        snapshot.score, snapshot.grade = score, grade
        fields += ["score", "grade"]
    if scan_status:
        snapshot.last_scan_status, snapshot.last_scan_at = scan_status, scanned_at or timezone.now()
        fields += ["last_scan_status", "last_scan_at"]
    snapshot.updated_at = timezone.now()
    snapshot.save(update_fields=fields)
    return snapshot
