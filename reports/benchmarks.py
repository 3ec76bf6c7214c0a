"""``python manage.py bench reports``: the organization report of 1,000 nodes and 50,000 findings in every format.

Generates (or reuses, when its counts are right) one organization, slug ``bench-reports``,
in PostgreSQL with set-based ``INSERT ... SELECT FROM generate_series`` statements: nodes,
their snapshots and score history, the organization's score history, CVE records and open
findings spread over severities, a fifth of them naming a CVE of the catalog.

Then it renders the organization report once per format through the same service the
``reports`` queue runs (``reports.services.report_generate``: render into a temporary file,
save to the default storage) and times each. For the CSV it also samples the process's
resident memory (``/proc/self/statm``, every 5 ms, in a thread) while the CSV renders and
reports the peak growth over the RSS just before: the CSV streams, so this stays flat
whatever the number of findings. Prints a table (wall seconds, and this process's CPU
seconds: on a shared machine the wall time includes waiting for a core, so the load
average is printed too), then one JSON line, last.

PostgreSQL only: the figures are meant for the production database.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, TextIO

from django.core.management.base import CommandError
from django.db import connection, transaction

from nodes.models import Node, NodeSnapshot
from orgs.models import Organization
from reports.models import Report
from reports.services import report_generate
from scans.benchmarks import print_table
from scans.benchmarks.console import console_organization
from scans.benchmarks.generate import insert_select, table
from scans.findings.export import finding_export
from scans.models import CveRecord, Finding, OrganizationScore
from scans.selectors import finding_filters_from

help = "Organization report of 1,000 nodes and 50,000 findings in HTML, PDF, CSV, JSON and SARIF (PostgreSQL)"

SLUG = "bench-reports"
CVES = 500
ORG_SCORE_HISTORY = 26
TARGETS = {"html": 5.0, "pdf": 30.0}
CSV_GROWTH_TARGET_MB = 50.0
EXPORT_TARGET_S, EXPORT_GROWTH_TARGET_MB = 60.0, 50.0  # the list's export of a million findings
FORMATS = ("csv", "json", "sarif", "html", "pdf")  # the CSV first: its memory is measured before the others grow it


def add_arguments(parser) -> None:
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--findings", type=int, default=50_000)
    parser.add_argument("--regenerate", action="store_true", help="drop and regenerate the organization's rows")
    parser.add_argument("--export-nodes", type=int, default=10_000)
    parser.add_argument("--export-findings", type=int, default=1_000_000,
                        help="findings of the list's export, over bench console's organization (made or reused)")


def run(options: dict[str, Any], out: TextIO) -> dict[str, Any]:
    nodes, findings = options["nodes"], options["findings"]
    org = _organization(nodes=nodes, findings=findings, regenerate=options["regenerate"], out=out)
    # Earlier runs' reports would make this run compare with them: start each run alike.
    for old in Report.objects.filter(org=org):
        if old.file:
            old.file.storage.delete(old.file.name)
    Report.objects.filter(org=org).delete()

    # The findings list's export of every finding (scans.findings.export, as the console and the API stream it)
    # of bench console's organization, first: its memory is measured before the reports grow the process.
    export_org, _, _ = console_organization(nodes=options["export_nodes"], findings=options["export_findings"],
                                            regenerate=False, out=out)
    export = _export(export_org)
    out.write(f"  export (CSV, every finding): {export['seconds']:.2f} s, {export['bytes'] / 1e6:.1f} MB, "
              f"RSS growth {export['rss_growth_mb']:.1f} MB\n")

    # A reports worker imports WeasyPrint once, not per report: the import stays out of the timings.
    import weasyprint  # noqa: F401

    results: dict[str, dict[str, Any]] = {}
    for fmt in FORMATS:
        report = Report.objects.create(org=org, kind=Report.Kind.ORGANIZATION, format=fmt, trigger=Report.Trigger.CLI)
        sampler = RssSampler() if fmt == "csv" else None
        started, cpu_started = time.perf_counter(), time.process_time()
        if sampler:
            sampler.start()
        report = report_generate(report_id=report.pk)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        growth = sampler.stop() if sampler else None
        if report.status != Report.Status.READY:
            raise CommandError(f"the {fmt} report failed: {report.error}")
        results[fmt] = {"seconds": seconds, "cpu": cpu, "size": report.size, "pages": report.pages, "rss_growth_mb": growth,
                        "printed": (report.summary.get("figures") or {}).get("printed_findings")}
        out.write(f"  {fmt}: {seconds:.2f} s ({cpu:.2f} s of this process's CPU), {report.size / 1e6:.1f} MB\n")

    printed = results["pdf"]["printed"]
    rows = []
    for fmt, r in results.items():
        target = TARGETS.get(fmt)
        verdict = ""
        if target is not None:
            verdict = "ok" if r["seconds"] <= target else "SLOW"
        if fmt == "csv":
            verdict = "ok" if r["rss_growth_mb"] <= CSV_GROWTH_TARGET_MB else "MEMORY"
        rows.append([fmt, r["seconds"], r["cpu"], f"{r['size'] / 1e6:.1f}", r["pages"] or "",
                     "" if r["rss_growth_mb"] is None else f"{r['rss_growth_mb']:.1f}",
                     f"<= {target} s" if target else (f"<= {CSV_GROWTH_TARGET_MB} MB RSS" if fmt == "csv" else ""),
                     verdict])
    print_table(out, f"Organization report: {nodes:,} nodes, {findings:,} open findings"
                     f"{f' (the PDF details the worst {printed:,}: WATCHPOST_REPORT_PDF_MAX_FINDINGS)' if printed is not None and printed < findings else ''}",
                ["format", "seconds", "CPU s", "MB", "pages", "RSS growth MB", "target", ""], rows)
    within = export["seconds"] <= EXPORT_TARGET_S and export["rss_growth_mb"] <= EXPORT_GROWTH_TARGET_MB
    out.write(f"export of {options['export_findings']:,} findings: {export['seconds']:.2f} s, RSS growth {export['rss_growth_mb']:.1f} MB "
              f"(targets at a million: <= {EXPORT_TARGET_S:.0f} s, <= {EXPORT_GROWTH_TARGET_MB:.0f} MB): "
              f"{'ok' if within else 'OVER'}\n")
    # Wall time on a shared machine includes waiting for a core: the load says how busy it was.
    out.write(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs\n")
    return {
        "benchmark": "reports", "nodes": nodes, "findings": findings,
        "html_s": round(results["html"]["seconds"], 2), "pdf_s": round(results["pdf"]["seconds"], 2),
        "pdf_pages": results["pdf"]["pages"], "csv_s": round(results["csv"]["seconds"], 2),
        "csv_rss_growth_mb": round(results["csv"]["rss_growth_mb"], 1), "json_s": round(results["json"]["seconds"], 2),
        "export_findings": options["export_findings"], "export_s": round(export["seconds"], 2), "export_rss_growth_mb": round(export["rss_growth_mb"], 1),
    }


def _export(org) -> dict[str, Any]:
    """Stream the CSV export of every finding of ``org`` to nowhere, timing it and sampling this process's memory."""
    filters = finding_filters_from({})
    sampler = RssSampler()
    started = time.perf_counter()
    sampler.start()
    size = 0
    for chunk in finding_export(org=org, filters=filters, kind="csv"):
        size += len(chunk)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "bytes": size, "rss_growth_mb": sampler.stop()}


