"""An nmap file with service versions updates its nodes and is matched against the CVE catalog."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nodes.models import Node, NodeSnapshot
from scans.findings.imports import findings_import
from scans.models import Finding, ServiceProduct

LAB_SCAN = Path(__file__).resolve().parents[1] / "fixtures" / "nmap" / "lab_scan.xml"
HOST = "127.0.77.1"


@pytest.fixture
def lab_scan(tmp_path):
    # A copy: the import refuses nothing here, but tests never write beside the project's fixtures.
    return shutil.copy(LAB_SCAN, tmp_path / "lab_scan.xml")


def test_imported_services_update_the_node_and_its_snapshot(world, lab_scan, catalog):
    findings_import(org=world.org, fmt="nmap", path=lab_scan)

    node = Node.objects.get(org=world.org, address=HOST)
    assert {(s["service"], s["product"]) for s in node.services} >= {("ssh", "OpenSSH"), ("http", "nginx")}
    assert {"ssh", "http"} <= set(node.protocols)
    assert NodeSnapshot.objects.get(node=node).open_ports == node.open_ports != []


def test_imported_service_versions_are_matched_against_the_cve_catalog(world, lab_scan, catalog):
    report = findings_import(org=world.org, fmt="nmap", path=lab_scan)

    cves = Finding.objects.filter(org=world.org, source="cve")
    ssh_port = next(s["port"] for s in Node.objects.get(address=HOST).services if s["service"] == "ssh")
    regresshion = cves.get(rule_id="CVE-2024-6387")
    assert regresshion.port == ssh_port and regresshion.severity == "high"
    assert "8.9p1" in regresshion.match_reason
    assert cves.filter(rule_id="CVE-2021-23017").exists()  # nginx 1.18.0
    assert report.counts.new == Finding.objects.filter(org=world.org).count()


def test_reimporting_the_same_services_changes_no_cve_finding(world, lab_scan, catalog):
    findings_import(org=world.org, fmt="nmap", path=lab_scan)
    before = set(Finding.objects.filter(source="cve").values_list("id", "status"))
    report = findings_import(org=world.org, fmt="nmap", path=lab_scan)
    assert set(Finding.objects.filter(source="cve").values_list("id", "status")) == before
    assert report.counts.new == report.counts.fixed == 0



def test_imported_services_are_indexed_by_product_for_a_later_catalog_rematch(world, lab_scan, catalog):
    findings_import(org=world.org, fmt="nmap", path=lab_scan)

    node = Node.objects.get(org=world.org, address=HOST)
    ssh_port = next(s["port"] for s in node.services if s["service"] == "ssh")
    rows = set(ServiceProduct.objects.filter(node=node, org=world.org).values_list("port", "vendor", "product"))
    assert (ssh_port, "openbsd", "openssh") in rows
    assert ("f5", "nginx") in {(vendor, product) for _, vendor, product in rows}
