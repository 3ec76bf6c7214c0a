"""``python manage.py bench ingest``: import 100,000 Nuclei findings over 1,000 nodes, three times.

Runs, each through ``scans.findings.imports.findings_import`` (parse, scope check, dedup, bulk
lifecycle, scoring), in a fresh organization that is deleted afterwards:

1. *first*: every finding is new;
2. *unchanged*: the same file again, every finding unchanged;
3. *variant*: a tenth of the findings differ (new ones, gone ones -> fixed, severity changes).

Per run: wall time, findings per second, statements per 1,000-finding lifecycle batch
(every statement psycopg sends, COPY included, while the lifecycle writes one batch),
the time of each phase of the import and memory: the process's peak RSS (``ru_maxrss``), and
its growth since the benchmark started, or with ``--tracemalloc`` the Python allocation peak of
the run (slower: tracing costs).

PostgreSQL only: the figures are meant for the production database, and SQLite's single
writer says nothing about it. The tables an import writes are vacuumed before and after:
100,000 deleted rows left by a previous run otherwise double the next run's time.
"""

from __future__ import annotations

import gc
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import psycopg
from django.db import connection

from orgs.models import Organization
from scans.benchmarks import print_table
from scans.benchmarks.cleanup import bench_organization_delete
from scans.findings import imports, lifecycle

help = "Import 100k Nuclei findings over 1,000 nodes, re-import, import a 10% variant (PostgreSQL)."

PHASES = ("parse", "plan", "nodes", "ingest", "priority", "scoring", "commit")
TARGETS = {"first": 5.0, "unchanged": 3.0, "variant": 5.0}  # seconds
PEAK_RSS_TARGET_MB = 300

# (template id, name, severity, cve, cwe, cvss, matchers): shaped like real Nuclei templates.
Template = tuple[str, str, str, str, str, float | None, tuple[str, ...]]


def _cve(cve: str, name: str, severity: str, cwe: str, cvss: float, matchers: tuple[str, ...] = ()) -> Template:
    """A CVE template: Nuclei names it after its CVE."""
    return (cve, name, severity, cve, cwe, cvss, matchers)


