"""nmap XML (``-oX``): hosts, open ports and their services, and NSE ``vulners`` CVEs.

Each open port becomes an info finding and a ServiceObservation (product, version,
CPE 2.3); each CVE the ``vulners`` script lists for a port becomes a finding with its
CVSS score. Hosts reported down or timed out are not covered: a host that did not
answer says nothing about what runs on it.
"""

from __future__ import annotations

import re
from typing import BinaryIO
from xml.etree.ElementTree import Element

from scans.findings.candidates import Coverage, FindingCandidate, ImportResult, ServiceObservation
from scans.importers.base import (
    ImportContext,
    Importer,
    cvss_score,
    register,
    severity_from_score,
    trim,
)
from scans.importers.reading import iter_xml, text_of

_VULNERS_LINE = re.compile(r"^\s*(\S*?(CVE-\d{4}-\d{4,7}))\s+(\d{1,2}(?:\.\d)?)\s*(\S*)", re.MULTILINE | re.ASCII)
_CVE_ID = re.compile(r"CVE-\d{4}-\d{4,7}", re.IGNORECASE | re.ASCII)
_CONFIDENCE_LEVELS = {str(n) for n in range(11)}
_TLS_SERVICES = {"https", "imaps", "pop3s", "smtps", "ldaps", "ftps", "ircs", "xmpps", "nntps"}


@register
class NmapImporter(Importer):
    name = "nmap"
    formats = ("xml",)
    description = "nmap XML output (-oX), with NSE vulners script results"

    def read(self, stream: BinaryIO, context: ImportContext) -> ImportResult:
        result = self.new_result(context)
        root_seen = False
        hosts = 0
        for event, element, ancestors in iter_xml(stream, context):
            if event == "start":
                if not ancestors:
                    if element.tag != "nmaprun":
                        raise context.reject(f"not an nmap XML report (root element <{element.tag}>)")
                    root_seen = True
                    result.metadata.update(
                        {
                            "scanner": "nmap",
                            "version": element.get("version", ""),
                            "args": trim(element.get("args", ""), 500),
                            "started": element.get("start", ""),
                        }
                    )
                continue
            if element.tag == "host" and len(ancestors) == 1:
                context.record = hosts
                hosts += 1
                self._read_host(element, result)
                ancestors[-1].remove(element)
            elif element.tag == "finished" and len(ancestors) == 2:
                result.metadata["finished"] = element.get("time", "")
                result.metadata["exit"] = element.get("exit", "")
        if not root_seen:
            raise context.reject("not an nmap XML report")
        result.metadata["hosts"] = hosts
        return result

    def _read_host(self, host: Element, result: ImportResult) -> None:
        status = host.find("status")
        if status is not None and status.get("state") != "up":
            return
        address = host_address(host)
        if not address:
            return
        names = [n.get("name", "") for n in host.iterfind("hostnames/hostname") if n.get("name")]
        host_evidence = {"hostnames": names[:10]} if names else {}
        if host.get("timedout") == "true":
            # nmap gave up on the host (--host-timeout): what it saw stands, what it did not see proves nothing.
            result.metadata.setdefault("timed_out_hosts", []).append(address)
        else:
            result.coverage.append(Coverage(host=address, whole_host=True))
        for port in host.iterfind("ports/port"):
            state = port.find("state")
            if state is None or state.get("state") != "open":
                continue
            number = _port_number(port.get("portid", ""))
            if number is None:
                continue
            protocol = (port.get("protocol") or "tcp").lower()
            service = port.find("service")
            observation = _observation(address, number, protocol, service, host_evidence)
            result.services.append(observation)
            label = observation.service or "unknown service"
            detail = " ".join(p for p in (observation.product, observation.version) if p)
            result.findings.append(
                FindingCandidate(
                    source=self.name,
                    rule_id="nmap-open-port",
                    title=f"Open port {number}/{protocol} ({label}{', ' + detail if detail else ''})",
                    host=address,
                    severity="info",
                    port=number,
                    protocol=protocol,
                    location=f"{number}/{protocol}",
                    description=f"nmap found {number}/{protocol} open, identified as {label}.",
                    evidence={"reason": state.get("reason", ""), **_service_evidence(service), **host_evidence},
                )
            )
            for script in port.iterfind("script"):
                if script.get("id") == "vulners":
                    result.findings.extend(self._vulners(script, address, number, protocol, observation))

    def _vulners(
        self, script: Element, host: str, port: int, protocol: str, observation: ServiceObservation
    ) -> list[FindingCandidate]:
        """CVEs from the structured tables when present, else from the text output older NSE writes."""
        entries: dict[str, tuple[float | None, bool, str]] = {}
        for cpe_table in script.iterfind("table"):
            for entry in cpe_table.iterfind("table"):
                fields = {elem.get("key"): (elem.text or "").strip() for elem in entry.iterfind("elem")}
                match = _CVE_ID.search(fields.get("id", ""))
                if not match:
                    continue
                cve = match.group(0).upper()
                exploit = fields.get("is_exploit", "").lower() == "true"
                if cve not in entries:
                    entries[cve] = (cvss_score(fields.get("cvss")), exploit, cpe_table.get("key", ""))
        if not entries:
            for match in _VULNERS_LINE.finditer(script.get("output", "")):
                cve = match.group(2).upper()
                entries.setdefault(cve, (cvss_score(match.group(3)), False, ""))
        findings = []
        product = " ".join(p for p in (observation.product, observation.version) if p) or observation.service
        for cve, (score, exploit, cpe) in entries.items():
            findings.append(
                FindingCandidate(
                    source=self.name,
                    rule_id=cve,
                    title=f"{cve} in {product}" if product else cve,
                    host=host,
                    severity=severity_from_score(score),
                    cvss_score=score,
                    cve_ids=(cve,),
                    port=port,
                    protocol=protocol,
                    location=f"{port}/{protocol}",
                    description=(
                        f"The nmap vulners script matched {cve} to {product or 'the service'} on {port}/{protocol}."
                    ),
                    remediation="Upgrade the service to a version that fixes this vulnerability.",
                    references=(f"https://vulners.com/cve/{cve}",),
                    evidence={"script": "vulners", "cpe": cpe, "exploit_known": exploit},
                )
            )
        return findings


