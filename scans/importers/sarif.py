"""SARIF 2.1 (``runs[].results[]`` with rules under ``tool.driver.rules``).

Severity comes from the rule's or result's ``security-severity`` property when
present (the CVSS-like number GitHub code scanning uses), else from ``level``
(error -> high, warning -> medium, note -> low, none -> info). The location is
``file:line`` of the first physical location. Results that passed, do not apply, or
that a baseline marks absent are not findings.

SARIF describes source code, not hosts: findings take the repository URI from
``versionControlProvenance`` when present, else the caller's ``default_host``.
"""

from __future__ import annotations

import re
from typing import Any, BinaryIO

from scans.candidates import Coverage, FindingCandidate, ImportResult
from scans.importers.base import (
    ImportContext,
    Importer,
    cve_ids,
    cvss_score,
    cwe_number,
    references,
    register,
    severity_from_score,
    trim,
)
from scans.importers.reading import Fields, load_json

_LEVELS = {"error": "high", "warning": "medium", "note": "low", "none": "info"}
_PLACEHOLDER = re.compile(r"\{(\d{1,4})\}", re.ASCII)
_CWE_TAG = re.compile(r"cwe[-/_:]?(\d{1,6})", re.IGNORECASE | re.ASCII)
_SKIPPED_KINDS = {"pass", "notApplicable"}
_SECRETIVE = re.compile(r"secret|credential|password|token|private key|gitleaks|trufflehog", re.IGNORECASE)


@register
class SarifImporter(Importer):
    name = "sarif"
    formats = ("sarif", "json")
    description = "SARIF 2.1 static-analysis results"

    def read(self, stream: BinaryIO, context: ImportContext) -> ImportResult:
        top = Fields(load_json(stream.read(), context), "$", context)
        version = top.text("version")
        if not top.has("runs"):
            raise context.reject("not a SARIF log (no runs)", path="$")
        if version and not version.startswith("2."):
            raise context.reject(f"SARIF version {version} is not supported (2.1 expected)", path="$.version")
        result = ImportResult(source=self.name, filename=context.filename)
        result.metadata["version"] = version
        tools = []
        for run_index, run in enumerate(top.children("runs")):
            driver = run.child("tool").child("driver")
            tool = driver.text("name")
            tools.append(f"{tool} {driver.text('semanticVersion') or driver.text('version')}".strip())
            rules = list(driver.children("rules"))
            rules_by_id = {rule.text("id"): rule for rule in rules if rule.text("id")}
            artifacts = [a.child("location").text("uri") for a in run.children("artifacts")]
            host = _repository(run) or context.default_host
            for index, item in enumerate(run.children("results")):
                context.record = index
                context.path = f"$.runs[{run_index}].results[{index}]"
                finding = _finding(self.name, item, tool, rules, rules_by_id, artifacts, host)
                if finding is not None:
                    result.findings.append(finding)
        context.path = None
        result.metadata["tools"] = tools
        hosts = dict.fromkeys(f.host for f in result.findings if f.host)
        result.coverage = [Coverage(host=h, whole_host=True) for h in hosts]
        return result


def _finding(
    source: str,
    item: Fields,
    tool: str,
    rules: list[Fields],
    rules_by_id: dict[str, Fields],
    artifacts: list[str],
    host: str,
) -> FindingCandidate | None:
    if item.text("kind") in _SKIPPED_KINDS or item.text("baselineState") == "absent":
        return None
    rule_id = item.text("ruleId") or item.child("rule").text("id")
    index = item.integer("ruleIndex")
    if index is None and item.has("rule"):
        index = item.child("rule").integer("index")
    rule = rules_by_id.get(rule_id) if rule_id else None
    if rule is None and index is not None and 0 <= index < len(rules):
        rule = rules[index]
    message = _message(item.child("message"), rule or _empty_rule(item))
    if rule is None and not rule_id:
        # Gitleaks 7 leaves ruleId out and says "<rule id> secret detected": match the rule by prefix.
        named = [r for r in rules_by_id if message.startswith(r)]
        rule = rules_by_id[max(named, key=len)] if named else None
    rule = rule or _empty_rule(item)
    rule_id = rule_id or rule.text("id") or trim(message, 200)
    if not rule_id:
        raise item.context.reject("result without a ruleId, rule or message", path=item.path)

    properties = item.child("properties")
    rule_properties = rule.child("properties")
    score = _security_severity(properties) or _security_severity(rule_properties)
    level = item.text("level") or rule.child("defaultConfiguration").text("level") or "warning"
    severity = severity_from_score(score) if score is not None else _LEVELS.get(level)

    location, snippet = _location(item, artifacts)
    tags = rule_properties.texts("tags") + properties.texts("tags")
    cwe = next((cwe_number(m.group(1)) for t in tags for m in [_CWE_TAG.search(t)] if m), None)
    title = (
        rule.child("shortDescription").text("text")
        or rule.text("name")
        or trim(message, 200)
        or rule_id
    )
    evidence: dict[str, Any] = {"tool": tool, "level": level, "message": trim(message, 1000)}
    if snippet:
        # A secret scanner's snippet is the secret itself: never copy it into the findings store.
        secretive = _SECRETIVE.search(f"{tool} {rule_id} {message}")
        evidence["snippet"] = "[redacted: secret detection result]" if secretive else trim(snippet, 1000)
    if item.has("suppressions") and item.array("suppressions"):
        evidence["suppressed"] = True
    if score is not None:
        evidence["security_severity"] = score
    return FindingCandidate(
        source=source,
        rule_id=trim(rule_id, 200),
        title=trim(title, 500),
        host=host,
        severity=severity,
        cve_ids=cve_ids([rule_id, *tags]),
        cwe=cwe,
        location=trim(location, 1000),
        description=trim(rule.child("fullDescription").text("text") or message, 4000),
        remediation=trim(rule.child("help").text("text"), 4000),
        references=references([rule.text("helpUri")]),
        evidence=evidence,
    )


def _empty_rule(item: Fields) -> Fields:
    return Fields({}, item, item.context, ".rule")


def _message(message: Fields, rule: Fields) -> str:
    text = message.text("text")
    if not text and message.text("id"):
        text = rule.child("messageStrings").child(message.text("id")).text("text")
    arguments = message.texts("arguments")
    if arguments and text:
        def argument(match: re.Match) -> str:
            number = int(match.group(1))
            return arguments[number] if number < len(arguments) else match.group(0)

        text = _PLACEHOLDER.sub(argument, text)
    return text


def _security_severity(properties: Fields) -> float | None:
    return cvss_score(properties.obj.get("security-severity"))


def _location(item: Fields, artifacts: list[str]) -> tuple[str, str]:
    for place in item.children("locations"):
        physical = place.child("physicalLocation")
        artifact = physical.child("artifactLocation")
        uri = artifact.text("uri")
        index = artifact.integer("index")
        if not uri and index is not None and 0 <= index < len(artifacts):
            uri = artifacts[index]
        region = physical.child("region")
        line = region.integer("startLine")
        snippet = region.child("snippet").text("text")
        if uri:
            return (f"{uri}:{line}" if line else uri), snippet
    return "", ""


def _repository(run: Fields) -> str:
    for provenance in run.children("versionControlProvenance"):
        uri = provenance.text("repositoryUri")
        if uri:
            return uri
    return ""
