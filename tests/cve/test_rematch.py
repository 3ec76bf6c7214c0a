"""Re-matching without rescans: a catalog update matched against the services already stored."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.bulk import bulk_insert
from nodes.models import Node, NodeSnapshot
from scans.cve.analysis import cve_candidates_by_node
from scans.cve.catalog import cve_catalog_import
from scans.cve.rematch import catalog_rematch
from scans.cve.service_index import service_products_replace
from scans.findings.candidates import FindingCandidate, ServiceObservation
from scans.findings.lifecycle import findings_ingest
from scans.models import Finding, FindingEvent, ServiceProduct
from scans.pipeline.stages import analysis
from scans.tasks import catalog_rematch_task
from tests.factories import NodeFactory, ScanJobFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db

NGINX = ("f5", "nginx")


def nvd_cve(cve_id, *, vendor="f5", product="nginx", below="1.25.0", score=7.5, status="Analyzed",
            modified="2026-01-01T00:00:00.000"):
    return {
        "id": cve_id, "published": "2025-06-01T00:00:00.000", "lastModified": modified, "vulnStatus": status,
        "descriptions": [{"lang": "en", "value": f"A flaw in {product}."}],
        "metrics": {"cvssMetricV31": [{"source": "nvd@nist.gov", "type": "Primary", "cvssData": {
            "version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
            "baseScore": score, "baseSeverity": "HIGH"}}]},
        "weaknesses": [{"source": "nvd@nist.gov", "type": "Primary",
                        "description": [{"lang": "en", "value": "CWE-787"}]}],
        "configurations": [] if status == "Rejected" else [{"nodes": [{"operator": "OR", "negate": False, "cpeMatch": [
            {"vulnerable": True, "criteria": f"cpe:2.3:a:{vendor}:{product}:*:*:*:*:*:*:*:*",
             "versionEndExcluding": below}]}]}],
        "references": [{"url": f"https://example.invalid/{cve_id}"}],
    }


@pytest.fixture
def catalog_update(tmp_path):
    """Import NVD records as a sync would, and return the ids it changed."""
    def update(*cves):
        path = tmp_path / f"update-{len(list(tmp_path.iterdir()))}.json"
        path.write_text(json.dumps({"resultsPerPage": len(cves), "startIndex": 0, "totalResults": len(cves),
                                    "format": "NVD_CVE", "version": "2.0", "timestamp": "2026-01-01T00:00:00.000",
                                    "vulnerabilities": [{"cve": c} for c in cves]}))
        cve_catalog_import(paths=[path])
        return [c["id"] for c in cves]
    return update


def service(host, port, product, version, cpe=""):
    return ServiceObservation(host=host, port=port, service="http", product=product, version=version, cpe=cpe,
                              confidence=1.0)


def nginx(host, version="1.24.0", port=80):
    return service(host, port, "nginx", version, f"cpe:2.3:a:f5:nginx:{version}:*:*:*:*:*:*:*")


def observed(node, *services):
    """What discovery stores on a node, and the product rows an analysis writes beside it."""
    node.services = [s.to_dict() for s in services]
    node.save(update_fields=["services"])
    service_products_replace(org_id=node.org_id, services={node.pk: list(services)})
    return node


def cve_findings(**filters):
    return Finding.objects.filter(source="cve", **filters)


def test_a_new_cve_for_a_product_seen_on_two_organizations_becomes_two_findings_found_by_the_catalog(
        world, catalog_update):
    ours = observed(NodeFactory(org=world.org, address="127.0.0.10"), nginx("127.0.0.10"),
                    service("127.0.0.10", 22, "OpenSSH", "9.8p1", "cpe:2.3:a:openbsd:openssh:9.8p1:*:*:*:*:*:*:*"))
    theirs = observed(NodeFactory(org=world.other_org, address="127.0.0.20"), nginx("127.0.0.20", "1.22.1"))

    counts = catalog_rematch(cve_ids=catalog_update(nvd_cve("CVE-2026-1000")))

    found = {(f.org_id, f.node_id): f for f in cve_findings(rule_id="CVE-2026-1000")}
    assert set(found) == {(world.org.pk, ours.pk), (world.other_org.pk, theirs.pk)}
    assert (counts.new, counts.services, counts.nodes) == (2, 2, 2)  # the OpenSSH service was not matched
    for finding in found.values():
        assert (finding.status, finding.port, str(finding.cvss_score), finding.severity) == ("open", 80, "7.5", "high")
        event = finding.events.get()
        assert (event.kind, event.to_status, event.reason) == (FindingEvent.Kind.CATALOG, "open",
                                                               "found by a catalog update")
    assert found[(world.org.pk, ours.pk)].title == "CVE-2026-1000 in nginx 1.24.0"
    assert NodeSnapshot.objects.get(node=ours).high == 1  # rescored


def test_a_version_outside_the_updated_range_is_not_matched(world, catalog_update):
    observed(NodeFactory(org=world.org), nginx("127.0.0.10", "1.26.0"))

    counts = catalog_rematch(cve_ids=catalog_update(nvd_cve("CVE-2026-1000", below="1.25.0")))

    assert counts.services == 1 and counts.new == 0
    assert not cve_findings().exists()


def test_a_new_cvss_revalues_the_known_finding(world, catalog_update):
    node = observed(NodeFactory(org=world.org), nginx("127.0.0.10"))
    catalog_rematch(cve_ids=catalog_update(nvd_cve("CVE-2026-1000", score=5.3)))
    assert NodeSnapshot.objects.get(node=node).medium == 1

    counts = catalog_rematch(cve_ids=catalog_update(
        nvd_cve("CVE-2026-1000", score=9.8, modified="2026-02-01T00:00:00.000")))

    finding = cve_findings().get()
    assert (counts.updated, counts.new, str(finding.cvss_score), finding.severity) == (1, 0, "9.8", "critical")
    assert finding.events.filter(reason="revalued by a catalog update").count() == 1
    snapshot = NodeSnapshot.objects.get(node=node)
    assert (snapshot.critical, snapshot.medium) == (1, 0)


def test_a_cve_that_nvd_rejects_closes_its_findings_with_that_reason(world, catalog_update):
    node = observed(NodeFactory(org=world.org), nginx("127.0.0.10"))
    catalog_rematch(cve_ids=catalog_update(nvd_cve("CVE-2026-1000")))

    counts = catalog_rematch(cve_ids=catalog_update(
        nvd_cve("CVE-2026-1000", status="Rejected", modified="2026-03-01T00:00:00.000")))

    finding = cve_findings().get()
    assert (counts.rejected, counts.withdrawn) == (1, 1)
    assert (finding.status, finding.triage_reason, finding.triaged_by) == ("false_positive", "rejected by NVD", None)
    event = finding.events.order_by("-id").first()
    assert (event.kind, event.from_status, event.to_status, event.reason) == (
        FindingEvent.Kind.CATALOG, "open", "false_positive", "rejected by NVD")
    assert NodeSnapshot.objects.get(node=node).high == 0


def test_a_record_that_stops_naming_the_product_closes_its_finding_and_nothing_else(world, catalog_update):
    observed(NodeFactory(org=world.org), nginx("127.0.0.10"))
    catalog_rematch(cve_ids=catalog_update(nvd_cve("CVE-2026-1000"), nvd_cve("CVE-2026-1001")))

    counts = catalog_rematch(cve_ids=catalog_update(
        nvd_cve("CVE-2026-1000", vendor="apache", product="http_server", modified="2026-02-01T00:00:00.000")))

    assert counts.fixed == 1
    assert cve_findings(rule_id="CVE-2026-1000").get().status == "fixed"
    assert cve_findings(rule_id="CVE-2026-1000").get().events.order_by("-id").first().reason == (
        "no longer matched after a catalog update")
    assert cve_findings(rule_id="CVE-2026-1001").get().status == "open"  # not in the update: not judged


def test_findings_of_other_sources_are_left_alone(world, catalog_update):
    node = observed(NodeFactory(org=world.org), nginx("127.0.0.10"))
    findings_ingest(org=world.org, source="nuclei", complete=True, items=[(node.pk, FindingCandidate(
        source="nuclei", rule_id="CVE-2026-1000", title="nginx flaw", port=80, cve_ids=("CVE-2026-1000",),
        severity="low"))])
    nuclei = Finding.objects.filter(source="nuclei").values("status", "severity", "last_seen", "cvss_score")
    before = nuclei.get()

    catalog_rematch(cve_ids=catalog_update(nvd_cve("CVE-2026-1000")))
    catalog_rematch(cve_ids=catalog_update(
        nvd_cve("CVE-2026-1000", status="Rejected", modified="2026-03-01T00:00:00.000")))

    assert nuclei.get() == before


def test_a_person_s_triage_is_kept_through_revaluation_and_rejection(world, catalog_update):
    observed(NodeFactory(org=world.org), nginx("127.0.0.10"))
    catalog_rematch(cve_ids=catalog_update(nvd_cve("CVE-2026-1000")))
    cve_findings().update(status="risk_accepted", triage_reason="behind a VPN",
                          risk_accepted_until=timezone.now() + timedelta(days=30))

    catalog_rematch(cve_ids=catalog_update(nvd_cve("CVE-2026-1000", score=9.8, modified="2026-02-01T00:00:00.000")))
    catalog_rematch(cve_ids=catalog_update(
        nvd_cve("CVE-2026-1000", status="Rejected", modified="2026-03-01T00:00:00.000")))

    finding = cve_findings().get()
    assert (finding.status, finding.triage_reason, str(finding.cvss_score)) == ("risk_accepted", "behind a VPN", "9.8")


def test_a_rematch_keeps_when_and_in_which_session_a_finding_was_last_seen(world, catalog_update):
    node = observed(NodeFactory(org=world.org, address="127.0.0.10"), nginx("127.0.0.10"))
    catalog_rematch(cve_ids=catalog_update(nvd_cve("CVE-2026-1000")))
    session = ScanSessionFactory(org=world.org)
    scanned_at = timezone.now()
    candidate = FindingCandidate.from_dict(
        {**cve_candidate(node), "evidence": {**cve_candidate(node)["evidence"], "banner": "nginx/1.24.0"}})
    findings_ingest(org=world.org, source="cve", items=[(node.pk, candidate)], complete=True, session=session,
                    seen_at=scanned_at)
    seen = ("last_seen", "last_session_id", "times_seen")
    before = cve_findings().values(*seen).get()
    assert before == {"last_seen": scanned_at, "last_session_id": session.pk, "times_seen": 2}

    catalog_rematch(cve_ids=catalog_update(nvd_cve("CVE-2026-1000", score=9.8, modified="2026-02-01T00:00:00.000")))
    catalog_rematch(cve_ids=catalog_update(nvd_cve("CVE-2026-1000", score=9.8, modified="2026-03-01T00:00:00.000")))

    assert cve_findings().values(*seen).get() == before
    assert str(cve_findings().get().cvss_score) == "9.8"


def cve_candidate(node):
    """The candidate the analysis stage would make of the node's stored services now."""
    found = cve_candidates_by_node({node.pk: [ServiceObservation.from_dict(s) for s in node.services]})
    return found[node.pk][0].to_dict()


