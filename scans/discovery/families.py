"""Application families: ``families.yaml`` loaded and checked, and the engine that asks its entries.

Discovery names a port's protocol first; where that leaves the product or version unknown,
:func:`identify_family` asks the table's entries that apply to the service (those listing
the port first) and turns the first answer that matches into a product, version and CPE,
with the entry and the matched excerpt as evidence. A bad table fails at load time with an
error naming the place (``families[4] (solana): match: json needs exactly one of ...``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scans.discovery.probes import Answer, json_at, run_probe
from scans.discovery.registry import ProbeSpec, RegistryError, load_yaml_table, parse_named_list, parse_probe
from scans.findings.candidates import ServiceObservation
from scans.scanners.fingerprint import Probe, cpe_name, trimmed

DEFAULT_PATH = Path(__file__).with_name("families.yaml")
HTTP_KINDS = ("http", "jsonrpc")
MISSING = object()


class FamilyTableError(RegistryError):
    """The families table is not valid; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Test:
    """Where to look in an answer (a JSON path, a header, or the raw bytes) and what must hold there."""

    json_path: tuple[str, ...] = ()
    header: str = ""
    regex: re.Pattern | None = None
    equals: Any = MISSING
    status: int | None = None

    def value(self, answer: Answer) -> str | None:
        if self.status is not None and (answer.http is None or answer.http.status != self.status):
            return None
        if self.header:
            return answer.http.headers.get(self.header) if answer.http is not None else None
        if self.json_path:
            present, document = json_at(answer.json(), self.json_path)
            if not present:
                return None
            if isinstance(document, (dict, list)):
                return json.dumps(document)
            return None if document is None else str(document)
        return answer.data.decode("latin-1")

    def matched(self, answer: Answer) -> str | None:
        """The excerpt that satisfies the test, else None."""
        value = self.value(answer)
        if value is None:
            return None
        if self.equals is not MISSING:
            return value if value == str(self.equals) else None
        found = self.regex.search(value) if self.regex is not None else None
        if self.regex is not None and found is None:
            return None
        excerpt = found.group(0) if found is not None else value
        return self.describe() + " = " + trimmed(excerpt, 120)

    def extract(self, answer: Answer) -> str:
        value = self.value(answer)
        if value is None:
            return ""
        if self.regex is None:
            return value
        found = self.regex.search(value)
        return (found.group(1) if found.groups() else found.group(0)) if found else ""

    def describe(self) -> str:
        if self.header:
            return f"header {self.header}"
        if self.json_path:
            return f"json {'.'.join(self.json_path)}"
        return "answer"


@dataclass(frozen=True, slots=True)
class FamilyEntry:
    name: str
    family: str
    service: str
    applies_to: tuple[str, ...]
    ports: tuple[int, ...]
    probe: ProbeSpec
    match: Test
    product: str
    version: Test | None = None
    version_probe: ProbeSpec | None = None
    cpe: tuple[str, str] | None = None
    auth: bool = False


@dataclass(frozen=True, slots=True)
class FamilyTable:
    entries: tuple[FamilyEntry, ...]
    source: str = ""

    def for_service(self, service: str, port: int) -> list[FamilyEntry]:
        """The entries to ask on a port showing ``service``: those that list the port first.
        A port that answered no HTTP is asked no HTTP entry."""
        found = [e for e in self.entries if service in e.applies_to
                 and (service != "unknown" or e.probe.kind not in HTTP_KINDS)]
        return sorted(found, key=lambda e: port not in e.ports)

    @property
    def services(self) -> frozenset[str]:
        return frozenset(s for e in self.entries for s in e.applies_to)


def load_families(path: str | Path | None = None, *, text: str | None = None) -> FamilyTable:
    return load_yaml_table(parse_families, path or DEFAULT_PATH, text, FamilyTableError)


@functools.lru_cache(maxsize=1)
def default_families() -> FamilyTable:
    return load_families()


def parse_families(raw: Any, *, source: str = "<data>") -> FamilyTable:
    where = Path(source).name
    if not isinstance(raw, dict) or set(raw) - {"version", "families"}:
        raise FamilyTableError(f"{where}: the top level must be a mapping with 'version' and 'families' only")
    if raw.get("version") != 1:
        raise FamilyTableError(f"{where}: version must be 1, not {raw.get('version')!r}")
    entries = parse_named_list(raw, "families", where, _entry_in_table, FamilyTableError, "entry")
    return FamilyTable(tuple(entries), source)


