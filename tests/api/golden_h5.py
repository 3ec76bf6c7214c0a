"""Throwaway (helper h5, not committed): dump API, console and report outputs to compare before/after."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone as dt_tz
from decimal import Decimal

from django.utils import timezone

from nodes.models import Node, NodeScore, NodeSnapshot
from reports.models import Report
from reports.services import report_generate, report_request
from scans.models import CveRecord, Finding, ScanJob, ScanSession
from tests.factories import FindingFactory, NodeFactory, ScanJobFactory, ScanSessionFactory

OUT = os.environ.get("GOLDEN_OUT", "/tmp/h5/golden")
T0 = datetime(2026, 11, 30, 20, 5, 0, 123456, tzinfo=dt_tz.utc)
T1 = datetime(2026, 11, 29, 3, 0, 0, tzinfo=dt_tz.utc)


def _norm(text: str) -> str:
    text = re.sub(r'csrfmiddlewaretoken" value="[^"]+"', "CSRF", text)
    text = re.sub(r'"X-CSRFToken": "[^"]+"', "CSRF", text)
    text = re.sub(r"csrf[^\"']*[\"'][^\"']{20,}[\"']", "CSRF", text)
    text = re.sub(r"nonce=\"[^\"]+\"", "NONCE", text)
    text = re.sub(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:\d{2})?)?", "TIME", text)
    return text


def _dump(name: str, data: bytes | str, norm: bool = False) -> None:
    os.makedirs(OUT, exist_ok=True)
    if isinstance(data, bytes):
        data = data.decode()
    if norm:
        data = _norm(data)
    with open(os.path.join(OUT, name), "w") as f:
        f.write(data)


def test_dump(api, world, login, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    org = world.org
    a = NodeFactory(org=org, address="127.0.50.1", name="web", tags=["prod", "Édge"], protocols=["http"],
                    services=[{"port": 443}, {"port": 22}, {"port": 443}, "junk", {"name": "x"}],
                    last_discovered_at=T0, last_scanned_at=T1, state="up", hostname="web.lab")
    NodeSnapshot.objects.filter(node=a).update(score=72, grade="C", high=2, medium=3, info=4, open_ports=[22, 443],
                                               protocols=["http"], last_scan_status="succeeded", last_scan_at=T0,
                                               updated_at=T1, open_interventions=1)
    b = Node.objects.create(org=org, address="127.0.50.2", resolved_ip="127.0.50.2", services=[{"port": 80, "name": "http"}, 5])
    c = NodeFactory(org=org, address="::1", resolved_ip="::1", enabled=False)
    NodeSnapshot.objects.filter(node=c).update(updated_at=T0)
    NodeScore.objects.create(node=a, score=80, grade="B", counts={"high": 1}, created_at=T1)
    Node.objects.filter(pk__in=[a.pk, b.pk, c.pk]).update(created_at=T1, updated_at=T0)
    CveRecord.objects.create(cve_id="CVE-2021-44228", cvss_score=Decimal("10.0"), severity="critical",
                             description="Log4j.")
    session = ScanSessionFactory(org=org, status="succeeded", stage="done", started_at=T1, finished_at=T0,
                                 created_at=T1, heartbeat_at=T0, targets=["127.0.50.1"],
                                 stage_timings={"discovery": {"started_at": "2026-11-29T03:00:00+00:00",
                                                              "finished_at": "2026-11-29T03:00:04+00:00",
                                                              "seconds": 4.0}},
                                 jobs_total=2, jobs_succeeded=1, jobs_failed=1, findings_new=2)
    ScanJobFactory(session=session, node=a, scanner="http", status="succeeded", queued_at=T1, started_at=T1,
                   finished_at=T0)
    ScanJobFactory(session=session, node=b, scanner="tls", status="failed", error="refused <x>", attempts=3,
                   queued_at=T1)
    f1 = FindingFactory(node=a, source="nuclei", rule_id="CVE-2021-44228", title="Log4j <RCE>", severity="critical",
                        cvss_score=Decimal("10.0"), cvss_vector="CVSS:3.1/AV:N", cve_ids=["CVE-2021-44228"], port=8080,
                        evidence={"matched": "x", "n": 1}, remediation="Upgrade. Now.", first_seen=T1, last_seen=T0,
                        first_session=session, last_session=session, cwe=502, location="http://x/")
    FindingFactory(node=b, severity="low", cvss_score=Decimal("3.1"), first_seen=T1, last_seen=T1,
                   status="risk_accepted", risk_accepted_until=T0, triage_reason="lab", triaged_at=T1)
    FindingFactory(node=a, severity="info", first_seen=T0, last_seen=T0, first_session=session)
    FindingFactory(node=c, severity="high", cvss_score=Decimal("7.5"), first_seen=T0, last_seen=T0, status="fixed",
                   fixed_at=T0)
    client = api("read")
    for name, url in [
        ("nodes_list", "/api/v1/nodes/"),
        ("nodes_list_tag", "/api/v1/nodes/?tag=prod"),
        ("nodes_list_tag_upper", "/api/v1/nodes/?tag=PROD"),
        ("node_a", f"/api/v1/nodes/{a.pk}/"),
        ("node_b", f"/api/v1/nodes/{b.pk}/"),
        ("node_a_snapshot", f"/api/v1/nodes/{a.pk}/snapshot/"),
        ("node_a_scores", f"/api/v1/nodes/{a.pk}/scores/"),
        ("findings_list", "/api/v1/findings/"),
        ("findings_filtered", "/api/v1/findings/?severity=critical,low&cve=CVE-2021-44228"),
        ("finding_1", f"/api/v1/findings/{f1.pk}/"),
        ("sessions_list", "/api/v1/sessions/"),
        ("session", f"/api/v1/sessions/{session.pk}/"),
        ("session_jobs", f"/api/v1/sessions/{session.pk}/jobs/"),
        ("schema", "/api/v1/schema/"),
    ]:
        response = client.get(url)
        assert response.status_code == 200, (url, response.content[:300])
        _dump(name, response.content)
    console = login(world.owner)
    for name, url in [
        ("c_findings", "/o/acme/findings/"),
        ("c_findings_sev", "/o/acme/findings/?severity=low&sort=-last_seen"),
        ("c_nodes", "/o/acme/nodes/"),
        ("c_nodes_tag", "/o/acme/nodes/?tag=prod"),
        ("c_node", f"/o/acme/nodes/{a.pk}/"),
        ("c_session", f"/o/acme/sessions/{session.pk}/"),
        ("c_sessions", "/o/acme/sessions/"),
        ("c_dashboard", "/o/acme/"),
        ("c_session_new", "/o/acme/sessions/new/"),
    ]:
        response = console.get(url)
        assert response.status_code == 200, (url, response.content[:300])
        _dump(name, response.content, norm=True)
    for fmt in ("json", "csv", "sarif", "html"):
        for kind, extra in (("organization", {}), ("session", {"session": session}), ("node", {"node": a})):
            report = report_request(org=org, kind=kind, format=fmt, by=world.owner, **extra)
            report = report_generate(report_id=report.pk)
            assert report.status == Report.Status.READY, report.error
            with report.file.open("rb") as f:
                _dump(f"report_{kind}.{fmt}", f.read(), norm=True)
