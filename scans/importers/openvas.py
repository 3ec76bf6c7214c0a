"""OpenVAS / Greenbone XML reports (GMP ``get_reports`` with the XML format).

Each ``<result>`` becomes a finding: the NVT's OID is the rule id (names get
rewritten between feed versions, OIDs do not), the port comes from ``443/tcp``
(``general/tcp`` has none), the score from ``<severity>`` and the CVEs from the NVT's
refs. Results are read as they stream past and dropped, so memory stays flat on a
report of any size. The hosts covered are the report's ``<host>`` entries plus every
host a result names.
"""

from __future__ import annotations

import re
from typing import BinaryIO
from xml.etree.ElementTree import Element

from scans.candidates import Coverage, FindingCandidate, ImportResult
from scans.importers.base import (
    ImportContext,
    Importer,
    cve_ids,
    cvss_score,
    register,
    severity_from_score,
    severity_word,
    split_port,
    trim,
)
from scans.importers.reading import iter_xml, text_of

_SPACES = re.compile(r"\s+")
_V3_VECTOR = re.compile(r"CVSS:3\.[01]/[A-Z:/]+")


@register
class OpenvasImporter(Importer):
    name = "openvas"
    formats = ("xml",)
    description = "OpenVAS / Greenbone XML report"

    def read(self, stream: BinaryIO, context: ImportContext) -> ImportResult:
        result = ImportResult(source=self.name, filename=context.filename)
        hosts: dict[str, None] = {}
        root_seen = False
        count = 0
        for event, element, ancestors in iter_xml(stream, context):
            if event == "start":
                if not ancestors:
                    if element.tag not in ("report", "get_reports_response"):
                        raise context.reject(f"not an OpenVAS report (root element <{element.tag}>)")
                    root_seen = True
                continue
            parent = ancestors[-1].tag if ancestors else ""
            if element.tag == "result" and parent == "results":
                context.record = count
                count += 1
                finding = self._finding(element, context)
                if finding is not None:
                    result.findings.append(finding)
                    hosts[finding.host] = None
                ancestors[-1].remove(element)
            elif element.tag == "host" and parent == "report":
                ip = text_of(element, "ip")
                if ip:
                    hosts[ip] = None
                ancestors[-1].remove(element)
            elif element.tag in ("scan_start", "scan_end") and parent == "report":
                result.metadata[element.tag] = text_of(element)
            elif element.tag == "version" and parent == "gmp":
                result.metadata["gmp_version"] = text_of(element)
        if not root_seen:
            raise context.reject("not an OpenVAS report")
        result.metadata["results"] = count
        result.coverage = [Coverage(host=host, whole_host=True) for host in hosts if host]
        return result

    def _finding(self, element: Element, context: ImportContext) -> FindingCandidate | None:
        host_element = element.find("host")
        host = (host_element.text or "").strip() if host_element is not None else ""
        host = host or context.default_host
        if not host:
            raise context.reject("result without a host")
        nvt = element.find("nvt")
        oid = nvt.get("oid", "") if nvt is not None else ""
        nvt_name = _one_line(text_of(nvt, "name"))
        title = nvt_name or _one_line(text_of(element, "name"))
        if not (oid or title):
            raise context.reject("result without an NVT id or name")
        threat = text_of(element, "threat")
        if threat.lower() == "false positive":
            return None  # an override already marked it; importing it would reopen it
        score = cvss_score(text_of(element, "severity"))
        if score is None and nvt is not None:
            score = cvss_score(text_of(nvt, "cvss_base"))
        port, protocol = split_port(text_of(element, "port"))
        tags = _tags(text_of(nvt, "tags"))
        refs = list(nvt.iterfind("refs/ref")) if nvt is not None else []
        cves = cve_ids(r.get("id", "") for r in refs if r.get("type", "").lower() == "cve")
        urls = [r.get("id", "") for r in refs if r.get("type", "").lower() in ("url", "cert-bund", "dfn-cert")]
        vector = _v3_vector(nvt, tags)
        hostname = text_of(host_element, "hostname")
        evidence = {
            "oid": oid,
            "threat": threat,
            "qod": text_of(element, "qod/value"),
            "family": text_of(nvt, "family"),
            "output": trim(text_of(element, "description"), 2048),
        }
        if hostname:
            evidence["hostname"] = hostname
        description = "\n\n".join(tags[k] for k in ("summary", "insight", "impact") if tags.get(k))
        return FindingCandidate(
            source=self.name,
            rule_id=oid or title,
            title=trim(title, 500),
            host=host,
            severity=severity_word(threat) or severity_from_score(score),
            cvss_score=score,
            cvss_vector=vector,
            cve_ids=cves,
            port=port,
            protocol=protocol,
            location=text_of(element, "port") if port is None else "",
            description=trim(description, 4000),
            remediation=trim(tags.get("solution", ""), 4000),
            references=tuple(u for u in urls if u)[:20],
            evidence=evidence,
        )


def _v3_vector(nvt: Element | None, tags: dict[str, str]) -> str:
    # Newer feeds put vectors under <severities>; older ones in the cvss_base_vector tag (often v2).
    candidates = [s.text or "" for s in nvt.iterfind("severities/severity/value")] if nvt is not None else []
    candidates.append(tags.get("cvss_base_vector", ""))
    for candidate in candidates:
        match = _V3_VECTOR.search(candidate)
        if match:
            return match.group(0)
    return ""


def _tags(text: str) -> dict[str, str]:
    """``summary=...|insight=...|solution=...`` -> a dict, whitespace tidied."""
    out = {}
    for part in text.split("|"):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = _tidy(value)
    return out


def _one_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _tidy(text: str) -> str:
    # Report XML wraps tag text at fixed columns; keep paragraphs, join wrapped lines.
    paragraphs = re.split(r"\n\s*\n", text)
    return "\n\n".join(_one_line(p) for p in paragraphs if p.strip())
