import pytest

from scans.findings.candidates import Coverage
from scans.importers.base import ImportRejected, get_importer


def test_it_reads_v2_jsonl_with_one_finding_per_matcher(parse):
    result = parse("nuclei", "nuclei/many_findings.json")

    assert len(result.findings) == 18
    tech = [f for f in result.findings if f.rule_id == "tech-detect"]
    assert len(tech) == 11
    assert len({f.location for f in tech}) == 11  # each matcher is its own hit
    setup = next(f for f in result.findings if f.rule_id == "phpmyadmin-setup")
    assert (setup.severity, setup.host, setup.port) == ("medium", "178.21.15.56", 443)
    assert setup.location == "https://nuclei-example.com/phpmyadmin/setup/index.php"
    assert setup.references == ("https://hackerone.com/reports/297339",)
    assert set(result.coverage) == {
        Coverage(host="178.21.15.56", whole_host=True),
        Coverage(host="127.0.0.1", whole_host=True),
    }


def test_it_splits_v2_reference_blocks_into_separate_links(parse):
    result = parse("nuclei", "nuclei/many_findings.json")

    openssh = next(f for f in result.findings if f.rule_id == "openssh5.3-detect")
    assert openssh.references == (
        "http://seclists.org/fulldisclosure/2016/Jul/51",
        "https://security-tracker.debian.org/tracker/CVE-2016-6210",
        "http://openwall.com/lists/oss-security/2016/08/01/2",
    )
    assert (openssh.severity, openssh.port, openssh.location) == ("low", 22, "nuclei-example.com:22")


def test_it_reads_a_v3_json_export_array(parse):
    result = parse("nuclei", "nuclei/multiple_v3.json")

    assert [f.rule_id for f in result.findings] == [
        "dns-saas-service-detection", "caa-fingerprint", "ssl-issuer", "ssl-dns-names", "tls-version", "tls-version",
    ]
    caa = result.findings[1]
    assert (caa.cwe, caa.host, caa.port) == (200, "www.asdf.de", None)
    versions = [f.location for f in result.findings if f.rule_id == "tls-version"]
    assert versions == ["www.asdf.de:443 [tls12]", "www.asdf.de:443 [tls13]"]
    assert result.findings[2].host == "8.8.8.8"


def test_it_keeps_a_finding_whose_cwe_is_not_a_number_without_a_cwe(parse):
    [finding] = parse("nuclei", "nuclei/invalid_cwe.json").findings

    assert finding.rule_id == "mysql-native-password-bruteforce"
    assert finding.cwe is None
    assert finding.evidence["cwe_raw"] == ["nvd-cve-other"]
    assert (finding.port, finding.severity) == (3306, "info")


def test_it_reads_empty_files_as_no_findings(parse):
    for name in ("nuclei/empty.jsonl", "nuclei/no_findings.json"):
        result = parse("nuclei", name)
        assert (result.findings, result.coverage) == ([], [])


def test_an_empty_file_covers_the_default_host_when_one_is_given(parse):
    result = parse("nuclei", "nuclei/empty.jsonl", default_host="127.0.0.5")

    assert result.coverage == [Coverage(host="127.0.0.5", whole_host=True)]


def test_it_reads_cve_cvss_and_cwe_from_the_classification():
    line = (
        b'{"template-id":"CVE-2021-44228","info":{"name":"Log4Shell","severity":"critical",'
        b'"classification":{"cve-id":["cve-2021-44228"],"cwe-id":["cwe-502","cwe-917"],'
        b'"cvss-score":10,"cvss-metrics":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"},'
        b'"remediation":"Upgrade to 2.17.1."},"type":"http","host":"http://127.0.0.7:8080",'
        b'"matched-at":"http://127.0.0.7:8080/api","ip":"127.0.0.7","port":"8080"}\n'
    )

    [finding] = get_importer("nuclei").parse(line, "log4j.jsonl").findings

    assert finding.cve_ids == ("CVE-2021-44228",)
    assert (finding.cvss_score, finding.cwe, finding.port) == (10.0, 502, 8080)
    assert finding.cvss_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"
    assert finding.remediation == "Upgrade to 2.17.1."


