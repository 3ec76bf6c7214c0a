"""A session's discovery asks the well-known UDP services, and its exposure stage checks what answered."""

from __future__ import annotations

from nodes.models import Node
from scans.models import Finding, ScanSession
from scans.lab.udp import start_udp_node

ADDRESS = "127.0.61.1"  # nothing on TCP: only a recursive DNS server and an SNMP agent answering "public"


def test_a_node_answering_only_on_udp_is_up_with_its_udp_services_and_their_findings(world, lab, quick_profile,
                                                                                     run_inline):
    start_udp_node(lab, ADDRESS, ["dns-recursive", "snmp-public"])

    session = run_inline(org=world.org, trigger=ScanSession.Trigger.CLI, targets=[ADDRESS], profile=quick_profile)

    node = Node.objects.get(org=world.org, address=ADDRESS)
    assert node.state == Node.State.UP, session.summary
    assert {(s["protocol"], s["service"], s["product"]) for s in node.services} == {
        ("udp", "dns", "ISC BIND"), ("udp", "snmp", "Net-SNMP")}
    assert {"dns", "snmp"} <= set(node.protocols)
    found = {(f.rule_id, f.protocol, f.port) for f in Finding.objects.filter(node=node, source="exposure")}
    assert found == {("exposure-dns-open-recursion", "udp", 53), ("exposure-snmp-default-community", "udp", 161)}


def test_a_profile_can_leave_udp_out_of_discovery(world, lab, quick_profile, run_inline):
    start_udp_node(lab, ADDRESS, ["dns-recursive", "snmp-public"])
    quick_profile.options = {**quick_profile.options, "udp": False}
    quick_profile.save()

    run_inline(org=world.org, trigger=ScanSession.Trigger.CLI, targets=[ADDRESS], profile=quick_profile)

    node = Node.objects.get(org=world.org, address=ADDRESS)
    assert node.state == Node.State.DOWN and node.services == []
