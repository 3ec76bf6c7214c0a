"""findings_import: the pipeline's path from a file to findings, sessions, jobs and scores."""

from __future__ import annotations

import pytest

from interventions.models import Intervention
from nodes.models import Node, NodeScore, NodeSnapshot
from orgs.models import AuditEvent
from scans.findings.imports import findings_import
from scans.importers.base import ImportRejected
from scans.models import Finding, OrganizationScore, ScanJob, ScanSession
from tests.factories import NodeFactory
from tests.findings.conftest import nuclei_result

A, B = "127.0.20.1", "127.0.20.2"


def import_nuclei(world, path, **kwargs):
    return findings_import(org=world.org, fmt="nuclei", path=path, **kwargs)


def finding(rule_id, host=A):
    return Finding.objects.get(node__address=host, rule_id=rule_id)


def test_it_creates_new_findings_on_new_nodes(world, nuclei_file):
    path = nuclei_file([nuclei_result(A, "git-config"), nuclei_result(A, "exposed-env", severity="high"),
                        nuclei_result(B, "git-config")])

    report = import_nuclei(world, path)

    assert report.counts.as_dict() == {"new": 3, "updated": 0, "reopened": 0, "fixed": 0, "unchanged": 0}
    assert (report.nodes, report.nodes_created, report.findings) == (2, 2, 3)
    assert set(Node.objects.filter(org=world.org).values_list("address", flat=True)) == {A, B}
    assert NodeSnapshot.objects.filter(node__address__in=[A, B]).count() == 2
    created = finding("exposed-env")
    assert (created.status, created.severity, created.source, created.port) == ("open", "high", "nuclei", 80)
    assert created.first_session == created.last_session == report.session


def test_it_records_an_import_session_with_one_succeeded_job_per_node(world, nuclei_file):
    path = nuclei_file([nuclei_result(A, "git-config"), nuclei_result(B, "git-config")], name="weekly.jsonl")

    report = import_nuclei(world, path, by=world.analyst)

    session = ScanSession.objects.get(pk=report.session.pk)
    assert (session.trigger, session.status, session.stage) == ("import", "succeeded", "done")
    assert (session.jobs_total, session.jobs_succeeded, session.findings_new) == (2, 2, 2)
    assert session.requested_by == world.analyst
    assert session.summary["import"]["filename"] == "weekly.jsonl"
    jobs = ScanJob.objects.filter(session=session)
    assert {(j.node.address, j.scanner, j.status) for j in jobs} == {(A, "nuclei", "succeeded"), (B, "nuclei", "succeeded")}
    assert all(j.raw_result["findings"] == 1 and j.normalized for j in jobs)
    assert AuditEvent.objects.filter(verb="findings.imported", actor=world.analyst, target_id=str(session.pk)).exists()


def test_a_second_identical_import_leaves_every_finding_unchanged(world, nuclei_file):
    path = nuclei_file([nuclei_result(A, "git-config"), nuclei_result(A, "cors-misconfig")])
    import_nuclei(world, path)

    report = import_nuclei(world, path)

    assert report.counts.as_dict() == {"new": 0, "updated": 0, "reopened": 0, "fixed": 0, "unchanged": 2}
    assert finding("git-config").times_seen == 2
    assert finding("git-config").last_session == report.session
    assert Finding.objects.count() == 2


def test_a_changed_severity_updates_the_finding_in_place(world, nuclei_file):
    import_nuclei(world, nuclei_file([nuclei_result(A, "git-config", severity="medium")]))
    first_id = finding("git-config").pk

    report = import_nuclei(world, nuclei_file([nuclei_result(A, "git-config", severity="high", cvss=9.1)]))

    assert report.counts.updated == 1 and report.counts.new == 0
    updated = finding("git-config")
    assert (updated.pk, updated.severity, str(updated.cvss_score)) == (first_id, "critical", "9.1")


