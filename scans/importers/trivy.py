"""Trivy JSON: schema 2 (``{"SchemaVersion": 2, "Results": [...]}``), the legacy
top-level array, and Kubernetes reports (``ClusterName`` with per-resource results).

A vulnerability's location is its package and installed version within the scanned
target (``app/libs/commons-compress-1.14.jar: org.apache.commons:commons-compress@1.14``),
so the same CVE in two packages is two findings. Misconfigurations that passed are
not findings; secrets arrive already redacted by Trivy and are kept as such.

The host is the scanned artifact (image, repository, cluster): Trivy scans things,
not addresses. With ``--node`` every artifact goes to that node whatever its name looks
like (``minikube`` or ``sbom.json`` are artifacts, not hosts); without it, the findings
engine maps the artifact to a node when it names one.

Each vulnerability's ``Status`` is kept in the evidence and said in the remediation:
``fixed`` (a fixed version exists: stays open, the remediation names it), ``affected``,
``will_not_fix``, ``fix_deferred``, ``end_of_life`` (open, saying no fix is coming or when).
``not_affected`` is the vendor's statement that the package is not vulnerable: the
finding is kept, triaged as a false positive with that statement as the reason. So
are the findings a VEX document suppressed (``ExperimentalModifiedFindings``, from
``--show-suppressed``), with the VEX statement and its source.

License findings (``--scanners license``) name the license and take Trivy's own
severity, which its license policy derives from the category (a ``restricted`` license
such as GPL is HIGH, a ``notice`` one LOW). A legacy report whose document is ``null``
(a scan that found nothing) is zero findings.

A Kubernetes check about a container names the container only in its message
(``Container 'web' of Deployment 'shop' should set ...``), and Trivy may point every
container of a workload at the same manifest lines: the container is part of the
finding's location, so two containers failing one check are two findings.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, BinaryIO

from scans.findings.candidates import Coverage, FindingCandidate, ImportResult
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
# What each vendor status means for the person reading the finding (Trivy's "Status" values).
_STATUS_REMEDIATION = {
    "affected": "No fixed version of {package} is published yet; watch the advisory or mitigate.",
    "will_not_fix": "The vendor will not fix {package} for this release; mitigate, replace the package "
                    "or move to a release that is not affected.",
    "fix_deferred": "The vendor has deferred the fix of {package}; mitigate until a fixed version is published.",
    "end_of_life": "This release of {package} is end of life and will get no fix; move to a supported release.",
    "under_investigation": "The vendor is still investigating whether {package} is affected.",
    "fixed": "The vendor has released a fix for {package}; upgrade to its latest release.",
}
_NOT_AFFECTED = "not_affected"
# How Trivy's Kubernetes checks (KSV...) open a message about one container of a workload.
_CONTAINER_MESSAGE = re.compile(r"^Container '(?P<name>[^']+)' of ")
_SUPPORTED = ("Trivy JSON schema 2 ({SchemaVersion, ArtifactName, Results}), the legacy array of results, "
              "a legacy null, Kubernetes ({ClusterName, Resources})")
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
    hosts_are_artifacts = True  # Trivy names scanned things (images, file systems, SBOMs, clusters)

    def read(self, stream: BinaryIO, context: ImportContext) -> ImportResult:
        document = load_json(stream.read(), context)
        result = self.new_result(context)
        if document is None:
            # Legacy Trivy wrote `null` for a scan that found nothing to report.
            result.metadata["schema"] = "legacy"
            return result
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
                keys = ", ".join(str(k) for k in list(document)[:8]) or "none"
                raise context.reject(f"not a Trivy report (no Results, SchemaVersion or ClusterName; keys: {keys}); "
                                     f"supported: {_SUPPORTED}", path="$")
        else:
            raise context.reject(f"not a Trivy report (the document is {kind(document)}); supported: {_SUPPORTED}",
                                 path="$")
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
        # Each section of a result and the reader of its entries (None: the entry is no finding).
        sections = (
            ("Vulnerabilities", self._vulnerability),
            ("Misconfigurations", self._misconfiguration),
            ("Secrets", self._secret),
            ("Licenses", self._license),
            ("ExperimentalModifiedFindings", self._suppressed),
        )
        for index, item in enumerate(parent.children("Results")):
            parent.context.record = index
            target = item.text("Target")
            where = f"{prefix}: {target}" if prefix and target else prefix or target
            for key, read in sections:
                for entry in item.children(key):
                    finding = read(entry, host, where)
                    if finding is not None:
                        result.findings.append(finding)

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
        status = vuln.text("Status").strip().lower()
        if status:
            evidence["status"] = trim(status, 50)
        if fixed:
            remediation = f"Upgrade {package} to {fixed} or later."
            if status == "fixed":
                remediation += " The vendor has released this fix."
        else:
            remediation = _STATUS_REMEDIATION.get(status, "").format(package=package or "the package")
        triage = triage_reason = ""
        if status == _NOT_AFFECTED:
            vendor = vuln.child("DataSource").text("Name") or vuln.text("SeveritySource") or "The vendor"
            statement = vuln.text("Statement") or vuln.text("Justification")
            triage = "false_positive"
            triage_reason = trim(f"{vendor} states that {package_at} is not affected by {vuln_id} "
                                 f"(status not_affected){': ' + statement if statement else ''}.", 1000)
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
            remediation=remediation,
            references=references([vuln.text("PrimaryURL"), *vuln.texts("References")]),
            evidence=evidence,
            triage=triage,
            triage_reason=triage_reason,
        )

    def _suppressed(self, modified: Fields, host: str, where: str) -> FindingCandidate | None:
        """A finding a VEX document suppressed (``--show-suppressed``): kept, triaged with its statement."""
        if modified.text("Type").lower() != "vulnerability":
            return None  # only vulnerabilities have VEX statements today
        finding = self._vulnerability(modified.child("Finding"), host, where)
        status = modified.text("Status") or _NOT_AFFECTED
        statement = modified.text("Statement") or "no statement given"
        source = modified.text("Source") or "a VEX document"
        reason = trim(f"{source} says {status}: {statement}", 1000)
        return dataclasses.replace(
            finding, triage="false_positive", triage_reason=reason,
            evidence={**finding.evidence, "status": trim(status, 50), "vex_statement": trim(statement, 500),
                      "vex_source": trim(source, 200)},
        )

    def _license(self, item: Fields, host: str, where: str) -> FindingCandidate:
        name = item.text("Name")
        if not name:
            raise item.context.reject("license without a Name", path=item.path)
        package = item.text("PkgName")
        place = package or item.text("FilePath") or where
        location = f"{where}: {place}" if where and place != where else place
        category = item.text("Category")
        return FindingCandidate(
            source=self.name,
            rule_id=trim(f"license:{name}", 200),
            title=trim(f"License {name} in {place}" if place else f"License {name}", 500),
            host=host,
            # Trivy's license policy rates the category (forbidden, restricted, reciprocal, notice...):
            # its word, as for every other finding it reports; unrated stays unrated.
            severity=severity_word(item.text("Severity")),
            location=trim(location, 1000),
            description=trim(f"{place or 'The artifact'} is distributed under {name}"
                             f"{f' (Trivy category: {category})' if category else ''}.", 4000),
            remediation="Check that the license's terms allow this use, or replace the component.",
            references=references([item.text("Link")]),
            evidence={"license": trim(name, 200), "category": trim(category, 100), "package": trim(package, 300),
                      "file_path": trim(item.text("FilePath"), 500), "tool_severity": item.text("Severity"),
                      "confidence": item.number("Confidence")},
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
        message = item.text("Message")
        container = _CONTAINER_MESSAGE.match(message)
        if container:
            where = f"{where}: container {container['name']}" if where else f"container {container['name']}"
        location = f"{where}:{line}" if line else where
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
                **({"container": trim(container["name"], 300)} if container else {}),
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
