"""Every importer end to end on real tool output (the shared samples): file -> findings -> re-import."""

from __future__ import annotations

import ipaddress

import pytest

from scans.findings.imports import findings_import
from scans.findings.normalization import finding_fingerprint
from scans.importers.base import ImportRejected, get_importer
from scans.models import Finding, ScanJob

NODE = "127.0.50.1"

SAMPLES = [
    ("nmap", "nmap/nmap_0port.xml", None),
    ("nmap", "nmap/nmap_1port.xml", None),
    ("nmap", "nmap/nmap_multiple_port.xml", None),
    ("nmap", "nmap/nmap_script_vulners.xml", None),
    ("nuclei", "nuclei/empty.jsonl", NODE),
    ("nuclei", "nuclei/invalid_cwe.json", None),
    ("nuclei", "nuclei/many_findings.json", None),
    ("nuclei", "nuclei/multiple_v3.json", None),
    ("trivy", "trivy/kubernetes.json", NODE),
    ("trivy", "trivy/legacy_many_vulns.json", NODE),
    ("trivy", "trivy/misconfigurations_and_secrets.json", NODE),
    ("trivy", "trivy/scheme_2_many_vulns.json", NODE),
    ("trivy", "trivy/scheme_2_no_vuln.json", NODE),
    ("sslyze", "sslyze/one_target_many_vuln_new.json", None),
    ("sslyze", "sslyze/one_target_zero_vuln_new.json", None),
    ("openvas", "openvas/one_vuln.xml", None),
    ("openvas", "openvas/many_vuln.xml", None),
    ("openvas", "openvas/no_vuln.xml", None),
    ("sarif", "sarif/appendix_k.sarif", NODE),
    ("sarif", "sarif/gitleaks_7.5.0.sarif", NODE),
]


def declare_scope_for(org, result, node: str | None) -> None:
    """Put exactly the file's hosts in the organization's scope (they are real addresses elsewhere)."""
    hosts = {f.host for f in result.findings} | {c.host for c in result.coverage} | {s.host for s in result.services}
    networks, names = ["127.0.0.0/8"], []
    for host in filter(None, hosts):
        try:
            networks.append(str(ipaddress.ip_network(host)))
        except ValueError:
            names.append(host.lower())
    org.scope_networks, org.scope_hostnames = networks, names if node is None else []
    org.save(update_fields=["scope_networks", "scope_hostnames"])


def expected_findings(result, node: str | None) -> int:
    """Distinct (host, fingerprint) pairs: a file may repeat a finding, the engine keeps one."""
    return len({(f.host if f.host and not node else node, finding_fingerprint(f)) for f in result.findings})


@pytest.mark.parametrize(("fmt", "name", "node"), SAMPLES, ids=[s[1] for s in SAMPLES])
def test_each_sample_imports_then_reimports_unchanged(world, samples, fmt, name, node):
    path = samples / name
    result = get_importer(fmt).parse(path, default_host=node or "")
    declare_scope_for(world.org, result, node)
    expected = expected_findings(result, node)

    first = findings_import(org=world.org, fmt=fmt, path=path, node_address=node)

    assert first.counts.new == expected
    assert Finding.objects.filter(org=world.org, source=fmt).count() == expected
    assert ScanJob.objects.filter(session=first.session, scanner=fmt, status="succeeded").count() == first.nodes
    assert set(Finding.objects.values_list("severity", flat=True)) <= {"critical", "high", "medium", "low", "info"}
    second = findings_import(org=world.org, fmt=fmt, path=path, node_address=node)
    assert second.counts.as_dict() == {"new": 0, "updated": 0, "reopened": 0, "fixed": 0, "unchanged": expected}


def test_an_image_scan_without_a_node_is_refused_with_a_hint(world, samples):
    with pytest.raises(ImportRejected, match=r"not an IP address or host name; name the node .*--node"):
        findings_import(org=world.org, fmt="trivy", path=samples / "trivy/kubernetes.json")
    assert not Finding.objects.exists()


def test_real_addresses_outside_the_scope_are_refused(world, samples):
    with pytest.raises(ImportRejected, match=r"'198\.38\.82\.159' is outside the organization's scope"):
        findings_import(org=world.org, fmt="nmap", path=samples / "nmap/nmap_multiple_port.xml")


def test_sarif_findings_from_a_repository_go_to_the_named_node(world, samples):
    report = findings_import(org=world.org, fmt="sarif", path=samples / "sarif/appendix_k.sarif", node_address=NODE)

    finding = Finding.objects.get()
    assert report.nodes == 1 and finding.node.address == NODE
    assert finding.evidence["artifact"] == "https://github.com/example-corp/browser"
