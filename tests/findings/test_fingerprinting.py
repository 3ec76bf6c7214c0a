"""CVE fingerprinting: services read from real banners, matched against the fixture catalog."""

from __future__ import annotations

import pytest

from scans.cve.analysis import cve_candidates_for_services
from scans.findings.candidates import Coverage, ServiceObservation
from scans.findings.lifecycle import findings_ingest
from scans.models import Finding
from scans.scanners.fingerprint import Probe, from_banner
from tests.factories import NodeFactory

pytestmark = pytest.mark.usefixtures("catalog")


def ssh(banner: bytes, host: str = "127.0.40.1") -> ServiceObservation:
    return from_banner(Probe(host, 22), banner)


def cves(*services: ServiceObservation) -> dict[str, object]:
    return {c.rule_id: c for c in cve_candidates_for_services(services=services)}


def test_openssh_8_9p1_from_its_banner_is_vulnerable_to_regresshion():
    found = cves(ssh(b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10\r\n"))

    assert {"CVE-2024-6387", "CVE-2023-38408", "CVE-2023-48795"} <= set(found)
    regresshion = found["CVE-2024-6387"]
    assert (regresshion.source, regresshion.host, regresshion.port, regresshion.protocol) == (
        "cve", "127.0.40.1", 22, "tcp")
    assert (regresshion.cvss_score, regresshion.cwe, regresshion.cve_ids) == (8.1, 362, ("CVE-2024-6387",))
    # The banner names Ubuntu's package: the fix may have been backported into it.
    assert regresshion.evidence["match_confidence"] == 0.5
    assert regresshion.evidence["match_basis"] == "backport"
    assert regresshion.evidence["match_reason"] == ("openssh 8.9p1 is within [8.6, 9.8); a distribution build "
                                                    "(Ubuntu 3ubuntu0.10) may carry backported fixes")
    assert regresshion.evidence["banner"] == "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10"
    assert regresshion.evidence["cpe"] == "cpe:2.3:a:openbsd:openssh:8.9p1:*:*:*:*:*:*:*"
    assert regresshion.description and regresshion.references


def test_an_ubuntu_openssh_banner_is_matched_below_the_default_threshold():
    found = cves(ssh(b"SSH-2.0-OpenSSH_7.2p2 Ubuntu-4ubuntu2.8\r\n"))

    assert found, "upstream ranges still match 7.2p2"
    for candidate in found.values():
        assert candidate.evidence["match_confidence"] < 0.6
        assert "a distribution build (Ubuntu 4ubuntu2.8) may carry backported fixes" in candidate.evidence[
            "match_reason"]


def test_an_apache_server_token_naming_a_distribution_lowers_the_confidence():
    packaged = ServiceObservation(host="127.0.40.7", port=80, service="http", product="apache", version="2.4.49",
                                  banner="Apache/2.4.49 (Debian)")
    upstream = ServiceObservation(host="127.0.40.8", port=80, service="http", product="apache", version="2.4.49",
                                  banner="Apache/2.4.49 (Unix)")

    assert cves(upstream)["CVE-2021-41773"].evidence["match_confidence"] == 1.0
    lowered = cves(packaged)["CVE-2021-41773"].evidence
    assert lowered["match_confidence"] < 0.6 and lowered["match_basis"] == "backport"


def test_a_fixed_openssh_matches_none_of_those():
    assert cves(ssh(b"SSH-2.0-OpenSSH_9.8p1\r\n")) == {}


def test_openssh_7_4_matches_the_older_cves_but_not_regresshion():
    found = cves(ssh(b"SSH-2.0-OpenSSH_7.4\r\n"))

    assert {"CVE-2018-15473", "CVE-2021-41617"} <= set(found)
    assert "CVE-2024-6387" not in found  # affected from 8.6 only


def test_mysql_from_its_handshake_matches_by_version():
    handshake = b"\x4a\x00\x00\x00\x0a8.0.30\x00" + b"\x00" * 60
    service = from_banner(Probe("127.0.40.2", 3306), handshake)

    found = cves(service)

    assert "CVE-2023-21980" in found  # oracle:mysql 8.0.0 - 8.0.32
    assert "CVE-2023-22084" in found
    fixed = cves(from_banner(Probe("127.0.40.2", 3306), b"\x4a\x00\x00\x00\x0a8.0.36\x00" + b"\x00" * 60))
    assert "CVE-2023-21980" not in fixed


def test_an_nmap_style_cpe_and_product_name_match_nginx_under_its_new_vendor():
    service = ServiceObservation(host="127.0.40.3", port=80, service="http", product="nginx", version="1.18.0",
                                 cpe="cpe:/a:igor_sysoev:nginx:1.18.0", banner="Server: nginx/1.18.0")

    found = cves(service)

    assert {"CVE-2021-23017", "CVE-2022-41741"} <= set(found)
    assert "CVE-2019-20372" not in found  # fixed in 1.17.7


def test_a_platform_only_cve_matches_with_lower_confidence_and_says_why():
    service = ServiceObservation(host="127.0.40.4", port=6379, service="redis", product="Redis", version="6.2.5")

    found = cves(service)

    assert found["CVE-2021-32626"].evidence["match_confidence"] == 1.0
    debian_only = found["CVE-2022-0543"]
    assert debian_only.evidence["match_confidence"] < 0.5
    assert "which was not observed" in debian_only.evidence["match_reason"]


def test_a_service_without_a_version_matches_nothing():
    assert cves(ServiceObservation(host="127.0.40.5", port=6379, product="Redis")) == {}
    assert cves(ssh(b"SSH-2.0-dropbear\r\n")) == {}


def test_a_deferred_cve_without_configurations_never_matches():
    docker = ServiceObservation(host="127.0.40.6", port=2375, product="Docker Engine", version="18.09.1")

    found = cves(docker)

    assert {"CVE-2019-5736", "CVE-2021-21285"} <= set(found)
    assert "CVE-2024-41110" not in found


def test_a_thousand_services_cost_one_catalog_query(django_assert_num_queries):
    services = [ssh(b"SSH-2.0-OpenSSH_8.9p1\r\n", host=f"127.0.41.{i % 250}") for i in range(1000)]
    services += [ServiceObservation(host="127.0.42.1", port=6379, product="Redis", version="7.0.5")]

    with django_assert_num_queries(1):
        candidates = cve_candidates_for_services(services=services)

    assert sum(c.rule_id == "CVE-2024-6387" for c in candidates) == 1000


def test_match_confidence_and_reason_land_on_the_finding(world):
    node = NodeFactory(org=world.org, address="127.0.40.1")
    candidates = cve_candidates_for_services(services=[ssh(b"SSH-2.0-OpenSSH_8.9p1\r\n")])

    findings_ingest(org=world.org, source="cve", items=[(node.pk, c) for c in candidates],
                    coverage={node.pk: Coverage(host=node.address, ports=(22,))}, complete=True)

    finding = Finding.objects.get(node=node, rule_id="CVE-2024-6387")
    assert (finding.match_confidence, finding.match_reason) == (1.0, "openssh 8.9p1 is within [8.6, 9.8)")
    assert (finding.severity, finding.cve_ids, finding.port) == ("high", ["CVE-2024-6387"], 22)
    assert "match_confidence" not in finding.evidence
