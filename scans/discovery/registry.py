"""The protocol registry: ``protocols.yaml`` loaded, checked and turned into plain objects.

A bad file fails at load time with an error naming the place (``protocols[3] (redis):
signatures[1]: unknown probe 'redis-pingg'``), never halfway through a scan.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from nodes.protocols import protocol_names_register

DEFAULT_PATH = Path(__file__).with_name("protocols.yaml")
PROBE_KINDS = {"banner", "send", "http", "jsonrpc"}
HTTP_METHODS = {"GET", "POST", "HEAD", "OPTIONS", "PUT"}


T = TypeVar("T")


class RegistryError(ValueError):
    """The registry file is not valid; the message says where and why."""


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    name: str
    kind: str
    payload: bytes = b""
    method: str = "GET"
    path: str = "/"
    body: bytes = b""
    rpc_method: str = ""
    rpc_params: tuple = ()


@dataclass(frozen=True, slots=True)
class Signature:
    weight: float
    probe: str = ""  # empty for a `service` signature
    regex: re.Pattern | None = None
    json_path: tuple[str, ...] = ()
    json_test: tuple[str, Any] = ("exists", True)
    header: tuple[str, re.Pattern] | None = None
    services: tuple[str, ...] = ()
    version: re.Pattern | None = None

    def describe(self) -> str:
        if self.services:
            return f"fingerprint service in {list(self.services)}"
        if self.regex is not None:
            return f"{self.probe}: regex {self.regex.pattern!r}"
        if self.json_path:
            return f"{self.probe}: json {'.'.join(self.json_path)} {self.json_test[0]} {self.json_test[1]!r}"
        return f"{self.probe}: header {self.header[0]} ~ {self.header[1].pattern!r}"


@dataclass(frozen=True, slots=True)
class ProtocolSpec:
    name: str
    ports: tuple[int, ...]
    port_weight: float
    signatures: tuple[Signature, ...]

    @property
    def probes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.probe for s in self.signatures if s.probe))


@dataclass(frozen=True, slots=True)
class Registry:
    probes: dict[str, ProbeSpec]
    protocols: tuple[ProtocolSpec, ...]
    min_confidence: float = 0.5
    source: str = ""
    by_name: dict[str, ProtocolSpec] = field(default_factory=dict)

    @property
    def ports(self) -> tuple[int, ...]:
        """Every port some protocol is expected on, in registry order."""
        return tuple(dict.fromkeys(p for protocol in self.protocols for p in protocol.ports))

    def protocol(self, name: str) -> ProtocolSpec:
        return self.by_name[name]

    def for_port(self, port: int) -> list[ProtocolSpec]:
        return [p for p in self.protocols if port in p.ports]

    def for_service(self, service: str) -> list[ProtocolSpec]:
        return [p for p in self.protocols if any(service in s.services for s in p.signatures)]


def load_yaml_table(parse: Callable[..., T], path: str | Path, text: str | None, error: type[ValueError]) -> T:
    """A YAML table from ``text`` or the file at ``path``, checked by ``parse`` (given the source its
    errors name); ``error`` says what cannot be read or parsed."""
    source = "<text>" if text is not None else str(path)
    try:
        raw = yaml.safe_load(text if text is not None else Path(source).read_text())
    except OSError as exc:
        raise error(f"{source}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from None
    return parse(raw, source=source)


def load_registry(path: str | Path | None = None, *, text: str | None = None) -> Registry:
    """Load and check a registry from ``path`` (default: the bundled protocols.yaml) or from ``text``."""
    return load_yaml_table(parse_registry, path or DEFAULT_PATH, text, RegistryError)


@functools.lru_cache(maxsize=1)
def default_registry() -> Registry:
    return load_registry()


def protocol_names_announce() -> None:
    """Tell the nodes app which protocols discovery names (its node filter offers them)."""
    protocol_names_register(lambda: [protocol.name for protocol in default_registry().protocols])


def parse_registry(raw: Any, *, source: str = "<data>") -> Registry:
    where = Path(source).name
    if not isinstance(raw, dict):
        raise RegistryError(f"{where}: the top level must be a mapping with 'probes' and 'protocols'")
    _only(raw, {"version", "min_confidence", "probes", "protocols"}, where)
    if raw.get("version") != 1:
        raise RegistryError(f"{where}: version must be 1, not {raw.get('version')!r}")
    min_confidence = _weight(raw.get("min_confidence", 0.5), f"{where}: min_confidence")
    probes_raw = raw.get("probes")
    if not isinstance(probes_raw, dict) or not probes_raw:
        raise RegistryError(f"{where}: 'probes' must be a non-empty mapping of name -> probe")
    probes = {name: parse_probe(name, spec, f"{where}: probes.{name}") for name, spec in probes_raw.items()}
    protocols = parse_named_list(raw, "protocols", where, lambda spec, label: _protocol(spec, probes, label),
                                 RegistryError, "protocol")
    return Registry(probes, tuple(protocols), min_confidence, source, {p.name: p for p in protocols})


def parse_named_list(raw: dict, key: str, where: str, parse: Callable[[Any, str], T], error: type[ValueError],
                     noun: str) -> list[T]:
    """``raw[key]``, a non-empty list of named entries, each read by ``parse(spec, label)`` where the
    label names its place (``protocols.yaml: protocols[3] (redis)``); a name given twice is refused."""
    specs = raw.get(key)
    if not isinstance(specs, list) or not specs:
        raise error(f"{where}: '{key}' must be a non-empty list")
    entries = [parse(spec, f"{where}: {key}[{index}]" + (f" ({spec.get('name')})" if isinstance(spec, dict) else ""))
               for index, spec in enumerate(specs)]
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise error(f"{where}: {noun} name(s) defined twice: {', '.join(duplicates)}")
    return entries


def _only(mapping: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise RegistryError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(sorted(allowed))}")


def _weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise RegistryError(f"{where} must be a number from 0 to 1, not {value!r}")
    return float(value)


def _regex(value: Any, where: str) -> re.Pattern:
    if not isinstance(value, str) or not value:
        raise RegistryError(f"{where} must be a non-empty regular expression string")
    try:
        return re.compile(value)
    except re.error as exc:
        raise RegistryError(f"{where}: bad regular expression {value!r}: {exc}") from None


def parse_probe(name: Any, spec: Any, where: str) -> ProbeSpec:
    if not isinstance(spec, dict) or spec.get("kind") not in PROBE_KINDS:
        raise RegistryError(f"{where}: must be a mapping whose kind is one of {', '.join(sorted(PROBE_KINDS))}")
    kind = spec["kind"]
    allowed = {"banner": {"kind"}, "send": {"kind", "payload", "payload_hex"},
               "http": {"kind", "method", "path", "body"}, "jsonrpc": {"kind", "method", "params", "path"}}[kind]
    _only(spec, allowed, where)
    path = spec.get("path", "/")
    if not isinstance(path, str) or not path.startswith("/"):
        raise RegistryError(f"{where}: path must start with '/', not {path!r}")
    if kind == "send":
        if ("payload" in spec) == ("payload_hex" in spec):
            raise RegistryError(f"{where}: a send probe needs exactly one of payload, payload_hex")
        if "payload_hex" in spec:
            try:
                payload = bytes.fromhex(str(spec["payload_hex"]))
            except ValueError:
                raise RegistryError(f"{where}: payload_hex is not hexadecimal") from None
        else:
            payload = str(spec["payload"]).encode("latin-1")
        return ProbeSpec(name, kind, payload=payload)
    if kind == "http":
        method = str(spec.get("method", "GET")).upper()
        if method not in HTTP_METHODS:
            raise RegistryError(f"{where}: method must be one of {', '.join(sorted(HTTP_METHODS))}")
        return ProbeSpec(name, kind, method=method, path=path, body=str(spec.get("body", "")).encode())
    if kind == "jsonrpc":
        if not isinstance(spec.get("method"), str) or not spec["method"]:
            raise RegistryError(f"{where}: a jsonrpc probe needs a method name")
        params = spec.get("params", [])
        if not isinstance(params, list):
            raise RegistryError(f"{where}: params must be a list")
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": spec["method"], "params": params}).encode()
        return ProbeSpec(name, kind, method="POST", path=path, body=body, rpc_method=spec["method"],
                         rpc_params=tuple(params))
    return ProbeSpec(name, kind)


def _protocol(spec: Any, probes: dict[str, ProbeSpec], where: str) -> ProtocolSpec:
    if not isinstance(spec, dict):
        raise RegistryError(f"{where}: must be a mapping")
    _only(spec, {"name", "ports", "port_weight", "signatures"}, where)
    name = spec.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise RegistryError(f"{where}: name must be lower-case letters, digits and '-', not {name!r}")
    ports = spec.get("ports", [])
    if not isinstance(ports, list) or any(isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 65535 for p in ports):
        raise RegistryError(f"{where}: ports must be a list of integers 1-65535")
    signatures_raw = spec.get("signatures")
    if not isinstance(signatures_raw, list) or not signatures_raw:
        raise RegistryError(f"{where}: needs a non-empty list of signatures")
    signatures = tuple(_signature(s, probes, f"{where}: signatures[{i}]") for i, s in enumerate(signatures_raw))
    return ProtocolSpec(name, tuple(ports), _weight(spec.get("port_weight", 0.0), f"{where}: port_weight"), signatures)


def _signature(spec: Any, probes: dict[str, ProbeSpec], where: str) -> Signature:
    if not isinstance(spec, dict):
        raise RegistryError(f"{where}: must be a mapping")
    _only(spec, {"probe", "regex", "json", "header", "service", "weight", "version"}, where)
    weight = _weight(spec.get("weight"), f"{where}: weight")
    version = _regex(spec["version"], f"{where}: version") if "version" in spec else None
    tests = [key for key in ("regex", "json", "header", "service") if key in spec]
    if len(tests) != 1:
        raise RegistryError(f"{where}: needs exactly one of regex, json, header, service (has {tests or 'none'})")
    if "service" in spec:
        services = spec["service"] if isinstance(spec["service"], list) else [spec["service"]]
        if "probe" in spec or not all(isinstance(s, str) and s for s in services):
            raise RegistryError(f"{where}: service takes a name or list of names, and no probe")
        return Signature(weight, services=tuple(services), version=version)
    probe = spec.get("probe")
    if probe not in probes:
        raise RegistryError(f"{where}: unknown probe {probe!r}; defined: {', '.join(sorted(probes))}")
    if "regex" in spec:
        return Signature(weight, probe, regex=_regex(spec["regex"], f"{where}: regex"), version=version)
    if "header" in spec:
        header = spec["header"]
        if not isinstance(header, dict) or set(header) != {"name", "regex"}:
            raise RegistryError(f"{where}: header must be {{name: ..., regex: ...}}")
        if probes[probe].kind not in ("http", "jsonrpc"):
            raise RegistryError(f"{where}: header tests need an http or jsonrpc probe, {probe!r} is {probes[probe].kind}")
        return Signature(weight, probe, header=(str(header["name"]).lower(), _regex(header["regex"], f"{where}: header.regex")),
                         version=version)
    test = spec["json"]
    if not isinstance(test, dict) or not isinstance(test.get("path"), str):
        raise RegistryError(f"{where}: json must be {{path: a.b, equals|regex|exists: ...}}")
    _only(test, {"path", "equals", "regex", "exists"}, f"{where}: json")
    checks = [key for key in ("equals", "regex", "exists") if key in test]
    if len(checks) != 1:
        raise RegistryError(f"{where}: json needs exactly one of equals, regex, exists")
    value = _regex(test["regex"], f"{where}: json.regex") if checks[0] == "regex" else test[checks[0]]
    if probes[probe].kind not in ("http", "jsonrpc"):
        raise RegistryError(f"{where}: json tests need an http or jsonrpc probe, {probe!r} is {probes[probe].kind}")
    return Signature(weight, probe, json_path=tuple(test["path"].split(".")), json_test=(checks[0], value), version=version)
