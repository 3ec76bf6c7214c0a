"""Discovery of nodes: port sweep, service fingerprint, then the protocol registry's probes.

``discover_many(targets, ports)`` sweeps all the targets at once and identifies open ports
while the sweep goes on, and asks the well-known UDP services of each target alongside
(``scans.scanners.udp``; ``udp=False`` leaves UDP out); ``discover(target, ports="top1000")``
is the one-node case. Each returns a :class:`DiscoveryResult` per node listing each
detected protocol with its confidence (0-1) and the evidence behind it, and the
fingerprinted services (TCP and UDP alike, each saying which). No Django here: the nodes app's services turn the result into
Node rows.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scans.discovery.fallback import UnknownPortFallback, fallback_summary, needs_fallback
from scans.discovery.families import identify_family
from scans.discovery.probes import Answer, json_at, run_probe
from scans.discovery.registry import ProtocolSpec, Registry, Signature, default_registry
from scans.findings.candidates import ServiceObservation
from scans.scanners.base import ScanContext, Target
from scans.scanners.fingerprint import Probe, fingerprint_port, trimmed
from scans.scanners.port_sets import NAMED_SETS, parse_ports
from scans.scanners.portscan import PortScanOutcome, raise_fd_limit, sweep
from scans.scanners.udp import Pacer, UdpOutcome, udp_discover


# Registry probes sent at once to a port asked everything; two unanswered probes end the probing.
PROBES_AT_ONCE = 8


@dataclass(slots=True)
class DetectedProtocol:
    protocol: str
    port: int
    confidence: float
    tls: bool = False
    version: str = ""
    evidence: list[dict[str, Any]] = field(default_factory=list)
    transport: str = "tcp"

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "port": self.port, "confidence": self.confidence, "tls": self.tls,
                "version": self.version, "evidence": list(self.evidence), "transport": self.transport}


@dataclass(slots=True)
class DiscoveryResult:
    address: str
    hostname: str = ""
    ports_scanned: int = 0
    open_ports: list[int] = field(default_factory=list)  # TCP
    udp_ports_scanned: int = 0
    udp_open_ports: list[int] = field(default_factory=list)
    protocols: list[DetectedProtocol] = field(default_factory=list)
    services: list[ServiceObservation] = field(default_factory=list)
    portscan: dict[str, int] = field(default_factory=dict)  # counts by outcome
    fallback: dict[str, Any] = field(default_factory=dict)  # what nmap's service detection did (fallback.py)
    started_at: float = 0.0
    duration: float = 0.0
    complete: bool = True
    error: str = ""

    def best(self, protocol: str) -> DetectedProtocol | None:
        found = [p for p in self.protocols if p.protocol == protocol]
        return max(found, key=lambda p: p.confidence) if found else None

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "hostname": self.hostname, "ports_scanned": self.ports_scanned,
                "open_ports": list(self.open_ports), "udp_ports_scanned": self.udp_ports_scanned,
                "udp_open_ports": list(self.udp_open_ports), "protocols": [p.to_dict() for p in self.protocols],
                "services": [s.to_dict() for s in self.services], "portscan": dict(self.portscan),
                "fallback": dict(self.fallback),
                "started_at": self.started_at, "duration": self.duration, "complete": self.complete,
                "error": self.error}


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
    present, value = json_at(answer.json(), signature.json_path)
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
                        attempts: list[dict[str, Any]],
                        fallback: UnknownPortFallback | None = None) -> tuple[ServiceObservation, list[DetectedProtocol]]:
    """Name the service on one open port: our fingerprints, the registry's probes, then ``fallback``
    (nmap's service detection) for a port that answered and is still unnamed."""
    service, detected = await identify_port(address, port, hostname=hostname, context=context, registry=registry,
                                            attempts=attempts)
    if fallback is not None and needs_fallback(service, detected):
        service = await fallback.identify(address, service)
    return service, detected


async def identify_port(address: str, port: int, *, hostname: str, context: ScanContext, registry: Registry,
                        attempts: list[dict[str, Any]]) -> tuple[ServiceObservation, list[DetectedProtocol]]:
    exchanges: dict = {}  # what naming the service asked, the registry's probes need not ask again
    service = await fingerprint_port(address, port, hostname=hostname, context=context, attempts=attempts,
                                     answers=exchanges)
    probe = Probe(address, port, hostname=hostname, tls=service.tls, connect_timeout=context.connect_timeout,
                  read_timeout=context.read_timeout, attempts=attempts, answers=exchanges)
    banner_timeout = float(context.extra.get("banner_timeout", min(context.read_timeout, 1.0)))
    named = None
    if service.confidence > 0 and (named := await identify_family(probe, service, banner_timeout=banner_timeout)):
        service = named  # the families table knows the product the fingerprint left unnamed
    candidates = {p.name: p for p in registry.for_port(port) + registry.for_service(service.service)}
    at_once = 1
    if not candidates and service.confidence > 0 and named is None:
        # It answers something, on no usual port, and no family named it: ask everything, several
        # probes at a time, or the port's idle pauses add up over the whole registry; a usual
        # port's few probes go one by one and keep the load on the node low.
        candidates = {p.name: p for p in registry.protocols}
        at_once = PROBES_AT_ONCE
    if not candidates:
        return service, []
    answers: dict[str, Answer] = {}
    names = list(dict.fromkeys(name for protocol in candidates.values() for name in protocol.probes))
    silent = 0
    for start in range(0, len(names), at_once):
        if silent >= 2:
            break  # a port that ignored two probes will ignore the rest
        batch = names[start:start + at_once]
        replies = await asyncio.gather(*(run_probe(probe, registry.probes[name], banner_timeout=banner_timeout)
                                         for name in batch))
        for name, answer in zip(batch, replies):
            answers[name] = answer
            silent += answer.outcome == "timeout" and registry.probes[name].kind != "banner"
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


async def discover_many(targets: Sequence[Target | str], ports: str | list[int] | tuple[int, ...] = "top1000",
                        context: ScanContext | None = None, *, registry: Registry | None = None,
                        timeout: float | None = None, identify_concurrency: int | None = None,
                        udp: bool = True) -> list[DiscoveryResult | BaseException]:
    """Discover many nodes at once: one port sweep over all of them, identification alongside.

    The sweep (:func:`scans.scanners.portscan.sweep`) draws every (node, port) from one cursor
    under the process's socket budget, so a thousand nodes cost what their ports cost, not a
    thousand separate scans. Each open port is identified as soon as the sweep finds it, on
    this event loop, under one limit for the whole run (``identify_concurrency``, else
    ``context.extra["identify_concurrency"]``, else 256), while the sweep goes on.

    With ``udp``, each target's well-known UDP services are asked at the same time
    (:func:`scans.scanners.udp.udp_discover`, under the context's rate budget and at most
    ``context.extra["udp_concurrency"]`` targets at once, else 256); what answers joins the
    target's services and protocols with transport "udp".

    Returns one entry per target, in order: its :class:`DiscoveryResult`, or the exception that
    ended it (``TimeoutError`` when ``timeout`` seconds passed before it was complete).
    """
    loop = asyncio.get_running_loop()
    targets = [t if isinstance(t, Target) else Target(t) for t in targets]
    context = context or ScanContext()
    registry = registry or default_registry()
    port_list = discovery_ports(ports, registry)
    began, now = time.monotonic(), time.time()
    results = [DiscoveryResult(address=t.address, hostname=t.hostname, started_at=now, ports_scanned=len(port_list))
               for t in targets]
    futures: list[asyncio.Future] = [loop.create_future() for _ in targets]
    identifying: list[list[asyncio.Task]] = [[] for _ in targets]
    swept = [False] * len(targets)
    attempts: list[list[dict[str, Any]]] = [[] for _ in targets]
    limit = asyncio.Semaphore(max(1, int(identify_concurrency or context.extra.get("identify_concurrency", 256))))
    udp_limit = asyncio.Semaphore(max(1, int(context.extra.get("udp_concurrency", 256))))
    pacer = Pacer(context.rate_limit)
    asking_udp: list[asyncio.Task | None] = [None] * len(targets)
    # nmap gets the unnamed ports only while the run keeps a tenth of its time for the rest.
    fallback = UnknownPortFallback.from_context(context, deadline=began + 0.9 * timeout if timeout else None)
    stop = threading.Event()

    async def ask_udp(i: int) -> UdpOutcome:
        async with udp_limit:
            return await udp_discover(targets[i], context, pacer=pacer)

    async def identify(i: int, port: int):
        async with limit:
            service, detected = await identify_port(targets[i].address, port, hostname=targets[i].hostname,
                                                    context=context, registry=registry, attempts=attempts[i])
        # Outside the identification limit: nmap runs under the fallback's own, and a slow nmap
        # must not hold a slot the sweep's next open ports are waiting for.
        if fallback is not None and needs_fallback(service, detected):
            service = await fallback.identify(targets[i].address, service)
        return service, detected

    def settle(i: int) -> None:
        udp_task = asking_udp[i]
        if not swept[i] or futures[i].done() or not all(task.done() for task in identifying[i]):
            return
        if udp_task is not None and not udp_task.done():
            return
        result = results[i]
        for task in [*identifying[i], *([udp_task] if udp_task is not None else [])]:
            if task.cancelled():
                return
            if task.exception() is not None:
                futures[i].set_exception(task.exception())
                return
            if task is udp_task:
                continue
            service, detected = task.result()
            result.services.append(service)
            result.protocols.extend(detected)
        if udp_task is not None:
            found = udp_task.result()
            result.udp_ports_scanned, result.udp_open_ports = found.ports_scanned, found.open_ports
            result.services.extend(f.service for f in found.found)
            result.protocols.extend(DetectedProtocol(**f.detected) for f in found.found)
        result.services.sort(key=lambda s: (s.protocol == "udp", s.port))
        if fallback is not None:
            result.fallback = fallback_summary(result.services)
        result.duration = round(time.monotonic() - began, 4)
        futures[i].set_result(result)

    def opened(i: int, port: int) -> None:
        if stop.is_set() or futures[i].done():
            return  # the run is over (timed out or cancelled): nobody waits for this port any more
        task = loop.create_task(identify(i, port))
        identifying[i].append(task)
        task.add_done_callback(lambda _task, i=i: settle(i))

    def host_swept(i: int, outcome: PortScanOutcome) -> None:
        results[i].portscan = dict(outcome.counts)
        results[i].open_ports = sorted(outcome.open)
        swept[i] = True
        settle(i)

    def swept_all(sweeping: asyncio.Future) -> None:
        error = None if sweeping.cancelled() else sweeping.exception()
        for i, outcome in enumerate([] if error or sweeping.cancelled() else sweeping.result()):
            if outcome.untried and not futures[i].done():
                results[i].complete, results[i].error = False, f"{outcome.untried} port(s) not probed"
        for future in futures:
            if error is not None and not future.done():
                future.set_exception(error)

    raise_fd_limit()
    if udp:
        for i in range(len(targets)):
            asking_udp[i] = loop.create_task(ask_udp(i))
            asking_udp[i].add_done_callback(lambda _task, i=i: settle(i))
    # The sweep thread reports through the loop: callbacks run here, never on the thread.
    sweeping = asyncio.ensure_future(asyncio.to_thread(
        sweep, [(t.address, port_list) for t in targets], timeout=context.connect_timeout,
        rate_limit=context.rate_limit, stop=stop,
        on_open=lambda i, port: loop.call_soon_threadsafe(opened, i, port),
        on_host_done=lambda i, outcome: loop.call_soon_threadsafe(host_swept, i, outcome),
    ))
    sweeping.add_done_callback(swept_all)
    try:
        if futures:
            await asyncio.wait(futures, timeout=timeout)
    finally:
        stop.set()  # a timed-out or cancelled run stops probing; the thread ends within a poll round
        leftovers = [task for tasks in [*identifying, [t for t in asking_udp if t is not None]] for task in tasks
                     if not task.done()]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, sweeping, return_exceptions=True)
    out: list[DiscoveryResult | BaseException] = []
    for future in futures:
        if not future.done():
            future.cancel()
            out.append(TimeoutError(f"discovery overran its time budget of {timeout:g}s"))
        else:
            out.append(future.exception() or future.result())
    return out


async def discover_async(target: Target | str, ports: str | list[int] | tuple[int, ...] = "top1000",
                         context: ScanContext | None = None, *, registry: Registry | None = None,
                         udp: bool = True) -> DiscoveryResult:
    context = context or ScanContext()
    concurrency = int(context.extra.get("port_concurrency", 32))  # one node: its own open ports at once
    (result,) = await discover_many([target], ports, context, registry=registry, identify_concurrency=concurrency,
                                    udp=udp)
    if isinstance(result, BaseException):
        raise result
    return result


def discover(target: Target | str, ports: str | list[int] | tuple[int, ...] = "top1000",
             context: ScanContext | None = None, *, registry: Registry | None = None, udp: bool = True) -> DiscoveryResult:
    """Synchronous entry point for Celery tasks and commands."""
    return asyncio.run(discover_async(target, ports, context, registry=registry, udp=udp))