def test_a_finding_the_file_no_longer_reports_is_fixed(world, nuclei_file):
    import_nuclei(world, nuclei_file([nuclei_result(A, "git-config"), nuclei_result(A, "cors-misconfig")]))

    report = import_nuclei(world, nuclei_file([nuclei_result(A, "git-config")]))

    assert report.counts.fixed == 1 and report.counts.unchanged == 1
    gone = finding("cors-misconfig")
    assert gone.status == "fixed" and gone.fixed_at is not None
    assert ScanSession.objects.get(pk=report.session.pk).findings_fixed == 1


def test_a_fixed_finding_that_returns_is_reopened(world, nuclei_file):
    both = nuclei_file([nuclei_result(A, "git-config"), nuclei_result(A, "cors-misconfig")])
    import_nuclei(world, both)
    import_nuclei(world, nuclei_file([nuclei_result(A, "git-config")]))

    report = import_nuclei(world, both)

    assert report.counts.reopened == 1
    back = finding("cors-misconfig")
    assert (back.status, back.reopened_count, back.fixed_at) == ("open", 1, None)


def test_it_closes_nothing_on_hosts_the_file_does_not_cover(world, nuclei_file):
    import_nuclei(world, nuclei_file([nuclei_result(A, "git-config"), nuclei_result(B, "git-config")]))

    report = import_nuclei(world, nuclei_file([nuclei_result(A, "git-config")]))

    assert report.counts.fixed == 0
    assert finding("git-config", host=B).status == "open"


def test_it_closes_nothing_of_another_source(world, nuclei_file):
    node = NodeFactory(org=world.org, address=A)
    Finding.objects.create(org=world.org, node=node, source="tls", rule_id="tls-expired-cert", title="Expired",
                           severity="high", fingerprint="f" * 64)

    report = import_nuclei(world, nuclei_file([nuclei_result(A, "git-config")]))

    assert report.counts.fixed == 0
    assert Finding.objects.get(rule_id="tls-expired-cert").status == "open"


def test_a_rejected_import_closes_nothing_and_writes_nothing(world, nuclei_file):
    import_nuclei(world, nuclei_file([nuclei_result(A, "git-config"), nuclei_result(A, "cors-misconfig")]))
    before = (ScanSession.objects.count(), ScanJob.objects.count(), NodeScore.objects.count(),
              OrganizationScore.objects.count(), Node.objects.count())
    broken = nuclei_file([nuclei_result(A, "git-config")])
    broken.write_text(broken.read_text() + '{"template-id": "half a line\n')

    with pytest.raises(ImportRejected):
        import_nuclei(world, broken)

    assert set(Finding.objects.values_list("status", flat=True)) == {"open"}
    assert (ScanSession.objects.count(), ScanJob.objects.count(), NodeScore.objects.count(),
            OrganizationScore.objects.count(), Node.objects.count()) == before


def test_a_rejected_file_opens_an_import_rejected_intervention(world, nuclei_file):
    broken = nuclei_file([], name="broken.jsonl")
    broken.write_text("this is not json\n")

    with pytest.raises(ImportRejected) as raised:
        import_nuclei(world, broken)

    intervention = Intervention.objects.get(org=world.org, kind="import_rejected")
    assert intervention.state == "open"
    assert "broken.jsonl" in intervention.title
    assert intervention.context["error"] == raised.value.message
    assert intervention.context["format"] == "nuclei"


def test_the_same_rejected_file_twice_bumps_one_intervention(world, nuclei_file):
    broken = nuclei_file([], name="broken.jsonl")
    broken.write_text("this is not json\n")
    for _ in range(2):
        with pytest.raises(ImportRejected):
            import_nuclei(world, broken)

    assert Intervention.objects.get(kind="import_rejected").occurrences == 2


