"""OpenVAS / Greenbone reports: XML (GMP ``get_reports`` with the XML format) and the
"CSV Results" export (one row per result: ``IP,Hostname,Port,Port Protocol,CVSS,Severity,
[QoD,]Solution Type,NVT Name,Summary,Specific Result,NVT OID,CVEs,...``, the QoD column
since GVM 20.08). The first significant byte tells them apart (``<`` is XML).

Each ``<result>`` becomes a finding: the NVT's OID is the rule id (names get
rewritten between feed versions, OIDs do not), the port comes from ``443/tcp``
(``general/tcp`` has none), the score from ``<severity>`` and the CVEs from the NVT's
refs. Results are read as they stream past and dropped, so memory stays flat on a
report of any size. The hosts covered are the report's ``<host>`` entries plus every
host a result names. Both formats give a result the same rule, port and location, so a
CSV export and an XML report of the same scan are the same findings.

Any other layout (the "CSV Hosts" summary export, JSON, another tool's XML) is refused,
naming what it saw and the layouts supported.
"""

from __future__ import annotations

import csv
import io
import re
from typing import BinaryIO
from xml.etree.ElementTree import Element

from scans.findings.candidates import Coverage, FindingCandidate, ImportResult
from scans.importers.base import (
    ImportContext,
    Importer,
    cve_ids,
    cvss_score,
    first_byte,
    register,
    severity_from_score,
    severity_word,
    split_port,
    trim,
)
from scans.importers.reading import iter_xml, text_of

SUPPORTED_LAYOUTS = ("OpenVAS/Greenbone XML report (<report> or <get_reports_response>)",
                     "Greenbone CSV Results export (IP, Port, NVT Name, NVT OID... columns)")
_SUPPORTED = "; ".join(SUPPORTED_LAYOUTS)
# Columns a CSV Results export always has; the rest are read when present.
_CSV_REQUIRED = ("IP", "Port", "NVT Name")
_CSV_HOSTS_COLUMNS = {"High", "Medium", "Low", "Log", "False Positive", "Total"}
_SPACES = re.compile(r"\s+")
_V3_VECTOR = re.compile(r"CVSS:3\.[01]/[A-Z:/]+")


@register
class OpenvasImporter(Importer):
    name = "openvas"
    formats = ("xml", "csv")
    description = "OpenVAS / Greenbone XML report or CSV Results export"

    def read(self, stream: BinaryIO, context: ImportContext) -> ImportResult:
        first = first_byte(stream)
        if first in (b"", b"<"):
            return self._read_xml(stream, context)
        if first in (b"{", b"["):
            raise context.reject(f"a JSON document, not an OpenVAS report; supported: {_SUPPORTED}")
        return self._read_csv(stream, context)

    def _read_xml(self, stream: BinaryIO, context: ImportContext) -> ImportResult:
        result = self.new_result(context)
        hosts: dict[str, None] = {}
        root_seen = False
        count = 0
        for event, element, ancestors in iter_xml(stream, context):
            if event == "start":
                if not ancestors:
                    if element.tag not in ("report", "get_reports_response"):
                        raise context.reject(f"not an OpenVAS report (root element <{element.tag}>); "
                                             f"supported: {_SUPPORTED}")
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


    def _read_csv(self, stream: BinaryIO, context: ImportContext) -> ImportResult:
        result = self.new_result(context)
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="")
        rows = csv.reader(text)
        hosts: dict[str, None] = {}
        try:
            header = next(rows, None)
            columns = _csv_columns(header, context)
            context.line = 1
            for index, row in enumerate(rows):
                # The physical line the row ends on: quoted fields span lines (Specific Result, Solution).
                context.line = rows.line_num
                context.record = index
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(columns):
                    raise context.reject(f"{len(row)} fields where the header names {len(columns)}")
                finding = self._csv_finding(dict(zip(columns, row)), context)
                if finding is not None:
                    result.findings.append(finding)
                    hosts[finding.host] = None
        except UnicodeDecodeError as exc:
            raise context.reject(f"not UTF-8 text ({exc.reason})") from None
        except csv.Error as exc:
            raise context.reject(f"not a readable CSV file ({exc})") from None
        finally:
            text.detach()  # the caller owns the stream
        result.metadata.update({"layout": "csv", "results": len(result.findings)})
        result.coverage = [Coverage(host=host, whole_host=True) for host in hosts if host]
        return result

    def _csv_finding(self, row: dict[str, str], context: ImportContext) -> FindingCandidate | None:
        def value(name: str) -> str:
            return (row.get(name) or "").strip()

        host = value("IP") or value("Hostname") or context.default_host
        if not host:
            raise context.reject("result without an IP or hostname")
        oid, title = value("NVT OID"), _one_line(value("NVT Name"))
        if not (oid or title):
            raise context.reject("result without an NVT OID or name")
        threat = value("Severity")
        if threat.lower() == "false positive":
            return None  # an override already marked it, as in the XML report
        score = cvss_score(value("CVSS"))
        port, protocol = split_port(f"{value('Port') or 'general'}/{value('Port Protocol') or 'tcp'}")
        evidence = {
            "oid": oid,
            "threat": threat,
            "qod": value("QoD"),
            "solution_type": value("Solution Type"),
            "output": trim(value("Specific Result"), 2048),
            "detection": trim(value("Vulnerability Detection Method"), 1000),
            "task": trim(value("Task Name"), 200),
        }
        if value("Hostname"):
            evidence["hostname"] = value("Hostname")
        description = "\n\n".join(_tidy(value(k)) for k in ("Summary", "Vulnerability Insight", "Impact") if value(k))
        links = [u.strip() for u in value("Other References").split(",") if u.strip().startswith(("http://", "https://"))]
        return FindingCandidate(
            source=self.name,
            rule_id=oid or title,
            title=trim(title or oid, 500),
            host=host,
            severity=severity_word(threat) or severity_from_score(score),
            cvss_score=score,
            cve_ids=cve_ids(value("CVEs").split(",")),
            port=port,
            protocol=protocol,
            location=f"general/{protocol}" if port is None else "",
            description=trim(description, 4000),
            remediation=trim(_tidy(value("Solution")), 4000),
            references=tuple(trim(u, 500) for u in links[:20]),
            evidence={k: v for k, v in evidence.items() if v},
        )


def _csv_columns(header: list[str] | None, context: ImportContext) -> list[str]:
    if not header:
        raise context.reject(f"empty CSV file; supported: {_SUPPORTED}", line=1)
    columns = [c.strip() for c in header]
    named = set(columns)
    if all(c in named for c in _CSV_REQUIRED) and ("NVT OID" in named or "NVT Name" in named):
        return columns
    shown = ", ".join(c[:40] for c in columns[:8]) + (", ..." if len(columns) > 8 else "")
    if _CSV_HOSTS_COLUMNS <= named:
        seen = f"a Greenbone CSV Hosts export (host summaries, no results: {shown})"
    elif len(columns) == 1:
        seen = f"not a CSV Results export (one column: {shown})"
    else:
        seen = f"a CSV file without the CSV Results columns (columns: {shown})"
    raise context.reject(f"{seen}; supported: {_SUPPORTED}", line=1)


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
