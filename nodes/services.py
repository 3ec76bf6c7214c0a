"""Writes about nodes."""

from __future__ import annotations

import ipaddress

from django.db import transaction

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
