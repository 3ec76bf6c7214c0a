"""Asking one port one request of the tables (the protocol registry's probes, the families'):
the request as its kind says, the answer with its HTTP reading when it is HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scans.discovery.registry import ProbeSpec
from scans.scanners.fingerprint import HttpReply, Probe, http_payload, parse_http


@dataclass(slots=True)
class Answer:
    """One probe's answer on one port."""

    data: bytes
    outcome: str
    http: HttpReply | None = None

    @property
    def text(self) -> str:
        return self.data.decode("latin-1")

    def json(self) -> Any:
        return self.http.json() if self.http is not None else None


async def run_probe(probe: Probe, spec: ProbeSpec, *, banner_timeout: float, exchange: str = "") -> Answer:
    """Send ``spec`` through ``probe``; ``exchange`` names it in the port's record of exchanges
    (default: the probe's name)."""
    exchange = exchange or spec.name
    if spec.kind == "banner":
        result = await probe.send(exchange, None, read_timeout=banner_timeout)
        return Answer(result.data, result.outcome)
    if spec.kind == "send":
        result = await probe.send(exchange, spec.payload)
        return Answer(result.data, result.outcome)
    host = probe.hostname or (f"[{probe.address}]" if ":" in probe.address else probe.address)
    result = await probe.send(exchange, http_payload(spec.method, spec.path, f"{host}:{probe.port}", spec.body))
    return Answer(result.data, result.outcome, parse_http(result.data))


def json_at(document: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    """Whether a dotted path (its keys, or list positions as digits) reaches a value in a JSON
    document, and the value."""
    for key in path:
        if isinstance(document, dict) and key in document:
            document = document[key]
        elif isinstance(document, list) and key.isdigit() and int(key) < len(document):
            document = document[int(key)]
        else:
            return False, None
    return True, document
