"""One path from any scanner or importer candidate to a Finding's values.

Severity comes from CVSS when a score is known (≥9 critical, ≥7 high, ≥4 medium, >0 low,
else info) and from the tool's own word otherwise. The fingerprint is stable across runs
and tools' cosmetic changes (titles, descriptions): it hashes only what identifies the
finding — source, rule, port, protocol and location.

A candidate's values split in two: its *content* (title, severity, CVSS, CVEs, texts), which
one rule reported on many hosts repeats word for word, and what is its own (port, location,
evidence). :class:`Contents` normalizes each distinct content once for a whole ingest.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from scans.findings.candidates import FindingCandidate, severity_from_cvss, severity_from_word

MAX_TITLE = 500
MAX_LOCATION = 1000
MAX_RULE_ID = 255
MAX_EVIDENCE_BYTES = 16 * 1024
# Kept in columns of their own, not in the stored evidence (CVE fingerprinting says why it matched).
MATCH_KEYS = ("match_confidence", "match_reason")


def normalized_severity(candidate: FindingCandidate) -> str:
    return _severity(candidate.severity, clean_cvss(candidate.cvss_score))


def _severity(word: Any, score: Decimal | None) -> str:
    return severity_from_cvss(score) or severity_from_word(word) or "info"


def clean_cvss(score: Any) -> Decimal | None:
    """A CVSS base score as Decimal(3,1), or None when absent or out of range."""
    if score is None or score == "":
        return None
    try:
        value = Decimal(str(score)).quantize(Decimal("0.1"))
    except (InvalidOperation, ValueError):
        return None
    return value if Decimal(0) <= value <= Decimal(10) else None


def finding_fingerprint(candidate: FindingCandidate) -> str:
    port = candidate.port
    key = (f"{candidate.source}\x1f{candidate.rule_id[:MAX_RULE_ID]}\x1f{'' if port is None else str(port)}\x1f"
           f"{(candidate.protocol or 'tcp').lower()}\x1f{candidate.location[:MAX_LOCATION]}")
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def json_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    except TypeError:  # integers beyond 64 bits and the like: the standard library copes
        return json.dumps(value, default=str, sort_keys=True).encode("utf-8", "surrogatepass")


def stored_evidence(candidate: FindingCandidate, encoded: bytes) -> bytes:
    """The evidence a finding keeps, as JSON, given the candidate's whole evidence as ``json_bytes``
    encoded it: without the match keys, and cut short past ``MAX_EVIDENCE_BYTES`` (evidence is for a
    person to read; a scanner dumping megabytes must not bloat every row)."""
    evidence = candidate.evidence
    if evidence and ("match_confidence" in evidence or "match_reason" in evidence):  # MATCH_KEYS
        encoded = json_bytes({k: v for k, v in evidence.items() if k not in MATCH_KEYS})
    if len(encoded) <= MAX_EVIDENCE_BYTES:
        return encoded
    return json_bytes({"truncated": True, "excerpt": encoded[:MAX_EVIDENCE_BYTES].decode("utf-8", "replace")})


def match_values(candidate: FindingCandidate) -> tuple[float | None, str]:
    """Match confidence and reason, from the evidence where CVE fingerprinting leaves them."""
    evidence = candidate.evidence
    if not evidence:
        return None, ""
    confidence = evidence.get("match_confidence")
    return (float(confidence) if isinstance(confidence, (int, float)) else None,
            str(evidence.get("match_reason") or "")[:500])


def clean_port(port: Any) -> int | None:
    return port if isinstance(port, int) and 0 < port < 65536 else None


def clean_protocol(protocol: str | None) -> str:
    return (protocol or "tcp").lower()[:8]


# The fields a rescan may change; a change in any of them makes the finding "updated".
CONTENT_FIELDS = (
    "title", "severity", "cvss_score", "cvss_vector", "cve_ids", "cwe", "description",
    "remediation", "references", "evidence", "match_confidence", "match_reason",
)


class Content:
    """A candidate's content normalized (``values``: rule id and the content fields but evidence and
    match), with the digest of what it says, ready to take the evidence (``digest``)."""

    __slots__ = ("values", "_digest")

    def __init__(self, candidate: FindingCandidate) -> None:
        score = clean_cvss(candidate.cvss_score)
        cwe = candidate.cwe
        self.values = {
            "rule_id": candidate.rule_id[:MAX_RULE_ID],
            "title": (candidate.title or candidate.rule_id)[:MAX_TITLE],
            "severity": _severity(candidate.severity, score),
            "cvss_score": score,
            "cvss_vector": (candidate.cvss_vector or "")[:200],
            "cve_ids": sorted({c.upper() for c in candidate.cve_ids}),
            "cwe": cwe if isinstance(cwe, int) and cwe > 0 else None,
            "description": candidate.description or "",
            "remediation": candidate.remediation or "",
            "references": list(candidate.references),
        }
        digest = hashlib.md5(usedforsecurity=False)
        for part in (candidate.title, candidate.severity, candidate.cvss_score, candidate.cvss_vector,
                     candidate.cve_ids, candidate.cwe, candidate.description, candidate.remediation,
                     candidate.references):
            digest.update(repr(part).encode("utf-8", "surrogatepass"))
            digest.update(b"\x1f")
        self._digest = digest

    def digest(self, evidence: bytes) -> str:
        """The content hash of a candidate with this content and ``evidence`` (its ``json_bytes``)."""
        digest = self._digest.copy()
        digest.update(evidence)
        return digest.hexdigest()


class Contents(dict):
    """Each distinct content of an ingest's candidates, normalized once.

    Keyed by the fields a content is made of, with the types of the numbers among them: 10 and
    10.0 are equal keys but not equal reprs, and the digest hashes reprs. (CVE ids and references
    are tuples of text, by the candidates' contract.)"""

    def of(self, candidate: FindingCandidate) -> Content:
        key = (candidate.rule_id, candidate.title, candidate.severity, candidate.cvss_score,
               type(candidate.cvss_score), candidate.cvss_vector, candidate.cve_ids, candidate.cwe, type(candidate.cwe),
               candidate.description, candidate.remediation, candidate.references)
        try:
            return self[key]
        except KeyError:
            content = self[key] = Content(candidate)
            return content
        except TypeError:  # a list where a tuple belongs: normalized alone
            return Content(candidate)
