"""Trivy as real reports write it: vendor statuses, VEX-suppressed findings, licenses, `null`, any artifact with --node."""

from __future__ import annotations

import json

import pytest

from scans.findings.imports import findings_import
from scans.importers.base import get_importer
from scans.models import Finding

from .fixtures import fixture

NODE = "127.0.30.5"


def parse(relative: str, **kwargs):
    return get_importer("trivy").parse(fixture(relative), **kwargs)


def by_rule(result):
    return {f.rule_id: f for f in result.findings}


def test_every_vendor_status_is_kept_in_the_evidence():
    findings = by_rule(parse("trivy/sbom_statuses_licenses.json"))

    statuses = {rule: f.evidence.get("status") for rule, f in findings.items() if rule.startswith("CVE-")}
    assert statuses == {
        "CVE-2024-2961": "fixed", "CVE-2023-4039": "will_not_fix", "CVE-2022-27943": "fix_deferred",
        "CVE-2019-1010022": "end_of_life", "CVE-2011-3374": "affected", "CVE-2023-45853": "not_affected",
        "CVE-2023-5678": "not_affected",
    }


def test_a_fixed_vulnerability_stays_open_and_names_the_fixed_version():
    glibc = by_rule(parse("trivy/sbom_statuses_licenses.json"))["CVE-2024-2961"]

    assert glibc.triage == ""
    assert "Upgrade libc6 to 2.36-9+deb12u7 or later" in glibc.remediation


@pytest.mark.parametrize(("rule", "says"), [
    ("CVE-2023-4039", "will not fix"),
    ("CVE-2022-27943", "deferred"),
    ("CVE-2019-1010022", "end of life"),
    ("CVE-2011-3374", "No fixed version"),
])
def test_a_vulnerability_without_a_fix_stays_open_and_says_why(rule, says):
    finding = by_rule(parse("trivy/sbom_statuses_licenses.json"))[rule]

    assert finding.triage == ""
    assert says in finding.remediation


def test_not_affected_is_kept_as_a_false_positive_with_the_vendors_statement():
    zlib = by_rule(parse("trivy/sbom_statuses_licenses.json"))["CVE-2023-45853"]

    assert zlib.triage == "false_positive"
    assert "Debian Security Tracker" in zlib.triage_reason
    assert "zlib1g@1:1.2.13.dfsg-1 is not affected by CVE-2023-45853" in zlib.triage_reason


def test_a_vex_suppressed_finding_is_kept_with_the_vex_statement():
    openssl = by_rule(parse("trivy/sbom_statuses_licenses.json"))["CVE-2023-5678"]

    assert openssl.triage == "false_positive"
    assert openssl.triage_reason == "CycloneDX VEX says not_affected: vulnerable_code_not_in_execute_path"
    assert openssl.evidence["vex_source"] == "CycloneDX VEX"
    assert openssl.location.endswith("libssl3@3.0.11-1~deb12u2")


def test_license_findings_take_trivys_severity_and_name_the_license():
    findings = by_rule(parse("trivy/sbom_statuses_licenses.json"))

    licenses = {rule: f for rule, f in findings.items() if rule.startswith("license:")}
    assert set(licenses) == {"license:GPL-2.0-only", "license:Zlib", "license:GPL-3.0"}
    # Trivy rates a restricted license HIGH and a notice one LOW: its word, not ours.
    assert {rule: f.severity for rule, f in licenses.items()} == {
        "license:GPL-2.0-only": "high", "license:Zlib": "low", "license:GPL-3.0": "high"}
    gpl = licenses["license:GPL-2.0-only"]
    assert gpl.title == "License GPL-2.0-only in libc6"
    assert gpl.evidence["category"] == "restricted" and gpl.evidence["tool_severity"] == "HIGH"
    assert licenses["license:GPL-3.0"].location == "Loose File License(s): usr/share/common-licenses/GPL-3"


def test_a_legacy_null_report_is_zero_findings_not_a_refusal():
    result = parse("trivy/legacy_null.json")

    assert result.findings == []
    assert result.metadata["schema"] == "legacy"


