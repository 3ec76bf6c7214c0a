"""A file in a layout an importer does not read is refused naming what it saw and what is supported."""

from __future__ import annotations

import pytest

from scans.importers.base import ImportRejected, get_importer


@pytest.mark.parametrize(("importer", "data", "seen", "supported"), [
    ("trivy", b'{"runs": [], "version": "2.1.0"}', "keys: runs, version", "Trivy JSON schema 2"),
    ("trivy", b'"hello"', "the document is text", "Kubernetes ({ClusterName, Resources})"),
    ("sarif", b'{"SchemaVersion": 2, "Results": []}', "keys: SchemaVersion, Results", "SARIF 2.x"),
    ("sslyze", b'{"accepted_targets": [], "sslyze_version": "2.1.4"}', "SSLyze 2.1.4 layout (accepted_targets)",
     "SSLyze 3.x/4.x JSON"),
    ("openvas", b"IP,Hostname,OS,Scan Start,Scan End,High,Medium,Low,Log,False Positive,Total\n",
     "a Greenbone CSV Hosts export", "Greenbone CSV Results export"),
])
def test_the_refusal_names_the_layout_seen_and_the_ones_supported(importer, data, seen, supported):
    with pytest.raises(ImportRejected) as refused:
        get_importer(importer).parse(data, "report")

    assert seen in refused.value.reason
    assert "supported: " in refused.value.reason and supported in refused.value.reason
