import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scans.cve import nvd
from scans.cve.nvd import NvdFeed, NvdFormatError, iter_cve_entries, parse_cve

FIXTURE = Path(__file__).resolve().parents[2] / "scans" / "fixtures" / "cves" / "nvd_products.json"


def cve(cve_id="CVE-2099-0001", **fields):
    record = {"id": cve_id, "published": "2024-07-01T13:15:06.467", "lastModified": "2024-07-09T06:15:03.513"}
    record.update(fields)
    return {"cve": record}


def document(*items, **header):
    data = {"resultsPerPage": len(items), "startIndex": 0, "totalResults": len(items), "format": "NVD_CVE", "version": "2.0"}
    data.update(header)
    data["vulnerabilities"] = list(items)
    return json.dumps(data, indent=2)


def metric(kind, vector, score, source="nvd@nist.gov", severity="HIGH"):
    return {"source": source, "type": kind, "cvssData": {"vectorString": vector, "baseScore": score, "baseSeverity": severity}}


def test_the_fixture_parses_into_entries():
    entries = list(iter_cve_entries(FIXTURE))
    assert len(entries) == 35
    regresshion = next(e for e in entries if e.cve_id == "CVE-2024-6387")
    assert regresshion.cvss_score == 8.1
    assert regresshion.cvss_vector == "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert regresshion.cvss_version == "3.1"
    assert regresshion.severity == "high"
    assert regresshion.cwe_ids == ("CWE-362", "CWE-364")
    assert regresshion.published == datetime(2024, 7, 1, 13, 15, 6, 467000, tzinfo=UTC)
    assert regresshion.description.startswith("A security regression (CVE-2006-5051)")
    assert "https://www.openssh.com/txt/release-9.8" in regresshion.references
    assert regresshion.configurations


def test_the_feed_exposes_its_header_before_the_first_entry():
    feed = NvdFeed(FIXTURE)
    first = next(iter(feed))
    assert first.cve_id == "CVE-2024-6387"
    assert feed.metadata["totalResults"] == 35
    assert feed.metadata["format"] == "NVD_CVE"