def test_a_host_outside_the_organization_scope_refuses_the_whole_file(world, nuclei_file):
    path = nuclei_file([nuclei_result(A, "git-config"), nuclei_result("10.1.2.3", "git-config")])

    with pytest.raises(ImportRejected, match=r"'10\.1\.2\.3' is outside the organization's scope \(127\.0\.0\.0/8\)"):
        import_nuclei(world, path)

    assert not Finding.objects.exists()
    assert not Node.objects.filter(address=A).exists()
    assert not ScanSession.objects.exists()
    assert "10.1.2.3" in Intervention.objects.get(kind="import_rejected").context["error"]


def test_a_host_name_is_in_scope_only_when_the_scope_declares_it(world, nuclei_file):
    record = nuclei_result("127.0.0.1", "git-config")
    record.pop("ip")
    record["host"] = record["matched-at"] = "http://app.lab.internal/"
    path = nuclei_file([record])
    with pytest.raises(ImportRejected, match="'app.lab.internal' is outside"):
        import_nuclei(world, path)

    world.org.scope_hostnames = ["*.lab.internal"]
    world.org.save(update_fields=["scope_hostnames"])
    report = import_nuclei(world, path)

    assert report.counts.new == 1
    assert Node.objects.filter(org=world.org, address="app.lab.internal").exists()


def test_findings_without_a_host_go_to_the_named_node(world, nuclei_file):
    record = nuclei_result(A, "git-config")
    for key in ("ip", "host", "matched-at"):
        record.pop(key)
    path = nuclei_file([record])
    with pytest.raises(ImportRejected, match="name no host"):
        import_nuclei(world, path)

    report = import_nuclei(world, path, node_address="127.0.20.9")

    assert report.counts.new == 1
    assert Finding.objects.get().node.address == "127.0.20.9"


def test_the_named_node_must_be_in_scope_too(world, nuclei_file):
    with pytest.raises(ImportRejected, match="outside the organization's scope"):
        import_nuclei(world, nuclei_file([nuclei_result(A, "git-config")]), node_address="192.0.2.1")


def test_it_maps_hosts_onto_existing_nodes(world, nuclei_file):
    node = NodeFactory(org=world.org, address=A)
    NodeFactory(org=world.other_org, address=A)

    report = import_nuclei(world, nuclei_file([nuclei_result(A, "git-config")]))

    assert report.nodes_created == 0
    assert Finding.objects.get().node == node


def test_it_scores_the_nodes_it_touched(world, nuclei_file):
    report = import_nuclei(world, nuclei_file([nuclei_result(A, "log4j", severity="critical", cvss=10.0)]))

    snapshot = NodeSnapshot.objects.get(node__address=A)
    assert (snapshot.critical, snapshot.score, snapshot.grade) == (1, 70, "C")
    assert (snapshot.last_scan_status, snapshot.last_scan_at is not None) == ("succeeded", True)
    assert NodeScore.objects.get(node__address=A, session=report.session).score == 70
    assert OrganizationScore.objects.get(org=world.org, session=report.session).node_count == 1


def test_an_empty_file_for_a_named_node_fixes_what_it_no_longer_reports(world, nuclei_file):
    import_nuclei(world, nuclei_file([nuclei_result(A, "git-config")]))

    report = import_nuclei(world, nuclei_file([]), node_address=A)

    assert report.counts.fixed == 1
    assert finding("git-config").status == "fixed"


def test_ingest_queries_stay_constant_with_many_findings_present(world, nuclei_file, django_assert_max_num_queries):
    hosts = [f"127.0.21.{i}" for i in range(1, 41)]
    records = [nuclei_result(h, f"template-{t}", path=f"/p{t}") for h in hosts for t in range(50)]
    path = nuclei_file(records)
    import_nuclei(world, path)
    assert Finding.objects.count() == 2000

    # Two lifecycle batches of 1,000 and 40 nodes: a bounded number of queries, not one per row or node.
    with django_assert_max_num_queries(40):
        report = import_nuclei(world, path)

    assert report.counts.unchanged == 2000