def test_running_twice_changes_nothing_the_second_time(world, catalog_update):
    node = observed(NodeFactory(org=world.org), nginx("127.0.0.10"))
    ids = catalog_update(nvd_cve("CVE-2026-1000"), nvd_cve("CVE-2026-1001", status="Rejected"))
    catalog_rematch(cve_ids=ids)
    state = list(Finding.objects.values("id", "status", "content_hash", "cvss_score"))
    events, scores = FindingEvent.objects.count(), node.scores.count()

    counts = catalog_rematch(cve_ids=ids)

    assert (counts.new, counts.updated, counts.reopened, counts.fixed, counts.withdrawn, counts.rescored) == (
        0, 0, 0, 0, 0, 0)
    assert counts.unchanged == 1
    assert list(Finding.objects.values("id", "status", "content_hash", "cvss_score")) == state
    assert (FindingEvent.objects.count(), node.scores.count()) == (events, scores)


def test_the_rematch_reads_the_same_as_the_analysis_stage(world, catalog_update):
    """A finding the catalog found is the one a rescan would have made: the rescan sees it unchanged,
    and the analysis writes the node's product rows again."""
    node = observed(NodeFactory(org=world.org, address="127.0.0.10"), nginx("127.0.0.10"))
    catalog_rematch(cve_ids=catalog_update(nvd_cve("CVE-2026-1000")))
    session = ScanSessionFactory(org=world.org, stage="analysis", status="running")
    ScanJobFactory(session=session, node=node, scanner="discovery", status="succeeded")
    Node.objects.filter(pk=node.pk).update(state=Node.State.UP)
    ServiceProduct.objects.filter(node=node).delete()

    analysis(session)

    job = session.jobs.get(scanner="cve")
    candidate = FindingCandidate.from_dict(job.raw_result["findings"][0])
    counts = findings_ingest(org=world.org, source="cve", items=[(node.pk, candidate)], complete=True)
    assert (counts.unchanged, counts.new, counts.updated) == (1, 0, 0)
    assert set(ServiceProduct.objects.filter(node=node).values_list("vendor", "product")) >= {NGINX}


