"""The nmap scanner: a TCP connect scan with service detection, read by the nmap importer.

The command line is fixed here and built as a list (no shell): only a validated IP
literal and a validated port list ever come from outside, so no option a user sets
can add an nmap flag (``--script``, ``-iL``, ``-oN /etc/...``). nmap runs with a
bare environment so ``NMAPDIR`` and friends cannot redirect it to other scripts or
data, and it is killed when the time budget runs out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import os
import re
import shutil
from typing import Any, ClassVar, Mapping

from scans.findings.candidates import Coverage, ScanResult
from scans.importers.base import ImportRejected
from scans.importers.nmap import NmapImporter
from scans.scanners import connections
from scans.scanners.base import ScanContext, Scanner, ScannerError, Target, register

DEFAULT_PORTS = "1-1024"
MAX_PORT_TERMS = 100
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
_PORT_TERM = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$", re.ASCII)  # no Arabic-Indic digits
_BARE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C"}


def parse_ports(spec: str) -> list[tuple[int, int]]:
    """``"22,80,8000-8100"`` -> [(22, 22), (80, 80), (8000, 8100)]; anything else is a ScannerError."""
    if not isinstance(spec, str) or not spec.strip():
        raise ScannerError("nmap: ports must be a non-empty list like '22,80,8000-8100'")
    terms = [t.strip() for t in spec.split(",")]
    if len(terms) > MAX_PORT_TERMS:
        raise ScannerError(f"nmap: at most {MAX_PORT_TERMS} port terms")
    ranges = []
    for term in terms:
        match = _PORT_TERM.match(term)
        if not match:
            raise ScannerError(f"nmap: invalid port term {term[:40]!r}")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not (1 <= low <= high <= 65535):
            raise ScannerError(f"nmap: port range {term!r} is outside 1-65535 or reversed")
        ranges.append((low, high))
    return ranges


def port_argument(ranges: list[tuple[int, int]]) -> str:
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


@register
class NmapScanner(Scanner):
    name = "nmap"
    version = "1.0"
    description = "nmap TCP connect scan with service/version detection (-sT -sV)"
    options: ClassVar[dict[str, tuple[type, Any]]] = {
        "ports": (str, None),  # "22,80,8000-8100"; default: the target's known ports, else 1-1024
        "service_detection": (bool, True),
    }
    default_budget = 300.0

    def __init__(self) -> None:
        self._budget = self.default_budget

    @classmethod
    def executable(cls) -> str | None:
        return shutil.which("nmap")

    @classmethod
    def availability(cls) -> str | None:
        if cls.executable() is None:
            return "nmap is not installed or not on PATH (install the nmap package)"
        return None

    @classmethod
    def clean_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        cleaned = super().clean_options(options)
        if cleaned["ports"] is not None:
            cleaned["ports"] = port_argument(parse_ports(cleaned["ports"]))
        return cleaned

    async def run_async(self, target: Target, options=None, *, budget=None, context=None) -> ScanResult:
        # The contract hands scan() no budget; keep it so nmap's own timeout fits inside it.
        self._budget = budget if budget is not None else self.default_budget
        return await super().run_async(target, options, budget=budget, context=context)

    def command(self, target: Target, options: dict[str, Any]) -> list[str]:
        address = ipaddress.ip_address(target.address)
        if options.get("ports"):
            ranges = parse_ports(options["ports"])
        elif target.ports:
            ranges = parse_ports(",".join(str(p) for p in target.ports))
        else:
            ranges = parse_ports(DEFAULT_PORTS)
        host_timeout = max(1, int(self._budget * 0.9))
        argv = [self.executable() or "nmap", "-sT", "-Pn", "-n", "--open", "-T4"]
        if options.get("service_detection", True):
            argv.append("-sV")
        if address.version == 6:
            argv.append("-6")
        allowance = connections.budget_for(target.address)
        if allowance is not None:
            # nmap opens its own connections: it is told the node's budget (the zone's count, shared with
            # the other scanners, cannot reach inside it).
            if allowance.rate:
                argv += ["--max-rate", str(allowance.rate)]
            if allowance.at_once:
                argv += ["--max-parallelism", str(allowance.at_once)]
        argv += ["--host-timeout", f"{host_timeout}s", "-oX", "-", "-p", port_argument(ranges), "--", str(address)]
        return argv

    async def scan(self, target: Target, options: dict[str, Any], context: ScanContext) -> ScanResult:
        result = self.new_result(target, options)
        argv = self.command(target, options)
        result.data["command"] = argv[1:]
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_BARE_ENV,
            cwd=os.path.sep,
        )
        try:
            stdout, stderr = await process.communicate()
        finally:
            # A budget overrun cancels us mid-communicate: never leave nmap running.
            if process.returncode is None:
                process.kill()
                await process.wait()
        result.data["stderr"] = stderr.decode("utf-8", "replace")[-2000:]
        if process.returncode != 0:
            result.complete = False
            result.error = f"nmap exited with status {process.returncode}: {result.data['stderr'][-500:].strip()}"
            return result
        if len(stdout) > MAX_OUTPUT_BYTES:
            result.complete = False
            result.error = "nmap output exceeded the size limit"
            return result
        try:
            imported = NmapImporter().parse(stdout, f"nmap-{target.address}.xml", max_bytes=MAX_OUTPUT_BYTES)
        except ImportRejected as exc:
            result.complete = False
            result.error = f"unreadable nmap output: {exc}"
            return result
        result.data["nmap_version"] = imported.metadata.get("version", "")
        result.data["xml"] = stdout.decode("utf-8", "replace")[:200_000]
        # Findings name the address the scope guard checked, whatever nmap printed.
        result.findings = [dataclasses.replace(f, host=target.address) for f in imported.findings]
        result.services = [dataclasses.replace(s, host=target.address) for s in imported.services]
        result.open_ports = sorted({s.port for s in result.services if s.protocol == "tcp"})
        for port in result.open_ports:
            result.attempts.append({"port": port, "probe": "nmap-connect", "outcome": "open", "detail": ""})
        if imported.metadata.get("timed_out_hosts"):
            result.complete = False
            result.error = "nmap host timeout: the scan was cut short"
            result.attempts.append({"port": None, "probe": "nmap", "outcome": "timeout", "detail": "host timeout"})
            return result
        scanned = expand_ports(argv[argv.index("-p") + 1])
        whole = len(scanned) == 65535
        result.coverage = [Coverage(host=target.address, ports=() if whole else tuple(scanned), whole_host=whole)]
        return result


def expand_ports(spec: str) -> list[int]:
    ports: set[int] = set()
    for low, high in parse_ports(spec):
        ports.update(range(low, high + 1))
    return sorted(ports)