ENTRY_KEYS = {"name", "family", "service", "applies_to", "ports", "probe", "match", "product", "version", "cpe", "auth"}
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]*")


def _entry_in_table(spec: Any, where: str) -> FamilyEntry:
    """An entry; the registry's own errors (a bad probe) come out as the table's."""
    try:
        return _entry(spec, where)
    except RegistryError as exc:
        raise FamilyTableError(str(exc)) from None


def _entry(spec: Any, where: str) -> FamilyEntry:
    if not isinstance(spec, dict):
        raise FamilyTableError(f"{where}: must be a mapping")
    unknown = sorted(set(spec) - ENTRY_KEYS)
    if unknown:
        raise FamilyTableError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
    for key in ("name", "family", "service"):
        if not isinstance(spec.get(key), str) or not NAME_RE.fullmatch(spec[key]):
            raise FamilyTableError(f"{where}: {key} must be lower-case letters, digits and '-', not {spec.get(key)!r}")
    if not isinstance(spec.get("product"), str) or not spec["product"].strip():
        raise FamilyTableError(f"{where}: product must be a display name")
    applies_to = spec.get("applies_to")
    if not isinstance(applies_to, list) or not applies_to or not all(isinstance(s, str) and s for s in applies_to):
        raise FamilyTableError(f"{where}: applies_to must be a non-empty list of service names")
    ports = spec.get("ports", [])
    if not isinstance(ports, list) or any(isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 65535
                                          for p in ports):
        raise FamilyTableError(f"{where}: ports must be a list of integers 1-65535")
    probe = parse_probe(spec["name"], spec.get("probe"), f"{where}: probe")
    match = _test(spec.get("match"), probe, f"{where}: match", need_check=True)
    version = version_probe = None
    if "version" in spec:
        raw_version = dict(spec["version"]) if isinstance(spec["version"], dict) else spec["version"]
        if isinstance(raw_version, dict) and "probe" in raw_version:
            version_probe = parse_probe(f"{spec['name']}-version", raw_version.pop("probe"), f"{where}: version.probe")
        version = _test(raw_version, version_probe or probe, f"{where}: version", need_check=False)
        if version.regex is not None and version.regex.groups != 1:
            raise FamilyTableError(f"{where}: version.regex needs exactly one group, the version")
    cpe = spec.get("cpe")
    if cpe is not None and (not isinstance(cpe, list) or len(cpe) != 2
                            or not all(isinstance(c, str) and re.fullmatch(r"[a-z0-9_.\-]+", c) for c in cpe)):
        raise FamilyTableError(f"{where}: cpe must be [vendor, product] in CPE's lower-case form")
    auth = spec.get("auth", False)
    if not isinstance(auth, bool):
        raise FamilyTableError(f"{where}: auth must be true or false")
    return FamilyEntry(spec["name"], spec["family"], spec["service"], tuple(applies_to), tuple(ports), probe, match,
                       spec["product"].strip(), version, version_probe, tuple(cpe) if cpe else None, auth)