TEMPLATES: list[Template] = [
    ("http-missing-security-headers", "HTTP Missing Security Headers", "info", "", "", None,
     ("strict-transport-security", "content-security-policy", "x-frame-options", "x-content-type-options",
      "referrer-policy", "permissions-policy", "cross-origin-opener-policy", "cross-origin-resource-policy")),
    ("tech-detect", "Wappalyzer Technology Detection", "info", "", "", None,
     ("nginx", "bootstrap", "jquery", "php", "google-font-api", "font-awesome")),
    ("ssl-dns-names", "SSL DNS Names", "info", "", "", None, ()),
    ("tls-version", "TLS Version - Detect", "info", "", "", None, ("tls10", "tls11", "tls12", "tls13")),
    ("weak-cipher-suites", "Weak Cipher Suites Detection", "low", "", "CWE-327", 3.7, ("tls-1.0", "tls-1.1")),
    ("expired-ssl", "Expired SSL Certificate", "low", "", "CWE-298", 3.7, ()),
    ("self-signed-ssl", "Self Signed SSL Certificate", "low", "", "CWE-295", None, ()),
    ("git-config", "Git Configuration - Detect", "medium", "", "CWE-200", 5.3, ()),
    ("exposed-env-file", "Environment File Exposure", "high", "", "CWE-200", 7.5, ()),
    ("phpinfo-files", "PHPInfo Page - Detect", "low", "", "CWE-200", 3.1, ()),
    ("options-method", "Allowed Options Method", "info", "", "", None, ()),
    ("cookies-without-secure", "Cookies without Secure attribute", "info", "", "CWE-614", None, ()),
    ("cors-misconfig", "CORS Misconfiguration", "medium", "", "CWE-942", 5.4, ("arbitrary-origin", "null-origin")),
    ("open-redirect", "Open Redirect - Detection", "medium", "", "CWE-601", 6.1, ()),
    _cve("CVE-2021-41773", "Apache 2.4.49 - Path Traversal and Remote Code Execution",
         "high", "CWE-22", 7.5, ("lfi", "rce")),
    _cve("CVE-2021-42013", "Apache 2.4.49/2.4.50 - Path Traversal and Remote Code Execution",
         "critical", "CWE-22", 9.8),
    _cve("CVE-2021-44228", "Apache Log4j2 Remote Code Injection", "critical", "CWE-502", 10.0),
    _cve("CVE-2022-22965", "Spring4Shell - Remote Code Execution", "critical", "CWE-94", 9.8),
    _cve("CVE-2023-22515", "Atlassian Confluence - Broken Access Control", "critical", "CWE-284", 10.0),
    _cve("CVE-2017-5638", "Apache Struts2 S2-045 - Remote Code Execution", "critical", "CWE-20", 10.0),
    _cve("CVE-2020-5902", "F5 BIG-IP TMUI - Remote Code Execution", "critical", "CWE-22", 9.8),
    _cve("CVE-2019-11510", "Pulse Connect Secure - Arbitrary File Read", "critical", "CWE-22", 10.0),
    _cve("CVE-2018-13379", "Fortinet FortiOS - Credentials Disclosure", "critical", "CWE-22", 9.8),
    _cve("CVE-2022-1388", "F5 BIG-IP - Remote Code Execution", "critical", "CWE-306", 9.8),
    _cve("CVE-2021-26084", "Confluence Server - Remote Code Execution", "critical", "CWE-917", 9.8),
    _cve("CVE-2020-14882", "Oracle WebLogic Server - Remote Command Execution", "critical", "CWE-287", 9.8),
    _cve("CVE-2019-19781", "Citrix ADC - Directory Traversal", "critical", "CWE-22", 9.8),
    _cve("CVE-2021-3129", "Laravel Ignition - Remote Code Execution", "critical", "CWE-94", 9.8),
    _cve("CVE-2022-41040", "Microsoft Exchange Server - SSRF", "high", "CWE-918", 8.8),
    _cve("CVE-2023-46805", "Ivanti ICS - Authentication Bypass", "high", "CWE-287", 8.2),
    _cve("CVE-2020-11022", "jQuery - Cross-Site Scripting", "medium", "CWE-79", 6.1),
    _cve("CVE-2018-11776", "Apache Struts2 S2-057 - Remote Code Execution", "high", "CWE-20", 8.1),
    ("wordpress-xmlrpc-listmethods", "WordPress xmlrpc - Methods Listing", "info", "", "", None, ()),
    ("graphql-introspection", "GraphQL Introspection Enabled", "info", "", "CWE-200", None, ()),
    ("swagger-api", "Public Swagger API - Detect", "info", "", "", None, ("swagger-ui", "openapi-json")),
    ("prometheus-metrics", "Prometheus Metrics - Detect", "medium", "", "CWE-200", 5.3, ()),
    ("springboot-actuator", "Spring Boot Actuator - Exposure", "medium", "", "CWE-200", 5.3,
     ("env", "heapdump", "mappings", "beans")),
    ("elasticsearch-unauth", "Elasticsearch - Unauthenticated Access", "high", "", "CWE-306", 7.5, ()),
    ("docker-api-unauth", "Docker API - Unauthenticated Access", "critical", "", "CWE-306", 10.0, ()),
    ("kubelet-unauth", "Kubelet API - Unauthenticated Access", "high", "", "CWE-306", 8.6, ()),
]
PORTS = (80, 443, 8080, 8443, 9200, 2375)
PATHS = ("/", "/admin", "/api", "/api/v1", "/login", "/static", "/.git/config", "/.env", "/actuator", "/metrics",
         "/graphql", "/swagger-ui.html", "/wp-login.php", "/cgi-bin", "/server-status")


def add_arguments(parser) -> None:
    parser.add_argument("--findings", type=int, default=100_000, help="Findings in the file (default 100,000).")
    parser.add_argument("--nodes", type=int, default=1_000, help="Nodes they spread over (default 1,000).")
    parser.add_argument("--change", type=float, default=0.10, help="Share of findings the variant changes.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tracemalloc", action="store_true",
                        help="Measure the Python allocation peak (tracemalloc) instead of RSS growth; slower.")
    parser.add_argument("--keep", action="store_true", help="Keep the organization and the files afterwards.")


