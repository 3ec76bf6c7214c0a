"""Discovery evidence in people's words, for the node page.

Discovery stores each piece of evidence as ``{"probe", "signature", "matched", "weight"}``
where ``signature`` is ``Signature.describe()``: a developer's string that repeats the probe
and quotes patterns with Python's repr (``http-root: regex '^HTTP/1\\\\.[01] '``, ``fingerprint
service in ['http', 'https']``). Rows already stored keep that text, so it is read back here
rather than changed at the source: one sentence per piece of evidence, the pattern as code.
"""

from __future__ import annotations

import ast
import re
from typing import Any

_USUAL_PORT = re.compile(r"^usual port (?P<port>\d+)$")
_SERVICES = re.compile(r"^fingerprint service in (?P<services>\[.*\])$")
_REGEX = re.compile(r"^(?P<probe>[^:]+): regex (?P<pattern>.+)$")
_JSON = re.compile(r"^(?P<probe>[^:]+): json (?P<path>\S+) (?P<test>exists|equals|matches|\S+) (?P<expected>.+)$")
_HEADER = re.compile(r"^(?P<probe>[^:]+): header (?P<name>\S+) ~ (?P<pattern>.+)$")
_JSON_TESTS = {"exists": "is present", "equals": "equals", "matches": "matches"}


def _literal(text: str) -> Any:
    """A value the signature quoted with repr, back to itself (the pattern as written in protocols.yaml)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _pattern(value: Any) -> str:
    # A compiled pattern's repr is "re.compile('...')": keep only the pattern.
    text = value if isinstance(value, str) else str(value)
    found = re.fullmatch(r"re\.compile\((.*)\)", text)
    return str(_literal(found.group(1))) if found else text


def evidence_sentence(evidence: dict[str, Any]) -> dict[str, Any]:
    """``{"text", "code", "matched", "weight"}``: a sentence, the pattern it tested (or ""), what matched."""
    signature = str(evidence.get("signature") or "")
    probe = str(evidence.get("probe") or "")
    text, code = signature, ""
    if found := _USUAL_PORT.match(signature):
        text = f"Answered on port {found['port']}, a usual port of this protocol"
    elif found := _SERVICES.match(signature):
        services = _literal(found["services"])
        names = [str(s) for s in services] if isinstance(services, (list, tuple)) else [str(services)]
        text = f"The service fingerprint says {' or '.join(names)}"
    elif found := _REGEX.match(signature):
        text, code = f"The answer to the {found['probe']} probe matches", _pattern(_literal(found["pattern"]))
    elif found := _HEADER.match(signature):
        text = f"The {found['name']} header in the answer to the {found['probe']} probe matches"
        code = _pattern(_literal(found["pattern"]))
    elif found := _JSON.match(signature):
        test = _JSON_TESTS.get(found["test"], found["test"])
        expected = _literal(found["expected"])
        text = f"In the JSON answer to the {found['probe']} probe, {found['path']} {test}"
        if found["test"] == "exists":
            code = ""
        else:
            code = _pattern(expected)
    elif probe and signature.startswith(f"{probe}: "):
        text = f"The answer to the {probe} probe: {signature[len(probe) + 2:]}"
    elif probe and probe != "fingerprint":
        text = f"The answer to the {probe} probe: {signature}"
    matched = evidence.get("matched")
    return {"text": text, "code": code, "matched": "" if matched in (None, True, False) else str(matched),
            "weight": evidence.get("weight")}


def detections_for_display(discovery_evidence: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The node's detected protocols with each piece of evidence as a sentence."""
    detections = (discovery_evidence or {}).get("protocols") or []
    return [{**d, "evidence": [evidence_sentence(e) for e in d.get("evidence") or () if isinstance(e, dict)]}
            for d in detections if isinstance(d, dict)]


# "refused '10.0.0.1': outside ..." or "refused 10.0.0.1 (address ...): ...": the guard's sentence
# for logs. Beside a "refused" badge and the address column, only the reason is news.
_REFUSED = re.compile(r"^refused (?:'[^']*'|\S+?)(?: \(address [^)]*\))?: ")


def refusal_reason(text: str) -> str:
    """The scope guard's refusal without its leading "refused <address>:"."""
    text = str(text or "")
    stripped = _REFUSED.sub("", text, count=1)
    if stripped == text and text.startswith("refused "):
        stripped = text[len("refused "):]
    return stripped
