"""SARIF 2.1 (``runs[].results[]`` with rules under ``tool.driver.rules``).

Severity comes from the rule's or result's ``security-severity`` property when
present (the CVSS-like number GitHub code scanning uses), else from ``level``
(error -> high, warning -> medium, note -> low, none -> info). Results that passed, do
not apply, or that a baseline marks absent are not findings.

One finding per result, with every location listed: a result is one problem even when
it names several places (a flow from source to sink, one duplicated block), so it is
counted and triaged once. The location is ``file:line`` of the first physical location
followed by ``#`` and a short tag of the result's ``partialFingerprints`` (else its
``fingerprints``, else its column and message), so two distinct results of one rule
on the same line are two findings; ``evidence["locations"]`` holds all of them.

The CWE comes from the rule's ``relationships`` to a CWE taxonomy (resolved through
``run.taxonomies``), the result's ``taxa``, a ``cwe`` property of the result or the
rule, or a tag such as ``CWE-327`` or ``external/cwe/cwe-327``, in that order.

An accepted suppression (status ``accepted`` or none, and no suppression under review
or rejected, as SARIF 2.1 §3.27.23 says) makes the finding a triaged false positive
whose reason is the suppression's kind and justification; every suppression is kept in
the evidence.

SARIF describes source code, not hosts: findings take the repository URI from
``versionControlProvenance`` when present, else the caller's ``default_host``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, BinaryIO

from scans.findings.candidates import Coverage, FindingCandidate, ImportResult
from scans.importers.base import (
    ImportContext,
    Importer,
    cve_ids,
    cvss_score,
    cwe_number,
    first_cwe,
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
_LOCATIONS_KEPT = 50
_SECRETIVE = re.compile(r"secret|credential|password|token|private key|gitleaks|trufflehog", re.IGNORECASE)


@register
class SarifImporter(Importer):
    name = "sarif"
    formats = ("sarif", "json")
    description = "SARIF 2.1 static-analysis results"
    hosts_are_artifacts = True  # SARIF describes source code: its "hosts" are repositories

    def read(self, stream: BinaryIO, context: ImportContext) -> ImportResult:
        top = Fields(load_json(stream.read(), context), "$", context)
        version = top.text("version")
        if not top.has("runs"):
            keys = ", ".join(str(k) for k in list(top.obj)[:8]) or "none"
            raise context.reject(f"not a SARIF log (no runs; keys: {keys}); supported: SARIF 2.x "
                                 "({version, runs: [{tool, results}]})", path="$")
        if version and not version.startswith("2."):
            raise context.reject(f"SARIF version {version} is not supported (2.1 expected)", path="$.version")
        result = self.new_result(context)
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
            taxa = _cwe_taxa(run)
            for index, item in enumerate(run.children("results")):
                context.record = index
                context.path = f"$.runs[{run_index}].results[{index}]"
                finding = _finding(self.name, item, tool, rules, rules_by_id, artifacts, host, taxa)
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
    taxa: dict[str, int],
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

    locations, snippet = _locations(item, artifacts)
    location = f"{locations[0]} #{_result_tag(item, message)}" if locations else ""
    tags = rule_properties.texts("tags") + properties.texts("tags")
    cwe = (
        _related_cwe(rule, taxa)
        or _related_cwe_references(item.children("taxa"), taxa)
        or _property_cwe(properties)
        or _property_cwe(rule_properties)
        or next((cwe_number(m.group(1)) for t in tags for m in [_CWE_TAG.search(t)] if m), None)
    )
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
    if len(locations) > 1:
        evidence["locations"] = locations[:_LOCATIONS_KEPT]
    triage, triage_reason = _suppression(item, evidence)
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
        triage=triage,
        triage_reason=triage_reason,
    )


def _suppression(item: Fields, evidence: dict[str, Any]) -> tuple[str, str]:
    """(triage, reason) for an accepted suppression; every suppression goes into ``evidence``."""
    suppressions = list(item.children("suppressions"))
    if not suppressions:
        return "", ""
    kept = []
    for suppression in suppressions:
        # "state" is what pre-release SARIF 2.1 drafts (and the spec's own appendix) wrote for "status".
        status = suppression.text("status") or suppression.text("state") or "accepted"
        kept.append({"kind": trim(suppression.text("kind"), 50), "status": trim(status, 50),
                     "justification": trim(suppression.text("justification"), 500)})
    evidence["suppressions"] = kept[:10]
    statuses = {s["status"] for s in kept}
    if "accepted" not in statuses or statuses & {"underReview", "rejected"}:
        return "", ""
    evidence["suppressed"] = True
    accepted = next(s for s in kept if s["status"] == "accepted")
    why = accepted["justification"] or "no justification given"
    kind = f" ({accepted['kind']})" if accepted["kind"] else ""
    return "false_positive", trim(f"Suppressed in the SARIF log{kind}: {why}", 1000)


def _result_tag(item: Fields, message: str) -> str:
    """A short, stable tag telling apart two results of one rule at one place."""
    fingerprints = item.child("partialFingerprints").obj or item.child("fingerprints").obj
    if fingerprints:
        basis = "\x1f".join(f"{k}={v}" for k, v in sorted(fingerprints.items()) if isinstance(v, (str, int)))
    else:
        basis = f"{_first_column(item)}\x1f{message}"
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def _first_column(item: Fields) -> str:
    for place in item.children("locations"):
        column = place.child("physicalLocation").child("region").integer("startColumn")
        if column is not None:
            return str(column)
    return ""


def _cwe_taxa(run: Fields) -> dict[str, int]:
    """CWE numbers of a run's CWE taxonomy, by taxon id, guid and "index:<n>"."""
    found: dict[str, int] = {}
    for taxonomy in run.children("taxonomies"):
        if taxonomy.text("name").upper() != "CWE":
            continue
        for index, taxon in enumerate(taxonomy.children("taxa")):
            number = cwe_number(taxon.text("id"))
            if number is None:
                continue
            found[f"index:{index}"] = number
            for key in (taxon.text("id"), taxon.text("guid")):
                if key:
                    found[key] = number
    return found


