"""The scanner contract and registry.

A scanner is a class with a name, a version, the options it accepts and a time
budget; ``scan()`` is a coroutine returning a :class:`~scans.findings.candidates.ScanResult`.
No Django here: scanners are a library the pipeline, the ``scan`` command and the
benchmarks all call the same way.

Scanners connect only to ``Target.address``, an IP literal already checked by the
scope guard (``orgs.scope``); they never resolve names themselves, so what was checked
is what is connected to.
"""

from __future__ import annotations

import abc
import asyncio
import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from scans.findings.candidates import ScanResult, ServiceObservation
from scans.plugins import Plugins


class ScannerError(Exception):
    """A scanner could not run at all (bad options, missing tool)."""


class ScannerUnavailable(ScannerError):
    """The scanner cannot run on this machine (e.g. nmap not on PATH); the reason says why."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked scan target: ``address`` is the IP to connect to.

    ``hostname`` is only for SNI, HTTP Host headers and certificate name checks.
    ``ports`` and ``services`` carry what discovery already knows so later scanners
    (TLS, HTTP, exposure) can focus on the right ports.
    """

    address: str
    hostname: str = ""
    ports: tuple[int, ...] = ()
    services: tuple[ServiceObservation, ...] = ()

    def __post_init__(self) -> None:
        # Refuse names here too: a scanner must never resolve (DNS rebinding).
        ipaddress.ip_address(self.address)

    @property
    def host_label(self) -> str:
        return self.hostname or self.address


def is_ip_literal(value: str) -> bool:
    """True for an IP address; SNI and Host headers carry names, never literals."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


@dataclass(slots=True)
class ScanContext:
    """Per-run settings shared by every scanner of a run."""

    connect_timeout: float = 2.0
    read_timeout: float = 3.0
    concurrency: int = 500
    rate_limit: float | None = None  # new connections per second; None = unlimited
    extra: dict[str, Any] = field(default_factory=dict)


class Scanner(abc.ABC):
    name: ClassVar[str]
    version: ClassVar[str] = "1.0"
    description: ClassVar[str] = ""
    # Option name -> (type, default). Unknown options are refused, never passed on.
    options: ClassVar[dict[str, tuple[type, Any]]] = {}
    default_budget: ClassVar[float] = 60.0

    @classmethod
    def availability(cls) -> str | None:
        """Return None when the scanner can run here, else the reason it cannot."""
        return None

    @classmethod
    def clean_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        options = dict(options or {})
        unknown = sorted(set(options) - set(cls.options))
        if unknown:
            raise ScannerError(f"{cls.name}: unknown option(s) {', '.join(unknown)}")
        cleaned = {}
        for key, (kind, default) in cls.options.items():
            value = options.get(key, default)
            if value is not None and not isinstance(value, kind):
                raise ScannerError(f"{cls.name}: option {key} must be {kind.__name__}, not {type(value).__name__}")
            cleaned[key] = value
        return cleaned

    @abc.abstractmethod
    async def scan(self, target: Target, options: dict[str, Any], context: ScanContext) -> ScanResult:
        """Scan one target within the options; record every attempt's outcome."""

    def new_result(self, target: Target, options: dict[str, Any]) -> ScanResult:
        return ScanResult(
            scanner=self.name,
            version=self.version,
            target=target.host_label,
            address=target.address,
            options=options,
            started_at=time.time(),
        )

    async def run_async(
        self,
        target: Target,
        options: Mapping[str, Any] | None = None,
        *,
        budget: float | None = None,
        context: ScanContext | None = None,
    ) -> ScanResult:
        """Run within the time budget; an overrun yields an incomplete result, not an exception."""
        reason = self.availability()
        if reason:
            raise ScannerUnavailable(f"{self.name}: {reason}")
        cleaned = self.clean_options(options)
        budget = budget if budget is not None else self.default_budget
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(self.scan(target, cleaned, context or ScanContext()), timeout=budget)
        except TimeoutError:
            result = self.new_result(target, cleaned)
            result.complete = False
            result.error = f"time budget of {budget:g}s exhausted"
        result.duration = round(time.monotonic() - started, 4)
        return result

    def run(self, target: Target, options: Mapping[str, Any] | None = None, **kwargs: Any) -> ScanResult:
        """Synchronous entry point for Celery tasks and management commands."""
        return asyncio.run(self.run_async(target, options, **kwargs))


REGISTRY: Plugins[Scanner] = Plugins("scanner", unknown=ScannerError)
register = REGISTRY.register
get_scanner = REGISTRY.create


def load_all() -> dict[str, type[Scanner]]:
    """Every registered scanner: complete once this module is imported (see ``scans.plugins``)."""
    return REGISTRY
