"""Which zone scans each node: placed by its address (``orgs.zones.ZonePlacer``), or pinned by a person.

Placement is set-wise: one read of the nodes concerned, then one UPDATE per destination zone.
It runs when an organization's zones change (``ZONES_CHANGED``, subscribed in ``NodesConfig``),
when nodes are created and when a node's address changes. A pin holds while its zone still
holds the node (a zone worker refuses a target outside its zone); otherwise the node is unpinned
and placed like any other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from nodes.models import Node
from orgs.audit import audit_record
from orgs.models import Zone
from orgs.zones import ZonePlacer, ip_or_none


def _where(node_address: str, resolved_ip: str | None, hostname: str) -> tuple[str | None, str]:
    """The address and the name a node is placed by: its resolved IP, and its name (or its address, when
    that is a name)."""
    address = resolved_ip or node_address
    name = hostname or ("" if ip_or_none(node_address) else node_address)
    return address, name


def nodes_place(*, org, node_ids: Iterable[int] | None = None, removed: Iterable[int] = ()) -> int:
    """Re-place the organization's nodes (or only ``node_ids``); returns how many changed zone.

    ``removed``: zones about to be deleted, which hold nothing any more (their pins are released).
    """
    removed = set(removed)
    zones = [zone for zone in Zone.objects.filter(org=org) if zone.pk not in removed]
    nodes = Node.objects.filter(org=org)
    if node_ids is not None:
        nodes = nodes.filter(pk__in=list(node_ids))
    if not zones and not removed:
        # No zones: every node belongs to the default zone; only stale rows (a test, a raw write) change.
        return nodes.filter(zone__isnull=False, zone_pinned=False).update(zone=None)
    placer = ZonePlacer(zones)
    moves: dict[int | None, list[int]] = defaultdict(list)
    rows = nodes.values_list("pk", "address", "resolved_ip", "hostname", "zone_id", "zone_pinned")
    for pk, address, resolved_ip, hostname, zone_id, pinned in rows.iterator(chunk_size=2000):
        where_address, where_name = _where(address, resolved_ip, hostname)
        if pinned:
            keeps = zone_id is None or (zone_id not in removed
                                        and placer.holds(zone_id, address=where_address, hostname=where_name))
            if keeps:
                continue
        target = placer.place(address=where_address, hostname=where_name)
        if target != zone_id or pinned:
            moves[target].append(pk)
    changed = 0
    with transaction.atomic():
        for target, ids in moves.items():
            changed += Node.objects.filter(pk__in=ids).update(zone_id=target, zone_pinned=False)
    return changed


def nodes_place_new(*, org, node_ids: list[int]) -> int:
    """After nodes are created: placed only when the organization has zones (one cheap query otherwise)."""
    if not node_ids or not Zone.objects.filter(org=org).exists():
        return 0
    return nodes_place(org=org, node_ids=node_ids)


def zones_changed(*, org, removed: Iterable[int] = ()) -> None:
    """``ZONES_CHANGED`` handler: every node of the organization is placed again."""
    nodes_place(org=org, removed=removed)


AUTOMATIC = "auto"


def node_zone_set(*, node: Node, zone: Zone | None | str, by=None, token=None, ip: str | None = None) -> Node:
    """Choose the node's zone by hand (``zone``: a zone, or None for the default zone), or give it back to
    placement (``zone=AUTOMATIC``). A zone that does not hold the node's address or name is refused: its
    workers would refuse every job of the node."""
    before = (node.zone_id, node.zone_pinned)
    with transaction.atomic():
        if zone == AUTOMATIC:
            Node.objects.filter(pk=node.pk).update(zone_pinned=False)
            node.zone_pinned = False
            nodes_place(org=node.org, node_ids=[node.pk])
            node.refresh_from_db(fields=["zone", "zone_pinned"])
        else:
            if zone is not None:
                if zone.org_id != node.org_id:
                    raise ValidationError("That zone belongs to another organization.", code="zone")
                address, name = _where(node.address, node.resolved_ip, node.hostname)
                if not ZonePlacer([zone]).holds(zone.pk, address=address, hostname=name):
                    raise ValidationError(f"Zone {zone.name!r} does not hold {node.address}: its networks and host "
                                          "names must include the node for its workers to scan it.", code="zone")
            node.zone, node.zone_pinned = zone, True
            node.save(update_fields=["zone", "zone_pinned", "updated_at"])
        after = (node.zone_id, node.zone_pinned)
        if after != before:
            audit_record(org=node.org, verb="node.zone_set", target=node, actor=getattr(by, "user", by), token=token,
                         ip=ip, changes={"zone": [before[0], after[0]], "zone_pinned": [before[1], after[1]]})
    return node
