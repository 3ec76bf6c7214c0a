"""Ownership and the SLA over the API: assign, ticket, comments, bulk, the filters, the organization's SLA."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from orgs.models import AuditEvent, Organization
from scans.findings.sla import due_dates_refresh
from scans.models import Finding, FindingComment
from tests.factories import FindingFactory, NodeFactory

MEGABYTE = "x" * (1024 * 1024)


@pytest.fixture
def finding(world):
    return FindingFactory(node=NodeFactory(org=world.org), severity="high")


def test_a_token_assigns_links_and_comments(api, world, finding):
    client = api("read_write")
    body = client.post(f"/api/v1/findings/{finding.pk}/assign/", {"assignee": world.analyst.pk, "version": 1},
                       format="json").json()
    assert body["assignee"] == world.analyst.pk and body["version"] == 2
    body = client.post(f"/api/v1/findings/{finding.pk}/ticket/", {"url": "https://t.example/OPS-2", "key": "OPS-2"},
                       format="json").json()
    assert (body["ticket_url"], body["ticket_key"]) == ("https://t.example/OPS-2", "OPS-2")
    created = client.post(f"/api/v1/findings/{finding.pk}/comments/", {"body": "Patch on Friday"}, format="json")
    assert created.status_code == 201 and created.json()["body"] == "Patch on Friday"
    thread = api("read").get(f"/api/v1/findings/{finding.pk}/comments/").json()
    assert [c["body"] for c in thread] == ["Patch on Friday"]
    assert AuditEvent.objects.filter(token__isnull=False, verb__in=["finding.assigned", "finding.ticket_linked",
                                                                     "finding.commented"]).count() == 3


def test_bad_input_is_a_400_that_changes_nothing(api, world, finding):
    client = api("read_write")
    outsider = client.post(f"/api/v1/findings/{finding.pk}/assign/", {"assignee": world.outsider.pk}, format="json")
    assert outsider.status_code == 400 and "member of this organization" in str(outsider.json())
    script = client.post(f"/api/v1/findings/{finding.pk}/ticket/", {"url": "javascript:alert(1)"}, format="json")
    assert script.status_code == 400 and "http" in str(script.json())
    huge = client.post(f"/api/v1/findings/{finding.pk}/comments/", {"body": MEGABYTE}, format="json")
    assert huge.status_code == 400 and "1,048,576" in str(huge.json())
    stale = client.post(f"/api/v1/findings/{finding.pk}/assign/", {"assignee": world.analyst.pk, "version": 7},
                        format="json")
    assert stale.status_code == 409
    stored = Finding.objects.get(pk=finding.pk)
    assert (stored.assignee, stored.ticket_url, stored.version) == (None, "", 1)
    assert not FindingComment.objects.exists()


@pytest.mark.parametrize(("method", "path", "data"), [
    ("post", "assign/", {"assignee": None}), ("post", "ticket/", {"url": ""}), ("post", "comments/", {"body": "x"}),
    ("get", "comments/", None)])
def test_the_ownership_endpoints_follow_the_access_checklist(api, world, finding, method, path, data):
    foreign = FindingFactory(node=NodeFactory(org=world.other_org))
    assert getattr(api("read_write"), method)(f"/api/v1/findings/{foreign.pk}/{path}", data,
                                              format="json").status_code == 404
    assert getattr(APIClient(), method)(f"/api/v1/findings/{finding.pk}/{path}", data,
                                        format="json").status_code in (401, 403)
    if method == "post":
        assert api("read").post(f"/api/v1/findings/{finding.pk}/{path}", data, format="json").status_code == 403
    assert not FindingComment.objects.exists()


def test_bulk_changes_only_this_organizations_findings_and_refuses_bad_input(api, world, finding):
    foreign = FindingFactory(node=NodeFactory(org=world.other_org))
    client = api("read_write")
    done = client.post("/api/v1/findings/bulk/", {"findings": [finding.pk, foreign.pk], "action": "assign",
                                                  "assignee": world.viewer.pk}, format="json")
    assert done.status_code == 200 and done.json() == {"changed": 1}
    assert Finding.objects.get(pk=foreign.pk).assignee is None
    bad = client.post("/api/v1/findings/bulk/", {"findings": [finding.pk], "action": "ticket",
                                                 "url": "javascript:alert(1)"}, format="json")
    assert bad.status_code == 400 and Finding.objects.get(pk=finding.pk).ticket_url == ""
    assert api("read").post("/api/v1/findings/bulk/", {"findings": [finding.pk], "action": "comment",
                                                       "body": "x"}, format="json").status_code == 403


def test_the_findings_filter_reads_assigned_to_me_and_overdue(session_api, api, world, finding):
    late = FindingFactory(node=finding.node, severity="critical", first_seen=timezone.now() - timedelta(days=30))
    due_dates_refresh(org=world.org)
    Finding.objects.filter(pk=finding.pk).update(assignee=world.analyst)
    client = session_api(world.analyst)
    mine = client.get("/api/v1/findings/?assignee=me").json()["results"]
    assert [f["id"] for f in mine] == [finding.pk] and mine[0]["assignee"] == world.analyst.pk
    overdue = api("read").get("/api/v1/findings/?overdue=true").json()["results"]
    assert [f["id"] for f in overdue] == [late.pk] and overdue[0]["due_at"]
    assert api("read").get(f"/api/v1/findings/?assignee={world.analyst.pk}").json()["results"][0]["id"] == finding.pk
    assert api("read").get("/api/v1/findings/?assignee=me").status_code == 400  # a token is nobody
    assert api("read").get("/api/v1/findings/?assignee=bob").status_code == 400


def test_the_organization_endpoint_shows_and_owners_change_the_sla(session_api, api, world):
    assert api("read").get("/api/v1/organization/").json()["sla_p1_days"] == 7
    changed = session_api(world.owner).patch("/api/v1/organization/", {"sla_p1_days": 3}, format="json")
    assert changed.status_code == 200 and changed.json()["sla_p1_days"] == 3
    for bad in (-1, 100_000, "seven"):
        refused = session_api(world.owner).patch("/api/v1/organization/", {"sla_p2_days": bad}, format="json")
        assert refused.status_code == 400
    assert session_api(world.analyst).patch("/api/v1/organization/", {"sla_p1_days": 5},
                                            format="json").status_code == 403
    assert api("read_write").patch("/api/v1/organization/", {"sla_p1_days": 5}, format="json").status_code == 403
    assert APIClient().patch("/api/v1/organization/", {"sla_p1_days": 5}, format="json").status_code in (401, 403)
    org = Organization.objects.get(pk=world.org.pk)
    assert (org.sla_p1_days, org.sla_p2_days) == (3, 30)
