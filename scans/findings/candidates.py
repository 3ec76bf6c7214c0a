"""What scanners and importers say, before it becomes a Finding.

This module is the contract between the network/parsing code (``scans.scanners``,
``scans.importers``, ``scans.discovery``) and the findings engine. It holds plain
dataclasses with no Django inside, so the scanners and parsers can be tested and
benchmarked alone, and every result can be stored as JSON in ``ScanJob.raw_result``.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

# Words tools use for severity, mapped onto ours (one table for importers and normalization).
SEVERITY_WORDS = {
    "critical": "critical",
    "high": "high",
    "medium": "medium",
    "moderate": "medium",
    "low": "low",
    "negligible": "low",
    "info": "info",
    "informational": "info",
    "information": "info",
    "log": "info",
    "note": "info",
    "none": "info",
    "error": "high",  # SARIF levels
    "warning": "medium",
}


def severity_from_word(value: Any) -> str | None:
    """One of our severities (``nodes.models.Severity``) for a tool's severity word; None when the word
    means nothing known."""
    if not isinstance(value, str):
        return None
    return SEVERITY_WORDS.get(value.strip().lower())


def severity_from_cvss(score: float | None) -> str | None:
    """The design's CVSS bands: >=9 critical, >=7 high, >=4 medium, >0 low, else info."""
    if score is None:
        return None
    score = float(score)
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0.0:
        return "low"
    return "info"


# How sure a finding is and on what that rests: every scanner states a confidence (0-1), one of
# these bases, and the reason in words, in its candidate's evidence (``certainty``). The findings
# engine keeps confidence and reason in columns of their own; below its organization's threshold
# a finding is *potential* (``scans.models.FindingQuerySet.potential``).
BASES = {
    "proven": "proven by the service's own answer",
    "exact": "version observed exactly",
    "range": "version within a range",
    "condition": "a condition that was not observed",
    "backport": "a distribution build whose backported fixes are unknown",
    "banner": "banner only",
    "inferred": "inferred from what the service shows",
}


def certainty(confidence: float, basis: str, reason: str) -> dict[str, Any]:
    """The evidence keys that state a finding's certainty; ``basis`` is one of ``BASES``."""
    if basis not in BASES:
        raise ValueError(f"{basis!r} is not a basis of confidence ({', '.join(BASES)})")
    return {"match_confidence": round(float(confidence), 3), "match_basis": basis, "match_reason": reason}


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _plain_dict(candidate) -> dict[str, Any]:
    """A candidate's or observation's fields as a dict, for JSON. Not ``dataclasses.asdict``: its deep
    copy of every value was most of the time a scanner spent turning 40 jobs' findings into JSON;
    the evidence, the only mutable field, is copied a level deep."""
    data = {name: getattr(candidate, name) for name in _field_names(type(candidate))}
    data["evidence"] = dict(candidate.evidence)
    return data


@dataclass(frozen=True, slots=True)
class FindingCandidate:
    """One thing a scanner or an importer reports about one host.

    ``host`` is the address or name the tool reported the finding for; the findings
    engine maps it to a Node. ``severity`` is the tool's own word, kept for when no
    CVSS score is known; the engine derives the final severity.
    """

    source: str  # scanner or importer name: "tls", "nuclei", "trivy", ...
    rule_id: str  # stable id of the check within its source: "tls-expired-cert", template id, CVE id
    title: str
    host: str = ""
    severity: str | None = None
    cvss_score: float | None = None
    cvss_vector: str = ""
    cve_ids: tuple[str, ...] = ()
    cwe: int | None = None
    port: int | None = None
    protocol: str = "tcp"
    location: str = ""  # URL, file path, package@version: what distinguishes two hits of one rule
    description: str = ""
    remediation: str = ""
    references: tuple[str, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)
    # The tool's own verdict that this is not a problem (a vendor's "not_affected", an accepted
    # SARIF suppression): a Finding status ("false_positive") and why. Applied to a finding only
    # when it is new; a finding already known keeps its status, above all a person's triage.
    triage: str = ""
    triage_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = _plain_dict(self)
        data["cve_ids"] = list(self.cve_ids)
        data["references"] = list(self.references)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FindingCandidate:
        values = {k: data[k] for k in _field_names(cls) if k in data}
        values["cve_ids"] = tuple(values.get("cve_ids") or ())
        values["references"] = tuple(values.get("references") or ())
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ServiceObservation:
    """A service seen on a port: what it is and, when known, product and version.

    ``cpe`` is a CPE 2.3 string (``cpe:2.3:a:openbsd:openssh:8.9p1:*:*:*:*:*:*:*``)
    when the product is known; the CVE fingerprinting stage matches on it.
    """

    host: str
    port: int
    protocol: str = "tcp"
    service: str = ""  # "http", "ssh", "redis", "ethereum-jsonrpc", ...
    product: str = ""
    version: str = ""
    cpe: str = ""
    tls: bool = False
    banner: str = ""
    confidence: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _plain_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServiceObservation:
        return cls(**{k: data[k] for k in _field_names(cls) if k in data})


