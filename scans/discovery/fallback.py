"""The fallback for the unknown: nmap's service detection on open ports none of our fingerprints name.

Our own identification runs first: it is faster and reads versions nmap's signatures do not. A
port it leaves unnamed (no fingerprint, no registry protocol) but that did answer something is
handed to nmap's version scan (``-sV``) through the nmap runner, one port per nmap run, so a port
that drags on spends its own time budget and not its neighbours'. Ports silent to every probe are
not handed over: nmap would start with the same banner wait and requests they already ignored, and
a tarpit would cost a whole budget.

Only a match nmap made from the port's answers (``method="probed"``) names a service; a match from
nmap's port table (``method="table"``) is a guess from the port number and is left out. Where nmap
is not installed the fallback is skipped, and the evidence says so: that is not an error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from scans.findings.candidates import ServiceObservation
from scans.scanners import connections
from scans.scanners.base import ScanContext, Target
from scans.scanners.nmap import NmapScanner

TOOL = "nmap service detection"
# Names our fingerprint gives a port it could not identify ("ssl": TLS, and nothing known inside).
UNNAMED = frozenset({"unknown", "ssl", ""})
DEFAULT_SECONDS = 15.0
DEFAULT_CONCURRENCY = 4
# Below this, nmap could not start, probe and report: the port is left as it is.
MIN_SECONDS = 1.0
# nmap's names for "no service named": "tcpwrapped" is a server that closed on every probe without a word.
NMAP_NO_NAME = frozenset({"tcpwrapped", "unknown"})
# nmap rates its match 0-10; a probed match at 10 is as sure as a signature of another tool can make us.
NMAP_TRUST = 0.8


def needs_fallback(service: ServiceObservation, detected: list) -> bool:
    """The port answered, and neither our fingerprints nor the registry named what answered."""
    return not detected and service.service in UNNAMED and service.confidence > 0


@dataclasses.dataclass
class UnknownPortFallback:
    """nmap's version scan for the unnamed ports of one discovery run, ``concurrency`` at a time,
    each within ``seconds`` and all before ``deadline`` (``time.monotonic()``), when the run has one."""

    seconds: float = DEFAULT_SECONDS
    concurrency: int = DEFAULT_CONCURRENCY
    deadline: float | None = None
    _limit: asyncio.Semaphore = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._limit = asyncio.Semaphore(max(1, self.concurrency))

    @classmethod
    def from_context(cls, context: ScanContext, *, deadline: float | None = None) -> UnknownPortFallback | None:
        """The run's fallback (``extra["fallback_seconds"]`` per port, 0 turns it off)."""
        seconds = float(context.extra.get("fallback_seconds", DEFAULT_SECONDS))
        if seconds <= 0:
            return None
        return cls(seconds, int(context.extra.get("fallback_concurrency", DEFAULT_CONCURRENCY)), deadline)

    async def identify(self, address: str, service: ServiceObservation) -> ServiceObservation:
        """What nmap names on ``service``'s port, else ``service`` with the reason it stays unnamed."""
        unavailable = NmapScanner.availability()
        if unavailable:
            return _noted(service, {"tool": TOOL, "outcome": "skipped", "reason": unavailable})
        allowance = connections.budget_for(address)
        if allowance is not None and allowance.rate:
            # nmap's probes cannot draw from the node's count of new connections: added to discovery's own
            # they would break the budget.
            return _noted(service, {"tool": TOOL, "outcome": "skipped",
                                    "reason": "the node has a budget of new connections per second"})
        port = service.port
        async with self._limit:
            # A fleet's discovery has a budget of its own: a late port gets what is left of it, or nothing.
            left = float("inf") if self.deadline is None else self.deadline - time.monotonic()
            seconds = min(self.seconds, left)
            if left < min(self.seconds, MIN_SECONDS):
                return _noted(service, {"tool": TOOL, "outcome": "skipped",
                                        "reason": "no time left in the discovery's time budget"})
            result = await NmapScanner().run_async(Target(address, ports=(port,)), {"ports": str(port)},
                                                   budget=seconds)
        found = next((s for s in result.services if s.port == port and s.protocol == "tcp"), None)
        match = _service_element(found) if found is not None else {}
        note: dict[str, Any] = {"tool": TOOL, "nmap_version": result.data.get("nmap_version", ""),
                                "seconds": result.duration}
        if not result.complete:
            return _noted(service, {**note, "outcome": "unfinished", "reason": result.error})
        if match.get("method") != "probed" or match.get("name", "") in NMAP_NO_NAME | {""}:
            if match.get("name") == "tcpwrapped":
                reason = "nmap saw the port close on every probe without an answer (tcpwrapped)"
            elif match.get("name") and match.get("method") != "probed":
                reason = f"nmap guessed {match['name']!r} from the port number only"
            else:
                reason = "no nmap signature matched"
            return _noted(service, {**note, "outcome": "no match", "reason": reason})
        return ServiceObservation(
            host=service.host, port=port, service=found.service, product=found.product, version=found.version,
            cpe=found.cpe, tls=found.tls or service.tls, banner=service.banner or found.banner,
            confidence=round(NMAP_TRUST * found.confidence, 2),
            evidence={"identified_by": TOOL, "nmap_version": note["nmap_version"], "nmap_match": match,
                      "our_probes": service.evidence},
        )


def _service_element(found: ServiceObservation) -> dict[str, str]:
    """nmap's ``<service>`` element as the importer kept it: name, product, version, extrainfo, method, conf, cpe."""
    element = {key[len("service_"):]: value for key, value in found.evidence.items() if key.startswith("service_")}
    if found.cpe:
        element["cpe"] = found.cpe
    return element


def _noted(service: ServiceObservation, note: dict[str, Any]) -> ServiceObservation:
    return dataclasses.replace(service, evidence={**service.evidence, "fallback": note})


def fallback_summary(services: list[ServiceObservation]) -> dict[str, Any]:
    """What the fallback did on one node: ports handed over, ports it named, and why it was skipped."""
    tried = [s for s in services if s.evidence.get("identified_by") == TOOL or "fallback" in s.evidence]
    skipped = {s.evidence["fallback"].get("reason", "") for s in tried
               if s.evidence.get("fallback", {}).get("outcome") == "skipped"}
    return {"tool": TOOL, "ports": [s.port for s in tried],
            "named": [s.port for s in tried if s.evidence.get("identified_by") == TOOL],
            "skipped": sorted(skipped)[0] if skipped else ""}
