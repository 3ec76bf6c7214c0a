"""Every parser, fed anything, returns an ImportResult or raises ImportRejected: never another exception.

Runs are deterministic (derandomize) and bounded so the suite stays fast. A rejection
caught by the importers' safety net (``internal``) fails the test too: it means a
parser met a shape it did not check for.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scans.findings.candidates import ImportResult
from scans.importers.base import ImportRejected, get_importer

from .conftest import SAMPLES

ALL = ("nmap", "nuclei", "trivy", "sslyze", "openvas", "sarif")
BOUNDED = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
SAMPLE_FILES = {
    "nmap": ["nmap/nmap_script_vulners.xml", "nmap/nmap_multiple_port.xml"],
    "nuclei": ["nuclei/many_findings.json", "nuclei/multiple_v3.json"],
    "trivy": ["trivy/misconfigurations_and_secrets.json", "trivy/scheme_2_many_vulns.json"],
    "sslyze": ["sslyze/one_target_many_vuln_new.json"],
    "openvas": ["openvas/one_vuln.xml"],
    "sarif": ["sarif/appendix_k.sarif", "sarif/gitleaks_7.5.0.sarif"],
}
# The words each format is made of, so generated documents reach past the first check.
VOCABULARY = {
    "nuclei": ["template-id", "templateID", "info", "name", "severity", "classification", "cve-id", "cwe-id",
               "cvss-score", "cvss-metrics", "matched-at", "matched", "host", "ip", "port", "matcher-name",
               "extracted-results", "reference", "description", "remediation", "matcher-status", "type", "request"],
    "trivy": ["SchemaVersion", "ArtifactName", "Results", "Target", "Vulnerabilities", "VulnerabilityID", "PkgName",
              "InstalledVersion", "FixedVersion", "Severity", "CVSS", "nvd", "V3Score", "V3Vector", "CweIDs",
              "References", "Misconfigurations", "ID", "Status", "CauseMetadata", "StartLine", "Secrets", "RuleID",
              "ClusterName", "Resources", "Namespace", "Kind", "SeveritySource", "PrimaryURL"],
    "sslyze": ["server_scan_results", "server_location", "hostname", "ip_address", "port", "scan_result",
               "connectivity_status", "scan_status", "status", "result", "heartbleed", "is_vulnerable_to_heartbleed",
               "robot", "robot_result", "tls_1_0_cipher_suites", "accepted_cipher_suites", "cipher_suite", "name",
               "key_size", "is_tls_version_supported", "certificate_info", "certificate_deployments",
               "received_certificate_chain", "path_validation_results", "not_valid_after", "public_key",
               "connectivity_result", "session_renegotiation", "supports_secure_renegotiation"],
    "sarif": ["version", "runs", "tool", "driver", "name", "rules", "id", "results", "ruleId", "ruleIndex", "level",
              "message", "text", "arguments", "locations", "physicalLocation", "artifactLocation", "uri", "index",
              "region", "startLine", "properties", "security-severity", "tags", "kind", "artifacts", "location",
              "messageStrings", "defaultConfiguration", "versionControlProvenance", "repositoryUri", "rule"],
}
XML_TAGS = {
    "nmap": ["nmaprun", "host", "status", "address", "hostnames", "hostname", "ports", "port", "state", "service",
             "cpe", "script", "table", "elem", "runstats", "finished"],
    "openvas": ["report", "results", "result", "host", "hostname", "port", "nvt", "name", "cvss_base", "tags",
                "refs", "ref", "severity", "threat", "description", "severities", "value", "ip", "qod", "gmp",
                "version"],
}
XML_ATTRIBUTES = ["state", "addr", "addrtype", "portid", "protocol", "name", "product", "version", "conf", "id",
                  "key", "output", "type", "oid", "tunnel", "timedout"]


def outcome(importer: str, data: bytes) -> None:
    try:
        result = get_importer(importer).parse(data, "fuzz.out")
    except ImportRejected as error:
        assert not error.internal, f"safety net caught: {error}"
        assert str(error).startswith("fuzz.out")
        return
    assert isinstance(result, ImportResult)
    json.dumps([f.to_dict() for f in result.findings] + [s.to_dict() for s in result.services])


def sample_bytes(importer: str) -> list[bytes]:
    if not SAMPLES.is_dir():
        pytest.skip(f"third-party sample files not found at {SAMPLES.resolve()}")
    return [(SAMPLES / name).read_bytes() for name in SAMPLE_FILES[importer]]


@st.composite
def mutations(draw, originals: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(originals)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        where = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "duplicate"]))
        if action == "truncate":
            del data[where:]
        elif action == "flip":
            data[where] = draw(st.integers(0, 255))
        elif action == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=16) | st.sampled_from(
                [b"{", b"[", b"<", b"\"", b"null", b"-1", b"1e999", b"\xff", b"</", b"&", b"<!DOCTYPE x [", b"\\u"]))
        elif action == "delete":
            del data[where:where + draw(st.integers(1, 64))]
        else:
            end = min(len(data), where + draw(st.integers(1, 64)))
            data[where:where] = data[where:end]
    return bytes(data)


# Documents are built by a Random seeded from the drawn integer rather than st.recursive:
# as varied, and far cheaper to generate, so 200 examples per format take well under a second.
ODD_SCALARS = [None, True, False, 0, -1, 2**70, 1.5, 1e300, "", "x", "CVE-2021-44228", "cwe-79", "443/tcp", "HIGH",
               "error", "٣", "\u00e9", "nvd-cve-other", "9" * 30]


def random_json(rng, words: list[str], depth: int = 0):
    roll = rng.random()
    if depth >= 4 or roll < 0.35:
        return rng.choice(ODD_SCALARS + words)
    if roll < 0.55:
        return [random_json(rng, words, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(words): random_json(rng, words, depth + 1) for _ in range(rng.randint(0, 6))}


def random_xml(rng, tags: list[str], depth: int = 0) -> str:
    from xml.sax.saxutils import escape, quoteattr

    tag = rng.choice(tags)
    attributes = "".join(
        f" {name}={quoteattr(rng.choice(XML_VALUES))}" for name in rng.sample(XML_ATTRIBUTES, rng.randint(0, 3))
    )
    children = "" if depth >= 4 else "".join(random_xml(rng, tags, depth + 1) for _ in range(rng.randint(0, 3)))
    return f"<{tag}{attributes}>{escape(rng.choice(XML_VALUES))}{children}</{tag}>"


XML_VALUES = ["", "open", "up", "down", "22", "ipv4", "vulners", "cve", "127.0.0.1", "true", "99999", "10", "7.5",
              "CVE-2014-0160", "443/tcp", "general/tcp", "High", "x=y|z", "cpe:/a:x:y:1", "٣"]


@pytest.mark.parametrize("importer", ALL)
@BOUNDED
@given(data=st.binary(max_size=4096))
def test_any_bytes_are_imported_or_rejected(importer, data):
    outcome(importer, data)


@pytest.mark.parametrize("importer", ALL)
@settings(BOUNDED, max_examples=100)
@given(data=st.data())
def test_a_mutated_sample_is_imported_or_rejected(importer, data):
    outcome(importer, data.draw(mutations(sample_bytes(importer))))


@pytest.mark.parametrize("importer", sorted(VOCABULARY))
@BOUNDED
@given(seed=st.integers(0, 2**32))
def test_json_of_the_wrong_shape_is_imported_or_rejected(importer, seed):
    rng = random.Random(seed)
    outcome(importer, json.dumps(random_json(rng, VOCABULARY[importer])).encode())


@BOUNDED
@given(seed=st.integers(0, 2**32))
def test_nuclei_lines_of_the_wrong_shape_are_imported_or_rejected(seed):
    rng = random.Random(seed)
    lines = [random_json(rng, VOCABULARY["nuclei"]) for _ in range(rng.randint(1, 4))]
    outcome("nuclei", b"\n".join(json.dumps(line).encode() for line in lines))


@pytest.mark.parametrize("importer", sorted(XML_TAGS))
@BOUNDED
@given(seed=st.integers(0, 2**32))
def test_xml_of_the_wrong_shape_is_imported_or_rejected(importer, seed):
    rng = random.Random(seed)
    root = "nmaprun" if importer == "nmap" else "report"
    body = "".join(random_xml(rng, XML_TAGS[importer]) for _ in range(rng.randint(0, 4)))
    outcome(importer, f"<{root}>{body}</{root}>".encode())
