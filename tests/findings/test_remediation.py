"""Ownership of findings: assignee, ticket link, comments, one at a time and in bulk; the console's pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from orgs.concurrency import StaleVersionError
from orgs.models import AuditEvent
from scans.findings.remediation import (
    finding_assign,
    finding_comment_add,
    finding_ticket_set,
    findings_assign_bulk,
    findings_comment_bulk,
    findings_ticket_bulk,
)
from scans.findings.sla import due_dates_refresh
from scans.models import Finding, FindingComment
from scans.selectors import FindingFilters
from tests.factories import FindingFactory, NodeFactory

pytestmark = pytest.mark.django_db
MEGABYTE = "x" * (1024 * 1024)


@pytest.fixture
def finding(world):
    return FindingFactory(node=NodeFactory(org=world.org), severity="high", title="Exposed Redis")


def url(name, *args):
    return reverse(f"scans:{name}", args=["acme", *args])


# -- services ----------------------------------------------------------------------------------


def test_assigning_a_member_is_audited_and_moves_the_version(world, finding):
    changed = finding_assign(finding=finding, assignee=world.viewer.pk, by=world.analyst, expected_version=1)
    assert changed.assignee == world.viewer and changed.version == 2
    event = AuditEvent.objects.get(verb="finding.assigned")
    assert event.actor == world.analyst and event.changes == {"assignee": [None, "acme-viewer"]}
    finding_assign(finding=finding, assignee=None, by=world.analyst)
    assert Finding.objects.get(pk=finding.pk).assignee is None


def test_an_assignee_from_another_organization_is_refused_and_changes_nothing(world, finding):
    with pytest.raises(ValidationError, match="member of this organization"):
        finding_assign(finding=finding, assignee=world.outsider, by=world.analyst)
    with pytest.raises(ValidationError, match="not a user id"):
        finding_assign(finding=finding, assignee="alice", by=world.analyst)
    assert Finding.objects.get(pk=finding.pk).version == 1 and not AuditEvent.objects.exists()


def test_assigning_from_a_stale_copy_is_refused(world, finding):
    finding_assign(finding=finding, assignee=world.viewer, by=world.analyst)
    with pytest.raises(StaleVersionError):
        finding_assign(finding=finding, assignee=world.admin, by=world.analyst, expected_version=1)


@pytest.mark.parametrize("link", ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,x", "ftp://x.org/1",
                                  "//evil.example/x", "not a url"])
def test_a_ticket_link_that_is_not_http_or_https_is_refused(world, finding, link):
    with pytest.raises(ValidationError, match="http"):
        finding_ticket_set(finding=finding, url=link, key="OPS-1", by=world.analyst)
    assert Finding.objects.get(pk=finding.pk).ticket_url == ""


def test_a_ticket_link_and_key_are_kept_and_audited(world, finding):
    finding_ticket_set(finding=finding, url=" https://tracker.example/OPS-1 ", key="OPS-1", by=world.analyst)
    stored = Finding.objects.get(pk=finding.pk)
    assert (stored.ticket_url, stored.ticket_key, stored.version) == ("https://tracker.example/OPS-1", "OPS-1", 2)
    assert AuditEvent.objects.get(verb="finding.ticket_linked").changes["ticket_key"] == ["", "OPS-1"]


def test_a_comment_is_kept_as_written_and_audited(world, finding):
    comment = finding_comment_add(finding=finding, body="  <b>patch</b> Friday\nthen rescan  ", by=world.analyst)
    assert comment.body == "<b>patch</b> Friday\nthen rescan" and comment.author == world.analyst
    assert AuditEvent.objects.get(verb="finding.commented").changes == {"comment": comment.pk, "length": 31}
    assert Finding.objects.get(pk=finding.pk).version == 1  # a comment is no change of the finding


def test_a_comment_of_one_megabyte_is_refused_saying_its_length(world, finding):
    with pytest.raises(ValidationError, match="at most 10,000 characters; this one has 1,048,576"):
        finding_comment_add(finding=finding, body=MEGABYTE, by=world.analyst)
    with pytest.raises(ValidationError, match="needs some text"):
        finding_comment_add(finding=finding, body="   ", by=world.analyst)
    assert not FindingComment.objects.exists() and not AuditEvent.objects.exists()


def test_bulk_assign_ticket_and_comment_change_only_this_organizations_findings(world, finding):
    others = [FindingFactory(node=finding.node) for _ in range(2)]
    foreign = FindingFactory(node=NodeFactory(org=world.other_org))
    ids = [finding.pk, *(f.pk for f in others), foreign.pk]
    assert findings_assign_bulk(org=world.org, finding_ids=ids, assignee=world.analyst, by=world.admin) == 3
    assert findings_assign_bulk(org=world.org, finding_ids=ids, assignee=world.analyst, by=world.admin) == 0
    assert findings_ticket_bulk(org=world.org, finding_ids=ids, url="https://t.example/9", key="T-9",
                                by=world.admin) == 3
    assert findings_comment_bulk(org=world.org, finding_ids=ids, body="One fix for all", by=world.admin) == 3
    assert Finding.objects.get(pk=foreign.pk).assignee is None
    assert FindingComment.objects.filter(finding=foreign).count() == 0
    assert AuditEvent.objects.filter(verb="finding.assigned", changes__bulk=True).count() == 3


def test_bulk_by_filter_assigns_the_matching_findings(world, finding):
    FindingFactory(node=finding.node, severity="low")
    changed = findings_assign_bulk(org=world.org, filters=FindingFilters(severity=("high",)),
                                   assignee=world.viewer, by=world.admin)
    assert changed == 1 and Finding.objects.get(pk=finding.pk).assignee == world.viewer


def test_bulk_refuses_bad_input_and_changes_nothing(world, finding):
    with pytest.raises(ValidationError):
        findings_assign_bulk(org=world.org, finding_ids=[finding.pk], assignee=world.outsider, by=world.admin)
    with pytest.raises(ValidationError):
        findings_ticket_bulk(org=world.org, finding_ids=[finding.pk], url="javascript:alert(1)", key="",
                             by=world.admin)
    with pytest.raises(ValidationError):
        findings_comment_bulk(org=world.org, finding_ids=[finding.pk], body=MEGABYTE, by=world.admin)
    with pytest.raises(ValidationError, match="at most 2"):
        findings_assign_bulk(org=world.org, finding_ids=[1, 2, 3], assignee=None, by=world.admin, limit=2)
    stored = Finding.objects.get(pk=finding.pk)
    assert (stored.assignee_id, stored.ticket_url, stored.version) == (None, "", 1)
    assert not FindingComment.objects.exists() and not AuditEvent.objects.exists()


# -- console -----------------------------------------------------------------------------------


def test_the_finding_page_shows_owner_ticket_sla_and_comments_escaped(world, login, finding):
    finding.first_seen = timezone.now() - timedelta(days=40)
    finding.save(update_fields=["first_seen"])
    due_dates_refresh(org=world.org)
    finding_ticket_set(finding=finding, url="https://tracker.example/OPS-7", key="OPS-7", by=world.analyst)
    finding_comment_add(finding=finding, body="<script>alert(1)</script>\nsecond line", by=world.analyst)
    content = login(world.viewer).get(url("finding_detail", finding.pk)).content.decode()
    assert "overdue by 10 days" in content and "age 40 days" in content
    assert 'href="https://tracker.example/OPS-7"' in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>second line" in content and "<script>alert(1)" not in content
    assert 'action="/o/acme/findings/%d/assign/"' % finding.pk not in content  # a viewer gets no forms


def test_assigning_commenting_and_linking_from_the_finding_page(world, login, finding):
    client = login(world.analyst)
    assert client.post(url("finding_assign", finding.pk), {"assignee": world.viewer.pk, "version": 1}).status_code == 302
    assert client.post(url("finding_ticket", finding.pk), {"ticket_url": "https://t.example/1", "ticket_key": "T-1",
                                                           "version": 2}).status_code == 302
    assert client.post(url("finding_comment", finding.pk), {"body": "On it"}).status_code == 302
    stored = Finding.objects.get(pk=finding.pk)
    assert (stored.assignee, stored.ticket_key, stored.comments.get().body) == (world.viewer, "T-1", "On it")


def test_bad_input_on_the_finding_page_is_a_400_with_the_reason(world, login, finding):
    client = login(world.analyst)
    response = client.post(url("finding_assign", finding.pk), {"assignee": world.outsider.pk})
    assert response.status_code == 400 and "member of this organization" in response.content.decode()
    response = client.post(url("finding_ticket", finding.pk), {"ticket_url": "javascript:alert(1)"})
    assert response.status_code == 400 and "http:// or https://" in response.content.decode()
    response = client.post(url("finding_comment", finding.pk), {"body": MEGABYTE})
    assert response.status_code == 400 and "this one has 1,048,576" in response.content.decode()
    stale = client.post(url("finding_assign", finding.pk), {"assignee": world.viewer.pk, "version": 9})
    assert stale.status_code == 409
    stored = Finding.objects.get(pk=finding.pk)
    assert (stored.assignee, stored.ticket_url, stored.comments.count()) == (None, "", 0)


@pytest.mark.parametrize("name", ["finding_assign", "finding_ticket", "finding_comment"])
def test_ownership_writes_follow_the_access_checklist(world, login, client, finding, name):
    foreign = FindingFactory(node=NodeFactory(org=world.other_org))
    assert login(world.analyst).post(url(name, foreign.pk), {"body": "x"}).status_code == 404
    assert login(world.viewer).post(url(name, finding.pk), {"body": "x"}).status_code == 403
    assert login(world.analyst).get(url(name, finding.pk)).status_code == 405
    client.logout()
    response = client.post(url(name, finding.pk), {"body": "x"})
    assert response.status_code == 302 and "/login" in response["Location"]
    assert not FindingComment.objects.exists() and Finding.objects.get(pk=finding.pk).assignee is None


def test_the_bulk_bar_assigns_the_ticked_rows(world, login, finding):
    other = FindingFactory(node=finding.node)
    response = login(world.analyst).post(url("finding_bulk_remediate"), {
        "finding": [finding.pk, other.pk], "action": "assign", "assignee": str(world.analyst.pk)})
    assert response.status_code == 302
    assert set(Finding.objects.values_list("assignee", flat=True)) == {world.analyst.pk}


def test_the_bulk_bar_confirms_before_commenting_on_every_matching_finding(world, login, finding):
    client = login(world.analyst)
    data = {"action": "comment", "comment": "Tracked in OPS-1", "matching": "on", "filter": "severity=high"}
    page = client.post(url("finding_bulk_remediate"), data)
    assert page.status_code == 200 and "1</strong> finding" in page.content.decode()
    assert not FindingComment.objects.exists()
    assert client.post(url("finding_bulk_remediate"), {**data, "confirmed": "on"}).status_code == 302
    assert FindingComment.objects.get().finding_id == finding.pk


def test_the_bulk_bar_refuses_bad_input_and_a_viewer(world, login, finding):
    client = login(world.analyst)
    response = client.post(url("finding_bulk_remediate"), {"finding": [finding.pk], "action": "ticket",
                                                          "ticket_url": "javascript:alert(1)"}, follow=True)
    assert "http:// or https://" in response.content.decode()
    assert Finding.objects.get(pk=finding.pk).ticket_url == ""
    assert login(world.viewer).post(url("finding_bulk_remediate"), {"finding": [finding.pk], "action": "assign",
                                                                   "assignee": ""}).status_code == 403


def test_the_list_filters_assigned_to_me_and_overdue_and_shows_the_sla(world, login, finding):
    late = FindingFactory(node=finding.node, severity="critical", title="Late one",
                          first_seen=timezone.now() - timedelta(days=30))
    due_dates_refresh(org=world.org)
    finding_assign(finding=finding, assignee=world.analyst, by=world.analyst)
    client = login(world.analyst)
    mine = client.get(url("finding_list"), {"assignee": "me"}).content.decode()
    assert "Exposed Redis" in mine and "Late one" not in mine
    overdue = client.get(url("finding_list"), {"overdue": "1"}).content.decode()
    assert "Late one" in overdue and "Exposed Redis" not in overdue and "overdue by 23 days" in overdue
    assert f'id="finding-{late.pk}"' in overdue


def test_the_dashboard_tiles_count_my_findings_and_the_overdue_ones_and_link_their_filters(world, login, finding):
    FindingFactory(node=finding.node, severity="critical", first_seen=timezone.now() - timedelta(days=30))
    due_dates_refresh(org=world.org)
    finding_assign(finding=finding, assignee=world.analyst, by=world.analyst)
    content = login(world.analyst).get(reverse("orgs:dashboard", args=["acme"])).content.decode()
    assigned = content.split('id="dash-assigned"', 1)[1].split("</a>", 1)[0]
    overdue = content.split('id="dash-overdue"', 1)[1].split("</a>", 1)[0]
    assert "assignee=me" in assigned and '<span class="figure">1</span>' in assigned
    assert "overdue=1" in overdue and '<span class="figure">1</span>' in overdue
