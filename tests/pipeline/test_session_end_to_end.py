"""A session runs all seven stages inline against lab nodes and ends with findings, scores and a report."""

from __future__ import annotations

from nodes.models import Node
from reports.models import Report
from scans.models import Finding, ScanJob, ScanSession


def test_a_session_runs_every_stage_and_records_findings(world, lab_nodes, quick_profile, run_inline):
    addresses = lab_nodes(2)
    session = run_inline(org=world.org, trigger=ScanSession.Trigger.CLI, targets=addresses, profile=quick_profile)

    assert session.status == ScanSession.Status.SUCCEEDED, session.summary
    assert session.stage == ScanSession.Stage.DONE
    assert [s["stage"] for s in session.summary["stages"] if s["seconds"] is not None] == [
        "discovery", "scan_creation", "execution", "analysis", "normalization", "scoring", "reporting"]
    assert session.nodes_total == 2
    assert session.jobs_total == session.jobs_succeeded == 4
    assert Node.objects.filter(org=world.org, address__in=addresses, state=Node.State.UP).count() == 2
    assert session.findings_new > 0
    assert Finding.objects.filter(org=world.org, rule_id__icontains="redis").count() == 2
    assert ScanJob.objects.filter(session=session, normalized=False).exclude(scanner="discovery").count() == 0
    assert Report.objects.get(session=session).summary["status"] == "succeeded"