@dataclass(frozen=True, slots=True)
class Coverage:
    """What a run actually examined, so the engine knows what it may close.

    A finding is closed as fixed only when a *completed* run of the same source
    covered its host (and port, where it has one) and no longer reports it.
    ``ports`` empty with ``whole_host`` true means every port of the host was covered
    (a file import of a host, a full scan).
    """

    host: str
    ports: tuple[int, ...] = ()
    whole_host: bool = False

    def covers(self, port: int | None) -> bool:
        return self.whole_host or port is None or port in self.ports

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "ports": list(self.ports), "whole_host": self.whole_host}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Coverage:
        return cls(
            host=data["host"], ports=tuple(data.get("ports") or ()), whole_host=bool(data.get("whole_host"))
        )


@dataclass(slots=True)
class ScanResult:
    """The structured, JSON-serializable result of one scanner run against one target.

    ``attempts`` records what was tried and how each try ended, per port or probe:
    ``{"port": 443, "probe": "tls1.0", "outcome": "refused" | "timeout" | "reset" | "ok" | ..., "detail": "..."}``.
    ``complete`` is false when the time budget ran out or the run was cut short:
    an incomplete result never closes findings.
    """

    scanner: str
    version: str
    target: str
    address: str = ""  # the address actually connected to (checked by the scope guard)
    options: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0  # unix time
    duration: float = 0.0  # seconds
    complete: bool = True
    error: str = ""
    open_ports: list[int] = field(default_factory=list)
    services: list[ServiceObservation] = field(default_factory=list)
    findings: list[FindingCandidate] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # scanner-specific detail (certificate, headers...)

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _field_names(ScanResult)}
        data.update(open_ports=list(self.open_ports), services=[s.to_dict() for s in self.services],
                    findings=[f.to_dict() for f in self.findings], attempts=list(self.attempts),
                    coverage=[c.to_dict() for c in self.coverage])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanResult:
        return cls(
            scanner=data["scanner"],
            version=data.get("version", ""),
            target=data.get("target", ""),
            address=data.get("address", ""),
            options=data.get("options") or {},
            started_at=data.get("started_at", 0.0),
            duration=data.get("duration", 0.0),
            complete=data.get("complete", True),
            error=data.get("error", ""),
            open_ports=list(data.get("open_ports") or ()),
            services=[ServiceObservation.from_dict(s) for s in data.get("services") or ()],
            findings=[FindingCandidate.from_dict(f) for f in data.get("findings") or ()],
            attempts=list(data.get("attempts") or ()),
            coverage=[Coverage.from_dict(c) for c in data.get("coverage") or ()],
            data=data.get("data") or {},
        )


@dataclass(slots=True)
class ImportResult:
    """What an importer read from one third-party file.

    ``coverage`` lists the hosts (and ports) the file speaks for; an importer file
    counts as a completed run of its source for those hosts.
    """

    source: str
    filename: str
    findings: list[FindingCandidate] = field(default_factory=list)
    services: list[ServiceObservation] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)  # tool version, scan time, ...
    # The hosts the file names are scanned things (images, SBOMs, repositories, clusters), not
    # addresses, even when a name looks like one ("minikube"): an import's --node places them.
    hosts_are_artifacts: bool = False
    # Records left out because they name no target (never for a malformed file): count, first reasons.
    skipped: int = 0
    skipped_reasons: list[str] = field(default_factory=list)
