"""``python manage.py scan ADDRESS``: check, discover, run scanners, match CVEs, print the results.

The operator's direct tool, outside any organization: the target is bounded by the
deployment's ``SCAN_ALLOWED_NETWORKS`` only, and refused before any packet is sent
when it falls outside. Names are resolved once by the scope guard; discovery and
every scanner then connect to the checked IP literal. The services discovery names are
matched against the local CVE catalog by the pipeline's own analysis code.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from orgs.scope import DEFAULT_ALLOWED_NETWORKS, UNBOUNDED, CheckedTarget, ScopeError, resolve_and_check
from scans.cve.analysis import cve_candidates_for_services
from scans.cve.freshness import catalog_state
from scans.discovery.discover import discover_async
from scans.discovery.fallback import DEFAULT_SECONDS as DEFAULT_FALLBACK_SECONDS
from scans.findings.candidates import ServiceObservation
from scans.scanners import ScanContext, ScannerError, ScannerUnavailable, Target, get_scanner, load_all
from scans.scanners.port_sets import parse_ports

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4, None: 5}
# Scanners that find ports and name services: discovery already did that, so they run only
# when asked for by name (nmap also needs the binary).
DISCOVERY_SCANNERS = {"portscan", "fingerprint", "nmap"}


class Command(BaseCommand):
    help = "Scan one address or name (inside SCAN_ALLOWED_NETWORKS): discovery, then the selected scanners."

    def add_arguments(self, parser):
        parser.add_argument("address", help="IP address or host name; names are resolved once and checked")
        parser.add_argument("--scanners", default="",
                            help="comma-separated scanner names (default: every inspector: exposure, http, tls...)")
        parser.add_argument("--ports", default="all",
                            help="all (default: every TCP port), top100, top1000, or a list like 22,80,8000-8100")
        parser.add_argument("--json", action="store_true", help="print one JSON document instead of a report")
        parser.add_argument("--timeout", type=float, default=2.0,
                            help="connect and read timeout in seconds (default 2; reads get at least 1)")
        parser.add_argument("--budget", type=float, default=None, help="time budget per scanner, seconds")
        parser.add_argument("--no-udp", action="store_true",
                            help="leave out UDP discovery (by default the well-known UDP services are asked: "
                                 "DNS, NTP, NetBIOS-NS, SNMP, ASF-RMCP, OpenVPN, SSDP, WS-Discovery, mDNS, CoAP, "
                                 "memcached)")
        parser.add_argument("--fallback-seconds", type=float, default=DEFAULT_FALLBACK_SECONDS,
                            help="time nmap's service detection gets on each open port our fingerprints do not name "
                                 f"(default {DEFAULT_FALLBACK_SECONDS:g}; 0 turns the fallback off)")

    def handle(self, *args, **options):
        allowed = getattr(settings, "SCAN_ALLOWED_NETWORKS", DEFAULT_ALLOWED_NETWORKS)
        try:
            checked = resolve_and_check(options["address"], scope=UNBOUNDED, allowed_networks=allowed)
        except ScopeError as exc:
            raise CommandError(str(exc)) from None
        ports = options["ports"]
        try:
            # Checked here so a bad spec fails before any packet, but handed to discovery as the
            # spec itself: a set name (top1000) grows by the protocol registry's ports there
            # (Redis, Docker, JSON-RPC, memcached), which a pre-parsed tuple would lose.
            parse_ports(ports)
        except ValueError as exc:
            raise CommandError(f"--ports: {exc}") from None
        names = self._scanner_names(options["scanners"])
        context = ScanContext(connect_timeout=options["timeout"], read_timeout=max(options["timeout"], 1.0),
                              extra={"fallback_seconds": max(0.0, options["fallback_seconds"])})

        started = time.monotonic()
        report = asyncio.run(self._run(checked, ports, names, context, options["budget"], udp=not options["no_udp"]))
        report["cves"] = cve_matches(report["discovery"]["services"])
        report["duration"] = round(time.monotonic() - started, 3)
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, default=str))
        else:
            self._print(report)

    def _scanner_names(self, requested: str) -> list[str]:
        known = load_all()
        if not requested:
            return sorted(name for name in known if name not in DISCOVERY_SCANNERS)
        names = [n.strip() for n in requested.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise CommandError(f"unknown scanner(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return list(dict.fromkeys(names))

    async def _run(self, checked: CheckedTarget, ports: str, names: list[str], context: ScanContext,
                   budget: float | None, *, udp: bool = True) -> dict[str, Any]:
        discovery = await discover(checked, ports, context, udp=udp)
        target = Target(
            address=checked.address,
            hostname=checked.hostname,
            ports=tuple(discovery["open_ports"]),
            services=tuple(ServiceObservation.from_dict(s) for s in discovery["services"]),
        )

        async def one(name: str) -> dict[str, Any]:
            if not target.ports and not (name == "exposure" and target.services):
                # Inspectors treat "no ports known" as "try the usual ones"; after a discovery that
                # found nothing open that would be a second, unasked-for scan. The exposure checks
                # still look at the UDP services discovery named, and only at those.
                return {"scanner": name, "skipped": "discovery found no open port"}
            scanner = get_scanner(name)
            options = {}
            # Without named services an inspector would only look at its typical ports; point
            # it at every open port instead (a TLS or HTTP probe of another service is cheap).
            if not target.services and target.ports and scanner.options.get("ports", (None,))[0] is list:
                options["ports"] = list(target.ports)
            try:
                result = await scanner.run_async(target, options, budget=budget, context=context)
            except ScannerUnavailable as exc:
                return {"scanner": name, "skipped": str(exc)}
            except ScannerError as exc:
                return {"scanner": name, "error": str(exc), "complete": False}
            return result.to_dict()

        results = await asyncio.gather(*(one(name) for name in names))
        return {
            "target": checked.label,
            "address": checked.address,
            "addresses": list(checked.addresses),
            "discovery": discovery,
            "results": list(results),
        }

    def _print(self, report: dict[str, Any]) -> None:
        write = self.stdout.write
        label = report["target"]
        write(self.style.MIGRATE_HEADING(
            f"Scan of {label}" + (f" ({report['address']})" if label != report["address"] else "")
        ))
        discovery = report["discovery"]
        services = {(s.get("protocol", "tcp"), s["port"]): s for s in discovery["services"]}
        protocols: dict[tuple[str, int], list[str]] = {}
        for detected in discovery["protocols"]:
            protocols.setdefault((detected.get("transport", "tcp"), detected["port"]), []).append(
                f"{detected['protocol']} {detected['confidence']:.2f}")
        cut_short = "" if discovery["complete"] else f" (INCOMPLETE: {discovery['error']})"
        write(f"Discovery: {len(discovery['open_ports'])} open of {discovery['ports_scanned']} port(s), "
              f"{len(discovery.get('udp_open_ports', []))} of {discovery.get('udp_ports_scanned', 0)} "
              f"UDP service(s) answering, in {discovery['duration']:.2f}s{cut_short}")
        listed = [("tcp", p) for p in discovery["open_ports"]] + [("udp", p) for p in discovery.get("udp_open_ports", [])]
        for transport, port in listed:
            service = services.get((transport, port), {})
            what = " ".join(x for x in (service.get("service", ""), service.get("product", ""),
                                        service.get("version", "")) if x)
            found = protocols.get((transport, port))
            extra = f"  [{', '.join(found)}]" if found else ""
            by_nmap = "  (named by nmap)" if service.get("evidence", {}).get("identified_by") else ""
            write(f"  {port}/{transport}  {what or '?'}{'  (tls)' if service.get('tls') else ''}{extra}{by_nmap}")
        fallback = discovery.get("fallback") or {}
        if fallback.get("skipped"):
            write(self.style.WARNING(f"  fallback for unnamed ports skipped: {fallback['skipped']}"))
        elif fallback.get("ports"):
            write(f"  nmap service detection named {len(fallback['named'])} of {len(fallback['ports'])} "
                  f"port(s) our fingerprints did not")
        total = 0
        for result in report["results"]:
            name = result["scanner"]
            if "skipped" in result:
                write(self.style.WARNING(f"\n{name}: skipped: {result['skipped']}"))
                continue
            if "findings" not in result:
                write(self.style.ERROR(f"\n{name}: error: {result['error']}"))
                continue
            state = "complete" if result["complete"] else f"INCOMPLETE: {result['error']}"
            findings = sorted(result["findings"], key=lambda f: (SEVERITY_ORDER.get(f["severity"], 5), f["rule_id"]))
            total += len(findings)
            write(f"\n{name} {result['version']}: {len(findings)} finding(s), {result['duration']:.2f}s, {state}")
            for f in findings:
                severity = (f["severity"] or "?").upper()
                style = self.style.ERROR if severity in {"CRITICAL", "HIGH"} else (
                    self.style.WARNING if severity == "MEDIUM" else (lambda s: s))
                write(style(f"  {severity:<8} {f['rule_id']:<40} {f['location'] or f['host']}  {f['title']}"))
            for verdict in (result.get("data") or {}).get("access", []):
                if verdict["verdict"] == "protected":  # the negative is a result too: it asked for credentials
                    write(f"  {'ok':<8} {'access-' + verdict['check'] + '-protected':<40} port {verdict['port']}  "
                          "asks for credentials")
        self._print_cves(report["cves"])
        write(f"\n{total} finding(s) in {report['duration']:.2f}s")

    def _print_cves(self, cves: dict[str, Any]) -> None:
        write = self.stdout.write
        if cves["error"]:
            write(self.style.WARNING(f"\ncve: skipped: {cves['error']}"))
            return
        matches = cves["matches"]
        write(f"\ncve (local catalog): {len(matches)} match(es) for {cves['services_matched']} identified service(s)")
        if cves["catalog"]["warning"]:
            write(self.style.WARNING(f"  note: {cves['catalog']['warning']}"))
        for m in matches:
            severity = (m["severity"] or "?").upper()
            style = self.style.ERROR if severity in {"CRITICAL", "HIGH"} else (
                self.style.WARNING if severity == "MEDIUM" else (lambda s: s))
            cvss = f"{m['cvss']:.1f}" if m["cvss"] is not None else "-"
            write(style(f"  {severity:<8} {m['cve_id']:<16} CVSS {cvss:<4} {m['port']}/{m['transport']} {m['product']} "
                        f"{m['version']}  confidence {m['confidence']:.2f}: {m['reason']}"))

def cve_matches(services: list[dict[str, Any]]) -> dict[str, Any]:
    """CVE matches for the services discovery identified, from the local catalog.

    The same call as the pipeline's analysis stage (``scans.cve.analysis``), on the same
    services (discovery's), so the command reports what a session would.
    """
    observed = [ServiceObservation.from_dict(s) for s in services]
    identified = [s for s in observed if (s.product or s.cpe) and (s.version or s.cpe)]
    try:
        catalog = catalog_state().as_dict()
        candidates = cve_candidates_for_services(services=observed)
    except DatabaseError as exc:
        # The command also runs where no database was set up; discovery and scanners need none.
        return {"error": f"the CVE catalog cannot be read ({exc}); run migrate, then sync_cves or import_cves",
                "services_matched": len(identified), "matches": [], "catalog": None}
    matches = [
        {
            "cve_id": c.rule_id, "port": c.port, "transport": c.protocol, "service": c.evidence.get("service", ""),
            "product": c.evidence.get("product", ""), "version": c.evidence.get("version", ""),
            "cvss": c.cvss_score, "severity": c.severity, "confidence": c.evidence.get("match_confidence"),
            "reason": c.evidence.get("match_reason", ""), "title": c.title,
        }
        for c in candidates
    ]
    matches.sort(key=lambda m: (m["port"] or 0, -(m["cvss"] or 0), m["cve_id"]))
    return {"error": "", "services_matched": len(identified), "matches": matches, "catalog": catalog}


async def discover(checked: CheckedTarget, ports: str, context: ScanContext, *, udp: bool = True) -> dict[str, Any]:
    """Open ports, fingerprinted services and detected protocols of the checked address (the
    well-known UDP services too, unless ``udp`` is false)."""
    result = await discover_async(Target(address=checked.address, hostname=checked.hostname), ports, context, udp=udp)
    return result.to_dict()