def _fleet(org, *, matching: int, others: int):
    """``matching`` nginx services and ``others`` OpenSSH ones, three per node, stored in bulk."""
    nodes = [Node(org=org, address=f"127.1.{i // 250}.{i % 250}") for i in range(-(-(matching + others) // 3))]
    bulk_insert(nodes)
    nodes = list(Node.objects.filter(org=org).order_by("pk"))
    services: dict[int, list[ServiceObservation]] = {}
    kinds = ["nginx"] * matching + ["ssh"] * others
    for index, kind in enumerate(kinds):
        node = nodes[index // 3]
        port = 80 + index % 3
        made = nginx(node.address, port=port) if kind == "nginx" else service(
            node.address, 2200 + index % 3, "OpenSSH", "9.8p1", "cpe:2.3:a:openbsd:openssh:9.8p1:*:*:*:*:*:*:*")
        services.setdefault(node.pk, []).append(made)
    for node in nodes:
        node.services = [s.to_dict() for s in services[node.pk]]
    Node.objects.bulk_update(nodes, ["services"], batch_size=1000)
    service_products_replace(org_id=org.pk, services=services)


def _queries(ids) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        counts = catalog_rematch(cve_ids=ids)
    return len(captured), counts


def test_services_of_other_products_are_not_read(world, catalog_update):
    ids = catalog_update(nvd_cve("CVE-2026-1000"))
    _fleet(world.org, matching=30, others=1000)
    few, counts_few = _queries(ids)
    Finding.objects.all().delete()
    Node.objects.all().delete()
    _fleet(world.org, matching=30, others=3000)

    many, counts_many = _queries(ids)

    assert counts_few.services == counts_many.services == 30
    assert many == few


def test_queries_stay_constant_per_thousand_services_matched(world, catalog_update):
    ids = catalog_update(nvd_cve("CVE-2026-1000"))
    _fleet(world.org, matching=999, others=0)
    few, counts_few = _queries(ids)
    Finding.objects.all().delete()
    Node.objects.all().delete()
    _fleet(world.org, matching=2997, others=0)

    many, counts_many = _queries(ids)

    assert (counts_few.new, counts_many.new) == (999, 2997)
    # Counted through Django's cursor: the lifecycle's prepared statement per batch of a thousand
    # findings is its own (tests/lifecycle); everything the re-match asks is the same for both.
    assert many == few


def test_the_command_rematches_everything_and_rebuilds_the_product_rows(world, catalog_update, capsys):
    catalog_update(nvd_cve("CVE-2026-1000"))
    node = NodeFactory(org=world.org, address="127.0.0.10", services=[nginx("127.0.0.10").to_dict()])
    assert not ServiceProduct.objects.exists()  # stored before the rows existed

    call_command("rematch_cves", "--all")

    assert "1 new" in capsys.readouterr().out
    assert cve_findings(node=node).get().events.get().reason == "found by a catalog update"
    assert set(ServiceProduct.objects.filter(node=node).values_list("vendor", "product")) >= {NGINX}


def test_the_task_rematches_the_ids_it_is_given(world, catalog_update):
    observed(NodeFactory(org=world.org), nginx("127.0.0.10"))
    ids = catalog_update(nvd_cve("CVE-2026-1000"))

    result = catalog_rematch_task.apply(args=[ids]).get()

    assert (result["new"], result["services"]) == (1, 1)


def test_the_command_refuses_a_malformed_id_or_no_choice():
    with pytest.raises(CommandError, match="Not a CVE id"):
        call_command("rematch_cves", "nginx")
    with pytest.raises(CommandError, match="or give --all"):
        call_command("rematch_cves")


def test_an_import_of_nvd_files_hands_the_records_it_changed_to_a_rematch_with_kev_and_epss_values(
        world, tmp_path):
    from scans.cve.nvd_sync import nvd_files_import
    from scans.models import EpssScore, KevEntry
    from scans.pipeline import dispatch

    node = observed(NodeFactory(org=world.org, address="127.0.0.10"), nginx("127.0.0.10"))
    KevEntry.objects.create(cve_id="CVE-2026-1000", date_added="2026-02-01", known_ransomware_use=True)
    EpssScore.objects.create(cve_id="CVE-2026-1000", score=0.91, percentile=0.993, model_date="2026-12-06")
    path = tmp_path / "nvd.json"
    path.write_text(json.dumps({"resultsPerPage": 1, "startIndex": 0, "totalResults": 1, "format": "NVD_CVE",
                                "version": "2.0", "timestamp": "2026-01-01T00:00:00.000",
                                "vulnerabilities": [{"cve": nvd_cve("CVE-2026-1000")}]}))

    with dispatch.inline() as queue:
        nvd_files_import(paths=[path])
        assert list(queue) == [("scans.tasks.catalog_rematch", {"cve_ids": ["CVE-2026-1000"]})]
        dispatch.drain()

    finding = cve_findings(node=node).get()
    assert finding.events.get().reason == "found by a catalog update"
    assert (str(finding.kev_added), finding.kev_ransomware, finding.epss_percentile) == ("2026-02-01", True, 0.993)


def test_an_update_too_large_to_name_record_by_record_is_handed_over_as_the_whole_catalog(monkeypatch):
    from scans.cve import rematch
    from scans.pipeline import dispatch

    monkeypatch.setattr(rematch, "WHOLE_CATALOG_ABOVE", 2)
    with dispatch.inline() as queue:
        rematch.catalog_changed(["CVE-2026-1", "CVE-2026-2"])
        rematch.catalog_changed(["CVE-2026-1", "CVE-2026-2", "CVE-2026-3"])
        rematch.catalog_changed([])
        assert list(queue) == [("scans.tasks.catalog_rematch", {"cve_ids": ["CVE-2026-1", "CVE-2026-2"]}),
                               ("scans.tasks.catalog_rematch", {"cve_ids": None})]
