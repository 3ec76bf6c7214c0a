from collections import Counter

from scans.findings.candidates import Coverage


def test_it_reads_schema_2_image_vulnerabilities_with_package_and_fix(parse):
    result = parse("trivy", "trivy/scheme_2_many_vulns.json")

    assert [f.rule_id for f in result.findings] == [
        "CVE-2020-15999", "CVE-2020-28196", "CVE-2019-12900", "CVE-2018-11771", "CVE-2018-1324",
    ]
    freetype = result.findings[0]
    assert freetype.host == "teamdojo:latest"
    assert freetype.location == "teamdojo:latest (alpine 3.9.4): freetype@2.9.1-r2"
    assert (freetype.severity, freetype.cvss_score, freetype.cwe) == ("medium", 6.5, 787)
    assert freetype.cvss_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H"
    assert freetype.remediation == "Upgrade freetype to 2.9.1-r3 or later."
    assert freetype.cve_ids == ("CVE-2020-15999",)
    jar = result.findings[3]
    assert jar.location == "app/libs/commons-compress-1.14.jar: org.apache.commons:commons-compress@1.14"
    assert result.coverage == [Coverage(host="teamdojo:latest", whole_host=True)]


def test_a_clean_image_is_covered_with_no_findings(parse):
    result = parse("trivy", "trivy/scheme_2_no_vuln.json")

    assert result.findings == []
    assert result.coverage == [Coverage(host="trivy-unittest:latest", whole_host=True)]


def test_it_reads_the_legacy_array_layout(parse):
    result = parse("trivy", "trivy/legacy_many_vulns.json")

    assert len(result.findings) == 93
    assert result.metadata["schema"] == "legacy"
    assert {f.host for f in result.findings} == {"debian"}
    assert Counter(f.severity for f in result.findings) == {"low": 65, "high": 18, "medium": 9, None: 1}
    apt = result.findings[0]
    assert (apt.rule_id, apt.location, apt.cvss_score) == ("CVE-2011-3374", "debian (debian 10.8): apt@1.8.2.2", 3.7)
    temp = next(f for f in result.findings if f.rule_id.startswith("TEMP-"))
    assert temp.cve_ids == ()


def test_it_reads_misconfigurations_and_secrets(parse):
    result = parse("trivy", "trivy/misconfigurations_and_secrets.json")

    by_rule = {f.rule_id: f for f in result.findings}
    assert set(by_rule) == {"CVE-2021-33503", "CVE-2021-28363", "DS002", "secret:github-pat"}
    assert by_rule["DS002"].severity == "high"
    assert by_rule["DS002"].remediation == "Add 'USER <non root user name>' line to the Dockerfile"
    secrets = [f for f in result.findings if f.rule_id == "secret:github-pat"]
    assert sorted(f.location for f in secrets) == ["Dockerfile:24", "secret.txt:1"]
    assert all(f.severity == "critical" and f.cwe == 798 for f in secrets)
    assert secrets[0].evidence["match"] == "ENV GITHUB_PAT=*****"


def test_it_reads_a_kubernetes_report_per_resource(parse):
    result = parse("trivy", "trivy/kubernetes.json")

    cluster = "arn:aws:eks:us-east-1:576036489467:cluster/monitoring-test-cluster"
    assert {f.host for f in result.findings} == {cluster}
    assert len(result.findings) == 20
    vulns = [f for f in result.findings if f.cve_ids]
    assert len(vulns) == 10
    assert vulns[0].location == (
        "default/Deployment/redis-follower: gcr.io/google_samples/gb-redis-follower:v2 (debian 10.4): apt@1.8.2.1"
    )
    misconfigs = [f for f in result.findings if f.rule_id.startswith("KSV")]
    assert len(misconfigs) == 10
    assert misconfigs[0].location == (
        "default/Deployment/redis-follower: Deployment/redis-follower: container follower:132")
    assert misconfigs[0].evidence["container"] == "follower"
