from collections import Counter

from scans.findings.candidates import Coverage


def test_it_reads_every_result_of_a_large_report(parse):
    result = parse("openvas", "openvas/many_vuln.xml")

    assert len(result.findings) == 44
    assert result.metadata["results"] == 44
    assert {f.host for f in result.findings} == {"192.168.1.1001"}
    assert Counter(f.severity for f in result.findings) == {"medium": 25, "high": 19}
    assert Counter(f.port for f in result.findings)[80] == 15
    assert result.coverage == [Coverage(host="192.168.1.1001", whole_host=True)]


def test_it_uses_the_nvt_oid_as_rule_and_its_name_as_title(parse):
    result = parse("openvas", "openvas/many_vuln.xml")

    rexec = result.findings[0]
    assert rexec.rule_id == "1.3.6.1.4.1.25623.1.0.100111"
    assert rexec.title == "The rexec service is running"
    assert (rexec.port, rexec.protocol, rexec.cvss_score, rexec.cve_ids) == (512, "tcp", 10.0, ("CVE-1999-0618",))
    assert rexec.remediation == "Disable the rexec service and use alternatives like SSH instead."
    ccs = next(f for f in result.findings if "CVE-2014-0224" in f.cve_ids)
    assert (ccs.port, ccs.cvss_score, ccs.severity) == (5432, 7.4, "high")


def test_a_result_without_a_threat_word_takes_its_severity_from_the_score(parse):
    result = parse("openvas", "openvas/many_vuln.xml")

    dh = next(f for f in result.findings if f.rule_id == "1.3.6.1.4.1.25623.1.0.106223")
    assert (dh.evidence["threat"], dh.cvss_score, dh.severity) == ("", 4.0, "medium")


def test_it_reads_a_single_host_wide_result_without_a_port(parse):
    [finding] = parse("openvas", "openvas/one_vuln.xml").findings

    assert finding.title == "Mozilla Firefox Security Update (mfsa_2023-32_2023-36) - Windows"
    assert (finding.host, finding.port, finding.location) == ("10.0.101.2", None, "general/tcp")
    assert len(finding.cve_ids) == 12 and finding.cve_ids[0] == "CVE-2023-4573"
    assert finding.references == ("https://www.mozilla.org/en-US/security/advisories/mfsa2023-34/",)


def test_a_report_without_results_imports_nothing(parse):
    result = parse("openvas", "openvas/no_vuln.xml")

    assert (result.findings, result.coverage) == ([], [])
