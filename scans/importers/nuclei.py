"""Nuclei results: JSONL (``-jsonl``, v2 ``-json``) or a JSON array (``-json-export``).

Field names changed between v2 (``templateID``, ``matched``, ``matcher_name``) and v3
(``template-id``, ``matched-at``, ``matcher-name``); both are read. The finding's
host is the IP nuclei connected to when it says, else the name from ``host``; its
location is the matched URL or address plus the matcher (or extracted values), since
one template fires once per matcher (``tech-detect``: bootstrap, nginx, ...).

A record without ``host`` takes its target from ``url``, ``matched-at``, ``ip`` or
``port`` (network templates write ``host:port`` there). A record that names no target at
all is skipped and reported (``ImportResult.skipped`` with the first reasons) while the
rest of the file is imported; with ``strict`` (``import_findings --strict``) such a
record refuses the whole file, as does a file whose every record names no target (it
needs ``--node``). A malformed file is refused whole either way.

JSONL is read line by line, so a 100,000-line file never sits in memory twice.
"""

from __future__ import annotations

import functools
from typing import Any, BinaryIO, NamedTuple
from urllib.parse import urlsplit

import orjson

from scans.findings.candidates import Coverage, FindingCandidate, ImportResult
from scans.importers.base import (
    ImportContext,
    Importer,
    cve_ids,
    cvss_score,
    first_byte,
    first_cwe,
    references,
    register,
    severity_word,
    trim,
)
from scans.importers.reading import Fields, iter_json_lines, load_json

_REASONS_KEPT = 5  # skipped records whose reason the import reports; the rest are counted
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21, "ssh": 22}
_EVIDENCE_LIMIT = 1024
# (record key, evidence key): the evidence keeps these fields under their names in snake case.
_EVIDENCE_FIELDS = tuple((key, key.replace("-", "_")) for key in ("request", "response", "curl-command", "timestamp"))


@register
class NucleiImporter(Importer):
    name = "nuclei"
    formats = ("jsonl", "json")
    description = "Nuclei JSONL (-jsonl) or JSON export (-json-export), v2 and v3 field names"

    def read(self, stream: BinaryIO, context: ImportContext) -> ImportResult:
        result = self.new_result(context)
        infos: dict[bytes, _Info] = {}
        hosts: dict[str, None] = {}
        findings = result.findings
        unplaced: list[FindingCandidate] = []

        def take(finding: FindingCandidate | None, unit: str, number: int) -> None:
            """Keep ``finding``, read from record or line ``number`` (``unit``), or set it aside."""
            if finding is None:
                return
            if finding.host or context.strict:
                # Strict: a record with no target stays in, hostless, and the import refuses the file.
                findings.append(finding)
                hosts[finding.host] = None
                return
            unplaced.append(finding)
            if len(result.skipped_reasons) < _REASONS_KEPT:
                result.skipped_reasons.append(
                    f"{unit} {number} ({finding.rule_id}): no host, url, matched-at, ip or port names a target")

        if first_byte(stream) == b"[":
            context.line = None
            records = load_json(stream.read(), context)
            if not isinstance(records, list):
                raise context.reject("expected an array of results")
            for index, record in enumerate(records):
                context.record = index
                take(self._finding(record, f"$[{index}]", context, infos), "record", index)
        else:
            for index, (number, record) in enumerate(iter_json_lines(stream, context)):
                context.record = index
                take(self._finding(record, "$", context, infos), "line", number)
        if unplaced and not findings:
            # Not one record says where: that is the file's whole content, not a few strays.
            # Hand them on hostless, so the import refuses the file and asks for --node.
            findings.extend(unplaced)
            result.skipped_reasons.clear()
        else:
            result.skipped = len(unplaced)
        result.coverage = [Coverage(host=host, whole_host=True) for host in hosts if host]
        return result

    def _finding(self, record: Any, path: str, context: ImportContext,
                 infos: dict[bytes, _Info]) -> FindingCandidate | None:
        # Hot path (100,000-line files): a value that is text is taken as it is, and only anything
        # else (absent, a number, the wrong kind) goes through the checked read of ``Fields``.
        fields = Fields(record, path, context)
        text = fields.text
        get = record.get
        if "matcher-status" in record and fields.flag("matcher-status") is False:
            return None  # -ms also writes the templates that did not match
        template = get("template-id")
        if template.__class__ is not str or not template:
            template = text("template-id") or text("templateID")
            if not template:
                raise context.reject("result without a template id", path=f"{path}.template-id")
        info = _info(fields, infos)
        matched = get("matched-at")
        if matched.__class__ is not str or not matched:
            matched = text("matched-at") or text("matched")
        target = get("host")
        if target.__class__ is not str or not target:
            target = text("host") or text("url")
        matcher = get("matcher-name")
        if matcher.__class__ is not str or not matcher:
            matcher = text("matcher-name") or text("matcher_name")
        extracted: list[str] = []
        if "extracted-results" in record or "extracted_results" in record:
            extracted = fields.texts("extracted-results") or fields.texts("extracted_results")
        hostname, port = _host_and_port(matched or target)
        if not hostname:
            hostname, port2 = _host_and_port(target)
            port = port or port2
        if "port" in record:
            named = text("port").strip()
            if named.isascii() and named.isdigit():
                explicit_port = int(named) if len(named) <= 5 else None
                if explicit_port is not None and 0 < explicit_port < 65536:
                    port = explicit_port
            elif ":" in named:
                # Network templates may write "host:port" here when nothing else names the target.
                port_host, port_number = _host_and_port(named)
                hostname = hostname or port_host
                port = port_number or port
        host = get("ip")
        if host.__class__ is not str or not host:
            host = text("ip") or hostname or context.default_host
        target = target or matched or host
        kind = get("type")
        if kind.__class__ is not str:
            kind = text("type")

        location = matched or target
        if matcher:
            location = f"{location} [{matcher}]"
        elif extracted:
            location = f"{location} [{', '.join(extracted[:5])}]"

        evidence: dict[str, Any] = {"template": template, "type": kind, "matched_at": trim(matched, 500)}
        if target and target != host:
            evidence["target"] = trim(target, 500)
        if matcher:
            evidence["matcher"] = trim(matcher, 200)
        if extracted:
            evidence["extracted"] = [trim(value, 200) for value in extracted[:10]]
        for key, name in _EVIDENCE_FIELDS:
            value = get(key)
            if value is not None:
                if value.__class__ is not str:
                    value = text(key)
                if value:
                    evidence[name] = trim(value, _EVIDENCE_LIMIT)

        if info.cwe_raw:
            evidence["cwe_raw"] = list(info.cwe_raw)
        return FindingCandidate(
            source=self.name,
            rule_id=template,
            title=info.name or template,
            host=host,
            severity=info.severity,
            cvss_score=info.score,
            cvss_vector=info.vector,
            cve_ids=info.cve_ids,
            cwe=info.cwe,
            port=port,
            protocol="udp" if kind == "dns" and port == 53 else "tcp",
            location=trim(location, 1000),
            description=info.description,
            remediation=info.remediation,
            references=info.references,
            evidence=evidence,
        )