def test_it_skips_results_whose_matcher_did_not_match():
    line = b'{"template-id":"x","info":{"name":"x","severity":"high"},"host":"127.0.0.7","matcher-status":false}\n'

    assert get_importer("nuclei").parse(line, "ms.jsonl").findings == []


def test_each_record_reads_its_own_info_block_even_when_its_rule_repeats():
    def line(info: bytes, host: str) -> bytes:
        return b'{"template-id":"x","info":' + info + b',"host":"' + host.encode() + b'"}\n'

    same = b'{"name":"Same","severity":"low","classification":{"cvss-score":5.0,"cwe-id":["nvd-cwe-x"]}}'
    lines = [
        line(same, "127.0.0.1"),
        line(same, "127.0.0.2"),
        line(b'{"name":"Same","severity":"low","classification":{"cvss-score":9.8}}', "127.0.0.3"),
        line(b'{"name":1,"severity":"low"}', "127.0.0.4"),
        line(b'{"name":1.0,"severity":"low"}', "127.0.0.5"),
    ]

    findings = get_importer("nuclei").parse(b"".join(lines), "rules.jsonl").findings

    assert [(f.title, f.cvss_score) for f in findings] == [
        ("Same", 5.0), ("Same", 5.0), ("Same", 9.8), ("1", None), ("1.0", None)]
    assert findings[0].evidence["cwe_raw"] == findings[1].evidence["cwe_raw"] == ["nvd-cwe-x"]
    assert findings[0].evidence["cwe_raw"] is not findings[1].evidence["cwe_raw"]


def test_an_info_block_of_the_wrong_kind_refuses_the_file_wherever_it_repeats():
    good = b'{"template-id":"x","info":{"name":"x","severity":"low"},"host":"127.0.0.1"}\n'
    bad = b'{"template-id":"x","info":{"name":"x","severity":["low"]},"host":"127.0.0.2"}\n'

    with pytest.raises(ImportRejected, match=r"line 2.*\$\.info\.severity"):
        get_importer("nuclei").parse(good + bad + bad, "bad.jsonl")


@pytest.mark.slow
def test_it_reads_100000_jsonl_lines_in_a_few_seconds(tmp_path):
    import json
    import time

    template = {
        "template-id": "CVE-2021-{n}",
        "info": {
            "name": "Template {n}",
            "severity": "high",
            "reference": ["https://a/{n}"],
            "classification": {"cve-id": ["cve-2021-{n}"], "cwe-id": ["cwe-79"], "cvss-score": 7.5},
        },
        "type": "http", "host": "http://127.0.{h}.1:8080", "matched-at": "http://127.0.{h}.1:8080/p/{i}",
        "ip": "127.0.{h}.1", "port": "8080", "timestamp": "2023-11-06T14:48:31+01:00",
        "request": "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "response": "HTTP/1.1 200 OK\r\n\r\n" + "x" * 200,
    }
    pattern = json.dumps(template)
    path = tmp_path / "big.jsonl"
    with open(path, "w") as handle:
        for i in range(100_000):
            line = pattern.replace("{n}", str(1000 + i % 500)).replace("{h}", str(i % 250)).replace("{i}", str(i))
            handle.write(line + "\n")

    started = time.process_time()
    result = get_importer("nuclei").parse(path)
    spent = time.process_time() - started

    assert len(result.findings) == 100_000
    assert len(result.coverage) == 250
    assert result.findings[-1].cve_ids == ("CVE-2021-1499",)
    # A bound far above what the reader needs, for a slow and shared CI machine.
    assert spent < 15, f"100,000 lines took {spent:.1f}s of CPU"
