"""Open findings by vulnerability: the groups kept set-wise, the console page, the API, and triage of a group."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from orgs.services import organization_update_settings
from scans.findings.groups import finding_groups_refresh, finding_groups_refresh_for_nodes
from scans.findings.scoring import scoring_run
from scans.findings.triage import finding_triage, findings_triage_bulk
from scans.models import Finding, FindingGroup
from scans.selectors import finding_filters_from
from tests.factories import FindingFactory, NodeFactory

pytestmark = pytest.mark.django_db


def url(name, *args, slug="acme"):
    return reverse(f"scans:{name}", args=[slug, *args])


@pytest.fixture
def nginx(world):
    """CVE-2021-23017 on three nodes (two ports), one of them also fixed elsewhere; one other rule."""
    now = timezone.now()
    nodes = [NodeFactory(org=world.org, name=f"web-{n}") for n in range(3)]
    for n, node in enumerate(nodes):
        FindingFactory(node=node, rule_id="CVE-2021-23017", cve_ids=["CVE-2021-23017"], source="cve",
                       severity="high" if n else "medium", priority=3 - (n == 2), port=443 if n else 80,
                       title="nginx resolver off-by-one", first_seen=now - timedelta(days=10 + n),
                       due_at=now + timedelta(days=30 - n) if n else None)
    FindingFactory(node=nodes[0], rule_id="CVE-2021-23017", status="fixed", port=8443)
    FindingFactory(node=nodes[0], rule_id="tls-weak-protocol", severity="critical", priority=1, port=443)
    finding_groups_refresh(org=world.org)
    return nodes


def test_a_group_sums_up_its_rules_open_findings(world, nginx):
    group = FindingGroup.objects.get(org=world.org, rule_id="CVE-2021-23017")
    assert (group.open_count, group.node_count, group.ports, group.port_count) == (3, 3, [80, 443], 2)
    assert group.severity == "high" and group.priority == 2 and group.cve_ids == ["CVE-2021-23017"]
    assert group.first_seen == Finding.objects.filter(rule_id="CVE-2021-23017", status="open").order_by(
        "first_seen").first().first_seen
    assert group.due_at == Finding.objects.filter(rule_id="CVE-2021-23017").exclude(due_at=None).order_by(
        "due_at").first().due_at


def test_groups_are_sorted_by_their_most_urgent_finding_then_by_size(world, login, nginx):
    response = login(world.viewer).get(url("finding_groups"))
    assert response.status_code == 200
    assert [g.rule_id for g in response.context["page"].object_list] == ["tls-weak-protocol", "CVE-2021-23017"]
    content = response.content.decode()
    assert "?status=open&amp;rule=CVE-2021-23017" in content and "80, 443" in content


def test_triaging_a_finding_moves_its_group_and_triaging_the_last_one_removes_it(world, nginx):
    weak = Finding.objects.get(rule_id="tls-weak-protocol")
    finding_triage(finding=weak, status="false_positive", by=world.analyst, reason="lab")
    assert not FindingGroup.objects.filter(org=world.org, rule_id="tls-weak-protocol").exists()
    one = Finding.objects.filter(rule_id="CVE-2021-23017", status="open", port=80).get()
    finding_triage(finding=one, status="false_positive", by=world.analyst, reason="patched")
    group = FindingGroup.objects.get(org=world.org, rule_id="CVE-2021-23017")
    assert (group.open_count, group.node_count, group.ports) == (2, 2, [443])


def test_a_rescan_that_fixes_findings_rewrites_the_groups_of_its_nodes(world, nginx):
    Finding.objects.filter(node=nginx[1], rule_id="CVE-2021-23017").update(status="fixed")
    scoring_run(org=world.org, node_ids=[nginx[1].pk])
    assert FindingGroup.objects.get(org=world.org, rule_id="CVE-2021-23017").open_count == 2


def test_the_groups_of_a_nodes_rules_are_rewritten_in_one_statement_and_an_emptied_one_removed(
        world, nginx, statements):
    Finding.objects.filter(node=nginx[0], rule_id="tls-weak-protocol").update(status="fixed")
    Finding.objects.filter(node=nginx[0], rule_id="CVE-2021-23017", status="open").update(severity="critical")
    other = NodeFactory(org=world.org, name="mail")
    FindingFactory(node=other, rule_id="smtp-open-relay", severity="high")
    finding_groups_refresh(org=world.org, rule_ids=["smtp-open-relay"])
    statements.clear()

    finding_groups_refresh_for_nodes(org=world.org, node_ids=[nginx[0].pk])

    assert len(statements) == 1
    assert not FindingGroup.objects.filter(org=world.org, rule_id="tls-weak-protocol").exists()
    group = FindingGroup.objects.get(org=world.org, rule_id="CVE-2021-23017")
    assert (group.open_count, group.severity) == (3, "critical")
    assert FindingGroup.objects.filter(org=world.org, rule_id="smtp-open-relay").exists()  # not a rule of the node


def test_a_bulk_triage_of_a_groups_filter_triages_every_open_finding_of_it(world, nginx):
    changed = findings_triage_bulk(org=world.org, filters=finding_filters_from({"status": "open",
                                                                                "rule": "CVE-2021-23017"}),
                                   status="risk_accepted", reason="vendor fix next week", by=world.analyst,
                                   until=timezone.now() + timedelta(days=7))
    assert changed == 3
    assert not FindingGroup.objects.filter(org=world.org, rule_id="CVE-2021-23017").exists()
    assert Finding.objects.filter(rule_id="CVE-2021-23017", status="fixed").count() == 1


def test_a_group_opens_its_findings_in_the_list(world, login, nginx):
    response = login(world.viewer).get(url("finding_list"), {"status": "open", "rule": "CVE-2021-23017"})
    assert {row["rule_id"] for row in response.context["rows"]} == {"CVE-2021-23017"}
    assert len(response.context["rows"]) == 3


def test_ticked_groups_are_triaged_after_a_confirmation_that_counts_their_findings(world, login, nginx):
    client = login(world.analyst)
    response = client.post(url("finding_group_triage"), {"rule": ["CVE-2021-23017", "tls-weak-protocol"],
                                                         "status": "false_positive", "reason": "scanner noise"})
    assert response.status_code == 200 and response.context["count"] == 4
    assert Finding.objects.filter(status="open").count() == 4  # nothing yet
    hidden = dict(response.context["hidden"])
    response = client.post(url("finding_bulk_triage"), hidden)
    assert response.status_code == 302
    assert Finding.objects.filter(status="open").count() == 0
    assert not FindingGroup.objects.filter(org=world.org).exists()


def test_a_group_triage_without_a_group_or_a_reason_changes_nothing(world, login, nginx):
    client = login(world.analyst)
    response = client.post(url("finding_group_triage"), {"status": "false_positive", "reason": "x"}, follow=True)
    assert "Tick the groups to triage." in response.content.decode()
    response = client.post(url("finding_group_triage"), {"rule": ["CVE-2021-23017"], "status": "false_positive"},
                           follow=True)
    assert "Say why." in response.content.decode()
    assert Finding.objects.filter(status="open").count() == 4


def test_the_groups_page_and_its_triage_keep_each_caller_in_their_place(world, client, login, nginx):
    for method, name in (("get", "finding_groups"), ("post", "finding_group_triage")):
        response = getattr(client, method)(url(name))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    outsider = login(world.outsider)
    assert outsider.get(url("finding_groups")).status_code == 404
    assert outsider.post(url("finding_group_triage"), {"rule": ["CVE-2021-23017"], "status": "false_positive",
                                                       "reason": "x"}).status_code == 404
    viewer = login(world.viewer)
    assert viewer.post(url("finding_group_triage"), {"rule": ["CVE-2021-23017"], "status": "false_positive",
                                                     "reason": "x"}).status_code == 403
    assert b'name="rule"' not in viewer.get(url("finding_groups")).content
    assert viewer.post(url("finding_groups")).status_code == 405


def test_another_organizations_groups_are_never_listed(world, login, nginx):
    FindingFactory(node=NodeFactory(org=world.other_org), rule_id="globex-only")
    finding_groups_refresh(org=world.other_org)
    response = login(world.owner).get(url("finding_groups"))
    assert "globex-only" not in response.content.decode()


def test_the_groups_page_reads_the_same_number_of_queries_at_any_size(world, login, django_assert_max_num_queries):
    node = NodeFactory(org=world.org)
    for n in range(120):
        FindingFactory(node=node, rule_id=f"rule-{n % 60}", port=n)
    finding_groups_refresh(org=world.org)
    client = login(world.viewer)
    with django_assert_max_num_queries(8):
        response = client.get(url("finding_groups"), {"page": 2})
    assert len(response.context["page"].object_list) == 10


def test_the_api_lists_groups_with_a_link_to_their_findings(world, api, nginx):
    body = api("read").get("/api/v1/findings/groups/").json()
    assert body["count"] == 2 and body["results"][0]["rule_id"] == "tls-weak-protocol"
    group = body["results"][1]
    assert group["open_count"] == 3 and group["node_count"] == 3 and group["ports"] == [80, 443]
    findings = api("read").get(group["findings"]).json()["results"]
    assert len(findings) == 3 and {f["rule_id"] for f in findings} == {"CVE-2021-23017"}
    assert api("read").get("/api/v1/findings/groups/", {"q": "tls"}).json()["count"] == 1


def test_the_api_groups_are_the_tokens_organizations_only(world, api, nginx):
    assert api("other").get("/api/v1/findings/groups/").json()["count"] == 0
    assert api("read_write").post("/api/v1/findings/groups/").status_code == 405


def test_a_new_sla_policy_moves_each_groups_earliest_due_date(world, nginx):
    Finding.objects.filter(org=world.org, status="open").update(priority=2)
    organization_update_settings(org=world.org, by=world.owner, sla_p2_days=3)

    group = FindingGroup.objects.get(org=world.org, rule_id="CVE-2021-23017")
    earliest = Finding.objects.filter(org=world.org, rule_id="CVE-2021-23017", status="open").order_by("due_at")[0]
    assert group.due_at == earliest.due_at
    assert earliest.due_at - earliest.first_seen <= timedelta(days=3, seconds=1)
