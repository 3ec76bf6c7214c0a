"""The per-organization dashboard and the home redirect."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from interventions.models import Intervention
from nodes.models import Node, NodeSnapshot
from scans.models import FindingDailyStats, OrganizationScore, ScanSession
from tests.factories import NodeFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db


def test_home_sends_a_member_to_their_organizations_dashboard(world, login):
    response = login(world.viewer).get(reverse("home"))
    assert response.status_code == 302 and response["Location"] == reverse("orgs:dashboard", args=["acme"])


def test_home_tells_a_user_without_organization_what_to_do(login, django_user_model, db):
    lonely = django_user_model.objects.create_user("lonely")
    response = login(lonely).get(reverse("home"))
    assert response.status_code == 200 and b"not a member of any organization" in response.content


def test_the_dashboard_shows_the_organization_and_its_switcher(world, login):
    response = login(world.viewer).get(reverse("orgs:dashboard", args=["acme"]))
    assert response.status_code == 200
    assert b"Acme" in response.content
    assert b'id="org-switcher"' in response.content
    assert b"No node has been scored yet" in response.content


def test_the_dashboard_lists_worst_nodes_first(world, login):
    good, bad = NodeFactory(org=world.org, name="good-node"), NodeFactory(org=world.org, name="bad-node")
    NodeSnapshot.objects.filter(node=good).update(score=95, grade="A")
    NodeSnapshot.objects.filter(node=bad).update(score=30, grade="F", critical=2)
    content = login(world.viewer).get(reverse("orgs:dashboard", args=["acme"])).content.decode()
    assert content.index("bad-node") < content.index("good-node")


def _populate(org, n: int) -> None:
    """n nodes with snapshots, n score points, n open interventions, a running and a finished session."""
    nodes = Node.objects.bulk_create(Node(org=org, address=f"127.9.{i // 250}.{i % 250 + 1}", name=f"n{i}") for i in range(n))
    NodeSnapshot.objects.bulk_create(NodeSnapshot(node=node, org=org, score=i % 100, grade="ABCDF"[i % 5], high=i % 3)
                                     for i, node in enumerate(nodes))
    OrganizationScore.objects.bulk_create(OrganizationScore(org=org, score=50, grade="D") for _ in range(n))
    Intervention.objects.bulk_create(
        Intervention(org=org, kind=Intervention.Kind.STAGE_STUCK, subject=f"s:{i}", title=f"stuck {i}",
                     node=nodes[i] if i % 2 else None) for i in range(n))
    ScanSessionFactory(org=org, status=ScanSession.Status.RUNNING, stage=ScanSession.Stage.EXECUTION, jobs_total=10,
                       jobs_succeeded=4)
    ScanSessionFactory(org=org, status=ScanSession.Status.SUCCEEDED, stage=ScanSession.Stage.DONE)
    # The trend charts' rows: n days of rollups (the charts read 90) and n finished sessions (they read 20).
    today = timezone.now().date()
    FindingDailyStats.objects.bulk_create(
        FindingDailyStats(org=org, day=today - timedelta(days=i), open_high=i, sla_open=10, sla_overdue=i % 10,
                          fixed_high=1, fix_seconds_high=86400 * (i % 9)) for i in range(n))
    ScanSession.objects.bulk_create(
        ScanSession(org=org, trigger=ScanSession.Trigger.SCHEDULE, status=ScanSession.Status.SUCCEEDED,
                    stage=ScanSession.Stage.DONE, correlation_id=f"c{i}", findings_new=i, findings_fixed=i // 2,
                    finished_at=timezone.now() - timedelta(hours=i)) for i in range(n))


@pytest.mark.parametrize("rows", [10, 1000])
def test_the_dashboard_reads_the_same_number_of_queries_with_10_and_1000_rows(world, login, rows,
                                                                               django_assert_num_queries):
    client = login(world.viewer)
    _populate(world.org, rows)
    # session, user, membership, snapshot aggregate, worst nodes, score history, interventions (+ their
    # count: the list is full), the trend rows, the last finished sessions (the last one among them),
    # running sessions, the switcher's organizations, the assigned-to-me and overdue tiles.
    with django_assert_num_queries(12):
        assert client.get(reverse("orgs:dashboard", args=["acme"])).status_code == 200


def test_the_dashboard_stays_within_twelve_queries(world, login, django_assert_max_num_queries):
    client = login(world.owner)
    _populate(world.org, 30)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("orgs:dashboard", args=["acme"])).status_code == 200


def test_open_interventions_without_a_node_count_on_the_dashboard(world, login):
    Intervention.objects.create(org=world.org, kind=Intervention.Kind.IMPORT_REJECTED, subject="import:abc",
                                title="Import of scan.xml rejected")
    Intervention.objects.create(org=world.org, kind=Intervention.Kind.STAGE_STUCK, subject="session:1:analysis",
                                title="Analysis stuck", state=Intervention.State.ACKNOWLEDGED)
    Intervention.objects.create(org=world.org, kind=Intervention.Kind.STAGE_STUCK, subject="session:2:analysis",
                                title="Resolved long ago", state=Intervention.State.RESOLVED)
    Intervention.objects.create(org=world.other_org, kind=Intervention.Kind.STAGE_STUCK, subject="x", title="Globex's")
    response = login(world.viewer).get(reverse("orgs:dashboard", args=["acme"]))
    content = response.content.decode()
    assert response.context["open_intervention_count"] == 2
    assert "Import of scan.xml rejected" in content and "Analysis stuck" in content
    assert "Resolved long ago" not in content and "Globex&#x27;s" not in content


def test_severity_counts_link_to_the_open_findings_of_that_severity(world, login):
    node = NodeFactory(org=world.org)
    NodeSnapshot.objects.filter(node=node).update(score=40, grade="D", critical=3, high=5)
    content = login(world.viewer).get(reverse("orgs:dashboard", args=["acme"])).content.decode()
    assert 'href="/o/acme/findings/?severity=critical&amp;status=open"' in content
    counts = {s["severity"]: s["count"] for s in login(world.viewer).get("/o/acme/").context["severity_counts"]}
    assert counts["critical"] == 3 and counts["high"] == 5


def test_grades_are_bars_linking_to_the_nodes_of_that_grade(world, login):
    node = NodeFactory(org=world.org)
    NodeSnapshot.objects.filter(node=node).update(score=95, grade="A")
    content = login(world.viewer).get(reverse("orgs:dashboard", args=["acme"])).content.decode()
    assert 'href="/o/acme/nodes/?grade=A"' in content and "<meter" in content


def test_worst_nodes_link_to_their_detail_page(world, login):
    node = NodeFactory(org=world.org, name="weak")
    NodeSnapshot.objects.filter(node=node).update(score=10, grade="F")
    content = login(world.viewer).get(reverse("orgs:dashboard", args=["acme"])).content.decode()
    assert f'href="/o/acme/nodes/{node.pk}/"' in content
    assert 'class="table-wrap"' in content


def test_the_score_trend_is_drawn_from_the_organizations_score_history(world, login):
    OrganizationScore.objects.create(org=world.org, score=70, grade="C")
    OrganizationScore.objects.create(org=world.org, score=82, grade="B")
    response = login(world.viewer).get(reverse("orgs:dashboard", args=["acme"]))
    assert [score for _, score in response.context["score_points"]] == [70, 82]
    assert b"<polyline" in response.content


def test_since_the_last_session_links_new_fixed_and_reopened_findings(world, login):
    session = ScanSessionFactory(org=world.org, status=ScanSession.Status.SUCCEEDED, stage=ScanSession.Stage.DONE,
                                 findings_new=4, findings_fixed=2, findings_reopened=1)
    content = login(world.viewer).get(reverse("orgs:dashboard", args=["acme"])).content.decode()
    for change in ("new", "fixed", "reopened"):
        assert f'href="/o/acme/findings/?session={session.pk}&amp;change={change}"' in content


def test_a_running_session_polls_every_two_seconds_with_its_stages(world, login):
    ScanSessionFactory(org=world.org, status=ScanSession.Status.RUNNING, stage=ScanSession.Stage.EXECUTION,
                       jobs_total=10, jobs_succeeded=3, jobs_failed=1)
    content = login(world.viewer).get(reverse("orgs:dashboard", args=["acme"])).content.decode()
    assert 'hx-trigger="every 2s"' in content
    assert '<progress max="10" value="4"' in content
    assert content.count("<progress") == 7


def test_the_polled_fragment_without_a_running_session_stops_the_polling(world, login):
    ScanSessionFactory(org=world.org, status=ScanSession.Status.SUCCEEDED, stage=ScanSession.Stage.DONE)
    response = login(world.viewer).get(reverse("orgs:dashboard_running", args=["acme"]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b"hx-trigger" not in response.content and b"The session finished" in response.content


def test_the_polled_fragment_keeps_polling_while_the_session_runs(world, login):
    ScanSessionFactory(org=world.org, status=ScanSession.Status.RUNNING, stage=ScanSession.Stage.ANALYSIS)
    response = login(world.viewer).get(reverse("orgs:dashboard_running", args=["acme"]), HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 2s"' in response.content


def test_the_running_fragment_is_404_for_another_organization(world, login):
    assert login(world.outsider).get(reverse("orgs:dashboard_running", args=["acme"])).status_code == 404


def test_the_running_fragment_sends_an_anonymous_visitor_to_login(world, client):
    response = client.get(reverse("orgs:dashboard_running", args=["acme"]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_running_fragment_refuses_post(world, login):
    assert login(world.owner).post(reverse("orgs:dashboard_running", args=["acme"])).status_code == 405


def test_an_outsider_gets_404_on_another_organizations_dashboard(world, login):
    assert login(world.outsider).get(reverse("orgs:dashboard", args=["acme"])).status_code == 404


def test_an_unknown_organization_is_404(world, login):
    assert login(world.owner).get(reverse("orgs:dashboard", args=["nope"])).status_code == 404


def test_an_anonymous_visitor_is_sent_to_login_from_the_dashboard(world, client):
    response = client.get(reverse("orgs:dashboard", args=["acme"]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_dashboard_refuses_post(world, login):
    assert login(world.owner).post(reverse("orgs:dashboard", args=["acme"])).status_code == 405


def test_an_anonymous_visitor_of_home_is_sent_to_login(client, db):
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_home_refuses_post(world, login):
    assert login(world.owner).post(reverse("home")).status_code == 405


def test_a_queued_sessions_first_stage_reads_queued_not_running(world):
    from scans.models import ScanSession
    from scans.selectors import session_stages
    from tests.factories import ScanSessionFactory

    session = ScanSessionFactory(org=world.org, status=ScanSession.Status.QUEUED)
    assert session_stages(session)[0].state == "queued"
    session.status = ScanSession.Status.RUNNING
    assert session_stages(session)[0].state == "current"


def test_the_dashboard_draws_the_four_finding_trend_charts(world, login):
    _populate(world.org, 30)
    content = login(world.viewer).get(reverse("orgs:dashboard", args=["acme"])).content.decode()
    trends = content[content.index('id="finding-trends"'):]
    for label in ("Open findings by severity, per day", "New and fixed findings per session",
                  "Mean time to fix per severity", "SLA compliance per day"):
        assert f'aria-label="{label}"' in trends
    assert "chart-area series-high" in trends and "chart-bar series-fixed" in trends
    assert "A fixed finding leaves the count" in trends  # the SLA chart says what it measures


def test_a_new_organizations_trend_charts_say_why_they_are_empty(world, login):
    content = login(world.viewer).get(reverse("orgs:dashboard", args=["acme"])).content.decode()
    assert "No history yet" in content
    assert "No session or import has finished yet." in content
    assert "No finding was fixed in the last 90 days." in content
    assert "No open finding has a due date yet." in content


def test_another_organizations_trend_rows_stay_out_of_the_charts(world, login):
    FindingDailyStats.objects.create(org=world.other_org, day=timezone.now().date(), open_critical=7)
    content = login(world.viewer).get(reverse("orgs:dashboard", args=["acme"])).content.decode()
    assert "No history yet" in content
