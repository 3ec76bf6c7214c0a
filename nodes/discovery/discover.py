"""Discovery of one node: port scan, service fingerprint, then the protocol registry's probes.

``discover(target, ports="top1000")`` returns a :class:`DiscoveryResult` listing each
detected protocol with its confidence (0-1) and the evidence behind it, and the
fingerprinted services. No Django here: the nodes app's services turn the result into
Node rows.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from nodes.discovery.registry import ProbeSpec, ProtocolSpec, Registry, Signature, default_registry
from scans.candidates import ServiceObservation
from scans.scanners.base import ScanContext, Target
from scans.scanners.fingerprint import HttpReply, Probe, fingerprint_port, http_payload, parse_http, trimmed
from scans.scanners.port_sets import NAMED_SETS, parse_ports
from scans.scanners.portscan import scan_ports


@dataclass(slots=True)
class DetectedProtocol:
    protocol: str
    port: int
    confidence: float
    tls: bool = False
    version: str = ""
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "port": self.port, "confidence": self.confidence, "tls": self.tls,
                "version": self.version, "evidence": list(self.evidence)}


@dataclass(slots=True)
class DiscoveryResult:
    address: str
    hostname: str = ""
    ports_scanned: int = 0
    open_ports: list[int] = field(default_factory=list)
    protocols: list[DetectedProtocol] = field(default_factory=list)
    services: list[ServiceObservation] = field(default_factory=list)
    portscan: dict[str, int] = field(default_factory=dict)  # counts by outcome
    started_at: float = 0.0
    duration: float = 0.0
    complete: bool = True
    error: str = ""

    def protocols_on(self, port: int) -> list[DetectedProtocol]:
        return [p for p in self.protocols if p.port == port]

    def best(self, protocol: str) -> DetectedProtocol | None:
        found = [p for p in self.protocols if p.protocol == protocol]
        return max(found, key=lambda p: p.confidence) if found else None

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "hostname": self.hostname, "ports_scanned": self.ports_scanned,
                "open_ports": list(self.open_ports), "protocols": [p.to_dict() for p in self.protocols],
                "services": [s.to_dict() for s in self.services], "portscan": dict(self.portscan),
                "started_at": self.started_at, "duration": self.duration, "complete": self.complete,
                "error": self.error}


@dataclass(slots=True)
class Answer:
    """One registry probe's answer on one port."""

    data: bytes
    outcome: str
    http: HttpReply | None = None

    @property
    def text(self) -> str:
        return self.data.decode("latin-1")

    def json(self) -> Any:
        return self.http.json() if self.http is not None else None


async def run_probe(probe: Probe, spec: ProbeSpec, *, banner_timeout: float) -> Answer:
    if spec.kind == "banner":
        result = await probe.send(spec.name, None, read_timeout=banner_timeout)
        return Answer(result.data, result.outcome)
    if spec.kind == "send":
        result = await probe.send(spec.name, spec.payload)
        return Answer(result.data, result.outcome)
    host = probe.hostname or (f"[{probe.address}]" if ":" in probe.address else probe.address)
    result = await probe.send(spec.name, http_payload(spec.method, spec.path, f"{host}:{probe.port}", spec.body))
    return Answer(result.data, result.outcome, parse_http(result.data))