def test_cvss_prefers_v31_then_v30_then_v2_and_the_primary_source():
    metrics = {
        "cvssMetricV2": [{"source": "nvd@nist.gov", "type": "Primary", "cvssData": {"vectorString": "AV:N/AC:L/Au:N/C:P/I:P/A:P", "baseScore": 7.5}, "baseSeverity": "HIGH"}],
        "cvssMetricV30": [metric("Primary", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, severity="CRITICAL")],
    }
    assert parse_cve(cve(metrics=metrics)["cve"]).cvss_version == "3.0"
    metrics["cvssMetricV31"] = [
        metric("Secondary", "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.0, source="cna@example.org"),
        metric("Primary", "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8),
    ]
    entry = parse_cve(cve(metrics=metrics)["cve"])
    assert (entry.cvss_version, entry.cvss_score) == ("3.1", 8.8)
    del metrics["cvssMetricV31"], metrics["cvssMetricV30"]
    entry = parse_cve(cve(metrics=metrics)["cve"])
    assert (entry.cvss_version, entry.cvss_score, entry.severity) == ("2.0", 7.5, "high")


def test_without_a_primary_score_the_first_one_is_taken():
    entry = next(e for e in iter_cve_entries(FIXTURE) if e.cve_id == "CVE-2023-21980")
    assert entry.cvss_score == 7.1  # both of NVD's entries are "Secondary"


def test_an_unscored_record_has_no_cvss_and_nvd_cwe_placeholders_are_dropped():
    weaknesses = [{"type": "Primary", "description": [{"lang": "en", "value": "NVD-CWE-noinfo"}]}]
    entry = parse_cve(cve(metrics={}, weaknesses=weaknesses)["cve"])
    assert (entry.cvss_score, entry.cvss_vector, entry.severity, entry.cwe_ids) == (None, "", "", ())


def test_it_reads_gzip_detected_by_magic_bytes_not_by_name(tmp_path):
    path = tmp_path / "feed.json"  # no .gz suffix on purpose
    path.write_bytes(gzip.compress(FIXTURE.read_bytes()))
    assert [e.cve_id for e in iter_cve_entries(path)] == [e.cve_id for e in iter_cve_entries(FIXTURE)]


def test_it_reads_a_binary_stream():
    entries = list(iter_cve_entries(io.BytesIO(document(cve()).encode()), name="upload"))
    assert [e.cve_id for e in entries] == ["CVE-2099-0001"]


def test_it_streams_across_chunk_boundaries(monkeypatch, tmp_path):
    monkeypatch.setattr(nvd, "CHUNK_CHARS", 7)  # every value straddles a boundary
    path = tmp_path / "feed.json"
    path.write_text(document(*(cve(f"CVE-2099-{n:04d}", descriptions=[{"lang": "en", "value": "x" * n}]) for n in range(30))))
    entries = list(iter_cve_entries(path))
    assert [e.description for e in entries] == ["x" * n for n in range(30)]


def test_an_empty_vulnerability_list_is_an_empty_feed(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text(document())
    assert list(iter_cve_entries(path)) == []


def test_a_truncated_file_names_file_and_position(tmp_path):
    path = tmp_path / "cut.json"
    text = FIXTURE.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(NvdFormatError) as caught:
        list(iter_cve_entries(path))
    error = caught.value
    assert error.filename == str(path)
    assert "truncated" in str(error)
    assert error.line > 1 and error.offset > 0
    assert str(path) in str(error) and f"line {error.line}" in str(error)


def test_a_truncated_gzip_stream_is_a_clear_error(tmp_path):
    path = tmp_path / "cut.json.gz"
    data = gzip.compress(FIXTURE.read_bytes())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(NvdFormatError, match="truncated|damaged"):
        list(iter_cve_entries(path))


def test_malformed_json_reports_the_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"format": "NVD_CVE", "version": "2.0",\n"vulnerabilities": [\n  {"cve": {"id": "CVE-2099-1",}}\n]}')
    with pytest.raises(NvdFormatError) as caught:
        list(iter_cve_entries(path))
    assert (caught.value.line, caught.value.column) == (3, 31)  # where json itself places it: the "}" after the trailing comma


def test_a_record_without_an_id_names_its_index(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(document(cve(), {"cve": {"published": "2024-01-01T00:00:00"}}))
    with pytest.raises(NvdFormatError, match=r"vulnerabilities\[1\]: missing 'id'"):
        list(iter_cve_entries(path))


def test_a_broken_cpe_in_a_record_names_the_cve(tmp_path):
    path = tmp_path / "bad.json"
    configurations = [{"nodes": [{"operator": "OR", "cpeMatch": [{"vulnerable": True, "criteria": "cpe:2.3:a:x"}]}]}]
    path.write_text(document(cve("CVE-2099-0002", configurations=configurations)))
    with pytest.raises(NvdFormatError, match="CVE-2099-0002"):
        list(iter_cve_entries(path))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"{\"vulnerabilities\": [", "truncated"),
        (b"{\"vulnerabilities\": [{\"cve\": {\"id\": \"CVE-1", "truncated"),
        (b"[]", "expected a JSON object"),
        (b'{"format": "NVD_CVE"}', "no 'vulnerabilities'"),
        (b'{"CVE_data_type": "CVE", "CVE_Items": []}', "NVD 1.1"),
        (b'{"format": "OTHER", "vulnerabilities": []}', "format is 'OTHER'"),
        (b'{"version": "1.1", "vulnerabilities": []}', "version is '1.1'"),
        (b'{"vulnerabilities": []} trailing', "after the end"),
        (b'{"vulnerabilities": [1]}', r"vulnerabilities\[0\]"),
        (b"PK\x03\x04zipped", "zip archive"),
        (b'{"vulnerabilities": ["\xff"]}', "not UTF-8"),
    ],
)
def test_malformed_documents_raise_a_clear_error(tmp_path, content, message):
    path = tmp_path / "feed.json"
    path.write_bytes(content)
    with pytest.raises(NvdFormatError, match=message):
        list(iter_cve_entries(path))


def test_a_rejected_cve_is_flagged():
    assert parse_cve(cve(vulnStatus="Rejected")["cve"]).is_rejected
