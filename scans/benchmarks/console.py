"""``python manage.py bench console``: the console's pages at 10,000 nodes and 1,000,000 findings.

Generates one organization (slug ``bench-console``) in PostgreSQL with set-based
``INSERT ... SELECT FROM generate_series`` statements (no ORM row by row): nodes with
services and protocols, snapshots, per-node score history, a few sessions with one job
per (node, scanner), findings spread over severities, statuses, sources and CVEs, their
FindingEvents, the organization's score history and interventions (with and without a
node). A second run reuses the organization when its counts are right.

Then it measures each page through Django's test client with a logged-in owner:
``--warmup`` requests, then ``--requests`` measured ones, each timed in-process
(server side: no network) and its SQL statements counted (CaptureQueriesContext).
Prints a table, then one JSON line, last.

PostgreSQL only: the figures are meant for the production database.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from typing import Any, TextIO

from django.core.management.base import CommandError
from django.db import connection, transaction

from interventions.models import Intervention
from nodes.models import Node, NodeScore, NodeSnapshot
from orgs.models import AuditEvent, Membership, Organization, Role
from scans.benchmarks import print_table
from scans.benchmarks.generate import insert_select, table
from scans.models import OrganizationScore

help = "Console pages at 10,000 nodes and 1,000,000 findings: queries and server time per page (PostgreSQL)"

SLUG = "bench-console"
OWNER = "bench-console-owner"
SCANNERS = ("tls", "http", "exposure")
SESSIONS = 5  # finished ones; plus one running
NODE_SCORE_HISTORY = 8
ORG_SCORE_HISTORY = 40
OPEN_INTERVENTIONS = 150
CLOSED_INTERVENTIONS = 850
TARGET_QUERIES = 12
TARGET_MEDIAN_MS = 100.0
PAGES = ("dashboard", "nodes", "node_detail", "findings", "findings_filtered", "findings_grouped",
         "findings_overdue", "findings_assigned", "finding_detail", "sessions", "session_detail", "interventions")


def add_arguments(parser) -> None:
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--findings", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20, help="measured requests per page")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured requests per page first")
    parser.add_argument("--regenerate", action="store_true", help="drop and regenerate the organization's rows")


def run(options: dict[str, Any], out: TextIO) -> None:
    nodes, findings = options["nodes"], options["findings"]
    if findings % nodes:
        raise CommandError("--findings must be a multiple of --nodes (the same number per node)")
    started = time.perf_counter()
    org, owner, reused = console_organization(nodes=nodes, findings=findings, regenerate=options["regenerate"], out=out)
    out.write(f"organization {SLUG}: {'reused' if reused else 'generated'} in {time.perf_counter() - started:.1f} s\n")
    _trend_rows(org, out=out)

    urls = _urls(org)
    results = {}
    # Request log lines (and the warnings of pages still missing) would drown the table;
    # errors still show.
    logging.disable(logging.WARNING)
    try:
        for name in PAGES:
            results[name] = _measure(urls[name], owner=owner, warmup=options["warmup"], requests=options["requests"])
            r = results[name]
            out.write(f"  {name:<18} {r['status']} {r['queries']:>3} queries  median {r['median_ms']:.1f} ms\n")
    finally:
        logging.disable(logging.NOTSET)

    print_table(
        out, f"bench console: {nodes:,} nodes, {findings:,} findings, {options['requests']} requests per page",
        ["page", "url", "status", "queries", "median ms", "p95 ms", "max ms", "within targets"],
        [[name, urls[name], r["status"], r["queries"], r["median_ms"], r["p95_ms"], r["max_ms"],
          "yes" if r["status"] == 200 and r["queries"] <= TARGET_QUERIES and r["median_ms"] <= TARGET_MEDIAN_MS
          else "NO"] for name, r in results.items()],
    )
    out.write(f"targets: <= {TARGET_QUERIES} queries and median <= {TARGET_MEDIAN_MS:.0f} ms per page\n")
    summary = {
        "benchmark": "console", "nodes": nodes, "findings": findings,
        "pages": {name: {"queries": r["queries"], "median_ms": r["median_ms"], "p95_ms": r["p95_ms"]}
                  for name, r in results.items()},
    }
    # Written here, in the documented key order; the command prints nothing more after a None.
    out.write(json.dumps(summary) + "\n")
    return None


def _trend_rows(org, *, out: TextIO) -> None:
    """The dashboard's trend charts read the daily rollup: rebuilt from the generated findings (the
    backfill, one statement), then today's row as the scoring stage writes it, each timed."""
    from scans.findings.daily_stats import finding_daily_stats_backfill, finding_daily_stats_refresh

    began = time.perf_counter()
    days = finding_daily_stats_backfill(org=org, days=90, replace=True)
    out.write(f"  trend rows: {days} past days rebuilt in {time.perf_counter() - began:.2f} s\n")
    began = time.perf_counter()
    finding_daily_stats_refresh(org=org)
    out.write(f"  trend row of today refreshed in {time.perf_counter() - began:.2f} s\n")


