"""Trivy JSON: schema 2 (``{"SchemaVersion": 2, "Results": [...]}``), the legacy
top-level array, and Kubernetes reports (``ClusterName`` with per-resource results).

A vulnerability's location is its package and installed version within the scanned
target (``app/libs/commons-compress-1.14.jar: org.apache.commons:commons-compress@1.14``),
so the same CVE in two packages is two findings. Misconfigurations that passed are
not findings; secrets arrive already redacted by Trivy and are kept as such.

The host is the scanned artifact (image, repository, cluster): Trivy scans things,
not addresses, and the findings engine maps the artifact to a node.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from scans.candidates import Coverage, FindingCandidate, ImportResult
from scans.importers.base import (
    ImportContext,
    Importer,
    cve_ids,
    cvss_score,
    first_cwe,
    references,
    register,
    severity_word,
    trim,
)
from scans.importers.reading import Fields, kind, load_json

_CVSS_SOURCES = ("nvd", "redhat", "ghsa")
_VULNERABILITY_EVIDENCE = (
    ("FixedVersion", "fixed_version"),
    ("PkgPath", "package_path"),
    ("SeveritySource", "severity_source"),
)


@register
class TrivyImporter(Importer):
    name = "trivy"
    formats = ("json",)
    description = "Trivy JSON report (schema 2 or legacy; image, filesystem, Kubernetes)"

    def read(self, stream: BinaryIO, context: ImportContext) -> ImportResult:
        document = load_json(stream.read(), context)
        result = ImportResult(source=self.name, filename=context.filename)
        if isinstance(document, list):
            # Legacy (before schema 2): a bare array of results, no artifact name.
            host = context.default_host or _artifact_from_targets(document)
            result.metadata["schema"] = "legacy"
            self._results(Fields({"Results": document}, "$", context), host, "", result)
        elif isinstance(document, dict):
            top = Fields(document, "$", context)
            if top.has("ClusterName") or (top.has("Resources") and not top.has("Results")):
                self._kubernetes(top, result)
            elif top.has("Results") or top.has("SchemaVersion"):
                artifact = top.text("ArtifactName")
                host = artifact if artifact not in ("", ".") else context.default_host or artifact
                result.metadata.update(
                    {"schema": top.text("SchemaVersion"), "artifact": host, "artifact_type": top.text("ArtifactType")}
                )
                self._results(top, host, "", result)
            else:
                raise context.reject("not a Trivy report (no Results, SchemaVersion or ClusterName)", path="$")
        else:
            raise context.reject(f"not a Trivy report (the document is {kind(document)})", path="$")
        hosts = dict.fromkeys(f.host for f in result.findings)
        if not hosts and result.metadata.get("artifact"):
            hosts = {result.metadata["artifact"]: None}
        result.coverage = [Coverage(host=host, whole_host=True) for host in hosts if host]
        return result

    def _kubernetes(self, top: Fields, result: ImportResult) -> None:
        cluster = top.text("ClusterName") or top.context.default_host
        result.metadata.update({"schema": "kubernetes", "artifact": cluster})
        # Older `trivy k8s` split resources by kind of check; newer ones list "Resources".
        for key in ("Vulnerabilities", "Misconfigurations", "Resources"):
            for resource in top.children(key):
                prefix = "/".join(p for p in map(resource.text, ("Namespace", "Kind", "Name")) if p)
                self._results(resource, cluster, prefix, result)

    def _results(self, parent: Fields, host: str, prefix: str, result: ImportResult) -> None:
        for index, item in enumerate(parent.children("Results")):
            parent.context.record = index
            target = item.text("Target")
            where = f"{prefix}: {target}" if prefix and target else prefix or target
            for vulnerability in item.children("Vulnerabilities"):
                result.findings.append(self._vulnerability(vulnerability, host, where))
            for misconfiguration in item.children("Misconfigurations"):
                finding = self._misconfiguration(misconfiguration, host, where)
                if finding is not None:
                    result.findings.append(finding)
            for secret in item.children("Secrets"):
                result.findings.append(self._secret(secret, host, where))

    def _vulnerability(self, vuln: Fields, host: str, where: str) -> FindingCandidate:
        vuln_id = vuln.text("VulnerabilityID")
        if not vuln_id:
            raise vuln.context.reject("vulnerability without a VulnerabilityID", path=vuln.path)
        package = vuln.text("PkgName")
        installed = vuln.text("InstalledVersion")
        fixed = vuln.text("FixedVersion")
        score, vector, cvss_source = _cvss(vuln.child("CVSS"), vuln.text("SeveritySource"))
        package_at = f"{package}@{installed}" if installed else package
        location = f"{where}: {package_at}" if where else package_at
        title = vuln.text("Title") or f"{vuln_id} in {package_at}"
        cwes = vuln.texts("CweIDs")
        evidence: dict[str, Any] = {"package": package, "installed_version": installed, "target": trim(where, 500)}
        for key, name in _VULNERABILITY_EVIDENCE:
            if vuln.has(key):
                evidence[name] = trim(vuln.text(key), 500)
        if cvss_source:
            evidence["cvss_source"] = cvss_source
        evidence["tool_severity"] = vuln.text("Severity")
        return FindingCandidate(
            source=self.name,
            rule_id=vuln_id,
            title=trim(title, 500),
            host=host,
            severity=severity_word(vuln.text("Severity")),
            cvss_score=score,
            cvss_vector=vector,
            cve_ids=cve_ids([vuln_id]),
            cwe=first_cwe(cwes),
            port=None,
            location=trim(location, 1000),
            description=trim(vuln.text("Description"), 4000),
            remediation=f"Upgrade {package} to {fixed} or later." if fixed else "",
            references=references([vuln.text("PrimaryURL"), *vuln.texts("References")]),
            evidence=evidence,
        )

    def _misconfiguration(self, item: Fields, host: str, where: str) -> FindingCandidate | None:
        status = item.text("Status").upper()
        if status and status != "FAIL":
            return None
        check_id = item.text("AVDID") or item.text("ID")
        if not check_id:
            raise item.context.reject("misconfiguration without an ID", path=item.path)
        cause = item.child("CauseMetadata")
        line = cause.integer("StartLine")
        location = f"{where}:{line}" if line else where
        message = item.text("Message")
        description = item.text("Description")
        if message:
            description = f"{description}\n\n{message}" if description else message
        return FindingCandidate(
            source=self.name,
            rule_id=check_id,
            title=trim(item.text("Title") or check_id, 500),
            host=host,
            severity=severity_word(item.text("Severity")),
            location=trim(location, 1000),
            description=trim(description, 4000),
            remediation=trim(item.text("Resolution"), 4000),
            references=references([item.text("PrimaryURL"), *item.texts("References")]),
            evidence={
                "type": item.text("Type"),
                "message": trim(message, 1000),
                "tool_severity": item.text("Severity"),
            },
        )

    def _secret(self, secret: Fields, host: str, where: str) -> FindingCandidate:
        rule = secret.text("RuleID")
        if not rule:
            raise secret.context.reject("secret without a RuleID", path=secret.path)
        line = secret.integer("StartLine")
        return FindingCandidate(
            source=self.name,
            rule_id=f"secret:{rule}",
            title=trim(secret.text("Title") or rule, 500),
            host=host,
            severity=severity_word(secret.text("Severity")),
            cwe=798,  # use of hard-coded credentials
            location=trim(f"{where}:{line}" if line else where, 1000),
            description=f"A {secret.text('Category') or 'secret'} credential is stored in {where}.",
            remediation=(
                "Revoke the credential, remove it from the source and its history, and load it from a secret store."
            ),
            evidence={"category": secret.text("Category"), "match": trim(secret.text("Match"), 300)},
        )


def _cvss(cvss: Fields, preferred: str) -> tuple[float | None, str, str]:
    """The v3 score and vector, from the source Trivy took the severity from when it has one."""
    order = [preferred] if preferred else []
    order += [s for s in _CVSS_SOURCES if s != preferred]
    order += [s for s in cvss.obj if s not in order]
    for source in order:
        if not cvss.has(source):
            continue
        entry = cvss.child(source)
        score = cvss_score(entry.number("V3Score"))
        if score is not None:
            return score, trim(entry.text("V3Vector"), 200), source
    return None, "", ""


def _artifact_from_targets(results: list) -> str:
    # Legacy reports name the image only inside the OS target: "debian (debian 10.8)".
    for item in results:
        if isinstance(item, dict) and isinstance(item.get("Target"), str) and item["Target"]:
            return item["Target"].split(" (")[0]
    return ""
