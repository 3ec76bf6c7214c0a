from scans.findings.candidates import Coverage


def test_it_reports_legacy_protocols_and_3des_on_the_vulnerable_server(parse):
    result = parse("sslyze", "sslyze/one_target_many_vuln_new.json")

    by_rule = {f.rule_id: f for f in result.findings}
    assert set(by_rule) == {"sslyze-tls10-enabled", "sslyze-tls11-enabled", "sslyze-weak-cipher-suites"}
    tls10 = by_rule["sslyze-tls10-enabled"]
    assert (tls10.host, tls10.port, tls10.severity) == ("1.1.1.1", 443, "medium")
    assert tls10.evidence["hostname"] == "example.com"
    weak = by_rule["sslyze-weak-cipher-suites"]
    assert weak.cve_ids == ("CVE-2016-2183",)
    assert set(weak.evidence["cipher_suites"]) == {
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    }
    assert weak.evidence["cipher_suites"]["TLS_RSA_WITH_3DES_EDE_CBC_SHA"] == ["TLS 1.0", "TLS 1.1", "TLS 1.2"]
    assert result.metadata["version"] == "5.0.1"


def test_it_covers_only_the_scanned_port(parse):
    result = parse("sslyze", "sslyze/one_target_many_vuln_new.json")

    assert result.coverage == [Coverage(host="1.1.1.1", ports=(443,))]
    [service] = result.services
    assert (service.port, service.tls, service.evidence["highest_tls_version"]) == (443, True, "TLS_1_2")


def test_a_well_configured_server_has_no_findings(parse):
    result = parse("sslyze", "sslyze/one_target_zero_vuln_new.json")

    assert result.findings == []
    assert result.coverage == [Coverage(host="40.76.4.15", ports=(443,))]
    assert result.services[0].evidence["highest_tls_version"] == "TLS_1_3"