def host_address(host: Element) -> str:
    """The IP nmap reported for a host (IPv4 before IPv6, never a MAC address)."""
    by_type = {a.get("addrtype"): a.get("addr", "") for a in host.iterfind("address")}
    return by_type.get("ipv4") or by_type.get("ipv6") or ""


def _port_number(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and 0 < int(value) < 65536 else None


def _observation(
    host: str, port: int, protocol: str, service: Element | None, host_evidence: dict
) -> ServiceObservation:
    if service is None:
        return ServiceObservation(host=host, port=port, protocol=protocol, evidence=dict(host_evidence))
    name = service.get("name", "")
    cpes = [text_of(c) for c in service.iterfind("cpe")]
    application = next((c for c in cpes if c.startswith(("cpe:/a:", "cpe:2.3:a:"))), cpes[0] if cpes else "")
    conf = service.get("conf", "")
    return ServiceObservation(
        host=host,
        port=port,
        protocol=protocol,
        service=name,
        product=service.get("product", ""),
        version=service.get("version", ""),
        cpe=cpe23(application),
        tls=service.get("tunnel") == "ssl" or name in _TLS_SERVICES,
        banner=trim(service.get("servicefp", ""), 512),
        confidence=int(conf) / 10 if conf in _CONFIDENCE_LEVELS else 0.0,
        evidence={**_service_evidence(service), **host_evidence},
    )


def _service_evidence(service: Element | None) -> dict:
    if service is None:
        return {}
    keep = ("name", "product", "version", "extrainfo", "method", "conf", "tunnel", "ostype")
    return {f"service_{k}": trim(service.get(k, ""), 200) for k in keep if service.get(k)}


def cpe23(cpe: str) -> str:
    """nmap writes CPE 2.2 URIs (``cpe:/a:openbsd:openssh:7.4``); the catalog matches CPE 2.3."""
    if not cpe or cpe.startswith("cpe:2.3:"):
        return cpe
    if not cpe.startswith("cpe:/"):
        return ""
    parts = cpe[len("cpe:/") :].split(":")
    parts = [p.replace("%7e", "~") or "*" for p in parts][:11]
    parts += ["*"] * (11 - len(parts))
    return "cpe:2.3:" + ":".join(parts)
