import io
import os

import pytest

from scans.findings.candidates import ImportResult
from scans.importers.base import Importer, ImportRejected, get_importer, load_all

ALL = ("nmap", "nuclei", "trivy", "sslyze", "openvas", "sarif")


def test_every_format_registers_itself_once():
    assert set(load_all()) == set(ALL)
    for name in ALL:
        importer = get_importer(name)
        assert isinstance(importer, Importer)
        assert importer.name == name and importer.formats


def test_an_unknown_importer_is_named_in_the_error():
    with pytest.raises(LookupError, match="unknown importer 'qualys'; known: nmap, nuclei"):
        get_importer("qualys")


def test_a_rejection_names_the_file_the_position_and_the_reason():
    error = ImportRejected("scan.jsonl", "not valid JSON (unexpected character)", line=3, column=7)

    assert str(error) == "scan.jsonl: line 3, column 7: not valid JSON (unexpected character)"
    assert error.to_dict()["position"] == "line 3, column 7"
    assert str(ImportRejected("r.json", "bad", path="$.Results[2]")) == "r.json: at $.Results[2]: bad"


def test_it_refuses_a_file_over_the_size_cap_before_reading_it(tmp_path):
    path = tmp_path / "big.jsonl"
    with open(path, "wb") as handle:
        handle.truncate(10 * 1024 * 1024)  # sparse: large on paper, nothing to read

    with pytest.raises(ImportRejected, match="big.jsonl: larger than the import limit of 1,048,576 bytes"):
        get_importer("nuclei").parse(path, max_bytes=1024 * 1024)


def test_the_default_size_cap_is_512_mib_and_can_be_changed_per_importer():
    assert Importer.max_bytes == 512 * 1024 * 1024


def test_it_refuses_an_endless_unseekable_stream_at_the_cap():
    class Endless(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            buffer[:] = b"\n" * len(buffer)
            return len(buffer)

    with pytest.raises(ImportRejected, match="larger than the import limit"):
        get_importer("nuclei").parse(Endless(), "pipe.jsonl", max_bytes=100_000)


def test_it_refuses_dev_zero_even_though_it_reports_no_size():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    with pytest.raises(ImportRejected, match="zero: larger than the import limit"):
        get_importer("trivy").parse("/dev/zero", max_bytes=100_000)


def test_it_reads_paths_bytes_and_binary_streams_alike(samples):
    path = samples / "nmap" / "nmap_1port.xml"
    importer = get_importer("nmap")

    from_path = importer.parse(path)
    from_bytes = importer.parse(path.read_bytes(), "nmap_1port.xml")
    with open(path, "rb") as handle:
        from_stream = importer.parse(handle)

    assert isinstance(from_path, ImportResult)
    assert from_path.findings == from_bytes.findings == from_stream.findings
    assert from_stream.filename == "nmap_1port.xml"


def test_a_missing_file_is_a_rejection_not_an_os_error(tmp_path):
    with pytest.raises(ImportRejected, match="gone.xml: cannot be opened"):
        get_importer("nmap").parse(tmp_path / "gone.xml")


def test_every_result_is_json_serializable(samples):
    import json

    for name, relative in [("nmap", "nmap/nmap_script_vulners.xml"), ("trivy", "trivy/kubernetes.json"),
                           ("sslyze", "sslyze/one_target_many_vuln_new.json"), ("openvas", "openvas/many_vuln.xml"),
                           ("sarif", "sarif/appendix_k.sarif"), ("nuclei", "nuclei/multiple_v3.json")]:
        result = get_importer(name).parse(samples / relative)
        json.dumps([f.to_dict() for f in result.findings] + [s.to_dict() for s in result.services])
        assert all(f.source == name for f in result.findings)