def _test(spec: Any, probe: ProbeSpec, where: str, *, need_check: bool) -> Test:
    if not isinstance(spec, dict):
        raise FamilyTableError(f"{where}: must be a mapping")
    unknown = sorted(set(spec) - {"json", "header", "regex", "equals", "exists", "status"})
    if unknown:
        raise FamilyTableError(f"{where}: unknown key(s) {', '.join(unknown)}")
    places = [key for key in ("json", "header") if key in spec]
    if len(places) > 1:
        raise FamilyTableError(f"{where}: at most one of json, header")
    if places and probe.kind not in HTTP_KINDS:
        raise FamilyTableError(f"{where}: {places[0]} tests need an http or jsonrpc probe, not {probe.kind}")
    if spec.get("exists", True) is not True:
        raise FamilyTableError(f"{where}: exists can only be true (a test that holds when the value is there)")
    checks = [key for key in ("regex", "equals", "exists") if key in spec]
    if len(checks) > 1 or (need_check and not checks and not places):
        raise FamilyTableError(f"{where}: needs exactly one of regex, equals, exists")
    if not places and "regex" not in spec:
        raise FamilyTableError(f"{where}: a test on the raw answer needs a regex")
    status = spec.get("status")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599):
        raise FamilyTableError(f"{where}: status must be an HTTP status code")
    regex = None
    if "regex" in spec:
        if not isinstance(spec["regex"], str) or not spec["regex"]:
            raise FamilyTableError(f"{where}: regex must be a non-empty string")
        try:
            regex = re.compile(spec["regex"])
        except re.error as exc:
            raise FamilyTableError(f"{where}: bad regular expression {spec['regex']!r}: {exc}") from None
    for key in places:
        if not isinstance(spec[key], str) or not spec[key]:
            raise FamilyTableError(f"{where}: {key} must name a path or a header")
    return Test(json_path=tuple(spec["json"].split(".")) if "json" in spec else (),
                header=spec.get("header", "").lower(), regex=regex, equals=spec.get("equals", MISSING), status=status)


# --- the engine ---------------------------------------------------------------------------------


def wants_family(service: ServiceObservation, table: FamilyTable) -> bool:
    """A port is asked when its service is one the table knows and its product or version is missing."""
    return service.service in table.services and not (service.version and service.cpe)


async def identify_family(probe: Probe, service: ServiceObservation, table: FamilyTable | None = None, *,
                          banner_timeout: float = 1.0) -> ServiceObservation | None:
    """Ask the table's entries for ``service``; the first that matches names the product."""
    table = table or default_families()
    if not wants_family(service, table):
        return None
    answers: dict[tuple[str, bytes, str], Answer] = {}
    silent = 0

    async def answer_to(spec: ProbeSpec) -> Answer:
        nonlocal silent
        key = _key(spec)
        if key not in answers:
            answers[key] = await run_probe(probe, spec, banner_timeout=banner_timeout, exchange=f"family:{spec.name}")
            silent += answers[key].outcome == "timeout" and spec.kind != "banner"
        return answers[key]

    entries = table.for_service(service.service, probe.port)
    if service.service == "unknown":
        # A port that answered nothing we know: each protocol's opening is a connection of its own,
        # and a server of another protocol often waits in silence for more bytes. Asked all at once,
        # such a port costs one read timeout instead of one per protocol.
        specs = {_key(e.probe): e.probe for e in entries}
        await asyncio.gather(*(answer_to(spec) for spec in specs.values()))
        silent = 0
    for entry in entries:
        if silent >= 2:
            break  # a port that ignored two requests will ignore the rest
        answer = await answer_to(entry.probe)
        matched = entry.match.matched(answer) if answer.data else None
        if matched is None:
            continue
        version = ""
        if entry.version is not None:
            source = await answer_to(entry.version_probe) if entry.version_probe is not None else answer
            version = entry.version.extract(source)
        return named_by(entry, probe, service, answer, matched, version)
    return None


def _key(spec: ProbeSpec) -> tuple[str, bytes, str]:
    return spec.kind, spec.payload, spec.method + spec.path + spec.body.decode("latin-1")


def named_by(entry: FamilyEntry, probe: Probe, service: ServiceObservation, answer: Answer, matched: str,
             version: str) -> ServiceObservation:
    evidence = {"family": entry.family, "entry": entry.name, "probe": _describe(entry.probe), "matched": matched,
                "received": trimmed(answer.data), "fingerprint": {"service": service.service, "product": service.product}}
    if entry.auth:
        evidence["auth_required"] = True
    return ServiceObservation(
        host=service.host, port=service.port, protocol=service.protocol, service=entry.service, product=entry.product,
        version=version, cpe=cpe_name(*entry.cpe, version) if entry.cpe else "", tls=probe.tls,
        banner=trimmed(matched, 200), confidence=0.97 if version else 0.9, evidence=evidence,
    )


def _describe(spec: ProbeSpec) -> str:
    if spec.kind == "jsonrpc":
        return f"jsonrpc:{spec.rpc_method} on POST {spec.path}"
    if spec.kind == "http":
        return f"http {spec.method} {spec.path}"
    if spec.kind == "banner":
        return "banner"
    return f"send {trimmed(spec.payload, 60)!r}"
