"""Greenbone / OpenVAS "CSV Results" exports, read as well as the XML reports; other layouts refused by name."""

from __future__ import annotations

import pytest

from scans.findings.candidates import Coverage
from scans.findings.imports import findings_import
from scans.findings.normalization import finding_fingerprint
from scans.importers.base import ImportRejected, get_importer
from scans.models import Finding

from .fixtures import fixture


def parse(name: str, **kwargs):
    return get_importer("openvas").parse(fixture(f"openvas/{name}"), **kwargs)


def test_it_reads_every_result_row_of_a_gvm_export():
    result = parse("gvm21_results.csv")

    assert [f.rule_id for f in result.findings] == [
        "1.3.6.1.4.1.25623.1.0.108031", "1.3.6.1.4.1.25623.1.0.80091", "1.3.6.1.4.1.25623.1.0.105611",
        "1.3.6.1.4.1.25623.1.0.105937",
    ]  # the row an override marked "False Positive" is left out, as in the XML
    ciphers = result.findings[0]
    assert ciphers.title == "SSL/TLS: Report Vulnerable Cipher Suites for HTTPS"
    assert (ciphers.host, ciphers.port, ciphers.protocol, ciphers.location) == ("127.0.70.1", 443, "tcp", "")
    assert (ciphers.severity, ciphers.cvss_score) == ("high", 7.5)
    assert ciphers.cve_ids == ("CVE-2016-2183", "CVE-2016-6329", "CVE-2020-12872")
    assert ciphers.references == ("https://sweet32.info/", "https://www.openssl.org/blog/blog/2016/08/24/sweet32/")
    assert ciphers.remediation.startswith("The configuration of this services should be changed so that")
    assert "TLS_RSA_WITH_3DES_EDE_CBC_SHA (SWEET32)" in ciphers.evidence["output"]
    assert ciphers.evidence["qod"] == "80" and ciphers.evidence["hostname"] == "web-01.lab.internal"
    assert result.metadata["layout"] == "csv"


def test_a_result_on_no_port_is_located_like_the_xmls_general_tcp():
    result = parse("gvm21_results.csv")

    timestamps, os_detection = result.findings[1], result.findings[3]
    assert (timestamps.port, timestamps.location) == (None, "general/tcp")
    assert (os_detection.port, os_detection.location, os_detection.severity) == (None, "general/tcp", "info")


def test_it_covers_every_host_the_export_names():
    assert parse("gvm21_results.csv").coverage == [
        Coverage(host="127.0.70.1", whole_host=True), Coverage(host="127.0.70.2", whole_host=True)]


def test_an_older_openvas_export_without_qod_reads_the_same():
    [old] = parse("openvas9_results.csv").findings
    new = parse("gvm21_results.csv").findings[0]

    assert finding_fingerprint(old) == finding_fingerprint(new)
    assert (old.title, old.cvss_score, old.cve_ids) == (new.title, new.cvss_score, new.cve_ids)
    assert "qod" not in old.evidence


def test_a_csv_hosts_summary_is_refused_naming_its_layout_and_the_supported_ones():
    with pytest.raises(ImportRejected) as refused:
        parse("gvm21_hosts_summary.csv")

    assert refused.value.reason.startswith("a Greenbone CSV Hosts export (host summaries, no results: IP, Hostname")
    assert "supported: OpenVAS/Greenbone XML report" in refused.value.reason
    assert "Greenbone CSV Results export" in refused.value.reason


@pytest.mark.parametrize(("data", "seen"), [
    (b'{"Results": []}', "a JSON document, not an OpenVAS report"),
    (b"<nmaprun/>", "not an OpenVAS report (root element <nmaprun>)"),
    (b"host,port\n127.0.0.1,22\n", "a CSV file without the CSV Results columns (columns: host, port)"),
    (b"just some words\n", "not a CSV Results export (one column: just some words)"),
])
def test_any_other_layout_is_refused_naming_what_it_saw(data, seen):
    with pytest.raises(ImportRejected) as refused:
        get_importer("openvas").parse(data, "report")

    assert seen in refused.value.reason
    assert "supported: OpenVAS/Greenbone XML report" in refused.value.reason


def test_a_row_with_the_wrong_number_of_fields_refuses_the_file_naming_its_line():
    data = fixture("openvas/gvm21_results.csv").read_bytes() + b"127.0.70.9,,22,tcp\n"

    with pytest.raises(ImportRejected, match=r"line \d+: 4 fields where the header names 26"):
        get_importer("openvas").parse(data, "cut.csv")


def test_a_csv_export_imports_like_the_xml_report(world):
    report = findings_import(org=world.org, fmt="openvas", path=fixture("openvas/gvm21_results.csv"))

    assert report.counts.new == 4 and report.nodes == 2
    assert Finding.objects.get(rule_id="1.3.6.1.4.1.25623.1.0.108031").severity == "high"