# -- measuring -----------------------------------------------------------------------


def _urls(org) -> dict[str, str]:
    from scans.models import Finding, ScanSession

    worst = NodeSnapshot.objects.filter(org=org).order_by("score", "node_id").values_list("node_id", flat=True).first()
    session = ScanSession.objects.filter(org=org, status=ScanSession.Status.SUCCEEDED).order_by("-pk").first()
    finding = Finding.objects.filter(org=org, node_id=worst, status=Finding.Status.OPEN).order_by("pk").first()
    base = f"/o/{org.slug}"
    return {
        "dashboard": f"{base}/",
        "nodes": f"{base}/nodes/",
        "node_detail": f"{base}/nodes/{worst}/",
        "findings": f"{base}/findings/",
        "findings_filtered": f"{base}/findings/?severity=high&status=open",
        "findings_grouped": f"{base}/findings/groups/",
        "findings_overdue": f"{base}/findings/?overdue=1",
        "findings_assigned": f"{base}/findings/?assignee=me",
        "finding_detail": f"{base}/findings/{finding.pk}/",
        "sessions": f"{base}/sessions/",
        "session_detail": f"{base}/sessions/{session.pk}/",
        "interventions": f"{base}/interventions/",
    }


def _client(owner):
    from django.conf import settings
    from django.test import Client

    # The deployment's own host (no 'testserver' outside the test runner); HTTPS so a
    # production SECURE_SSL_REDIRECT answers the page, not a redirect.
    hosts = [h for h in settings.ALLOWED_HOSTS if h and "*" not in h and not h.startswith(".")]
    client = Client(HTTP_HOST=hosts[0] if hosts else "localhost", secure=True)
    client.force_login(owner)
    return client


def _measure(url: str, *, owner, warmup: int, requests: int) -> dict[str, Any]:
    from django.test.utils import CaptureQueriesContext

    client = _client(owner)
    status = None
    for _ in range(warmup):
        status = client.get(url).status_code
    timings, queries = [], []
    for _ in range(requests):
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - began) * 1000)
        status = response.status_code
        queries.append(len(captured.captured_queries))
    timings.sort()
    p95 = timings[min(len(timings) - 1, max(0, round(0.95 * len(timings)) - 1))]
    return {"status": status, "queries": max(queries), "median_ms": round(statistics.median(timings), 1),
            "p95_ms": round(p95, 1), "max_ms": round(timings[-1], 1)}


# -- generating ----------------------------------------------------------------------