class RssSampler:
    """The peak resident memory growth of this process while it runs, sampled from /proc."""

    PAGE = os.sysconf("SC_PAGE_SIZE")

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.base = self.peak = self.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self.PAGE

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def start(self) -> None:
        self.base = self.peak = self.rss()
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())
        return (self.peak - self.base) / 1024**2


# --- the data ------------------------------------------------------------------------------------------


def _organization(*, nodes: int, findings: int, regenerate: bool, out: TextIO):
    org = Organization.objects.filter(slug=SLUG).first()
    if org is not None and not regenerate:
        have = (Node.objects.filter(org=org).count(), Finding.objects.filter(org=org, status="open").count())
        if have == (nodes, findings):
            out.write(f"Reusing organization {SLUG}: {nodes:,} nodes, {findings:,} open findings\n")
            return org
    if org is not None:
        out.write(f"Dropping organization {SLUG}\n")
        org.delete()
    org = Organization.objects.create(name="Bench Reports", slug=SLUG, scope_networks=["127.0.0.0/8"])
    out.write(f"Generating organization {SLUG}: {nodes:,} nodes, {findings:,} open findings\n")
    _generate(org, nodes=nodes, findings=findings, out=out)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE scans_finding; ANALYZE nodes_node; ANALYZE nodes_nodesnapshot; ANALYZE scans_cverecord")
    return org


