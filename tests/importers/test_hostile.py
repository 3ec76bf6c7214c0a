"""Malformed, truncated, empty and hostile files: each is refused whole, naming file and position."""

import json

import pytest

from scans.importers.base import ImportRejected, get_importer

XML_IMPORTERS = ("nmap", "openvas")
JSON_IMPORTERS = ("trivy", "sslyze", "sarif")

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
]>
<nmaprun>&lol2;</nmaprun>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE report [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<report><results><result><host>&xxe;</host></result></results></report>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE nmaprun SYSTEM "http://127.0.0.1:9/nmap.dtd">
<nmaprun/>"""


def reject(importer: str, data: bytes, filename: str) -> ImportRejected:
    with pytest.raises(ImportRejected) as caught:
        get_importer(importer).parse(data, filename)
    assert not caught.value.internal, f"the safety net caught it: {caught.value}"
    assert str(caught.value).startswith(f"{filename}: ")
    return caught.value


@pytest.mark.parametrize("importer", XML_IMPORTERS)
def test_it_rejects_a_billion_laughs_file_naming_the_file(importer):
    error = reject(importer, BILLION_LAUGHS, "laughs.xml")

    assert error.line == 2
    assert "document type definitions are not accepted" in error.reason


@pytest.mark.parametrize("importer", XML_IMPORTERS)
def test_it_rejects_an_external_entity_without_reading_it(importer):
    error = reject(importer, EXTERNAL_ENTITY, "xxe.xml")

    assert "root:" not in str(error)
    assert error.line == 2


@pytest.mark.parametrize("importer", XML_IMPORTERS)
def test_it_rejects_an_external_dtd(importer):
    assert reject(importer, EXTERNAL_DTD, "dtd.xml").line == 2


def test_it_accepts_the_bare_doctype_nmap_writes(samples):
    result = get_importer("nmap").parse(samples / "nmap" / "nmap_script_vulners.xml")

    assert result.findings


@pytest.mark.parametrize("importer", XML_IMPORTERS)
def test_it_rejects_elements_nested_absurdly_deep(importer):
    error = reject(importer, b"<report>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</report>", "deep.xml")

    assert "nested deeper than 256" in error.reason


def test_it_rejects_truncated_xml_at_the_line_where_it_stops(samples):
    data = (samples / "openvas" / "one_vuln.xml").read_bytes()[:3000]

    error = reject("openvas", data, "cut.xml")

    assert (error.line, error.column) == (3, 47)
    assert error.reason == "invalid XML: no element found"


def test_it_rejects_an_xml_report_from_another_tool():
    assert "not an OpenVAS report (root element <nmaprun>)" in reject("openvas", b"<nmaprun/>", "x.xml").reason
    assert "not an nmap XML report" in reject("nmap", b"<report/>", "x.xml").reason


@pytest.mark.parametrize("importer", ("nmap", "openvas", "trivy", "sslyze", "sarif"))
def test_it_rejects_an_empty_file(importer):
    error = reject(importer, b"", "empty.out")

    assert "empty" in error.reason or "not valid JSON" in error.reason


@pytest.mark.parametrize("importer", JSON_IMPORTERS + ("nuclei",))
def test_it_rejects_json_nested_past_the_parsers_depth_limit(importer):
    for depth in (2_000, 200_000):
        data = b'{"a":' * depth + b"1" + b"}" * depth
        error = reject(importer, data, "deep.json")
        assert "not valid JSON" in error.reason


def test_it_rejects_deep_json_through_the_standard_library_too(monkeypatch):
    monkeypatch.setattr("scans.importers.reading.orjson", None)

    error = reject("trivy", b"[" * 100_000 + b"]" * 100_000, "deep.json")

    assert "nested too deeply" in error.reason


@pytest.mark.parametrize("use_orjson", [True, False])
def test_it_rejects_non_utf8_json(monkeypatch, use_orjson):
    if not use_orjson:
        monkeypatch.setattr("scans.importers.reading.orjson", None)

    error = reject("trivy", b'{"ArtifactName": "caf\xe9", "Results": []}', "latin1.json")

    assert "not UTF-8" in error.reason or "not valid JSON" in error.reason


@pytest.mark.parametrize("use_orjson", [True, False])
def test_it_rejects_nan_infinity_and_lone_surrogates(monkeypatch, use_orjson):
    if not use_orjson:
        monkeypatch.setattr("scans.importers.reading.orjson", None)
    for data in (b'{"Results": NaN}', b'{"Results": [], "x": 1e999}', b'{"ArtifactName": "\\ud800", "Results": []}'):
        reject("trivy", data, "odd.json")


def test_it_rejects_binary_junk():
    junk = bytes(range(256)) * 4
    for importer in ("nmap", "openvas", "trivy", "sslyze", "sarif", "nuclei"):
        reject(importer, junk, "junk.bin")


def test_it_rejects_a_bad_jsonl_line_naming_its_number_and_returns_nothing():
    good = json.dumps({"template-id": "a", "info": {"severity": "low"}, "host": "127.0.0.1"}).encode()
    data = b"\n".join([good, good, b'{"template-id": "b", "info": ', good]) + b"\n"

    error = reject("nuclei", data, "scan.jsonl")

    assert error.line == 3
    assert str(error).startswith("scan.jsonl: line 3, column ")


def test_it_rejects_wrong_types_with_the_json_path():
    error = reject("trivy", b'{"SchemaVersion": 2, "ArtifactName": "img", "Results": [{"Target": "t", '
                   b'"Vulnerabilities": [{"VulnerabilityID": "CVE-2020-1", "PkgName": {"x": 1}}]}]}', "types.json")
    assert error.path == "$.Results[0].Vulnerabilities[0].PkgName"
    assert "PkgName should be text, not an object" in error.reason

    error = reject("sarif", b'{"version": "2.1.0", "runs": {"results": []}}', "runs.sarif")
    assert error.path == "$.runs" and "should be an array" in error.reason

    error = reject("nuclei", b'{"template-id": "x", "info": ["not", "an", "object"]}\n', "info.jsonl")
    assert (error.line, error.path) == (1, "$.info")

    error = reject("sslyze", b'{"server_scan_results": [{"server_location": {"ip_address": "127.0.0.1", '
                   b'"port": "https"}, "scan_result": {}}]}', "port.json")
    assert error.path == "$.server_scan_results[0].server_location.port"


def test_it_rejects_json_from_another_tool():
    assert "not a Trivy report" in reject("trivy", b'{"runs": []}', "x.json").reason
    assert "not an SSLyze report (an object with keys: Results); supported: SSLyze 5.x+" in reject(
        "sslyze", b'{"Results": []}', "x.json").reason
    assert "not a SARIF log" in reject("sarif", b'{"server_scan_results": []}', "x.json").reason
    assert "not a Trivy report (the document is text)" in reject("trivy", b'"hello"', "x.json").reason
