"""Open findings as SARIF 2.1.0, for code-scanning dashboards and other tools that read it.

One run, tool "Watchpost". Results are streamed as they come from the database; the rules
they reference (one per rule id) are collected on the way and written after them — key
order means nothing in JSON, and this keeps memory at one entry per rule, not per finding.
A finding has no source file, so its location is the network address it was found at
(``tcp://host:port``) and the node as a logical location.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from reports import content
from reports.models import Report
from reports.renderers.json_export import dumps

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
# GitHub code scanning ranks security results by a CVSS-like number on the rule.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0", "info": "0.0"}


def render_sarif(*, report: Report, changes: dict[str, Any], out: BinaryIO) -> dict[str, Any]:
    out.write(b'{"$schema":' + dumps(SARIF_SCHEMA) + b',"version":"2.1.0","runs":[{"results":[')
    rules: dict[str, dict[str, Any]] = {}
    count = 0
    for section in content.appendix(report, evidence_chars=2000, cve_chars=500):
        for f in section.findings:
            rule = rules.get(f["rule_id"])
            if rule is None:
                rule = rules[f["rule_id"]] = _rule(f, index=len(rules))
            if count:
                out.write(b",")
            out.write(dumps(_result(f, section.node, rule_index=rule["_index"])))
            count += 1
    driver = {
        "name": "Watchpost",
        "informationUri": "https://github.com/watchpost/watchpost",
        "version": "1.0",
        "rules": [{k: v for k, v in rule.items() if k != "_index"} for rule in rules.values()],
    }
    out.write(b'],"tool":{"driver":' + dumps(driver) + b"}")
    out.write(b',"automationDetails":' + dumps({"id": f"watchpost/{report.kind}/{report.org.slug}/{report.pk}"}))
    out.write(b"}]}")
    return {"results": count, "rules": len(rules)}


def _rule(f: dict[str, Any], *, index: int) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "_index": index,
        "id": f["rule_id"],
        "name": f["source"],
        "shortDescription": {"text": content.shorten(f["title"], 300)},
        "defaultConfiguration": {"level": LEVELS.get(f["severity"], "warning")},
        "properties": {"security-severity": str(f["cvss_score"] or SECURITY_SEVERITY.get(f["severity"], "0.0")),
                       "tags": ["security", f["source"]]},
    }
    if f["description"]:
        rule["fullDescription"] = {"text": content.shorten(f["description"], 1000)}
    if f["remediation"]:
        rule["help"] = {"text": f["remediation"]}
    return rule


def _result(f: dict[str, Any], node: dict[str, Any], *, rule_index: int) -> dict[str, Any]:
    address = node["address"]
    uri = f"{f['protocol'] or 'tcp'}://{address}:{f['port']}" if f["port"] else f"host://{address}"
    message = f["title"]
    if f["evidence_text"]:
        message = f"{message}. Evidence: {f['evidence_text']}"
    result: dict[str, Any] = {
        "ruleId": f["rule_id"],
        "ruleIndex": rule_index,
        "level": LEVELS.get(f["severity"], "warning"),
        "message": {"text": message},
        "locations": [{
            "physicalLocation": {"artifactLocation": {"uri": uri}},
            "logicalLocations": [{"name": address, "kind": "resource"}],
        }],
        "partialFingerprints": {"watchpostFingerprint/v1": f["fingerprint"]},
        "properties": {
            "severity": f["severity"],
            "cvss": {"score": f["cvss_score"], "vector": f["cvss_vector"] or None},
            "cves": [c["id"] for c in f["cves"]],
            "cwe": f["cwe"],
            "watchpostFindingId": f["id"],
            "nodeId": node["id"],
        },
    }
    if f["location"]:
        result["locations"][0]["physicalLocation"]["region"] = {"snippet": {"text": content.shorten(f["location"], 500)}}
    return result