def console_organization(*, nodes: int, findings: int, regenerate: bool, out: TextIO):
    """The benchmark's organization and its owner, reused when its counts are right (also the
    organization ``bench reports`` exports a million findings of)."""
    from django.contrib.auth import get_user_model

    from scans.models import Finding

    User = get_user_model()
    owner, _ = User.objects.get_or_create(username=OWNER, defaults={"email": "bench-console@watchpost.invalid"})
    org = Organization.objects.filter(slug=SLUG).first()
    if org is not None and not regenerate:
        have_nodes = Node.objects.filter(org=org).count()
        have_findings = Finding.objects.filter(org=org).count() if have_nodes == nodes else -1
        if (have_nodes, have_findings) == (nodes, findings):
            Membership.objects.get_or_create(org=org, user=owner, defaults={"role": Role.OWNER})
            return org, owner, True
        out.write(f"organization {SLUG} holds {have_nodes:,} nodes / {max(have_findings, 0):,} findings; regenerating\n")
    if org is not None:
        _drop(org)
    org = Organization.objects.create(name="Bench console", slug=SLUG, scope_networks=["127.0.0.0/8"])
    Membership.objects.create(org=org, user=owner, role=Role.OWNER)
    _generate(org, owner=owner, nodes=nodes, per_node=findings // nodes, out=out)
    return org, owner, False


def _generate(org, *, owner, nodes: int, per_node: int, out: TextIO) -> None:
    from scans.findings.groups import finding_groups_refresh
    from scans.models import Finding, FindingEvent, FindingGroup, ScanJob, ScanProfile, ScanSession

    profile = ScanProfile.objects.filter(org=None, slug="standard").first()
    step = time.perf_counter()

    def done(what: str, rows: int) -> None:
        nonlocal step
        now = time.perf_counter()
        out.write(f"  {what}: {rows:,} rows in {now - step:.1f} s\n")
        step = now

    P = {"org": org.pk, "owner": owner.pk, "nodes": nodes, "per_node": per_node, "findings": nodes * per_node,
         "profile": profile.pk if profile else None, "scanners": list(SCANNERS)}
    with transaction.atomic(), connection.cursor() as cursor:
        # Nodes: 127.100.x.y, a few protocol mixes, services with products and versions, tags.
        rows = insert_select(cursor, Node, {
            "org_id": "%(org)s",
            "address": "'127.' || (100 + g / 65536) || '.' || ((g / 256) %% 256) || '.' || (g %% 256)",
            "resolved_ip": "('127.' || (100 + g / 65536) || '.' || ((g / 256) %% 256) || '.' || (g %% 256))::inet",
            "hostname": "'node-' || g || '.bench.internal'",
            "name": "'node-' || g",
            "state": "(ARRAY['up','up','up','up','down','unknown'])[1 + g %% 6]",
            "protocols": "(ARRAY['[\"http\", \"tls\"]','[\"ssh\"]','[\"redis\"]','[\"ethereum-rpc\", \"http\"]',"
                         "'[\"docker\", \"http\"]'])[1 + g %% 5]::jsonb",
            "services": "jsonb_build_array(jsonb_build_object('port', 443, 'protocol', 'tls', 'product', 'nginx', "
                        "'version', '1.' || (10 + g %% 14) || '.0'), jsonb_build_object('port', 22, 'protocol', "
                        "'ssh', 'product', 'OpenSSH', 'version', (6 + g %% 3) || '.' || (g %% 9)))",
            "tags": "jsonb_build_array('bench', 'rack-' || (g %% 20))",
            "enabled": "(g %% 50 <> 0)",
            "discovery_confidence": "0.9",
            "last_discovered_at": "now() - interval '1 hour'",
            "last_scanned_at": "now() - interval '1 hour'",
            "created_at": "now() - interval '30 days'",
            "updated_at": "now()",
        }, "generate_series(1, %(nodes)s) AS g", P)
        done("nodes", rows)

        # Sessions: SESSIONS finished a day apart, then one running in execution.
        rows = insert_select(cursor, ScanSession, {
            "org_id": "%(org)s", "profile_id": "%(profile)s", "trigger": "'schedule'",
            "status": f"CASE WHEN s = {SESSIONS + 1} THEN 'running' ELSE 'succeeded' END",
            "stage": f"CASE WHEN s = {SESSIONS + 1} THEN 'execution' ELSE 'done' END",
            "correlation_id": "'bench-console-' || s",
            "nodes_total": "%(nodes)s", "jobs_total": f"%(nodes)s * {len(SCANNERS)}",
            "jobs_succeeded": f"CASE WHEN s = {SESSIONS + 1} THEN %(nodes)s ELSE %(nodes)s * {len(SCANNERS)} - 7 END",
            "jobs_failed": f"CASE WHEN s = {SESSIONS + 1} THEN 0 ELSE 7 END",
            "findings_new": "CASE WHEN s = 1 THEN %(findings)s ELSE 1000 + s * 37 END",
            "findings_fixed": "200 + s * 11", "findings_reopened": "20 + s",
            "created_at": f"now() - ({SESSIONS + 1} - s) * interval '1 day' - interval '2 hours'",
            "started_at": f"now() - ({SESSIONS + 1} - s) * interval '1 day' - interval '2 hours'",
            "finished_at": f"CASE WHEN s = {SESSIONS + 1} THEN NULL ELSE now() - ({SESSIONS + 1} - s) * interval '1 day' - interval '1 hour' END",
            "heartbeat_at": "now()",
        }, f"generate_series(1, {SESSIONS + 1}) AS s", P)
        done("sessions", rows)
        sessions = list(ScanSession.objects.filter(org=org).order_by("pk").values_list("pk", flat=True))
        P.update(first_session=sessions[0], last_finished=sessions[SESSIONS - 1])

        # One job per (session, node, scanner); the running session's last third still queued.
        rows = insert_select(cursor, ScanJob, {
            "session_id": "s.id", "node_id": "n.id", "scanner": "sc.name",
            "status": "CASE WHEN s.status = 'running' AND n.id %% 3 = 0 THEN 'queued' "
                      "WHEN s.status <> 'running' AND n.id %% 1500 = 0 AND sc.name = 'tls' THEN 'failed' "
                      "ELSE 'succeeded' END",
            "attempts": "1", "max_attempts": "3", "normalized": "true",
            "queued_at": "s.started_at", "started_at": "s.started_at", "finished_at": "s.started_at + interval '5 minutes'",
        }, f"{table(ScanSession)} s CROSS JOIN {table(Node)} n "
           "CROSS JOIN unnest(%(scanners)s::text[]) AS sc(name) WHERE s.org_id = %(org)s AND n.org_id = %(org)s", P)
        done("jobs", rows)

        # Findings: per_node per node. 2% critical, 8% high, 25% medium, 35% low, 30% info;
        # 80% open, 14% fixed, 3% false positive, 3% risk accepted; one in ten carries a CVE.
        rows = insert_select(cursor, Finding, {
            "org_id": "%(org)s", "node_id": "n.id",
            "source": "(ARRAY['tls','http','exposure','nuclei'])[1 + k %% 4]",
            "rule_id": "'bench-rule-' || (k %% 97)",
            "title": "'Bench finding ' || (k %% 97) || ' on port ' || (ARRAY[22,80,443,6379,8545,2375])[1 + k %% 6]",
            "severity": "CASE WHEN k %% 100 < 2 THEN 'critical' WHEN k %% 100 < 10 THEN 'high' "
                        "WHEN k %% 100 < 35 THEN 'medium' WHEN k %% 100 < 70 THEN 'low' ELSE 'info' END",
            "cvss_score": "CASE WHEN k %% 100 < 2 THEN 9.8 WHEN k %% 100 < 10 THEN 7.5 "
                          "WHEN k %% 100 < 35 THEN 5.3 WHEN k %% 100 < 70 THEN 3.1 ELSE NULL END",
            "cve_ids": "CASE WHEN k %% 10 = 0 THEN jsonb_build_array('CVE-20' || (14 + k %% 10) || '-' || (1000 + k %% 8999)) "
                       "ELSE '[]'::jsonb END",
            "port": "(ARRAY[22,80,443,6379,8545,2375])[1 + k %% 6]",
            "protocol": "'tcp'",
            "description": "'A generated finding for the console benchmark.'",
            "remediation": "'Upgrade or reconfigure the service.'",
            "evidence": "jsonb_build_object('banner', 'bench ' || k)",
            "fingerprint": "md5(n.id || ':' || k)",
            "content_hash": "left(md5(k::text), 32)",
            "status": "CASE WHEN (n.id + k) %% 100 < 80 THEN 'open' WHEN (n.id + k) %% 100 < 94 THEN 'fixed' "
                      "WHEN (n.id + k) %% 100 < 97 THEN 'false_positive' ELSE 'risk_accepted' END",
            # Spread over 200 days, so that some of the open findings are past their SLA.
            "first_seen": "now() - interval '5 days' - (k %% 200) * interval '1 day'",
            "last_seen": "now() - interval '1 day'",
            # The SLA's due date by severity (scans.findings.sla, the default policy), open findings only.
            "due_at": "CASE WHEN (n.id + k) %% 100 < 80 THEN now() - interval '5 days' - (k %% 200) * interval '1 day' "
                      "+ (CASE WHEN k %% 100 < 2 THEN 7 WHEN k %% 100 < 10 THEN 30 WHEN k %% 100 < 35 THEN 90 "
                      "ELSE 180 END) * interval '1 day' ELSE NULL END",
            # One finding in twenty is assigned to the benchmark's owner.
            "assignee_id": "CASE WHEN k %% 20 = 0 THEN %(owner)s ELSE NULL END",
            "first_session_id": "%(first_session)s", "last_session_id": "%(last_finished)s", "times_seen": f"{SESSIONS}",
            "fixed_at": "CASE WHEN (n.id + k) %% 100 BETWEEN 80 AND 93 THEN now() - interval '1 day' ELSE NULL END",
            "version": "1",
        }, f"{table(Node)} n CROSS JOIN generate_series(1, %(per_node)s) AS k WHERE n.org_id = %(org)s", P)
        done("findings", rows)

        # History: "new" in the first session for every finding, "fixed" in the last for the fixed ones.
        rows = insert_select(cursor, FindingEvent, {
            "finding_id": "f.id", "session_id": "%(first_session)s", "kind": "'new'", "to_status": "'open'",
            "at": "f.first_seen",
        }, f"{table(Finding)} f WHERE f.org_id = %(org)s", P)
        rows += insert_select(cursor, FindingEvent, {
            "finding_id": "f.id", "session_id": "%(last_finished)s", "kind": "'fixed'", "from_status": "'open'",
            "to_status": "'fixed'", "at": "f.fixed_at",
        }, f"{table(Finding)} f WHERE f.org_id = %(org)s AND f.status = 'fixed'", P)
        done("finding events", rows)
        # Fresh statistics before reading what was just written: with the planner still
        # believing the tables empty, the snapshot aggregate below runs once per node.
        for model in (Node, Finding, FindingEvent, ScanJob):
            cursor.execute(f"ANALYZE {table(model)}")
        done("analyze", 0)

        # The "by vulnerability" groups, as the scoring stage rewrites them after a session.
        finding_groups_refresh(org=org)
        done("finding groups", FindingGroup.objects.filter(org=org).count())

        # Snapshots from the open findings, as the scoring stage writes them.
        rows = insert_select(cursor, NodeSnapshot, {
            "node_id": "n.id", "org_id": "%(org)s",
            "score": "GREATEST(0, 100 - coalesce(c.critical, 0) * 8 - coalesce(c.high, 0) * 3 - coalesce(c.medium, 0))",
            "grade": "''",
            "critical": "coalesce(c.critical, 0)", "high": "coalesce(c.high, 0)", "medium": "coalesce(c.medium, 0)",
            "low": "coalesce(c.low, 0)", "info": "coalesce(c.info, 0)",
            "open_ports": "'[22, 443]'::jsonb", "protocols": "n.protocols",
            "last_scan_status": "'succeeded'", "last_scan_at": "now() - interval '1 day'",
            "open_interventions": "0", "updated_at": "now()",
        }, f"{table(Node)} n LEFT JOIN (SELECT node_id, "
           "count(*) FILTER (WHERE severity = 'critical') AS critical, count(*) FILTER (WHERE severity = 'high') AS high, "
           "count(*) FILTER (WHERE severity = 'medium') AS medium, count(*) FILTER (WHERE severity = 'low') AS low, "
           f"count(*) FILTER (WHERE severity = 'info') AS info FROM {table(Finding)} "
           "WHERE org_id = %(org)s AND status = 'open' GROUP BY node_id OFFSET 0) c ON c.node_id = n.id "
           "WHERE n.org_id = %(org)s", P)
        cursor.execute(f"UPDATE {table(NodeSnapshot)} SET grade = CASE WHEN score >= 90 THEN 'A' WHEN score >= 80 "
                       "THEN 'B' WHEN score >= 65 THEN 'C' WHEN score >= 40 THEN 'D' ELSE 'F' END WHERE org_id = %(org)s", P)
        done("snapshots", rows)

        rows = insert_select(cursor, NodeScore, {
            "node_id": "sn.node_id", "session_id": "NULL",
            "score": "LEAST(100, sn.score + h)", "grade": "sn.grade",
            "counts": "jsonb_build_object('critical', sn.critical, 'high', sn.high)",
            "created_at": "now() - h * interval '1 day'",
        }, f"{table(NodeSnapshot)} sn CROSS JOIN generate_series(0, {NODE_SCORE_HISTORY - 1}) AS h "
           "WHERE sn.org_id = %(org)s", P)
        done("node scores", rows)

        rows = insert_select(cursor, OrganizationScore, {
            "org_id": "%(org)s", "session_id": "NULL", "score": "40 + (h * 7) %% 30", "grade": "'D'",
            "node_count": "%(nodes)s", "created_at": "now() - h * interval '6 hours'",
        }, f"generate_series(0, {ORG_SCORE_HISTORY - 1}) AS h", P)
        done("organization scores", rows)

        # Interventions: open ones on failed jobs, nodes and (no node) stuck stages and rejected imports.
        rows = insert_select(cursor, Intervention, {
            "org_id": "%(org)s",
            "kind": "(ARRAY['job_exhausted','node_unreachable','stage_stuck','import_rejected','scanner_crashed'])[1 + i %% 5]",
            "state": f"CASE WHEN i <= {OPEN_INTERVENTIONS} THEN (CASE WHEN i %% 4 = 0 THEN 'acknowledged' ELSE 'open' END) "
                     "ELSE (CASE WHEN i %% 3 = 0 THEN 'dismissed' ELSE 'resolved' END) END",
            "subject": "'bench:' || i", "title": "'Bench intervention ' || i",
            "session_id": "%(last_finished)s",
            "node_id": f"CASE WHEN (1 + i %% 5) IN (3, 4) THEN NULL ELSE (SELECT min(id) FROM {table(Node)} WHERE org_id = %(org)s) + i %% %(nodes)s END",
            "context": "jsonb_build_object('error', 'generated', 'attempts', 3)",
            "opened_at": "now() - i * interval '7 minutes'",
            "closed_at": f"CASE WHEN i > {OPEN_INTERVENTIONS} THEN now() - i * interval '5 minutes' ELSE NULL END",
            "version": "1",
        }, f"generate_series(1, {OPEN_INTERVENTIONS + CLOSED_INTERVENTIONS}) AS i", P)
        done("interventions", rows)
    with connection.cursor() as cursor:
        for model in (Node, NodeSnapshot, NodeScore, ScanSession, ScanJob, Finding, FindingEvent, Intervention,
                      OrganizationScore):
            cursor.execute(f"VACUUM ANALYZE {table(model)}")
    done("vacuum analyze", 0)


def _drop(org) -> None:
    """Delete the organization's rows table by table, one statement each (not a cascade collected in Python)."""
    from scans.models import Finding, FindingEvent, ScanJob, ScanSession

    o = org.pk
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table(FindingEvent)} WHERE finding_id IN "
                       f"(SELECT id FROM {table(Finding)} WHERE org_id = %s)", [o])
        for model in (Finding, NodeSnapshot, OrganizationScore, Intervention, AuditEvent, Membership):
            cursor.execute(f"DELETE FROM {table(model)} WHERE org_id = %s", [o])
        cursor.execute(f"DELETE FROM {table(NodeScore)} WHERE node_id IN (SELECT id FROM {table(Node)} WHERE org_id = %s)", [o])
        cursor.execute(f"DELETE FROM {table(ScanJob)} WHERE session_id IN "
                       f"(SELECT id FROM {table(ScanSession)} WHERE org_id = %s)", [o])
        cursor.execute(f"DELETE FROM {table(ScanSession)} WHERE org_id = %s", [o])
        cursor.execute(f"DELETE FROM {table(Node)} WHERE org_id = %s", [o])
    org.delete()
