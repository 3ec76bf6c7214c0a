from scans.findings.candidates import Coverage


def test_it_reads_the_spec_example_with_rule_message_and_location(parse):
    result = parse("sarif", "sarif/appendix_k.sarif")

    [finding] = result.findings
    assert finding.rule_id == "C2001"
    assert finding.title == "A variable was used without being initialized."
    assert finding.severity == "high"
    assert finding.location.startswith("collections/list.h:15 #")
    assert finding.evidence["message"].startswith('Variable "ptr" was used without being initialized.')
    assert finding.evidence["suppressed"] is True
    assert finding.host == "https://github.com/example-corp/browser"
    assert result.coverage == [Coverage(host="https://github.com/example-corp/browser", whole_host=True)]


def test_it_matches_gitleaks_results_to_rules_and_never_stores_the_secret(parse):
    result = parse("sarif", "sarif/gitleaks_7.5.0.sarif", default_host="repo:watchpost")

    assert len(result.findings) == 8
    assert {f.rule_id for f in result.findings} == {"AWS Access Key", "Asymmetric Private Key"}
    assert all(f.severity == "medium" and f.host == "repo:watchpost" for f in result.findings)
    assert result.findings[0].location.split(" #")[0].endswith("gitlab_secret_detection_report_1_vuln.json:13")
    assert all("AKIA" not in str(f.evidence) for f in result.findings)


def test_security_severity_outranks_the_level():
    from scans.importers.base import get_importer

    log = b"""{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"CodeQL","rules":[
      {"id":"js/sql-injection","shortDescription":{"text":"SQL injection"},
       "properties":{"security-severity":"8.8","tags":["security","external/cwe/cwe-089"]}}]}},
      "results":[{"ruleId":"js/sql-injection","ruleIndex":0,"level":"warning",
        "message":{"text":"Query built from input"},
        "locations":[{"physicalLocation":{"artifactLocation":{"uri":"app/db.js"},"region":{"startLine":42}}}]},
        {"ruleId":"js/sql-injection","kind":"pass","message":{"text":"ok"}}]}]}"""

    [finding] = get_importer("sarif").parse(log, "codeql.sarif").findings

    assert (finding.severity, finding.cwe) == ("high", 89)
    assert finding.location.startswith("app/db.js:42 #")
    assert finding.evidence["security_severity"] == 8.8
