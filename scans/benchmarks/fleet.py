"""``bench scan --fleet N``: discovery's port sweep over N loopback nodes next to nmap, then identification.

N lab nodes (a mix of services each, 127.7.x.y: clear of 127.0.0.1 where the real
PostgreSQL and Redis listen, and of the other benchmarks' ranges) are served by a child
process. In this process, the sweep discovery runs (``scans.scanners.portscan.sweep``, the
same call, budget and socket limit as a worker's) covers every node's discovery ports, a
discovery message's worth of nodes at a time (``WATCHPOST_DISCOVERY_BATCH``), taking turns
with ``nmap -sT -n -Pn -p <the same ports> <the same addresses>`` on the same nodes; the two
open-port sets are compared host by host. Last, each open port is identified as discovery
identifies it (``discover_port``, under the worker's identification limit), and the names are
checked against what the lab serves.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any, TextIO

from scans.benchmarks import print_table

NMAP = "/usr/bin/nmap"
KINDS = (
    ("ssh", "http", "redis", "ethereum"),
    ("ssh", "https", "memcached", "docker"),
    ("ssh", "http", "mysql", "prometheus"),
    ("ssh", "https", "mongodb", "elasticsearch"),
    ("ssh", "http", "etcd", "lotus"),
)
# The service name identification should give each lab kind.
EXPECTED = {"ssh": "ssh", "http": "http", "https": "https", "redis": "redis", "ethereum": "ethereum-jsonrpc",
            "memcached": "memcached", "docker": "docker", "mysql": "mysql", "prometheus": "prometheus",
            "mongodb": "mongodb", "elasticsearch": "elasticsearch", "etcd": "etcd", "lotus": "filecoin-lotus"}


def fleet_addresses(count: int) -> list[str]:
    if not 1 <= count <= 250 * 250:
        raise ValueError("--fleet must be 1-62500")
    return [f"127.7.{i // 250}.{i % 250 + 1}" for i in range(count)]


def fleet(count: int, out: TextIO) -> dict[str, Any]:
    from scans.benchmarks.scan import LabProcess
    from scans.discovery.discover import discovery_ports
    from scans.discovery.registry import default_registry
    from scans.pipeline import conf
    from scans.scanners.portscan import PROCESS_BUDGET, raise_fd_limit, sweep

    addresses = fleet_addresses(count)
    ports = discovery_ports("top1000", default_registry())
    limit = raise_fd_limit()
    PROCESS_BUDGET.resize(min(conf.discovery_sockets(), max(64, limit - 1024)))
    out.write(f"Serving {count} lab nodes on 127.7.x.y; {len(ports)} ports each; descriptor limit {limit} ...\n")
    plan = [(address, list(KINDS[i % len(KINDS)]), {}, True) for i, address in enumerate(addresses)]
    started = time.perf_counter()
    with LabProcess(plan) as served:
        lab_s = time.perf_counter() - started
        wanted = set(ports)
        lab = {(address, port): kind for address, kinds in served.items() for kind, port in kinds.items() if port in wanted}
        off_ports = sum(len(kinds) for kinds in served.values()) - len(lab)

        # In slices of one discovery message (the nodes a worker sweeps together), ours and nmap
        # taking turns, first one then the other: on a shared machine both meet the same load.
        ours: dict[str, list[int]] = {}
        theirs: dict[str, list[int]] = {}
        ours_s = nmap_s = 0.0
        for n, part in enumerate(conf.even_batches(addresses, conf.discovery_batch_size())):
            for tool in (("ours", "nmap") if n % 2 == 0 else ("nmap", "ours")):
                if tool == "nmap":
                    found, elapsed = nmap_sweep(part, ports)
                    theirs.update(found)
                    nmap_s += elapsed
                    continue
                began = time.perf_counter()
                outcomes = sweep([(address, ports) for address in part], timeout=1.0)
                ours_s += time.perf_counter() - began
                ours.update({address: sorted(o.open) for address, o in zip(part, outcomes)})

        identified, identify_s = identify(ours)
    same = ours == theirs
    named = {key: svc for key, svc in identified.items() if key in lab}
    right = sum(1 for key, kind in lab.items() if named.get(key) == EXPECTED.get(kind, kind))
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key, kind in lab.items():
        by_kind[kind][1] += 1
        by_kind[kind][0] += named.get(key) == EXPECTED.get(kind, kind)
    open_ours = sum(len(v) for v in ours.values())
    open_nmap = sum(len(v) for v in theirs.values())
    # The sweep times as reported (milliseconds), and the ratio of exactly those: the JSON line's
    # "ratio" is its A/B, also for sweeps of a few nodes where rounding would otherwise show.
    ours_s, nmap_s = round(ours_s, 3), round(nmap_s, 3)
    ratio = ours_s / nmap_s if nmap_s else None
    print_table(out, f"Port sweep over {count} nodes x {len(ports)} ports ({count * len(ports):,} connects)",
                ["scanner", "seconds", "open ports", "connects/s"],
                [["watchpost discovery sweep", ours_s, open_ours, int(count * len(ports) / ours_s)],
                 ["nmap -sT -n -Pn", nmap_s, open_nmap, int(count * len(ports) / nmap_s) if nmap_s else "-"]])
    differ = [a for a in addresses if ours.get(a) != theirs.get(a)]
    out.write(f"same open ports on every node: {same}" + (f" (differ on {len(differ)}: {differ[:5]})" if differ else "")
              + f"; ratio ours/nmap: {ratio:.3f}; lab started in {lab_s:.1f}s\n")
    print_table(out, f"Identification of the {open_ours} open ports ({identify_s:.2f}s)",
                ["lab service", "identified as expected", "served"],
                [[kind, ok, total] for kind, (ok, total) in sorted(by_kind.items())])
    if off_ports:
        out.write(f"({off_ports} lab services fell back to ports outside the sweep and are not counted)\n")
    return {"benchmark": "fleet", "nodes": count, "ports_per_node": len(ports), "ours_sweep_s": ours_s,
            "nmap_sweep_s": nmap_s, "ratio": round(ratio, 4) if ratio else None, "same_open_ports": same,
            "identify_s": round(identify_s, 3), "services_identified": right, "services_total": len(lab)}


def nmap_sweep(addresses: list[str], ports) -> tuple[dict[str, list[int]], float]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as targets:
        targets.write("\n".join(addresses) + "\n")
        targets.flush()
        began = time.perf_counter()
        completed = subprocess.run([NMAP, "-sT", "-n", "-Pn", "-p", ",".join(map(str, ports)), "-iL", targets.name,
                                    "-oX", "-"], capture_output=True, text=True, timeout=3600)
        elapsed = time.perf_counter() - began
    found: dict[str, list[int]] = {address: [] for address in addresses}
    for host in ET.fromstring(completed.stdout).iter("host"):
        address = host.find("address").get("addr")
        found[address] = sorted(int(p.get("portid")) for p in host.iter("port")
                                if p.find("state").get("state") == "open")
    return found, elapsed


def identify(open_ports: dict[str, list[int]]) -> tuple[dict[tuple[str, int], str], float]:
    """Each open port identified the way discovery does it, as many at once as a worker allows."""
    from scans.discovery.discover import discover_port
    from scans.discovery.registry import default_registry
    from scans.pipeline import conf
    from scans.scanners.base import ScanContext

    registry, context = default_registry(), ScanContext()

    async def all_ports() -> dict[tuple[str, int], str]:
        limit = asyncio.Semaphore(conf.discovery_identify_concurrency())

        async def one(address: str, port: int) -> tuple[tuple[str, int], str]:
            async with limit:
                service, detected = await discover_port(address, port, hostname="", context=context,
                                                        registry=registry, attempts=[])
            return (address, port), service.service

        pairs = await asyncio.gather(*(one(a, p) for a, ports in open_ports.items() for p in ports))
        return dict(pairs)

    began = time.perf_counter()
    found = asyncio.run(all_ports())
    return found, time.perf_counter() - began
