"""SSLyze 3.x and 4.x JSON read as well as 5.x; other layouts refused, naming what they are."""

from __future__ import annotations

import pytest

from scans.findings.candidates import Coverage
from scans.importers.base import ImportRejected, get_importer

from .fixtures import fixture


def parse(name: str):
    return get_importer("sslyze").parse(fixture(f"sslyze/{name}"))


def test_it_reads_an_sslyze_4_report():
    result = parse("sslyze_4_1_legacy_server.json")

    by_rule = {f.rule_id: f for f in result.findings}
    assert set(by_rule) == {
        "sslyze-tls10-enabled", "sslyze-weak-cipher-suites", "sslyze-robot", "sslyze-client-renegotiation-dos",
        "sslyze-cert-untrusted", "sslyze-cert-hostname-mismatch",
    }
    tls10 = by_rule["sslyze-tls10-enabled"]
    assert (tls10.host, tls10.port, tls10.evidence["hostname"]) == ("127.0.50.8", 443, "legacy-01.lab.internal")
    assert by_rule["sslyze-weak-cipher-suites"].evidence["cipher_suites"] == {
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA": ["TLS 1.0", "TLS 1.2"]}
    assert by_rule["sslyze-robot"].evidence["robot_result"] == "VULNERABLE_WEAK_ORACLE"
    assert by_rule["sslyze-cert-untrusted"].evidence["validation_errors"]["Mozilla"] == "self signed certificate"
    assert result.metadata["version"] == "4.1.0" and result.metadata["layout"] == "3.x/4.x"
    assert result.coverage == [Coverage(host="127.0.50.8", ports=(443,))]
    [service] = result.services
    assert service.evidence["highest_tls_version"] == "TLS_1_2"


def test_it_reads_an_sslyze_3_report():
    result = parse("sslyze_3_1_mail_server.json")

    by_rule = {f.rule_id: f for f in result.findings}
    assert set(by_rule) == {
        "sslyze-ssl3-enabled", "sslyze-tls10-enabled", "sslyze-weak-cipher-suites", "sslyze-heartbleed",
        "sslyze-tls-compression", "sslyze-no-fallback-scsv", "sslyze-insecure-renegotiation",
        "sslyze-cert-untrusted", "sslyze-cert-weak-key",
    }
    assert by_rule["sslyze-heartbleed"].severity == "critical"
    assert by_rule["sslyze-weak-cipher-suites"].cve_ids == ("CVE-2013-2566", "CVE-2015-2808")
    assert {f.port for f in result.findings} == {587}
    assert by_rule["sslyze-cert-untrusted"].evidence["validation_errors"]["Java"] == "certificate has expired"
    assert result.metadata["version"] == "3.1.0"


def test_an_errored_plugin_says_nothing():
    result = parse("sslyze_4_1_legacy_server.json")

    assert "sslyze-tls13-early-data" not in {f.rule_id for f in result.findings}


def test_sslyze_2_is_refused_naming_its_layout_and_the_supported_ones():
    with pytest.raises(ImportRejected) as refused:
        parse("sslyze_2_1_unsupported.json")

    reason = refused.value.reason
    assert reason.startswith("SSLyze 2.1.4 layout (accepted_targets), not supported; supported: ")
    assert "SSLyze 5.x+ JSON" in reason and "SSLyze 3.x/4.x JSON" in reason


@pytest.mark.parametrize(("document", "seen"), [
    (b'{"SchemaVersion": 2, "Results": []}', "an object with keys: SchemaVersion, Results"),
    (b"[1, 2]", "the document is an array"),
    (b'{"server_scan_results": {}}', "server_scan_results is an object, not an array"),
    (b'{"server_scan_results": [{"uuid": "x"}]}', "neither scan_result nor scan_commands_results (keys: uuid)"),
])
def test_any_other_layout_is_refused_naming_what_it_saw(document, seen):
    with pytest.raises(ImportRejected) as refused:
        get_importer("sslyze").parse(document, "report.json")

    assert seen in refused.value.reason
    assert "supported: SSLyze 5.x+ JSON (server_scan_results[].scan_result); SSLyze 3.x/4.x JSON" in refused.value.reason


def test_the_5x_samples_still_read_the_same(samples):
    result = get_importer("sslyze").parse(samples / "sslyze/one_target_many_vuln_new.json")

    assert result.metadata["layout"] == "5.x"
    assert {f.rule_id for f in result.findings} == {
        "sslyze-tls10-enabled", "sslyze-tls11-enabled", "sslyze-weak-cipher-suites"}
