"""Trivy Kubernetes checks per container: two containers failing one check are two findings; an exact repeat is one."""

from __future__ import annotations

import json

from scans.findings.imports import findings_import
from scans.findings.normalization import finding_fingerprint
from scans.importers.base import get_importer
from scans.models import Finding

from .fixtures import fixture

NODE = "127.0.30.6"
TWO_CONTAINERS = "trivy/k8s_two_containers.json"  # one Deployment, KSV001 failed by 'web' (twice) and 'metrics-sidecar'


def test_each_container_failing_a_check_at_the_same_lines_has_its_own_location():
    result = get_importer("trivy").parse(fixture(TWO_CONTAINERS))

    locations = [f.location for f in result.findings]
    assert locations == [
        "shop/Deployment/shop: Deployment/shop: container web:120",
        "shop/Deployment/shop: Deployment/shop: container metrics-sidecar:120",
        "shop/Deployment/shop: Deployment/shop: container web:120",
    ]
    assert [f.evidence["container"] for f in result.findings] == ["web", "metrics-sidecar", "web"]
    web, sidecar, again = (finding_fingerprint(f) for f in result.findings)
    assert web != sidecar and web == again


def test_two_containers_are_two_findings_and_the_repeat_merges(world):
    report = findings_import(org=world.org, fmt="trivy", path=fixture(TWO_CONTAINERS), node_address=NODE)

    assert report.counts.new == 2
    findings = Finding.objects.filter(org=world.org, rule_id="AVD-KSV-0001")
    assert sorted(f.evidence["container"] for f in findings) == ["metrics-sidecar", "web"]


def test_the_real_kubernetes_report_names_each_container(parse):
    result = parse("trivy", "trivy/kubernetes.json")

    misconfigs = [f for f in result.findings if f.rule_id.startswith("KSV")]
    assert {f.evidence["container"] for f in misconfigs} == {"follower", "leader"}
    assert all(f": container {f.evidence['container']}:" in f.location for f in misconfigs)
    assert len({finding_fingerprint(f) for f in misconfigs}) == len(misconfigs) == 10


def test_a_check_about_the_workload_as_a_whole_names_no_container(tmp_path):
    document = json.loads(fixture(TWO_CONTAINERS).read_text())
    check = document["Misconfigurations"][0]["Results"][0]["Misconfigurations"][0]
    check.update(ID="KSV009", AVDID="AVD-KSV-0009", Title="Access to host network",
                 Message="Deployment 'shop' should not set 'spec.template.spec.hostNetwork' to true")
    document["Misconfigurations"][0]["Results"][0]["Misconfigurations"] = [check]
    path = tmp_path / "trivy.json"
    path.write_text(json.dumps(document))

    [finding] = get_importer("trivy").parse(path).findings

    assert finding.location == "shop/Deployment/shop: Deployment/shop:120"
    assert "container" not in finding.evidence
