"""The audit log page: who did what, filterable by actor, verb and time, paginated in the database."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from orgs.audit import audit_record
from orgs.models import AuditEvent
from orgs.services import api_token_create

pytestmark = pytest.mark.django_db


def audit_url(slug="acme"):
    return reverse("orgs:audit", args=[slug])


def test_the_log_shows_who_did_what_to_which_target_with_changes_ip_and_request(world, login):
    AuditEvent.objects.create(org=world.org, actor=world.admin, verb="membership.role_changed", target_type="orgs.membership",
                              target_id="7", target_repr="acme-viewer in Acme", changes={"role": ["viewer", "analyst"]},
                              ip="127.0.0.9", request_id="req-123")
    content = login(world.owner).get(audit_url()).content.decode()
    for text in ("acme-admin", "membership.role_changed", "acme-viewer in Acme", "viewer → analyst", "127.0.0.9", "req-123"):
        assert text in content


def test_a_tokens_action_names_the_token(world, login):
    token, _ = api_token_create(org=world.org, name="ci-bot", access="read_write")
    audit_record(org=world.org, verb="finding.triaged", token=token)
    content = login(world.owner).get(audit_url()).content.decode()
    assert "token ci-bot" in content and token.prefix in content


def test_filters_by_actor_verb_prefix_and_time(world, login):
    now = timezone.now()
    AuditEvent.objects.create(org=world.org, actor=world.admin, verb="finding.triaged", target_repr="old-triage",
                              created_at=now - timedelta(days=10))
    AuditEvent.objects.create(org=world.org, actor=world.admin, verb="finding.triaged", target_repr="new-triage")
    AuditEvent.objects.create(org=world.org, actor=world.owner, verb="finding.triaged", target_repr="owner-triage")
    AuditEvent.objects.create(org=world.org, actor=world.admin, verb="api_token.created", target_repr="a-token")
    client = login(world.owner)
    shown = lambda **query: {e.target_repr for e in client.get(audit_url(), query).context["page"].object_list}  # noqa: E731
    assert shown(actor=f"user:{world.admin.pk}", verb="finding.") == {"old-triage", "new-triage"}
    assert shown(verb="api_token.created") == {"a-token"}
    assert shown(since=(now - timedelta(days=1)).date().isoformat()) == {"new-triage", "owner-triage", "a-token"}
    assert shown(until=(now - timedelta(days=5)).date().isoformat()) == {"old-triage"}


def test_another_organizations_events_never_show(world, login):
    AuditEvent.objects.create(org=world.other_org, actor=world.outsider, verb="secret.globex", target_repr="globex-thing")
    assert b"globex-thing" not in login(world.owner).get(audit_url()).content


def test_the_log_paginates_newest_first(world, login):
    AuditEvent.objects.bulk_create(AuditEvent(org=world.org, verb=f"v.{i}", target_repr=f"t{i}",
                                              created_at=timezone.now() - timedelta(minutes=i)) for i in range(120))
    client = login(world.owner)
    first = client.get(audit_url()).context["page"]
    assert len(first.object_list) == 50 and first.object_list[0].target_repr == "t0"
    third = client.get(audit_url(), {"page": 3}).context["page"]
    assert [e.target_repr for e in third.object_list][-1] == "t119"


@pytest.mark.parametrize("rows", [10, 1000])
def test_the_log_reads_the_same_number_of_queries_with_10_and_1000_events(world, login, rows, django_assert_num_queries):
    AuditEvent.objects.bulk_create(AuditEvent(org=world.org, actor=world.admin, verb="x.y") for _ in range(rows))
    client = login(world.owner)
    # session, user, membership, members and tokens (actor choices), count, page, switcher, nav count.
    with django_assert_num_queries(9):
        assert client.get(audit_url(), {"verb": "x.y"}).status_code == 200


@pytest.mark.parametrize("role", ["analyst", "viewer"])
def test_analysts_and_viewers_get_403(world, login, role):
    assert login(getattr(world, role)).get(audit_url()).status_code == 403


def test_an_outsider_gets_404(world, login):
    assert login(world.outsider).get(audit_url()).status_code == 404


def test_an_anonymous_visitor_is_sent_to_login(world, client):
    response = client.get(audit_url())
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_log_refuses_post(world, login):
    assert login(world.owner).post(audit_url()).status_code == 405


def test_only_change_events_read_two_values_as_before_and_after():
    from orgs.selectors import audit_change_lines

    assert audit_change_lines({"role": ["viewer", "admin"]}, "membership.role_changed") == [("role", "viewer → admin")]
    assert audit_change_lines({"tags": ["web", "prod"]}, "node.created") == [("tags", "web, prod")]
    assert audit_change_lines({"scope_networks": [[], ["127.0.0.0/8"]]}, "organization.settings_changed") == [
        ("scope_networks", "– → 127.0.0.0/8")]


def test_a_state_transition_reads_in_words_not_as_python_values_whatever_the_verb():
    from orgs.selectors import audit_change_lines

    assert audit_change_lines({"state": [None, "open"], "kind": "node_unreachable"}, "intervention.opened") == [
        ("state", "– → open"), ("kind", "node_unreachable")]
    assert audit_change_lines({"enabled": [False, True]}, "node.enabled") == [("enabled", "no → yes")]
    assert audit_change_lines({"duplicates": [None, "x"]}, "nodes.bulk_added") == [("duplicates", "–, x")]


def test_a_target_with_a_console_page_is_a_link_to_it(world, login):
    from nodes.models import Node

    node = Node.objects.create(org=world.org, address="127.0.0.5", name="web")
    audit_record(org=world.org, verb="node.enabled", target=node, actor=world.admin, changes={"enabled": [False, True]})
    AuditEvent.objects.create(org=world.org, actor=world.admin, verb="membership.role_changed",
                              target_type="orgs.membership", target_id="7", target_repr="acme-viewer in Acme")
    content = login(world.owner).get(audit_url()).content.decode()

    assert f'<a href="/o/acme/nodes/{node.pk}/">' in content
    assert "no → yes" in content and "False" not in content
    assert "<td>acme-viewer in Acme " in content  # a membership has no page of its own: plain text
