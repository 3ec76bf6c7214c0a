"""What changed: since the previous comparable report (new, fixed, reopened, risk-accepted, severity changed),
and for a session's report, what that session did."""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone

from reports.models import Report
from reports.services import report_generate
from scans.findings.candidates import Coverage, FindingCandidate
from scans.findings.lifecycle import findings_ingest
from scans.findings.triage import finding_triage
from scans.models import Finding
from tests.factories import NodeFactory, ScanJobFactory, ScanSessionFactory


def scan(org, node, candidates, *, at):
    """One completed session of the ``http`` source over the whole node, through the real lifecycle."""
    session = ScanSessionFactory(org=org, status="succeeded", stage="done", started_at=at, finished_at=at)
    ScanJobFactory(session=session, node=node, scanner="http", status="succeeded")
    findings_ingest(org=org, source="http", items=[(node.pk, c) for c in candidates], complete=True, session=session,
                    coverage={node.pk: Coverage(host=node.address, whole_host=True)}, seen_at=at)
    return session


def candidate(rule, cvss=5.0):
    return FindingCandidate(source="http", rule_id=rule, title=f"Problem {rule}", host="127.0.70.1", port=443,
                            cvss_score=cvss, remediation="Fix it.")


def session_report(org, session, fmt="json") -> Report:
    report = Report.objects.create(org=org, kind=Report.Kind.SESSION, format=fmt, session=session,
                                   trigger=Report.Trigger.CONSOLE)
    report = report_generate(report_id=report.pk)
    assert report.status == Report.Status.READY, report.error
    return report


def node_report(org, node, fmt="json") -> Report:
    report = report_generate(report_id=Report.objects.create(org=org, kind=Report.Kind.NODE, node=node, format=fmt).pk)
    assert report.status == Report.Status.READY, report.error
    return report


def titles(changes, kind):
    return sorted(f["title"] for f in changes["examples"][kind])


def test_two_reports_compare_new_fixed_reopened_risk_accepted_and_severity_changed(world):
    org = world.org
    node = NodeFactory(org=org, address="127.0.70.1")
    start = timezone.now() - timedelta(days=3)
    scan(org, node, [candidate("f")], at=start)
    first = scan(org, node, [candidate("a"), candidate("b"), candidate("c"), candidate("d")], at=start + timedelta(days=1))
    assert Finding.objects.get(rule_id="f").status == Finding.Status.FIXED
    earlier = node_report(org, node)
    assert earlier.changes["previous"] is None

    second = scan(org, node, [candidate("a", cvss=9.1), candidate("c"), candidate("d"), candidate("e"), candidate("f")],
                  at=start + timedelta(days=2))
    finding_triage(finding=Finding.objects.get(rule_id="d"), status=Finding.Status.RISK_ACCEPTED, by=world.analyst,
                   reason="Behind the VPN until the migration", until=timezone.now() + timedelta(days=30))
    later = node_report(org, node, fmt="html")

    changes = later.changes
    assert changes["previous"]["id"] == earlier.pk
    assert changes["counts"] == {"new": 1, "fixed": 1, "reopened": 1, "risk_accepted": 1, "severity_changed": 1}
    assert titles(changes, "new") == ["Problem e"]
    assert titles(changes, "fixed") == ["Problem b"]
    assert titles(changes, "reopened") == ["Problem f"]
    assert titles(changes, "risk_accepted") == ["Problem d"]
    assert changes["examples"]["severity_changed"][0] | {"id": 0} == {
        "id": 0, "title": "Problem a", "severity": "critical", "was": "medium", "node": "127.0.70.1"}
    assert later.period_start == earlier.created_at

    html = later.file.open("rb").read().decode()
    assert "Since the previous node report (#%d" % earlier.pk in html
    assert "Problem a on 127.0.70.1 (was medium)" in html


def test_a_session_report_says_what_that_session_changed_whatever_report_came_before(world):
    org = world.org
    node = NodeFactory(org=org, address="127.0.70.1")
    start = timezone.now() - timedelta(days=3)
    first = scan(org, node, [candidate("a"), candidate("b"), candidate("f")], at=start)
    scan(org, node, [candidate("a")], at=start + timedelta(days=1))
    node_report(org, node)  # a report in between: not what a session report compares with
    quiet = scan(org, node, [candidate("a")], at=start + timedelta(days=2))

    assert session_report(org, quiet).changes["counts"] == {"new": 0, "fixed": 0, "reopened": 0}
    busy = scan(org, node, [candidate("a"), candidate("b"), candidate("e")], at=start + timedelta(days=3))
    report = session_report(org, busy, fmt="html")
    assert report.changes["session"] == busy.pk and report.changes["previous"] is None
    assert report.changes["counts"] == {"new": 1, "fixed": 0, "reopened": 1}
    assert titles(report.changes, "new") == ["Problem e"] and titles(report.changes, "reopened") == ["Problem b"]
    assert session_report(org, first).changes["counts"] == {"new": 3, "fixed": 0, "reopened": 0}
    html = report.file.open("rb").read().decode()
    assert f"What session #{busy.pk} found new, fixed and reopened" in html


def test_the_stored_state_is_compact_and_the_next_report_compares_with_it(world):
    node = NodeFactory(org=world.org, address="127.0.70.1")
    scan(world.org, node, [candidate("a"), candidate("b", cvss=7.5)], at=timezone.now())
    report = node_report(world.org, node)

    ids = dict(Finding.objects.values_list("rule_id", "pk"))
    assert report.finding_state == {str(ids["a"]): ["open", "medium"], str(ids["b"]): ["open", "high"]}
    again = node_report(world.org, node, fmt="csv")
    assert again.changes["previous"]["id"] == report.pk
    assert set(again.changes["counts"].values()) == {0}


def test_only_a_report_of_the_same_kind_and_subject_is_comparable(world):
    web = NodeFactory(org=world.org, address="127.0.70.1")
    db = NodeFactory(org=world.org, address="127.0.70.2")
    session = scan(world.org, web, [candidate("a")], at=timezone.now())
    session_report(world.org, session)
    web_report = report_generate(report_id=Report.objects.create(org=world.org, kind="node", node=web, format="json").pk)
    db_report = report_generate(report_id=Report.objects.create(org=world.org, kind="node", node=db, format="json").pk)
    web_again = report_generate(report_id=Report.objects.create(org=world.org, kind="node", node=web, format="json").pk)

    assert web_report.changes["previous"] is None and db_report.changes["previous"] is None
    assert web_again.changes["previous"]["id"] == web_report.pk
    document = json.loads(web_again.file.open("rb").read())
    assert document["changes"]["previous"]["id"] == web_report.pk
