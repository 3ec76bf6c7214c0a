"""Findings over the API: filters, cursor pages, detail with ETag, triage with versions."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from orgs.models import AuditEvent
from scans.models import Finding
from tests.api.conftest import problem
from tests.factories import FindingFactory, NodeFactory


def test_filters_combine_and_pages_follow_the_cursor(api, world):
    node = NodeFactory(org=world.org)
    other = NodeFactory(org=world.org)
    wanted = [FindingFactory(node=node, severity="critical", cve_ids=["CVE-2024-6387"], port=22) for _ in range(3)]
    FindingFactory(node=node, severity="critical", status=Finding.Status.FIXED)
    FindingFactory(node=node, severity="high")
    FindingFactory(node=other, severity="critical")
    client = api("read")

    first = client.get(f"/api/v1/findings/?severity=critical&status=open&node={node.pk}&page_size=2").json()
    second = client.get(first["next"]).json()

    ids = [f["id"] for f in first["results"] + second["results"]]
    assert ids == sorted((f.pk for f in wanted), reverse=True)
    assert second["next"] is None
    by_cve = client.get("/api/v1/findings/?cve=CVE-2024-6387&port=22&source=tls").json()
    assert len(by_cve["results"]) == 3


def test_several_severities_and_date_ranges(api, world):
    old = FindingFactory(node=NodeFactory(org=world.org), severity="high",
                         first_seen=timezone.now() - timedelta(days=10))
    new = FindingFactory(node=old.node, severity="critical")
    FindingFactory(node=old.node, severity="low")
    client = api("read")

    both = client.get("/api/v1/findings/?severity=critical,high").json()["results"]
    recent = client.get(f"/api/v1/findings/?first_seen_from={(timezone.now() - timedelta(days=1)).date()}").json()

    assert {f["id"] for f in both} == {old.pk, new.pk}
    assert old.pk not in {f["id"] for f in recent["results"]}


def test_an_unknown_severity_is_a_field_error(api, world):
    body = problem(api("read").get("/api/v1/findings/?severity=urgent"), 400, "invalid")
    assert "severity" in body["errors"]


def test_the_list_query_count_does_not_grow_with_rows(api, world, django_assert_max_num_queries):
    node = NodeFactory(org=world.org)
    Finding.objects.bulk_create([Finding(org=world.org, node=node, source="tls", rule_id=f"r{i}", title="t",
                                         severity="high", fingerprint=f"{i:064x}") for i in range(300)])
    with django_assert_max_num_queries(4):  # token, last use, page (node joined)
        response = api("read").get("/api/v1/findings/?page_size=300")
    assert len(response.json()["results"]) == 300


def test_the_detail_carries_its_version_as_etag(api, world):
    finding = FindingFactory(node=NodeFactory(org=world.org))
    response = api("read").get(f"/api/v1/findings/{finding.pk}/")
    assert response["ETag"] == '"1"'
    assert response.json()["version"] == 1


def test_triage_with_the_current_version_applies_and_audits_the_token(api, world):
    finding = FindingFactory(node=NodeFactory(org=world.org))
    until = (timezone.now() + timedelta(days=30)).isoformat()

    response = api().patch(f"/api/v1/findings/{finding.pk}/", {"status": "risk_accepted", "reason": "lab only",
                                                                "risk_accepted_until": until}, format="json",
                           HTTP_IF_MATCH='"1"')

    assert response.status_code == 200, response.content
    assert response["ETag"] == '"2"'
    finding.refresh_from_db()
    assert (finding.status, finding.version) == ("risk_accepted", 2)
    assert AuditEvent.objects.get(verb="finding.triaged").token.name == "ci"


def test_accepting_a_risk_needs_an_expiry(api, world):
    finding = FindingFactory(node=NodeFactory(org=world.org))
    body = problem(api().patch(f"/api/v1/findings/{finding.pk}/", {"status": "risk_accepted", "reason": "x"},
                               format="json"), 400, "invalid")
    assert "expiry" in body["detail"]


def test_a_stale_if_match_is_412_with_the_current_state(api, world):
    finding = FindingFactory(node=NodeFactory(org=world.org), version=3)

    body = problem(api().patch(f"/api/v1/findings/{finding.pk}/", {"status": "false_positive", "reason": "x"},
                               format="json", HTTP_IF_MATCH='"2"'), 412, "precondition_failed")

    assert body["current"]["version"] == 3 and body["current"]["status"] == "open"
    finding.refresh_from_db()
    assert finding.status == "open"


def test_a_stale_version_in_the_body_is_409_with_the_current_state(api, world):
    finding = FindingFactory(node=NodeFactory(org=world.org), version=3)

    body = problem(api().patch(f"/api/v1/findings/{finding.pk}/",
                               {"status": "false_positive", "reason": "x", "version": 2}, format="json"),
                   409, "stale_version")

    assert body["current"]["version"] == 3


def test_a_day_at_the_end_of_the_calendar_is_a_field_error_not_an_overflow(api, world):
    body = problem(api("read").get("/api/v1/findings/?first_seen_to=9999-12-31"), 400, "invalid")
    assert "first_seen_to" in body["errors"]


def test_a_nul_character_in_a_filter_is_a_field_error(api, world):
    body = problem(api("read").get("/api/v1/findings/?source=tl%00s"), 400, "invalid")
    assert "source" in body["errors"]


def test_a_finding_reads_the_same_in_the_list_and_alone(api, world):
    finding = FindingFactory(node=NodeFactory(org=world.org), cvss_score="7.5", cve_ids=["CVE-2024-6387"])
    client = api("read")
    listed = client.get("/api/v1/findings/").json()["results"][0]
    alone = client.get(f"/api/v1/findings/{finding.pk}/").json()
    assert listed == {key: alone[key] for key in listed}