def _generate(org, *, nodes: int, findings: int, out: TextIO) -> None:
    started = time.perf_counter()
    per_node = max(1, findings // nodes)
    P = {"org": org.pk, "nodes": nodes, "per_node": per_node, "findings": findings, "cves": CVES}
    with transaction.atomic(), connection.cursor() as cursor:
        insert_select(cursor, Node, {
            "org_id": "%(org)s",
            "address": "'127.' || (110 + g / 65536) || '.' || ((g / 256) %% 256) || '.' || (g %% 256)",
            "resolved_ip": "('127.' || (110 + g / 65536) || '.' || ((g / 256) %% 256) || '.' || (g %% 256))::inet",
            "hostname": "'node-' || g || '.bench.internal'", "name": "'node-' || g", "state": "'up'",
            "protocols": "'[\"http\", \"tls\"]'::jsonb", "services": "'[]'::jsonb", "tags": "'[]'::jsonb",
            "enabled": "true", "created_at": "now() - interval '30 days'", "updated_at": "now()",
        }, "generate_series(1, %(nodes)s) AS g", P)
        # Bench CVEs (CVE-2090-1xxxx: no real id is shadowed), with NVD-sized descriptions.
        cursor.execute(f"DELETE FROM {table(CveRecord)} WHERE cve_id LIKE 'CVE-2090-%%'")
        insert_select(cursor, CveRecord, {
            "cve_id": "'CVE-2090-' || (10000 + c)",
            "description": "'A remote attacker can send a crafted request to the service and execute code with the "
                           "privileges of the service account, because input ' || c || ' is not validated before it "
                           "is passed to an interpreter. Versions before the fixed release are affected; upgrading "
                           "removes the flaw and no workaround is known.'",
            "cvss_score": "CASE WHEN c %% 3 = 0 THEN 9.8 WHEN c %% 3 = 1 THEN 7.5 ELSE 5.3 END",
            "cvss_vector": "'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'", "cvss_version": "'3.1'",
            "severity": "CASE WHEN c %% 3 = 0 THEN 'critical' WHEN c %% 3 = 1 THEN 'high' ELSE 'medium' END",
            "published": "now() - interval '400 days'", "imported_at": "now()",
        }, "generate_series(1, %(cves)s) AS c", P)
        # Open findings: 3% critical, 10% high, 30% medium, 37% low, 20% info; one in five names a CVE.
        insert_select(cursor, Finding, {
            "org_id": "%(org)s", "node_id": "n.id",
            "source": "(ARRAY['tls','http','exposure','nuclei','cve'])[1 + k %% 5]",
            "rule_id": "'bench-rule-' || (k %% 97)",
            "title": "(ARRAY['Outdated TLS protocol accepted','Missing security header','Service answers without "
                     "authentication','Known vulnerable version','Directory listing enabled','Weak cipher suite'])"
                     "[1 + k %% 6] || ' (' || (k %% 97) || ')'",
            "severity": "CASE WHEN k %% 100 < 3 THEN 'critical' WHEN k %% 100 < 13 THEN 'high' "
                        "WHEN k %% 100 < 43 THEN 'medium' WHEN k %% 100 < 80 THEN 'low' ELSE 'info' END",
            "cvss_score": "CASE WHEN k %% 100 < 3 THEN 9.8 WHEN k %% 100 < 13 THEN 7.5 "
                          "WHEN k %% 100 < 43 THEN 5.3 WHEN k %% 100 < 80 THEN 3.1 ELSE NULL END",
            "cvss_vector": "'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N'",
            "cve_ids": "CASE WHEN k %% 5 = 0 THEN jsonb_build_array('CVE-2090-' || (10001 + (n.id + k) %% %(cves)s)) "
                       "ELSE '[]'::jsonb END",
            "port": "(ARRAY[22,80,443,6379,8545,2375])[1 + k %% 6]", "protocol": "'tcp'",
            "location": "'https://node-' || n.id || '.bench.internal:' || (ARRAY[22,80,443,6379,8545,2375])[1 + k %% 6] || '/'",
            "description": "'The service on this port accepts a configuration that lets an attacker read or change data "
                           "it should not. Found by the ' || (ARRAY['tls','http','exposure','nuclei','cve'])[1 + k %% 5] || "
                           "' scanner.'",
            "remediation": "'Upgrade the service to the latest release and restrict it to the networks that need it. "
                           "Restart it and rescan the node to confirm the fix.'",
            "evidence": "jsonb_build_object('banner', 'Server: bench/' || (k %% 13) || '.' || (k %% 7), 'request', "
                        "'GET / HTTP/1.1', 'matched', 'header x-powered-by: php/7.' || (k %% 4), 'response_bytes', 1000 + k)",
            "fingerprint": "md5(n.id || ':' || k)", "content_hash": "left(md5(k::text), 32)", "status": "'open'",
            "first_seen": "now() - interval '20 days'", "last_seen": "now() - interval '1 day'", "version": "1",
        }, f"{table(Node)} n CROSS JOIN generate_series(1, %(per_node)s) AS k WHERE n.org_id = %(org)s", P)
        insert_select(cursor, NodeSnapshot, {
            "node_id": "n.id", "org_id": "%(org)s",
            "score": "GREATEST(0, 100 - coalesce(c.critical, 0) * 12 - coalesce(c.high, 0) * 4 - coalesce(c.medium, 0) - (n.id %% 23))",
            "grade": "''", "critical": "coalesce(c.critical, 0)", "high": "coalesce(c.high, 0)",
            "medium": "coalesce(c.medium, 0)", "low": "coalesce(c.low, 0)", "info": "coalesce(c.info, 0)",
            "open_ports": "'[22, 443]'::jsonb", "protocols": "n.protocols", "last_scan_status": "'succeeded'",
            "last_scan_at": "now() - interval '1 day'", "open_interventions": "0", "updated_at": "now()",
        }, f"{table(Node)} n LEFT JOIN (SELECT node_id, "
           "count(*) FILTER (WHERE severity = 'critical') AS critical, count(*) FILTER (WHERE severity = 'high') AS high, "
           "count(*) FILTER (WHERE severity = 'medium') AS medium, count(*) FILTER (WHERE severity = 'low') AS low, "
           f"count(*) FILTER (WHERE severity = 'info') AS info FROM {table(Finding)} "
           "WHERE org_id = %(org)s AND status = 'open' GROUP BY node_id) c ON c.node_id = n.id WHERE n.org_id = %(org)s", P)
        cursor.execute(f"UPDATE {table(NodeSnapshot)} SET grade = CASE WHEN score >= 90 THEN 'A' WHEN score >= 80 "
                       "THEN 'B' WHEN score >= 65 THEN 'C' WHEN score >= 40 THEN 'D' ELSE 'F' END WHERE org_id = %(org)s", P)
        insert_select(cursor, OrganizationScore, {
            "org_id": "%(org)s", "session_id": "NULL", "score": "45 + (h * 7) %% 30", "grade": "'D'",
            "node_count": "%(nodes)s", "created_at": "now() - h * interval '7 days'",
        }, f"generate_series(0, {ORG_SCORE_HISTORY - 1}) AS h", P)
    out.write(f"  generated in {time.perf_counter() - started:.1f} s\n")
