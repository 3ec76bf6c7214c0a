"""One path from any scanner or importer candidate to a Finding's values.

Severity comes from CVSS when a score is known (≥9 critical, ≥7 high, ≥4 medium, >0 low,
else info) and from the tool's own word otherwise. The fingerprint is stable across runs
and tools' cosmetic changes (titles, descriptions): it hashes only what identifies the
finding — source, rule, port, protocol and location.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from scans.candidates import FindingCandidate, severity_from_cvss, severity_from_word

try:
    import orjson
except ImportError:  # pragma: no cover - the standard library does the same, slower
    orjson = None

MAX_TITLE = 500
MAX_LOCATION = 1000
MAX_RULE_ID = 255
MAX_EVIDENCE_BYTES = 16 * 1024


def normalized_severity(candidate: FindingCandidate) -> str:
    from_score = severity_from_cvss(clean_cvss(candidate.cvss_score))
    if from_score is not None:
        return from_score
    return severity_from_word(candidate.severity) or "info"


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
    key = "\x1f".join(
        [
            candidate.source,
            candidate.rule_id[:MAX_RULE_ID],
            "" if candidate.port is None else str(candidate.port),
            (candidate.protocol or "tcp").lower(),
            candidate.location[:MAX_LOCATION],
        ]
    )
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _trimmed_evidence(evidence: dict[str, Any]) -> dict[str, Any]:
    """Evidence is for a person to read; a scanner dumping megabytes must not bloat every row."""
    encoded = json_bytes(evidence)
    if len(encoded) <= MAX_EVIDENCE_BYTES:
        return evidence
    return {"truncated": True, "excerpt": encoded[:MAX_EVIDENCE_BYTES].decode("utf-8", "replace")}


def json_bytes(value: Any) -> bytes:
    if orjson is not None:
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
        except TypeError:  # integers beyond 64 bits and the like: the standard library copes
            pass
    return json.dumps(value, default=str, sort_keys=True).encode("utf-8", "surrogatepass")


def finding_values(candidate: FindingCandidate) -> dict[str, Any]:
    """The Finding field values a candidate defines (identity and content; not lifecycle)."""
    evidence = dict(candidate.evidence or {})
    confidence = evidence.pop("match_confidence", None)
    reason = evidence.pop("match_reason", "")
    score = clean_cvss(candidate.cvss_score)
    evidence = _trimmed_evidence(evidence)
    return {
        "source": candidate.source,
        "rule_id": candidate.rule_id[:MAX_RULE_ID],
        "title": (candidate.title or candidate.rule_id)[:MAX_TITLE],
        "severity": normalized_severity(candidate),
        "cvss_score": score,
        "cvss_vector": (candidate.cvss_vector or "")[:200],
        "cve_ids": sorted({c.upper() for c in candidate.cve_ids}),
        "cwe": candidate.cwe if isinstance(candidate.cwe, int) and candidate.cwe > 0 else None,
        "port": candidate.port if isinstance(candidate.port, int) and 0 < candidate.port < 65536 else None,
        "protocol": (candidate.protocol or "tcp").lower()[:8],
        "location": candidate.location[:MAX_LOCATION],
        "description": candidate.description or "",
        "remediation": candidate.remediation or "",
        "references": list(candidate.references),
        "evidence": evidence,
        "match_confidence": float(confidence) if isinstance(confidence, (int, float)) else None,
        "match_reason": str(reason or "")[:500],
    }


# The fields a rescan may change; a change in any of them makes the finding "updated".
CONTENT_FIELDS = (
    "title", "severity", "cvss_score", "cvss_vector", "cve_ids", "cwe", "description",
    "remediation", "references", "evidence", "match_confidence", "match_reason",
)


def candidate_hash(candidate: FindingCandidate) -> str:
    """A digest of everything a candidate says beyond its identity.

    Stored as the finding's content hash: a rescan compares one column, and since the
    Finding's content is a pure function of the candidate, equal digests mean nothing changed.
    """
    digest = hashlib.md5(usedforsecurity=False)
    for part in (candidate.title, candidate.severity, candidate.cvss_score, candidate.cvss_vector, candidate.cve_ids,
                 candidate.cwe, candidate.description, candidate.remediation, candidate.references):
        digest.update(repr(part).encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
    digest.update(json_bytes(candidate.evidence or {}))
    return digest.hexdigest()
