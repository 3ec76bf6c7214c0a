"""Nodes stored under a spelling of their address (127.1, 0x7f000001, 127.000.010.205, Web.Example.)
take the canonical one (``orgs.scope.canonical_target``), so duplicates are found on it.

Nothing is merged: when two nodes of one organization are spellings of one address, one takes the
canonical spelling and the others stay as they are, each with its own findings and history. Each
such group is reported on the console's audit log of its organization (``node.address_duplicates``)
and printed by ``migrate``, for a person to merge or delete.
"""

import ipaddress

from django.db import migrations

from nodes.services import node_addresses_canonical_plan
from orgs.scope import canonical_target


def canonicalize(apps, schema_editor):
    Node = apps.get_model("nodes", "Node")
    AuditEvent = apps.get_model("orgs", "AuditEvent")
    renames, collisions = node_addresses_canonical_plan(Node.objects.values_list("pk", "org_id", "address"))
    for pk, canonical in renames:
        node = Node.objects.get(pk=pk)
        node.address = canonical
        if node.hostname and canonical_target(node.hostname) == canonical:
            node.hostname = ""  # "127.1" was kept as the node's host name: it is its address
        try:
            node.resolved_ip = str(ipaddress.ip_address(canonical))
        except ValueError:
            pass  # a host name: its resolved address stays what discovery last found
        node.save(update_fields=["address", "hostname", "resolved_ip", "updated_at"])
    for collision in collisions:
        others = [{"id": pk, "address": address} for pk, address in collision.others]
        AuditEvent.objects.create(
            org_id=collision.org_id, verb="node.address_duplicates", target_type="nodes.node",
            target_id=str(collision.kept), target_repr=collision.address[:255],
            changes={"address": collision.address, "kept": collision.kept, "duplicates": others},
        )
        print(f"\n  nodes: organization {collision.org_id}: node {collision.kept} is {collision.address}; "
              f"nodes {', '.join(str(o['id']) for o in others)} are the same address spelled otherwise "
              f"({', '.join(o['address'] for o in others)}): left as they are, merge or delete them.")


class Migration(migrations.Migration):
    dependencies = [
        ("nodes", "0004_node_criticality"),
        ("orgs", "0009_organization_potential_threshold"),
    ]

    operations = [migrations.RunPython(canonicalize, migrations.RunPython.noop)]