def _json_at(document: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for key in path:
        if isinstance(document, dict) and key in document:
            document = document[key]
        elif isinstance(document, list) and key.isdigit() and int(key) < len(document):
            document = document[int(key)]
        else:
            return False, None
    return True, document


def signature_matches(signature: Signature, answer: Answer | None, service: ServiceObservation | None) -> str | None:
    """The matched excerpt when ``signature`` holds, else None."""
    if signature.services:
        return service.service if service is not None and service.service in signature.services else None
    if answer is None or not answer.data:
        return None
    if signature.regex is not None:
        found = signature.regex.search(answer.text)
        return trimmed(found.group(0) or answer.data[:80], 120) if found else None
    if signature.header is not None:
        name, pattern = signature.header
        value = answer.http.headers.get(name, "") if answer.http is not None else ""
        return f"{name}: {value}" if value and pattern.search(value) else None
    present, value = _json_at(answer.json(), signature.json_path)
    test, expected = signature.json_test
    path = ".".join(signature.json_path)
    if not present:
        return None
    if test == "exists":
        return f"{path} present" if expected else None
    if test == "equals":
        return f"{path} = {json.dumps(value)}" if value == expected else None
    return f"{path} = {json.dumps(value)}" if isinstance(value, str) and expected.search(value) else None


def score(protocol: ProtocolSpec, port: int, answers: dict[str, Answer], service: ServiceObservation | None,
          tls: bool) -> DetectedProtocol:
    remaining = 1.0
    evidence: list[dict[str, Any]] = []
    version = ""
    if port in protocol.ports and protocol.port_weight:
        remaining *= 1 - protocol.port_weight
        evidence.append({"signature": f"usual port {port}", "weight": protocol.port_weight})
    for signature in protocol.signatures:
        answer = answers.get(signature.probe) if signature.probe else None
        matched = signature_matches(signature, answer, service)
        if matched is None:
            continue
        remaining *= 1 - signature.weight
        evidence.append({"probe": signature.probe or "fingerprint", "signature": signature.describe(),
                         "matched": matched, "weight": signature.weight})
        if signature.version is not None and not version:
            source = answer.text if answer is not None else (service.banner if service else "")
            if signature.header is not None and answer is not None and answer.http is not None:
                source = answer.http.headers.get(signature.header[0], "")
            if found := signature.version.search(source):
                version = found.group(1)
    if not version and service is not None and len(evidence) > 1:
        version = service.version
    return DetectedProtocol(protocol.name, port, round(1 - remaining, 4), tls, version, evidence)


async def discover_port(address: str, port: int, *, hostname: str, context: ScanContext, registry: Registry,
                        attempts: list[dict[str, Any]]) -> tuple[ServiceObservation, list[DetectedProtocol]]:
    service = await fingerprint_port(address, port, hostname=hostname, context=context, attempts=attempts)
    candidates = {p.name: p for p in registry.for_port(port) + registry.for_service(service.service)}
    if not candidates and service.confidence > 0:  # it answers something, on no usual port: ask everything
        candidates = {p.name: p for p in registry.protocols}
    if not candidates:
        return service, []
    probe = Probe(address, port, hostname=hostname, tls=service.tls, connect_timeout=context.connect_timeout,
                  read_timeout=context.read_timeout, attempts=attempts)
    banner_timeout = float(context.extra.get("banner_timeout", min(context.read_timeout, 1.0)))
    answers: dict[str, Answer] = {}
    names = list(dict.fromkeys(name for protocol in candidates.values() for name in protocol.probes))
    silent = 0
    for name in names:
        if silent >= 2:
            break  # a port that ignored two probes will ignore the rest
        answers[name] = await run_probe(probe, registry.probes[name], banner_timeout=banner_timeout)
        silent += answers[name].outcome == "timeout" and registry.probes[name].kind != "banner"
    detected = [score(protocol, port, answers, service, service.tls) for protocol in candidates.values()]
    detected = [d for d in detected if d.confidence >= registry.min_confidence]
    return service, sorted(detected, key=lambda d: -d.confidence)


def discovery_ports(ports: str | list[int] | tuple[int, ...], registry: Registry) -> tuple[int, ...]:
    """The ports discovery probes. A spec naming a set (top100, top1000, alone or in a mix such as
    "top1000,9999") grows by every port the protocol registry names, since nmap's frequency lists
    miss Redis, JSON-RPC nodes and the like; an explicit list of ports is taken as given."""
    port_list = parse_ports(ports)
    if isinstance(ports, str) and any(part.strip().lower() in NAMED_SETS for part in ports.split(",")):
        port_list = parse_ports(list(dict.fromkeys(port_list + registry.ports)))
    return port_list


async def discover_async(target: Target | str, ports: str | list[int] | tuple[int, ...] = "top1000",
                         context: ScanContext | None = None, *, registry: Registry | None = None) -> DiscoveryResult:
    target = target if isinstance(target, Target) else Target(target)
    context = context or ScanContext()
    registry = registry or default_registry()
    result = DiscoveryResult(address=target.address, hostname=target.hostname, started_at=time.time())
    began = time.monotonic()
    port_list = discovery_ports(ports, registry)
    result.ports_scanned = len(port_list)
    outcome = await scan_ports(target.address, port_list, timeout=context.connect_timeout,
                               concurrency=max(context.concurrency, 256), rate_limit=context.rate_limit)
    result.portscan = dict(outcome.counts)
    result.open_ports = sorted(outcome.open)
    if outcome.untried:
        result.complete, result.error = False, f"{outcome.untried} port(s) not probed"
    attempts: list[dict[str, Any]] = []
    limit = asyncio.Semaphore(int(context.extra.get("port_concurrency", 32)))

    async def one(port: int):
        async with limit:
            return await discover_port(target.address, port, hostname=target.hostname, context=context,
                                       registry=registry, attempts=attempts)

    for service, detected in await asyncio.gather(*(one(p) for p in result.open_ports)):
        result.services.append(service)
        result.protocols.extend(detected)
    result.duration = round(time.monotonic() - began, 4)
    return result


def discover(target: Target | str, ports: str | list[int] | tuple[int, ...] = "top1000",
             context: ScanContext | None = None, *, registry: Registry | None = None) -> DiscoveryResult:
    """Synchronous entry point for Celery tasks and commands."""
    return asyncio.run(discover_async(target, ports, context, registry=registry))
