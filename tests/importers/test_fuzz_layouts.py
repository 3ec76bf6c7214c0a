"""The layouts added for real files (SSLyze 3.x/4.x JSON, Greenbone CSV Results, Trivy statuses and licenses,
SARIF suppressions and taxa, Nuclei without host), fuzzed like the others: any input is imported or refused."""

from __future__ import annotations

import csv
import io
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .fixtures import fixture
from .test_fuzz import BOUNDED, ODD_SCALARS, mutations, outcome, random_json

FIXTURES = {
    "sslyze": ["sslyze/sslyze_4_1_legacy_server.json", "sslyze/sslyze_3_1_mail_server.json"],
    "openvas": ["openvas/gvm21_results.csv", "openvas/openvas9_results.csv"],
    "trivy": ["trivy/sbom_statuses_licenses.json", "trivy/minikube_cluster.json", "trivy/legacy_null.json"],
    "sarif": ["sarif/codeql_taxa_suppressions.sarif", "sarif/semgrep_same_line.sarif"],
    "nuclei": ["nuclei/mixed_targets.jsonl"],
}
VOCABULARY = {
    "sslyze": ["server_scan_results", "scan_commands_results", "scan_commands_errors", "server_info",
               "server_location", "tls_probing_result", "hostname", "ip_address", "port", "heartbleed",
               "is_vulnerable_to_heartbleed", "session_renegotiation", "accepts_client_renegotiation",
               "supports_secure_renegotiation", "tls_1_0_cipher_suites", "accepted_cipher_suites", "cipher_suite",
               "name", "key_size", "certificate_info", "certificate_deployments", "received_certificate_chain",
               "path_validation_results", "not_valid_after", "public_key", "robot", "robot_result", "accepted_targets",
               "sslyze_version", "highest_tls_version_supported"],
    "trivy": ["SchemaVersion", "ArtifactName", "Results", "Target", "Vulnerabilities", "VulnerabilityID", "PkgName",
              "InstalledVersion", "FixedVersion", "Status", "DataSource", "Name", "Statement", "Licenses",
              "Category", "FilePath", "Confidence", "Link", "ExperimentalModifiedFindings", "Type", "Source",
              "Finding", "ClusterName", "Resources", "Severity"],
    "sarif": ["version", "runs", "tool", "driver", "name", "rules", "id", "results", "ruleId", "message", "text",
              "locations", "physicalLocation", "artifactLocation", "uri", "region", "startLine", "startColumn",
              "suppressions", "kind", "status", "state", "justification", "relationships", "target",
              "toolComponent", "index", "guid", "taxonomies", "taxa", "properties", "cwe", "tags",
              "partialFingerprints", "fingerprints"],
    "nuclei": ["template-id", "info", "name", "severity", "host", "url", "matched-at", "ip", "port", "type",
               "matcher-name", "extracted-results", "matcher-status"],
}
CSV_COLUMNS = ["IP", "Hostname", "Port", "Port Protocol", "CVSS", "Severity", "QoD", "Solution Type", "NVT Name",
               "Summary", "Specific Result", "NVT OID", "CVEs", "Solution", "Other References", "Task Name"]
CSV_VALUES = ["", "127.0.0.1", "general", "443", "tcp", "udp", "7.5", "11", "-1", "High", "Log", "False Positive",
              "CVE-2016-2183,CVE-2016-6329", "x\ny", "\"", "1.3.6.1.4.1.25623.1.0.108031", "http://a,ftp://b", "٣"]


def fixture_bytes(importer: str) -> list[bytes]:
    return [fixture(name).read_bytes() for name in FIXTURES[importer]]


@pytest.mark.parametrize("importer", sorted(FIXTURES))
@settings(BOUNDED, max_examples=100)
@given(data=st.data())
def test_a_mutated_fixture_is_imported_or_rejected(importer, data):
    outcome(importer, data.draw(mutations(fixture_bytes(importer))))


@pytest.mark.parametrize("importer", sorted(VOCABULARY))
@BOUNDED
@given(seed=st.integers(0, 2**32))
def test_json_of_the_new_shapes_is_imported_or_rejected(importer, seed):
    rng = random.Random(seed)
    outcome(importer, json.dumps(random_json(rng, VOCABULARY[importer])).encode())


@BOUNDED
@given(seed=st.integers(0, 2**32))
def test_a_random_csv_results_export_is_imported_or_rejected(seed):
    rng = random.Random(seed)
    columns = rng.sample(CSV_COLUMNS, rng.randint(1, len(CSV_COLUMNS)))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for _ in range(rng.randint(0, 4)):
        # Now and then a row one field short or long: the header decides.
        width = len(columns) + rng.choice([0, 0, 0, -1, 1])
        writer.writerow([rng.choice(CSV_VALUES + [str(v) for v in ODD_SCALARS]) for _ in range(max(width, 0))])
    outcome("openvas", out.getvalue().encode())


@BOUNDED
@given(text=st.text(max_size=2048))
def test_any_text_is_imported_or_rejected_as_csv(text):
    outcome("openvas", ("IP,Port,NVT Name,NVT OID\n" + text).encode("utf-8", "surrogatepass"))