def _reference_cwe(target: Fields, taxa: dict[str, int]) -> int | None:
    component = target.child("toolComponent").text("name")
    if component and component.upper() != "CWE":
        return None
    index = target.integer("index")
    for key in (target.text("id"), target.text("guid"), f"index:{index}" if index is not None else ""):
        if key and key in taxa:
            return taxa[key]
    # A reference to CWE by id alone needs no taxonomy in the log: "79", "CWE-79".
    named = target.text("id")
    return cwe_number(named) if component or named.upper().startswith("CWE") else None


def _related_cwe(rule: Fields, taxa: dict[str, int]) -> int | None:
    return _related_cwe_references((r.child("target") for r in rule.children("relationships")), taxa)


def _related_cwe_references(targets, taxa: dict[str, int]) -> int | None:
    for target in targets:
        number = _reference_cwe(target, taxa)
        if number is not None:
            return number
    return None


def _property_cwe(properties: Fields) -> int | None:
    for key in ("cwe", "CWE", "cwe_id", "cwe-id"):
        if properties.has(key):
            value = properties.obj[key]
            values = value if isinstance(value, list) else [value]
            number = first_cwe(m.group(1) if isinstance(v, str) and (m := _CWE_TAG.search(v)) else v
                               for v in values)
            if number is not None:
                return number
    return None


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


def _locations(item: Fields, artifacts: list[str]) -> tuple[list[str], str]:
    """Every ``file:line`` the result names, in order, once each; and the first location's snippet."""
    places: dict[str, None] = {}
    first_snippet = ""
    for place in item.children("locations"):
        physical = place.child("physicalLocation")
        artifact = physical.child("artifactLocation")
        uri = artifact.text("uri")
        index = artifact.integer("index")
        if not uri and index is not None and 0 <= index < len(artifacts):
            uri = artifacts[index]
        region = physical.child("region")
        line = region.integer("startLine")
        if uri:
            if not places:
                first_snippet = region.child("snippet").text("text")
            places[trim(f"{uri}:{line}" if line else uri, 900)] = None
    return list(places), first_snippet


def _repository(run: Fields) -> str:
    for provenance in run.children("versionControlProvenance"):
        uri = provenance.text("repositoryUri")
        if uri:
            return uri
    return ""
