"""Analysis matches what discovery named against the CVE catalog, each match on its own node and port."""

from scans.lab.services import start_node
from scans.models import Finding, ScanSession


def test_each_nodes_service_versions_become_cve_findings_on_that_node(world, lab, quick_profile, run_inline, catalog):
    start_node(lab, "127.0.61.1", ["http"])  # nginx/1.18.0: CVE-2021-23017 and others
    start_node(lab, "127.0.61.2", ["redis"])  # Redis 7.0.11
    session = run_inline(org=world.org, trigger=ScanSession.Trigger.CLI, targets=["127.0.61.1", "127.0.61.2"],
                         profile=quick_profile)

    assert session.status == ScanSession.Status.SUCCEEDED
    cves = Finding.objects.filter(org=world.org, source="cve")
    nginx = cves.get(rule_id="CVE-2021-23017")
    assert nginx.node.address == "127.0.61.1" and nginx.port == 80
    assert "nginx" in nginx.match_reason
    assert not cves.filter(node__address="127.0.61.2", rule_id="CVE-2021-23017").exists()
    assert set(cves.values_list("node__address", flat=True)) <= {"127.0.61.1", "127.0.61.2"}


def test_a_standard_session_discovers_the_ports_the_protocol_registry_names(db):
    from scans.models import ScanProfile
    from scans.pipeline.profiles import profile_ports

    ports = profile_ports(ScanProfile.objects.get(org=None, slug="standard"))
    # Redis, Docker API, Ethereum JSON-RPC and memcached are not in nmap's top 1000.
    assert {6379, 2375, 8545, 11211} <= set(ports) and 2024 not in ports
