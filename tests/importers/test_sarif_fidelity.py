"""SARIF as CodeQL and Semgrep write it: suppressions, every location, CWE from taxa and properties, same-line results."""

from __future__ import annotations

import pytest

from scans.findings.imports import findings_import
from scans.findings.normalization import finding_fingerprint
from scans.importers.base import get_importer
from scans.models import Finding

from .fixtures import fixture

CODEQL = fixture("sarif/codeql_taxa_suppressions.sarif")
SEMGREP = fixture("sarif/semgrep_same_line.sarif")
NODE = "127.0.31.7"


def parse(path):
    return get_importer("sarif").parse(path)


def test_an_accepted_suppression_is_a_triaged_finding_with_its_justification():
    [logged] = [f for f in parse(CODEQL).findings if f.rule_id == "py/clear-text-logging-sensitive-data"]

    assert logged.triage == "false_positive"
    assert logged.triage_reason == ("Suppressed in the SARIF log (inSource): The logger is the audit sink, "
                                    "encrypted at rest; reviewed in SEC-4411.")
    assert logged.evidence["suppressed"] is True


def test_a_suppression_under_review_or_rejected_leaves_the_finding_open_and_says_so():
    debug = [f for f in parse(CODEQL).findings if f.rule_id == "py/flask-debug"]

    assert [f.triage for f in debug] == ["", ""]
    assert [f.evidence["suppressions"][0]["status"] for f in debug] == ["underReview", "rejected"]
    assert not any(f.evidence.get("suppressed") for f in debug)


def test_the_spec_examples_draft_state_field_counts_as_the_status(samples):
    [finding] = get_importer("sarif").parse(samples / "sarif/appendix_k.sarif").findings

    assert finding.triage == "false_positive"
    assert finding.triage_reason == "Suppressed in the SARIF log (external): no justification given"


def test_every_location_of_a_result_is_kept_on_its_one_finding():
    [hashing] = [f for f in parse(CODEQL).findings if f.rule_id == "py/weak-sensitive-data-hashing"]

    assert hashing.location.startswith("billing/auth/passwords.py:12 #")
    assert hashing.evidence["locations"] == [
        "billing/auth/passwords.py:12", "billing/auth/passwords.py:31", "billing/app.py:88",
    ]


@pytest.mark.parametrize(("rule", "cwe"), [
    ("py/sql-injection", 89),  # rule relationship to the CWE taxonomy, by index
    ("py/flask-debug", 215),  # relationship by guid (the second result's own taxa come after it)
    ("py/weak-sensitive-data-hashing", 327),  # CodeQL tag external/cwe/cwe-327
    ("py/clear-text-logging-sensitive-data", 312),  # rule property "cwe"
])
def test_the_cwe_comes_from_relationships_taxa_properties_and_tags(rule, cwe):
    findings = [f for f in parse(CODEQL).findings if f.rule_id == rule]

    assert findings and {f.cwe for f in findings} == {cwe}


def test_a_result_property_and_a_result_taxon_name_the_cwe_too():
    log = b"""{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t", "rules": [{"id": "r"}]}},
      "results": [
        {"ruleId": "r", "message": {"text": "a"}, "properties": {"cwe": ["CWE-601"]},
         "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a.py"}, "region": {"startLine": 1}}}]},
        {"ruleId": "r", "message": {"text": "b"}, "taxa": [{"id": "CWE-918"}],
         "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a.py"}, "region": {"startLine": 2}}}]}
      ]}]}"""

    assert [f.cwe for f in parse(log).findings] == [601, 918]


def test_semgreps_cwe_tags_are_read():
    assert {f.cwe for f in parse(SEMGREP).findings} == {327, 1204}


@pytest.mark.parametrize("path", [CODEQL, SEMGREP], ids=["codeql partialFingerprints", "semgrep fingerprints"])
def test_distinct_results_on_one_line_are_distinct_findings(path):
    findings = parse(path).findings
    same_line = {}
    for f in findings:
        same_line.setdefault((f.rule_id, f.location.split(" #")[0]), []).append(f)

    assert any(len(group) == 2 for group in same_line.values())
    assert len({finding_fingerprint(f) for f in findings}) == len(findings)


def test_a_result_keeps_its_fingerprint_from_one_run_to_the_next():
    first = [finding_fingerprint(f) for f in parse(SEMGREP).findings]

    assert [finding_fingerprint(f) for f in parse(SEMGREP).findings] == first


def test_an_import_keeps_same_line_results_apart_and_the_suppressed_one_triaged(world):
    report = findings_import(org=world.org, fmt="sarif", path=CODEQL, node_address=NODE)

    assert report.counts.new == 6
    assert Finding.objects.filter(rule_id="py/sql-injection").count() == 2
    logged = Finding.objects.get(rule_id="py/clear-text-logging-sensitive-data")
    assert logged.status == Finding.Status.FALSE_POSITIVE and "SEC-4411" in logged.triage_reason
    assert Finding.objects.filter(status="open").count() == 5