class _Info(NamedTuple):
    """What a record's ``info`` block says about its rule, read and checked."""

    name: str
    severity: str | None
    score: float | None
    vector: str
    cve_ids: tuple[str, ...]
    cwe: int | None
    cwe_raw: tuple[str, ...]  # CWE values that name no CWE number, kept in the evidence
    description: str
    remediation: str
    references: tuple[str, ...]


def _info(fields: Fields, infos: dict[bytes, _Info]) -> _Info:
    """The record's ``info`` block read, once per distinct block in a file: a rule reported on many
    hosts repeats it word for word. Blocks are told apart by their JSON, which keeps the kinds of
    their values (1, 1.0 and true read differently, and a block reads the same wherever it is)."""
    block = fields.obj.get("info")
    try:
        key = orjson.dumps(block) if block.__class__ is dict else None
    except TypeError:  # an integer beyond 64 bits: read, not kept
        key = None
    known = infos.get(key) if key is not None else None
    if known is not None:
        return known
    info = fields.child("info")
    classification = info.child("classification")
    score = cvss_score(classification.number("cvss-score")) if classification.has("cvss-score") else None
    cwe_values = classification.texts("cwe-id")
    cwe = first_cwe(cwe_values)
    info_text = info.text
    read = _Info(
        name=info_text("name"),
        severity=severity_word(info_text("severity")),
        score=score,
        vector=classification.text("cvss-metrics"),
        cve_ids=cve_ids(classification.texts("cve-id")),
        cwe=cwe,
        cwe_raw=tuple(trim(value, 50) for value in cwe_values[:5]) if cwe is None else (),
        description=trim(info_text("description"), 4000),
        remediation=trim(info_text("remediation"), 4000),
        references=_references(tuple(info.texts("reference"))),
    )
    if key is not None:
        infos[key] = read
    return read


def _host_and_port(value: str) -> tuple[str, int | None]:
    """``https://a.example:8443/x`` -> ("a.example", 8443); ``a.example:22`` -> ("a.example", 22)."""
    if not value:
        return "", None
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "", value
    end = len(rest)
    for mark in "/?#":
        found = rest.find(mark)
        if found != -1 and found < end:
            end = found
    return _netloc(scheme.lower(), rest[:end])


@functools.lru_cache(maxsize=65536)
def _netloc(scheme: str, netloc: str) -> tuple[str, int | None]:
    # Cached: a run has many results per host and port, and urlsplit is the slowest step per line.
    try:
        parts = urlsplit(f"//{netloc}")
        return parts.hostname or "", parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a malformed port or bracketed address in the tool's output
        return "", None


@functools.lru_cache(maxsize=4096)
def _references(values: tuple[str, ...]) -> tuple[str, ...]:
    # v2 templates wrote references as one YAML-ish string: "- http://a\n- http://b".
    lines = []
    for value in values:
        if "\n" not in value:
            lines.append(value)
            continue
        for line in value.splitlines():
            line = line.strip().lstrip("-").strip()
            if line:
                lines.append(line)
    return references(lines)
