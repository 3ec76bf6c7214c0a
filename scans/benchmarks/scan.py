"""``python manage.py bench scan``: the scanner engine against nmap, and a standard profile over many nodes.

Three measurements, all on loopback:

``--fleet N`` instead measures discovery over N lab nodes next to nmap (``scans.benchmarks.fleet``).

1. A full 65,535-port TCP connect scan of 127.0.0.1 next to ``nmap -sT -p-`` timed in the
   same run (median of ``--repeat`` runs each), with the open-port lists compared.
2. Service identification on lab targets next to ``nmap -sV``: what each one names.
3. The standard profile (top 1000 ports plus the protocol registry's ports, fingerprint,
   TLS and HTTP inspectors when registered, exposure checks) over ``--nodes`` lab nodes,
   127.0.100.1 upward (then 127.0.101.x...), nodes scanned concurrently.
4. ``"udp_s"``: UDP discovery of one lab host (127.0.99.1: a DNS server, an NTP server that
   refuses mode 6 and an SNMP agent deaf to "public", so the silent paths are timed too).
5. ``"identify_coverage"``: discovery over every TCP service of the suite's lab (the services
   and the application families, open and credentials-demanding twins, each kind on its own
   port), the share named with product and version. The tarpit, which answers nothing, is left
   out; every other service counts, whether or not its wire format carries a version.

The lab runs in a child process so its serving is not counted as scanner time in this
process (both still share the machine's cores, as a real server would not). Port 2024
belongs to the sandbox: excluded from both scanners.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import shutil
import statistics
import subprocess
import time
import xml.etree.ElementTree as ET
from typing import Any, TextIO

from scans.benchmarks import print_table
from scans.scanners.base import REGISTRY, ScanContext, Target, load_all
from scans.scanners.port_sets import RESERVED_PORTS, parse_ports

help = "Full TCP scan of 127.0.0.1 vs nmap, service identification vs nmap -sV, standard profile over lab nodes."

NMAP = "/usr/bin/nmap"
EXCLUDE = ",".join(str(p) for p in sorted(RESERVED_PORTS))
UDP_ADDRESS = "127.0.99.1"
UDP_NODE_KINDS = ("dns-recursive", "ntp-quiet", "snmp-private")
# High ports on 127.0.0.1, clear of the services already running there.
LOCALHOST_KINDS = {"ssh": 12222, "http": 18080, "redis": 16390, "postgres": 15433, "mysql": 13307,
                   "memcached": 21211, "mongodb": 27117, "ethereum": 18545, "docker": 12375}
NODE_KINDS = (
    ("ssh", "http", "redis", "ethereum"),
    ("ssh", "https", "postgres", "docker"),
    ("ssh", "http", "mysql", "sui", "prometheus"),
    ("ssh", "https", "memcached", "lotus", "ethereum-locked"),
    ("ssh", "http", "mongodb", "elasticsearch", "etcd"),
)


def add_arguments(parser) -> None:
    parser.add_argument("--nodes", type=int, default=100, help="lab nodes for the standard profile (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="full-scan runs per tool; the median is reported")
    parser.add_argument("--node-concurrency", type=int, default=25, help="nodes scanned at once")
    parser.add_argument("--skip", action="append", default=[], choices=["full", "identify", "profile", "udp", "coverage"],
                        help="leave a part out (repeatable)")
    parser.add_argument("--fleet", type=int, nargs="?", const=1000, default=None, metavar="N",
                        help="instead: discovery over N lab nodes (default 1,000) next to nmap -sT on the same "
                             "addresses and ports, then identification of the open ports")


# --- the lab, in a child process ----------------------------------------------------------


def _serve(conn, plan: list[tuple[str, list[str], dict[str, int], bool]], udp: bool) -> None:
    from scans.lab import Lab
    from scans.lab.services import start_node
    from scans.lab.udp import start_udp_node

    with Lab() as lab:
        ports = {}
        for address, kinds, fixed, standard in plan:
            node = start_node(lab, address, kinds, ports=fixed, standard_ports=standard)
            ports[address] = {kind: svc.port for kind, svc in node.items()}
        if udp:
            ports["udp"] = {kind: svc.port for kind, svc in start_udp_node(lab, UDP_ADDRESS, UDP_NODE_KINDS).items()}
        conn.send(ports)
        conn.recv()  # anything means stop


class LabProcess:
    def __init__(self, plan: list[tuple[str, list[str], dict[str, int], bool]], *, udp: bool = False) -> None:
        self.plan, self.udp = plan, udp

    def __enter__(self) -> dict[str, dict[str, int]]:
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, self.plan, self.udp), daemon=True)
        self.process.start()
        if not self.conn.poll(120):
            raise RuntimeError("the lab did not start within 120 s")
        return self.conn.recv()

    def __exit__(self, *exc: object) -> None:
        self.conn.send("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()


# --- 1. full scan -------------------------------------------------------------------------


def nmap_open_ports(args: list[str]) -> tuple[list[int], float, ET.Element]:
    started = time.perf_counter()
    completed = subprocess.run([NMAP, "-n", "-oX", "-", *args], capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    root = ET.fromstring(completed.stdout)
    ports = [int(p.get("portid")) for p in root.iter("port") if p.find("state").get("state") == "open"]
    return sorted(ports), elapsed, root


def full_scan(repeat: int, out: TextIO) -> dict[str, Any]:
    from scans.scanners.portscan import scan_ports

    ports = parse_ports("all")
    ours, theirs, ours_open, nmap_open = [], [], [], None
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        outcome = asyncio.run(scan_ports("127.0.0.1", ports, timeout=1.0))
        ours.append(time.perf_counter() - started)
        ours_open = sorted(outcome.open)
        if shutil.which(NMAP) or shutil.os.path.exists(NMAP):
            found, elapsed, _ = nmap_open_ports(["-sT", "-p-", "--exclude-ports", EXCLUDE, "127.0.0.1"])
            theirs.append(elapsed)
            nmap_open = found
    summary: dict[str, Any] = {"ports": len(ports), "ours_s": round(statistics.median(ours), 3),
                               "ours_runs_s": [round(x, 3) for x in ours], "ours_open": ours_open}
    rows = [["watchpost portscan", summary["ours_s"], len(ours_open), ",".join(map(str, ours_open))]]
    if nmap_open is None:
        summary["nmap"] = f"nmap not found at {NMAP}"
    else:
        summary.update(nmap_s=round(statistics.median(theirs), 3), nmap_runs_s=[round(x, 3) for x in theirs],
                       nmap_open=nmap_open, same_open_ports=nmap_open == ours_open,
                       ratio=round(statistics.median(ours) / statistics.median(theirs), 3))
        rows.append(["nmap -sT -p-", summary["nmap_s"], len(nmap_open), ",".join(map(str, nmap_open))])
    print_table(out, f"Full TCP scan of 127.0.0.1 ({len(ports)} ports, 2024 excluded), median of {repeat}",
                ["scanner", "seconds", "open", "open ports"], rows)
    if nmap_open is not None:
        out.write(f"same open ports: {summary['same_open_ports']}; ratio ours/nmap: {summary['ratio']}\n")
    return summary


# --- 2. identification --------------------------------------------------------------------


def identification(services: dict[str, int], out: TextIO) -> dict[str, Any]:
    from scans.scanners.fingerprint import fingerprint_ports

    by_port = {port: kind for kind, port in services.items()}
    port_list = sorted(by_port)
    started = time.perf_counter()
    observed = asyncio.run(fingerprint_ports(Target("127.0.0.1"), port_list, ScanContext()))
    ours_s = time.perf_counter() - started
    ours = {s.port: " ".join(x for x in (s.service, s.product, s.version) if x) for s in observed}
    theirs: dict[int, str] = {}
    nmap_s = None
    if shutil.os.path.exists(NMAP):
        _, nmap_s, root = nmap_open_ports(["-sT", "-sV", "-Pn", "--host-timeout", "180s", "-p",
                                           ",".join(map(str, port_list)), "127.0.0.1"])
        for port in root.iter("port"):
            service = port.find("service")
            if service is not None:
                theirs[int(port.get("portid"))] = " ".join(
                    x for x in (service.get("name"), service.get("product"), service.get("version")) if x)
    rows = [[port, by_port[port], ours.get(port, "-"), theirs.get(port, "-" if nmap_s else "nmap absent")]
            for port in port_list]
    print_table(out, "Service identification on 127.0.0.1 lab targets", ["port", "lab service", "watchpost", "nmap -sV"],
                rows)
    named_ours = sum(1 for p in port_list if ours.get(p) and not ours[p].startswith("unknown"))
    named_nmap = sum(1 for p in port_list if theirs.get(p) and theirs[p] not in ("unknown", "tcpwrapped"))
    versions_ours = sum(1 for s in observed if s.version)
    out.write(f"watchpost: {ours_s:.2f} s, {named_ours}/{len(port_list)} named, {versions_ours} with a version"
              + (f"; nmap -sV: {nmap_s:.2f} s, {named_nmap}/{len(port_list)} named\n" if nmap_s else "\n"))
    return {"ports": len(port_list), "ours_s": round(ours_s, 3), "ours_named": named_ours, "ours_versions": versions_ours,
            "nmap_s": round(nmap_s, 3) if nmap_s else None, "nmap_named": named_nmap if nmap_s else None,
            "ours": {str(p): ours.get(p, "") for p in port_list}, "nmap": {str(p): theirs.get(p, "") for p in port_list}}


# --- UDP discovery -----------------------------------------------------------------------


def udp_discovery(ports: dict[str, int], out: TextIO) -> dict[str, Any]:
    from scans.lab.udp import UDP_KINDS
    from scans.scanners.udp import udp_discover

    moved = {UDP_KINDS[kind].service: port for kind, port in ports.items()}  # a usual port taken: where it went
    started = time.perf_counter()
    found = asyncio.run(udp_discover(Target(UDP_ADDRESS), ScanContext(), ports=moved))
    elapsed = time.perf_counter() - started
    named = [f"{f.service.port}/udp {f.service.service} {f.service.product} {f.service.version}".strip()
             for f in found.found]
    out.write(f"UDP discovery of {UDP_ADDRESS} ({', '.join(UDP_NODE_KINDS)}): {elapsed:.2f} s, found: {'; '.join(named)}\n")
    return {"udp_s": round(elapsed, 3), "udp_found": named, "udp_expected": len(UDP_NODE_KINDS)}


# --- identification coverage of the lab --------------------------------------------------

COVERAGE_ADDRESSES = ("127.0.98.1", "127.0.98.2", "127.0.98.3")


def identify_coverage(out: TextIO) -> dict[str, Any]:
    """Every lab service on a free port, discovered as ``scan`` would, then counted: named with
    product and version, or not (and what it was called instead)."""
    from scans.discovery.discover import discover
    from scans.lab import Lab
    from scans.lab.families import FAMILY_KINDS, OPEN_KINDS, PROTECTED_KINDS
    from scans.lab.services import SERVICE_KINDS, lab_tls_context, start_node

    service_kinds = [kind for kind in SERVICE_KINDS if kind != "tarpit"]
    rows, named = [], 0
    started = time.perf_counter()
    with Lab() as lab:
        served: dict[str, dict[str, int]] = {
            COVERAGE_ADDRESSES[0]: {k: s.port for k, s in start_node(lab, COVERAGE_ADDRESSES[0], service_kinds,
                                                                     standard_ports=False).items()}}
        for address, kinds in zip(COVERAGE_ADDRESSES[1:], (OPEN_KINDS, PROTECTED_KINDS)):
            served[address] = {}
            for kind in kinds:
                spec = FAMILY_KINDS[kind]
                context = lab_tls_context(address) if spec.tls else None
                served[address][kind] = lab.serve(address, 0, spec.factory(), name=kind, ssl_context=context).port
        for address, ports in served.items():
            by_port = {port: kind for kind, port in ports.items()}
            result = discover(Target(address), sorted(by_port), ScanContext(), udp=False)
            services = {s.port: s for s in result.services}
            for port, kind in sorted(by_port.items(), key=lambda item: item[1]):
                service = services.get(port)
                ok = bool(service and service.product and service.version)
                named += ok
                rows.append([kind, service.service if service else "-", service.product if service else "",
                             service.version if service else "", "yes" if ok else "no"])
    seconds = time.perf_counter() - started
    total = len(rows)
    print_table(out, "Identification coverage of the lab's TCP services", ["lab service", "service", "product",
                                                                          "version", "named"], rows)
    out.write(f"named with product and version: {named}/{total} in {seconds:.1f} s\n")
    return {"identify_coverage": round(named / total, 3) if total else None, "identify_named": named,
            "identify_services": total, "identify_unnamed": [r[0] for r in rows if r[-1] == "no"]}


# --- 3. standard profile ------------------------------------------------------------------


async def profile_node(address: str, ports: tuple[int, ...], context: ScanContext, timings: dict[str, float]) -> dict:
    from scans.scanners.fingerprint import fingerprint_ports
    from scans.scanners.portscan import scan_ports

    def lap(stage: str, since: float) -> float:
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - since
        return now

    mark = time.perf_counter()
    outcome = await scan_ports(address, ports, timeout=context.connect_timeout, concurrency=1000)
    mark = lap("portscan", mark)
    services = await fingerprint_ports(Target(address), sorted(outcome.open), context)
    mark = lap("fingerprint", mark)
    known = Target(address, ports=tuple(sorted(outcome.open)), services=tuple(services))
    findings, errors = 0, []
    for name in ("tls", "http", "exposure"):
        if name in REGISTRY:
            result = await REGISTRY[name]().run_async(known, context=context)
            findings += len(result.findings)
            if result.error:
                errors.append(f"{name}: {result.error}")
            mark = lap(name, mark)
    return {"open": len(outcome.open), "identified": sum(s.service != "unknown" for s in services),
            "findings": findings, "errors": errors}


def standard_profile(nodes: dict[str, dict[str, int]], concurrency: int, out: TextIO) -> dict[str, Any]:
    from scans.discovery.discover import discovery_ports
    from scans.discovery.registry import default_registry

    ports = discovery_ports("top1000", default_registry())
    context = ScanContext(connect_timeout=1.0, read_timeout=2.0)
    timings: dict[str, float] = {}

    async def run_all() -> list[dict]:
        limit = asyncio.Semaphore(concurrency)

        async def one(address: str) -> dict:
            async with limit:
                return await profile_node(address, ports, context, timings)

        return await asyncio.gather(*(one(a) for a in nodes))

    started = time.perf_counter()
    results = asyncio.run(run_all())
    total = time.perf_counter() - started
    expected = sum(len(kinds) for kinds in nodes.values())
    summary = {"nodes": len(nodes), "ports_per_node": len(ports), "total_s": round(total, 2),
               "per_node_s": round(total / max(1, len(nodes)), 3), "target_s": 0.6 * len(nodes),
               "within_target": total <= 0.6 * len(nodes),  # 60 s per 100 nodes
               "services_expected": expected, "open_found": sum(r["open"] for r in results),
               "identified": sum(r["identified"] for r in results), "findings": sum(r["findings"] for r in results),
               "scanners": ["portscan", "fingerprint"] + [n for n in ("tls", "http", "exposure") if n in REGISTRY],
               "stage_wall_sum_s": {k: round(v, 2) for k, v in timings.items()},
               "errors": sorted({e for r in results for e in r["errors"]})[:5]}
    print_table(out, f"Standard profile over {len(nodes)} nodes ({len(ports)} ports each, {concurrency} nodes at once)",
                ["measure", "value"], [[k, v] for k, v in summary.items() if k != "errors"])
    return summary


def node_plan(count: int) -> list[tuple[str, list[str], dict[str, int], bool]]:
    """127.0.100.1 to .254, then 127.0.101.1 and on: 1,000 nodes end at 127.0.103.238."""
    if not 1 <= count <= 254 * 100:
        raise ValueError("--nodes must be 1-25400")
    return [(f"127.0.{100 + i // 254}.{i % 254 + 1}", list(NODE_KINDS[i % len(NODE_KINDS)]), {}, True)
            for i in range(count)]


def run(options: dict[str, Any], out: TextIO) -> dict[str, Any]:
    if options.get("fleet"):
        from scans.benchmarks.fleet import fleet

        return fleet(options["fleet"], out)
    load_all()
    skip = set(options.get("skip") or ())
    summary: dict[str, Any] = {"benchmark": "scan", "nmap": NMAP if shutil.os.path.exists(NMAP) else None}
    plan = [("127.0.0.1", list(LOCALHOST_KINDS), dict(LOCALHOST_KINDS), False)]
    if "profile" not in skip:
        plan += node_plan(options.get("nodes") or 100)
    started = time.perf_counter()
    with LabProcess(plan, udp="udp" not in skip) as served:
        summary["lab_start_s"] = round(time.perf_counter() - started, 2)
        if "full" not in skip:
            summary["full_scan"] = full_scan(options.get("repeat") or 3, out)
        if "identify" not in skip:
            summary["identification"] = identification(served["127.0.0.1"], out)
        if "udp" not in skip:
            summary.update(udp_discovery(served.pop("udp"), out))
        if "coverage" not in skip:
            summary.update(identify_coverage(out))
        if "profile" not in skip:
            nodes = {address: kinds for address, kinds in served.items() if address != "127.0.0.1"}
            summary["standard_profile"] = standard_profile(nodes, options.get("node_concurrency") or 25, out)
    return summary
