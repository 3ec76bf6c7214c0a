"""Console pages for sessions: list, start, detail with polled progress, cancel."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orgs.models import AuditEvent
from scans.models import ScanJob, ScanProfile, ScanSession
from scans.pipeline import dispatch
from tests.factories import NodeFactory, ScanJobFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"scans:{name}", args=["acme", *args])


@pytest.fixture
def session(world):
    return ScanSessionFactory(org=world.org, status=ScanSession.Status.RUNNING, stage=ScanSession.Stage.EXECUTION,
                              started_at=timezone.now(), jobs_total=4, jobs_succeeded=1, nodes_total=2,
                              stage_timings={"discovery": {"started_at": timezone.now().isoformat(), "seconds": 1.5}})


def pages(session):
    return [url("session_list"), url("session_new"), url("session_detail", session.pk),
            url("session_progress", session.pk)]


# -- the checklist -------------------------------------------------------------------


def test_every_session_page_sends_an_anonymous_visitor_to_login(world, client, session):
    for page in [*pages(session), url("session_cancel", session.pk)]:
        response = client.get(page) if "cancel" not in page else client.post(page)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), page


def test_every_session_page_is_404_for_another_organizations_member(world, login, session):
    client = login(world.outsider)
    for page in pages(session):
        assert client.get(page).status_code == 404, page
    assert client.post(url("session_cancel", session.pk)).status_code == 404


def test_a_session_of_another_organization_is_404_even_under_ones_own_slug(world, login):
    foreign = ScanSessionFactory(org=world.other_org)
    client = login(world.owner)
    assert client.get(url("session_detail", foreign.pk)).status_code == 404
    assert client.get(url("session_progress", foreign.pk)).status_code == 404
    assert client.post(url("session_cancel", foreign.pk)).status_code == 404


def test_read_only_pages_refuse_writes_and_write_endpoints_refuse_reads(world, login, session):
    client = login(world.owner)
    for page in (url("session_list"), url("session_detail", session.pk), url("session_progress", session.pk)):
        assert client.post(page).status_code == 405, page
    assert client.get(url("session_cancel", session.pk)).status_code == 405
    assert client.put(url("session_new")).status_code == 405


def test_a_viewer_reads_sessions_but_cannot_start_or_cancel_one(world, login, session):
    client = login(world.viewer)
    assert client.get(url("session_list")).status_code == 200
    assert client.get(url("session_detail", session.pk)).status_code == 200
    assert client.get(url("session_new")).status_code == 403
    assert client.post(url("session_new"), {"profile": "light", "scope": "all"}).status_code == 403
    assert client.post(url("session_cancel", session.pk)).status_code == 403
    assert b"Cancel session" not in client.get(url("session_detail", session.pk)).content


def test_starting_and_cancelling_need_the_csrf_token(world, session):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.analyst)
    assert client.post(url("session_new"), {"profile": "light", "scope": "all"}).status_code == 403
    assert client.post(url("session_cancel", session.pk)).status_code == 403


# -- list ------------------------------------------------------------------------------


def test_the_list_shows_status_trigger_profile_and_counts_with_links_to_the_findings(world, login, session):
    ScanSession.objects.filter(pk=session.pk).update(findings_new=3, findings_fixed=1)
    content = login(world.viewer).get(url("session_list")).content.decode()
    assert f"#{session.pk}" in content and "Running" in content and "Console" in content and "Standard" in content
    assert f"?session={session.pk}&amp;change=new" in content and f"?session={session.pk}&amp;change=fixed" in content


def test_the_list_tells_what_to_do_when_there_is_no_session(world, login):
    assert b"Start one" in login(world.analyst).get(url("session_list")).content


@pytest.mark.parametrize("rows", [10, 1000])
def test_the_list_reads_the_same_number_of_queries_at_10_and_1000_sessions(world, login, rows,
                                                                            django_assert_num_queries):
    profile = ScanProfile.objects.get(org=None, slug="standard")
    ScanSession.objects.bulk_create([
        ScanSession(org=world.org, profile=profile, trigger="schedule", correlation_id=f"c{i}", status="succeeded",
                    started_at=timezone.now(), finished_at=timezone.now(), requested_by=world.owner)
        for i in range(rows)])
    client = login(world.viewer)
    # session, user, membership, count, page of sessions (profile and requester joined), nav organizations,
    # open interventions in the navigation
    with django_assert_num_queries(7):
        assert client.get(url("session_list")).status_code == 200


# -- start -----------------------------------------------------------------------------


def test_the_start_form_preselects_the_nodes_sent_by_the_nodes_page(world, login):
    first, second = NodeFactory(org=world.org), NodeFactory(org=world.org)
    content = login(world.analyst).get(f"{url('session_new')}?node={first.pk}&node={second.pk}").content.decode()
    assert f'value="{first.pk}" id="id_node_0" checked' in content and f'value="{second.pk}"' in content
    assert 'value="nodes" id="id_scope_2" required checked' in content


def test_the_start_form_defaults_to_the_organizations_profile(world, login):
    own = ScanProfile.objects.create(org=world.org, slug="ours", name="Ours", scanners=["http"])
    world.org.default_profile = own
    world.org.save()
    content = login(world.analyst).get(url("session_new")).content.decode()
    assert '<option value="ours" selected>Ours</option>' in content


def test_an_analyst_starts_a_session_over_every_enabled_node(world, login):
    client = login(world.analyst)
    with dispatch.inline() as queue:
        response = client.post(url("session_new"), {"profile": "light", "scope": "all"})
    session = ScanSession.objects.get(org=world.org)
    assert response.status_code == 302 and response["Location"] == url("session_detail", session.pk)
    assert (session.trigger, session.profile.slug, session.targets, session.requested_by) == (
        "console", "light", [], world.analyst)
    assert [name for name, _ in queue] == ["scans.tasks.stage_run"]
    assert AuditEvent.objects.filter(verb="session.started", actor=world.analyst).exists()


def test_a_tag_starts_a_session_over_the_enabled_nodes_carrying_it(world, login):
    NodeFactory(org=world.org, address="127.0.9.1", tags=["edge"])
    NodeFactory(org=world.org, address="127.0.9.2", tags=["edge"], enabled=False)
    NodeFactory(org=world.org, address="127.0.9.3", tags=["core"])
    with dispatch.inline():
        login(world.analyst).post(url("session_new"), {"profile": "light", "scope": "tag", "tag": "edge"})
    assert ScanSession.objects.get(org=world.org).targets == ["127.0.9.1"]


def test_selected_nodes_become_the_sessions_targets(world, login):
    first, _, third = (NodeFactory(org=world.org) for _ in range(3))
    with dispatch.inline():
        login(world.analyst).post(url("session_new"), {"profile": "standard", "scope": "nodes",
                                                       "node": [first.pk, third.pk]})
    assert ScanSession.objects.get(org=world.org).targets == sorted([first.address, third.address])


def test_a_refused_start_shows_the_reason_on_the_form(world, login):
    disabled = NodeFactory(org=world.org, enabled=False)
    response = login(world.analyst).post(url("session_new"), {"profile": "light", "scope": "nodes",
                                                              "node": [disabled.pk]})
    assert response.status_code == 400 and b"is disabled" in response.content
    assert not ScanSession.objects.exists()


def test_the_start_form_asks_for_the_missing_tag_or_nodes(world, login):
    client = login(world.analyst)
    assert b"Choose the tag" in client.post(url("session_new"), {"profile": "light", "scope": "tag"}).content
    assert b"Select at least one node" in client.post(url("session_new"), {"profile": "light",
                                                                           "scope": "nodes"}).content
    NodeFactory(org=world.org, tags=["core"])
    response = client.post(url("session_new"), {"profile": "light", "scope": "tag", "tag": "nope"})
    assert response.status_code == 400 and not ScanSession.objects.exists()


def test_nodes_of_another_organization_cannot_be_smuggled_into_a_session(world, login):
    foreign = NodeFactory(org=world.other_org)
    response = login(world.analyst).post(url("session_new"), {"profile": "light", "scope": "nodes",
                                                              "node": [foreign.pk]})
    assert response.status_code == 400 and not ScanSession.objects.exists()
    assert response.context["form"].errors["node"] == [f"No node with id {foreign.pk} in this organization."]


def test_an_unknown_node_among_the_selected_is_refused_not_dropped(world, login):
    ours = NodeFactory(org=world.org)
    gone = NodeFactory(org=world.org)
    gone_id = gone.pk
    gone.delete()
    response = login(world.analyst).post(url("session_new"), {"profile": "light", "scope": "nodes",
                                                              "node": [ours.pk, gone_id]})
    assert response.status_code == 400 and not ScanSession.objects.exists()
    assert f"No node with id {gone_id} in this organization." in response.content.decode()


# -- detail and progress ---------------------------------------------------------------


def test_the_detail_shows_the_seven_stages_with_their_state_and_timing(world, login, session):
    content = login(world.viewer).get(url("session_detail", session.pk)).content.decode()
    for stage in ("discovery", "scan_creation", "execution", "analysis", "normalization", "scoring", "reporting"):
        assert f'data-stage="{stage}"' in content
    assert 'data-stage="discovery" data-state="done"' in content
    assert 'data-stage="execution" data-state="current"' in content
    assert 'data-stage="reporting" data-state="pending"' in content
    assert "1.5 s" in content and "1/4 jobs" in content


def test_the_detail_lists_the_jobs_with_their_errors(world, login, session):
    ScanJobFactory(session=session, scanner="http", status=ScanJob.Status.FAILED, attempts=3, error="connection reset")
    content = login(world.viewer).get(url("session_detail", session.pk)).content.decode()
    assert "connection reset" in content and "3/3" in content


def test_a_job_row_links_its_node_and_escapes_and_shortens_the_error(world, login, session):
    node = NodeFactory(org=world.org, name="db <main>")
    ScanJobFactory(session=session, node=node, scanner="tls", status=ScanJob.Status.FAILED, attempts=2,
                   max_attempts=3, error="bad <cert> & " + "x" * 400)
    content = login(world.viewer).get(url("session_progress", session.pk)).content.decode()
    assert f'<a href="/o/acme/nodes/{node.pk}/">db &lt;main&gt;</a></td><td>tls</td>' in content
    assert '<span class="status status-failed">Failed</span>' in content and "2/3" in content
    assert "bad &lt;cert&gt; &amp; " + "x" * 286 + "…</td>" in content


def test_the_progress_fragment_polls_while_the_session_runs(world, login, session):
    content = login(world.viewer).get(url("session_progress", session.pk)).content.decode()
    assert 'hx-trigger="every 2s"' in content and "<html" not in content


def test_the_finished_fragment_has_no_trigger_which_stops_the_polling(world, login, session):
    ScanSession.objects.filter(pk=session.pk).update(status="succeeded", stage="done", finished_at=timezone.now())
    content = login(world.viewer).get(url("session_progress", session.pk)).content.decode()
    assert "hx-trigger" not in content and "Succeeded" in content
    assert 'data-stage="reporting" data-state="done"' in content


def test_a_session_that_failed_midway_shows_its_stage_failed(world, login, session):
    ScanSession.objects.filter(pk=session.pk).update(status="failed", error="boom", finished_at=timezone.now())
    content = login(world.viewer).get(url("session_progress", session.pk)).content.decode()
    assert 'data-stage="execution" data-state="failed"' in content and "boom" in content


# -- cancel ----------------------------------------------------------------------------


def test_an_analyst_cancels_a_running_session(world, login, session):
    job = ScanJobFactory(session=session, status=ScanJob.Status.QUEUED)
    response = login(world.analyst).post(url("session_cancel", session.pk), follow=True)
    session.refresh_from_db()
    job.refresh_from_db()
    assert session.cancel_requested and job.status == ScanJob.Status.CANCELLED
    assert b"cancelling" in response.content
    assert AuditEvent.objects.filter(verb="session.cancelled", actor=world.analyst).exists()


def test_cancelling_a_finished_session_says_so(world, login, session):
    ScanSession.objects.filter(pk=session.pk).update(status="succeeded", finished_at=timezone.now())
    response = login(world.analyst).post(url("session_cancel", session.pk), follow=True)
    assert b"already finished" in response.content


def test_the_detail_and_its_fragment_stay_within_twelve_queries(world, login, session, django_assert_max_num_queries):
    ScanSession.objects.filter(pk=session.pk).update(requested_by=world.analyst)
    for _ in range(30):
        ScanJobFactory(session=session, node=NodeFactory(org=world.org))
    client = login(world.viewer)
    with django_assert_max_num_queries(12):
        assert client.get(url("session_detail", session.pk)).status_code == 200
    with django_assert_max_num_queries(12):
        assert client.get(url("session_progress", session.pk)).status_code == 200


def test_a_selection_beyond_the_limit_is_refused_with_the_alternatives(world, login):
    node = NodeFactory(org=world.org)
    ids = [node.pk] + list(range(10_000_000, 10_000_600))
    response = login(world.analyst).post(url("session_new"), {"profile": "light", "scope": "nodes", "node": ids})
    assert response.status_code == 400 and b"pick at most 500" in response.content
    assert not ScanSession.objects.exists()


@pytest.mark.parametrize("rows", [10, 1000])
def test_the_detail_reads_the_same_number_of_queries_at_10_and_1000_jobs(world, login, session, rows,
                                                                          django_assert_num_queries):
    node = NodeFactory(org=world.org)
    ScanJob.objects.bulk_create([ScanJob(session=session, node=node, scanner=f"scanner-{i}", status="succeeded")
                                 for i in range(rows)])
    ScanSession.objects.filter(pk=session.pk).update(findings_new=1, findings_fixed=1, findings_reopened=1)
    client = login(world.viewer)
    # session, user, membership, the session, jobs count, jobs page, three change lists, the zones it waits
    # for, nav x2
    with django_assert_num_queries(12):
        assert client.get(url("session_detail", session.pk)).status_code == 200


def test_the_detail_lists_only_the_kinds_of_change_the_session_counted(world, login, session,
                                                                       django_assert_num_queries):
    ScanSession.objects.filter(pk=session.pk).update(findings_new=2)
    client = login(world.viewer)
    # session, user, membership, the session, jobs count (no job: no page to read), the new
    # changes' list, the zones it waits for, nav x2: nothing fixed or reopened to read.
    with django_assert_num_queries(9):
        content = client.get(url("session_detail", session.pk)).content.decode()
    assert "0 fixed" in content and "0 reopened" in content and "2 new" in content


# -- the live part and the job counts (QA walk, issue 8) ------------------------------------


def test_the_polled_fragment_carries_every_part_that_changes_while_the_session_runs(world, login, session):
    ScanSession.objects.filter(pk=session.pk).update(status="succeeded", stage="done", finished_at=timezone.now(),
                                                     findings_new=3)
    ScanJobFactory(session=session, scanner="http", status=ScanJob.Status.SUCCEEDED)
    content = login(world.analyst).get(url("session_progress", session.pk)).content.decode()
    # The finished fragment: no cancel button, times and duration filled in, the jobs, no "Reload".
    assert "Cancel session" not in content and "not yet" not in content and "Reload" not in content
    assert "No job yet" not in content and ">http<" in content
    assert "3 new" in content and 'id="session-live"' in content and "hx-trigger" not in content


def test_a_running_session_polls_its_whole_live_part_and_offers_cancel(world, login, session):
    content = login(world.analyst).get(url("session_detail", session.pk)).content.decode()
    live = content.split('id="session-live"', 1)[1]
    assert live.split(">", 1)[0].count('hx-trigger="every 2s"') == 1
    assert "Cancel session" in live and "Jobs" in live


def test_a_queued_session_shows_its_first_stage_queued_not_running(world, login):
    queued = ScanSessionFactory(org=world.org, status=ScanSession.Status.QUEUED, stage=ScanSession.Stage.DISCOVERY)
    content = login(world.viewer).get(url("session_progress", queued.pk)).content.decode()
    assert 'data-stage="discovery" data-state="queued"' in content
    assert "running" not in content.split('data-stage="discovery"', 1)[1].split("</li>", 1)[0]


def test_the_detail_counts_scanner_discovery_and_analysis_jobs_apart(world, login, session):
    node = NodeFactory(org=world.org)
    ScanJob.objects.bulk_create(
        [ScanJob(session=session, node=node, scanner="discovery", status="succeeded"),
         ScanJob(session=session, node=node, scanner="cve", status="failed"),
         ScanJob(session=session, node=node, scanner="http", status="succeeded"),
         ScanJob(session=session, node=node, scanner="tls", status="queued")])
    content = login(world.viewer).get(url("session_detail", session.pk)).content.decode()
    assert "Scanner jobs: <strong>2</strong> (1 succeeded, 1 queued or running)" in content
    assert "Discovery jobs: <strong>1</strong> (1 succeeded)" in content
    assert 'CVE analysis jobs: <strong>1</strong> (0 succeeded, <span class="error">1 failed</span>)' in content
    assert "scanner jobs succeeded" in content


def test_the_list_says_scanner_jobs_ok_of_all_and_names_the_failures(world, login, session):
    ScanSession.objects.filter(pk=session.pk).update(jobs_total=15, jobs_succeeded=15)
    other = ScanSessionFactory(org=world.org, jobs_total=5, jobs_succeeded=3, jobs_failed=2)
    content = login(world.viewer).get(url("session_list")).content.decode()
    assert "15 of 15" in content and "15/0" not in content
    assert "3 of 5" in content and "2 failed" in content and other.pk