def run(options: dict[str, Any], out: TextIO) -> dict[str, Any]:
    findings, nodes, change = options["findings"], options["nodes"], options["change"]
    # Earlier runs' deleted rows (ours or anyone's) would be measured as our slowness.
    _vacuum()
    workdir = Path(tempfile.mkdtemp(prefix="watchpost-bench-ingest-"))
    slug = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    org = Organization.objects.create(name="Bench ingest", slug=slug, scope_networks=["127.0.0.0/8"])
    out.write(f"organization {slug}; files in {workdir}\n")
    try:
        started = time.perf_counter()
        first = workdir / "first.jsonl"
        variant = workdir / "variant.jsonl"
        # Streamed to disk, never held: the memory figures are the import's, not the generator's.
        _write(first, _records(findings=findings, nodes=nodes))
        changes: dict[str, int] = {}
        _write(variant, _vary(_records(findings=findings, nodes=nodes), change=change, seed=options["seed"],
                              tally=changes))
        size_mb = first.stat().st_size / 1e6
        out.write(f"generated {findings:,} findings over {nodes:,} nodes ({size_mb:.1f} MB) in "
                  f"{time.perf_counter() - started:.1f} s; variant: {changes}\n")
        gc.collect()
        baseline_mb = _rss_mb()
        runs = []
        for name, path in (("first", first), ("unchanged", first), ("variant", variant)):
            runs.append(_measure(name, org=org, path=path, baseline_mb=baseline_mb,
                                 use_tracemalloc=options["tracemalloc"]))
            out.write(f"  {name}: {runs[-1]['seconds']:.2f} s\n")
    finally:
        if not options["keep"]:
            bench_organization_delete(org)
            _vacuum()
            shutil.rmtree(workdir, ignore_errors=True)

    memory = "tracemalloc_peak_mb" if options["tracemalloc"] else "rss_growth_mb"
    print_table(
        out, f"bench ingest: {findings:,} Nuclei findings over {nodes:,} nodes (PostgreSQL)",
        ["run", "seconds", "cpu s", "findings/s", "new", "updated", "reopened", "fixed", "unchanged", "queries",
         "queries/batch", "rss_peak_mb", memory, "load"],
        [[r["run"], r["seconds"], r["python_cpu_seconds"], r["findings_per_second"], r["new"], r["updated"],
          r["reopened"], r["fixed"], r["unchanged"], r["queries"], _span(r["queries_per_batch"]), r["rss_peak_mb"],
          r[memory], r["load_average"]] for r in runs],
    )
    print_table(out, "phases (seconds)", ["run", *PHASES],
                [[r["run"], *(r["phases"].get(p, 0.0) for p in PHASES)] for r in runs])
    verdicts = {
        **{f"{r['run']}_within_{TARGETS[r['run']]:g}s": r["seconds"] <= TARGETS[r["run"]] for r in runs},
        "queries_per_batch_constant": all(r["queries_per_batch"]["min"] == r["queries_per_batch"]["max"]
                                          for r in runs if r["queries_per_batch"]["batches"]),
        f"peak_rss_within_{PEAK_RSS_TARGET_MB}mb": all(r["rss_peak_mb"] <= PEAK_RSS_TARGET_MB for r in runs),
    }
    out.write("targets: " + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in verdicts.items()) + "\n")
    return {"benchmark": "ingest", "database": "postgresql", "findings": findings, "nodes": nodes,
            "change": change, "memory_measure": memory, "runs": runs, "targets": verdicts}


def _span(stats: dict[str, int]) -> str:
    if not stats["batches"]:
        return "-"
    return str(stats["min"]) if stats["min"] == stats["max"] else f"{stats['min']}-{stats['max']}"


# -- measuring -----------------------------------------------------------------------


class _QueryCounter:
    """Counts the statements sent to PostgreSQL, ANALYZE apart (it is no batch's work)."""

    def __init__(self) -> None:
        self.count = 0
        self.analyze = 0

    def sent(self, statement) -> None:
        if str(statement).lstrip().upper().startswith("ANALYZE"):
            self.analyze += 1
        else:
            self.count += 1


@contextmanager
def _counting(counter: _QueryCounter, per_batch: list[int]):
    """Count every statement, and those of each lifecycle batch's write.

    Statements are counted where psycopg sends them, whoever's cursor that is: Django's, the
    server-bound cursors of ``config.prepared`` (which Django's execute wrappers never see) and
    COPY. A batch's statements are those sent while the lifecycle writes that batch
    (``_Run.apply``); the closing of unreported findings comes after the last one.
    """
    apply = lifecycle._Run.apply

    def counted_apply(self, *args, **kwargs):
        before = counter.count
        try:
            return apply(self, *args, **kwargs)
        finally:
            per_batch.append(counter.count - before)

    def counting(method):
        def send(self, statement, *args, **kwargs):
            counter.sent(statement)
            return method(self, statement, *args, **kwargs)
        return send

    methods = {name: getattr(psycopg.Cursor, name) for name in ("execute", "executemany", "copy")}
    lifecycle._Run.apply = counted_apply
    for name, method in methods.items():
        setattr(psycopg.Cursor, name, counting(method))
    try:
        yield
    finally:
        lifecycle._Run.apply = apply
        for name, method in methods.items():
            setattr(psycopg.Cursor, name, method)