def test_a_legacy_null_report_imports_as_a_clean_scan_of_the_node(world):
    report = findings_import(org=world.org, fmt="trivy", path=fixture("trivy/legacy_null.json"), node_address=NODE)

    assert report.findings == 0
    assert report.counts.new == 0


def _with_artifact(tmp_path, name: str):
    document = json.loads(fixture("trivy/sbom_statuses_licenses.json").read_text())
    document["ArtifactName"] = name
    path = tmp_path / "report.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize("artifact", ["sbom.json", "alpine:3.19", "registry.example.com/app:1.4", "/srv/app",
                                      "app.internal", "minikube"])
def test_with_node_every_artifact_goes_to_that_node_whatever_it_looks_like(world, tmp_path, artifact):
    report = findings_import(org=world.org, fmt="trivy", path=_with_artifact(tmp_path, artifact), node_address=NODE)

    assert report.nodes == 1 and report.nodes_created == 1
    assert set(Finding.objects.filter(org=world.org).values_list("node__address", flat=True)) == {NODE}
    assert Finding.objects.filter(org=world.org, rule_id="CVE-2024-2961").get().evidence["artifact"] == artifact


def test_a_kubernetes_cluster_named_like_a_host_goes_to_the_node(world):
    report = findings_import(org=world.org, fmt="trivy", path=fixture("trivy/minikube_cluster.json"),
                             node_address=NODE)

    assert report.nodes == 1
    assert set(Finding.objects.filter(org=world.org).values_list("node__address", flat=True)) == {NODE}
    assert Finding.objects.filter(org=world.org).count() == 2


def test_an_imported_not_affected_finding_is_triaged_and_does_not_count_as_open(world):
    findings_import(org=world.org, fmt="trivy", path=fixture("trivy/sbom_statuses_licenses.json"), node_address=NODE)

    zlib = Finding.objects.get(org=world.org, rule_id="CVE-2023-45853")
    assert zlib.status == Finding.Status.FALSE_POSITIVE
    assert "not affected" in zlib.triage_reason
    assert zlib.triaged_by is None and zlib.triaged_at is not None
    assert zlib.evidence["status"] == "not_affected"
    assert Finding.objects.get(org=world.org, rule_id="CVE-2024-2961").status == Finding.Status.OPEN
    assert not Finding.objects.active().filter(rule_id__in=["CVE-2023-45853", "CVE-2023-5678"]).exists()


def test_a_reimport_never_changes_a_persons_triage(world):
    findings_import(org=world.org, fmt="trivy", path=fixture("trivy/sbom_statuses_licenses.json"), node_address=NODE)
    Finding.objects.filter(rule_id="CVE-2023-45853").update(status=Finding.Status.RISK_ACCEPTED,
                                                            triage_reason="accepted by the platform team")
    Finding.objects.filter(rule_id="CVE-2024-2961").update(status=Finding.Status.FALSE_POSITIVE,
                                                           triage_reason="iconv is never called")

    findings_import(org=world.org, fmt="trivy", path=fixture("trivy/sbom_statuses_licenses.json"), node_address=NODE)

    zlib = Finding.objects.get(rule_id="CVE-2023-45853")
    assert (zlib.status, zlib.triage_reason) == ("risk_accepted", "accepted by the platform team")
    glibc = Finding.objects.get(rule_id="CVE-2024-2961")
    assert (glibc.status, glibc.triage_reason) == ("false_positive", "iconv is never called")


def test_the_tools_verdict_applies_to_new_findings_only(world, tmp_path):
    document = json.loads(fixture("trivy/sbom_statuses_licenses.json").read_text())
    zlib = document["Results"][0]["Vulnerabilities"][5]
    zlib["Status"] = "affected"
    first = tmp_path / "before.json"
    first.write_text(json.dumps(document))
    findings_import(org=world.org, fmt="trivy", path=first, node_address=NODE)

    findings_import(org=world.org, fmt="trivy", path=fixture("trivy/sbom_statuses_licenses.json"), node_address=NODE)

    known = Finding.objects.get(rule_id="CVE-2023-45853")
    assert known.status == Finding.Status.OPEN
    assert known.evidence["status"] == "not_affected"