def _measure(name: str, *, org, path: Path, baseline_mb: float, use_tracemalloc: bool) -> dict[str, Any]:
    counter = _QueryCounter()
    per_batch: list[int] = []
    gc.collect()
    if use_tracemalloc:
        tracemalloc.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    with _counting(counter, per_batch):
        report = imports.findings_import(org=org, fmt="nuclei", path=path)
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {"run": name, "seconds": round(seconds, 3),
                              "python_cpu_seconds": round(time.process_time() - cpu_started, 3),
                              "phases": dict(report.timings), "load_average": round(os.getloadavg()[0], 2),
                              "findings_per_second": round(report.findings / seconds),
                              "queries": counter.count, "analyze_statements": counter.analyze,
                              **report.counts.as_dict()}
    result["queries_per_batch"] = {"batches": len(per_batch), "min": min(per_batch, default=0),
                                   "max": max(per_batch, default=0)}
    if use_tracemalloc:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result["tracemalloc_peak_mb"] = round(peak / 1e6, 1)
    result["rss_growth_mb"] = round(_rss_mb() - baseline_mb, 1)
    result["rss_peak_mb"] = round(_rss_mb(), 1)
    return result


def _rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1e3  # bytes on macOS, KiB on Linux


# -- the data --------------------------------------------------------------------------


def _host(index: int) -> str:
    return f"127.0.{100 + index // 250}.{1 + index % 250}"


def _records(*, findings: int, nodes: int):
    """``findings`` Nuclei results spread evenly over ``nodes`` loopback hosts, each distinct."""
    rng = random.Random(1)
    combos = [(t, m, port, p) for t in TEMPLATES for m in (t[6] or ("",)) for port in PORTS for p in PATHS]
    rng.shuffle(combos)
    per_node, extra = divmod(findings, nodes)
    for node in range(nodes):
        host = _host(node)
        count = per_node + (1 if node < extra else 0)
        offset = (node * 37) % len(combos)
        for k in range(count):
            template, matcher, port, path = combos[(offset + k) % len(combos)]
            yield _record(host, template, matcher, port, path, k)


def _record(host: str, template, matcher: str, port: int, path: str, k: int) -> dict[str, Any]:
    template_id, name, severity, cve, cwe, cvss, _ = template
    scheme = "https" if port in (443, 8443) else "http"
    base = f"{scheme}://{host}:{port}"
    classification: dict[str, Any] = {}
    if cve:
        classification["cve-id"] = [cve.lower()]
    if cwe:
        classification["cwe-id"] = [cwe.lower()]
    if cvss is not None:
        classification["cvss-score"] = cvss
        classification["cvss-metrics"] = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    record: dict[str, Any] = {
        "template": f"http/{'cves' if cve else 'misconfiguration'}/{template_id}.yaml",
        "template-id": template_id,
        "info": {
            "name": name, "author": ["pdteam"], "tags": ["cve" if cve else "misconfig"], "severity": severity,
            "description": f"{name} was detected.",
            "reference": [f"https://nvd.nist.gov/vuln/detail/{cve}"] if cve else [],
            "classification": classification,
        },
        "type": "http",
        "host": base,
        "matched-at": f"{base}{path}",
        "ip": host,
        "port": str(port),
        "scheme": scheme,
        "timestamp": "2026-11-20T10:00:00.000000000Z",
        "curl-command": f"curl -X 'GET' -H 'User-Agent: Nuclei' '{base}{path}'",
        "matcher-status": True,
    }
    if matcher:
        record["matcher-name"] = matcher
    if k % 10 == 0:
        record["extracted-results"] = [f"value-{k}"]
    return record


def _vary(records, *, change: float, seed: int, tally: dict[str, int]):
    """The records with ``change`` of them changed: 40% gone, 40% joined by a new one, 20% severity."""
    rng = random.Random(seed)
    for key in ("gone", "new", "severity_changed"):
        tally[key] = 0
    for index, record in enumerate(records):
        draw = rng.random()
        if draw >= change:
            yield record
        elif draw < change * 0.4:
            tally["gone"] += 1
        elif draw < change * 0.8:
            tally["new"] += 1
            yield record
            yield {**record, "matched-at": record["matched-at"] + f"?variant={index}"}
        else:
            tally["severity_changed"] += 1
            info = record["info"]
            critical = info["severity"] != "critical"
            info["severity"] = "critical" if critical else "high"
            info["classification"] = {**info["classification"], "cvss-score": 9.9 if critical else 7.2}
            yield record


def _write(path: Path, records) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, separators=(",", ":")))
            handle.write("\n")
        # On disk before the runs start: the kernel writing the file back meanwhile would compete
        # with the database's own writes, and be measured as the import's.
        handle.flush()
        os.fsync(handle.fileno())


VACUUMED_TABLES = ("scans_finding", "scans_scanjob", "nodes_node", "nodes_nodesnapshot", "nodes_nodescore")


def _vacuum() -> None:
    """VACUUM ANALYZE the tables an import writes (outside any transaction, as VACUUM requires), then
    a checkpoint: each run starts with no dirty pages of the one before it left to write."""
    with connection.cursor() as cursor:
        for table in VACUUMED_TABLES:
            cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute("CHECKPOINT")


