"""The interventions queue, one intervention, and the four actions in place (htmx) or by plain POST."""

import pytest
from django.test import Client
from django.urls import reverse

from interventions.models import Intervention
from orgs.models import AuditEvent
from scans.models import ScanJob, ScanSession
from tests.factories import NodeFactory, ScanJobFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
ACTIONS = ("acknowledge", "resolve", "dismiss", "retry")


def url(name, *args, slug="acme"):
    return reverse(f"interventions:{name}", args=[slug, *args])


def failed_job_intervention(org, **fields):
    """An exhausted job in a finished session, and the intervention the pipeline opened for it."""
    session = ScanSessionFactory(org=org, status=ScanSession.Status.PARTIAL, stage=ScanSession.Stage.DONE,
                                 jobs_total=1, jobs_failed=1)
    job = ScanJobFactory(session=session, node=NodeFactory(org=org, address=fields.pop("address", "127.0.0.9")),
                         scanner="tls", status=ScanJob.Status.FAILED, attempts=3, max_attempts=3, error="timed out")
    defaults = {"kind": Intervention.Kind.JOB_EXHAUSTED, "subject": f"job:{job.pk}", "title": "tls on 127.0.0.9 failed",
                "session": session, "job": job, "node": job.node,
                "context": {"error": "timed out after 3 attempts", "attempts": 3, "max_attempts": 3,
                            "task_id": "task-abc", "correlation_id": "corr-xyz"}}
    return Intervention.objects.create(org=org, **{**defaults, **fields})


def simple(org, state=Intervention.State.OPEN, kind=Intervention.Kind.IMPORT_REJECTED, n=0, **fields):
    return Intervention.objects.create(org=org, kind=kind, subject=f"import:{n}-{state}", title=f"import {n} rejected",
                                       state=state, context={"error": "not XML"}, **fields)


# --- the checklist ----------------------------------------------------------------------------


def test_an_outsider_gets_404_on_the_queue_and_on_an_intervention(world, login):
    intervention = simple(world.org)
    client = login(world.outsider)
    assert client.get(url("list")).status_code == 404
    assert client.get(url("detail", intervention.pk)).status_code == 404
    for action in ACTIONS:
        assert client.post(url(action, intervention.pk), {"version": 1}).status_code == 404


def test_another_organizations_intervention_is_404_through_ones_own_organization(world, login):
    theirs = simple(world.other_org)
    client = login(world.owner)
    assert client.get(url("detail", theirs.pk)).status_code == 404
    for action in ACTIONS:
        assert client.post(url(action, theirs.pk), {"version": 1}).status_code == 404
    assert Intervention.objects.get(pk=theirs.pk).state == "open"


def test_a_viewer_sees_the_queue_without_actions_and_cannot_act(world, login):
    intervention = failed_job_intervention(world.org)
    client = login(world.viewer)
    content = client.get(url("list")).content.decode()
    assert "tls on 127.0.0.9 failed" in content and "/acknowledge/" not in content and "/resolve/" not in content
    assert "/acknowledge/" not in client.get(url("detail", intervention.pk)).content.decode()
    for action in ACTIONS:
        assert client.post(url(action, intervention.pk), {"version": 1}, headers=HTMX).status_code == 403
    assert Intervention.objects.get(pk=intervention.pk).state == "open"


def test_an_anonymous_visitor_is_sent_to_login(world, client):
    intervention = simple(world.org)
    for target in (url("list"), url("detail", intervention.pk)):
        response = client.get(target)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    for action in ACTIONS:
        response = client.post(url(action, intervention.pk), {"version": 1})
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_wrong_methods_are_405(world, login):
    intervention = simple(world.org)
    client = login(world.owner)
    assert client.post(url("list")).status_code == 405
    assert client.post(url("detail", intervention.pk)).status_code == 405
    for action in ACTIONS:
        assert client.get(url(action, intervention.pk)).status_code == 405


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_without_a_csrf_token_are_refused(world, action):
    intervention = failed_job_intervention(world.org)
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner)
    assert client.post(url(action, intervention.pk), {"version": 1}, headers=HTMX).status_code == 403
    intervention.refresh_from_db()
    assert (intervention.state, intervention.retry_count) == ("open", 0)


# --- the queue ---------------------------------------------------------------------------------


def test_the_queue_puts_open_first_then_acknowledged_then_closed(world, login):
    simple(world.org, state="resolved", n=1)
    simple(world.org, state="acknowledged", n=2)
    simple(world.org, state="open", n=3)
    simple(world.org, state="dismissed", n=4)
    page = login(world.viewer).get(url("list")).context["page"]
    assert [i.state for i in page.object_list][:2] == ["open", "acknowledged"]
    assert {i.state for i in page.object_list[2:]} == {"resolved", "dismissed"}


def test_each_row_shows_its_links_context_occurrences_and_retries(world, login):
    intervention = failed_job_intervention(world.org, occurrences=4, retry_count=2)
    content = login(world.viewer).get(url("list")).content.decode()
    for expected in (f"/o/acme/sessions/{intervention.session_id}/", reverse("nodes:detail", args=["acme", intervention.node_id]),
                     f"job #{intervention.job_id}", "timed out after 3 attempts", "attempts 3/3", "task-abc",
                     "corr-xyz", ">4<", ">2<", "<time", "Job exhausted its retries", f"Job #{intervention.job_id}"):
        assert expected in content, expected


@pytest.mark.parametrize(("query", "expected"), [
    ("state=open", {"open"}), ("state=unresolved", {"open", "acknowledged"}), ("state=closed", {"resolved"}),
    ("kind=import_rejected", {"open", "resolved"}), ("kind=stage_stuck", {"acknowledged"}),
    ("state=bogus", {"open", "acknowledged", "resolved"}),
])
def test_the_queue_filters_by_kind_and_state_from_the_url(world, login, query, expected):
    simple(world.org, state="open", n=1)
    simple(world.org, state="resolved", n=2)
    simple(world.org, state="acknowledged", kind=Intervention.Kind.STAGE_STUCK, n=3)
    page = login(world.viewer).get(url("list") + "?" + query).context["page"]
    assert {i.state for i in page.object_list} == expected


def test_an_htmx_filter_gets_only_the_queue(world, login):
    simple(world.org)
    response = login(world.viewer).get(url("list") + "?state=open", headers=HTMX)
    assert b"<html" not in response.content and b'id="intervention-queue"' in response.content


def _many(org, n, closer):
    """Half open, half resolved by ``closer``, spread over three sessions and three nodes with jobs."""
    sessions = ScanSession.objects.bulk_create([ScanSession(org=org, trigger="console", correlation_id=f"c{i}")
                                                for i in range(3)])
    jobs = [ScanJobFactory(session=sessions[i], node=NodeFactory(org=org)) for i in range(3)]
    Intervention.objects.bulk_create([
        Intervention(org=org, kind=Intervention.Kind.STAGE_STUCK, subject=f"session:{i}:execution", title=f"stuck {i}",
                     session=sessions[i % 3], job=jobs[i % 3], node=jobs[i % 3].node,
                     state="open" if i % 2 else "resolved", closed_by=None if i % 2 else closer,
                     context={"error": "late"})
        for i in range(n)
    ])


@pytest.mark.parametrize("query", ["?kind=stage_stuck", "?state=closed"])
def test_the_queue_reads_the_same_number_of_queries_with_10_and_1000_rows(world, login, django_assert_num_queries,
                                                                          query):
    client = login(world.analyst)
    _many(world.org, 10, world.admin)
    client.get(url("list"))
    with django_assert_num_queries(7) as small:
        assert client.get(url("list") + query).status_code == 200
    Intervention.objects.all().delete()
    _many(world.org, 1000, world.admin)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(url("list") + query)
    assert response.status_code == 200 and len(response.context["page"].object_list) == 25


def test_an_empty_queue_says_what_lands_there(world, login):
    assert b"Nothing needs a person" in login(world.viewer).get(url("list")).content


def test_the_detail_page_shows_the_context_and_the_actions(world, login):
    intervention = failed_job_intervention(world.org)
    content = login(world.analyst).get(url("detail", intervention.pk)).content.decode()
    assert "task-abc" in content and "corr-xyz" in content and "Acknowledge" in content and "Retry" in content


# --- acting in place --------------------------------------------------------------------------


def test_resolving_in_place_swaps_the_row_and_updates_the_nav_count_out_of_band(world, login):
    intervention = failed_job_intervention(world.org)
    simple(world.org)  # another open one: the count goes from 2 to 1
    response = login(world.analyst).post(url("resolve", intervention.pk),
                                         {"version": intervention.version, "note": "firewall opened"}, headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200 and "<html" not in content
    assert content.lstrip().startswith(f'<tr id="intervention-{intervention.pk}"')
    assert 'id="nav-interventions-count"' in content and 'hx-swap-oob="true"' in content and ">1</span>" in content
    assert 'id="messages" hx-swap-oob="true"' in content and "resolved" in content
    intervention.refresh_from_db()
    assert (intervention.state, intervention.note, intervention.closed_by) == ("resolved", "firewall opened",
                                                                              world.analyst)
    assert AuditEvent.objects.filter(verb="intervention.resolved", actor=world.analyst).exists()


def test_resolving_without_a_note_is_allowed_and_the_message_says_no_note_was_left(world, login):
    intervention = simple(world.org)
    client = login(world.analyst)
    page = client.get(url("detail", intervention.pk)).content.decode()
    response = client.post(url("resolve", intervention.pk), {"version": intervention.version, "note": ""},
                           headers=HTMX)

    assert "(optional)" in page
    assert f"Intervention #{intervention.pk} resolved, without a note." in response.content.decode()
    noted = simple(world.org, n=1)
    response = client.post(url("resolve", noted.pk), {"version": noted.version, "note": "fixed"}, headers=HTMX)
    assert f"Intervention #{noted.pk} resolved with your note." in response.content.decode()


def test_acknowledge_then_dismiss_in_place(world, login):
    intervention = simple(world.org)
    client = login(world.analyst)
    client.post(url("acknowledge", intervention.pk), {"version": 1}, headers=HTMX)
    intervention.refresh_from_db()
    assert intervention.state == "acknowledged" and intervention.version == 2
    response = client.post(url("dismiss", intervention.pk), {"version": 2, "note": "noise"}, headers=HTMX)
    intervention.refresh_from_db()
    assert intervention.state == "dismissed" and b"dismissed" in response.content


def test_retry_requeues_the_job_and_says_what_it_requeued(world, login):
    intervention = failed_job_intervention(world.org)
    response = login(world.analyst).post(url("retry", intervention.pk), {"version": 1}, headers=HTMX)
    content = response.content.decode()
    assert f"re-queued the tls job on 127.0.0.9 (job #{intervention.job_id})" in content
    assert f"session #{intervention.session_id}" in content
    intervention.refresh_from_db()
    assert intervention.retry_count == 1 and intervention.state == "open"
    assert ScanJob.objects.get(pk=intervention.job_id).status == ScanJob.Status.QUEUED


def test_retry_of_a_stuck_stage_says_which_stage_it_reruns(world, login):
    session = ScanSessionFactory(org=world.org, status=ScanSession.Status.RUNNING, stage=ScanSession.Stage.ANALYSIS)
    intervention = Intervention.objects.create(org=world.org, kind=Intervention.Kind.STAGE_STUCK,
                                               subject=f"session:{session.pk}:analysis", title="analysis stuck",
                                               session=session)
    response = login(world.analyst).post(url("retry", intervention.pk), {"version": 1}, headers=HTMX)
    assert f"re-ran the analysis stage of session #{session.pk}" in response.content.decode()


def test_a_stale_version_shows_the_current_row_and_changes_nothing(world, login):
    intervention = simple(world.org)
    Intervention.objects.filter(pk=intervention.pk).update(state="acknowledged", version=2)
    response = login(world.analyst).post(url("resolve", intervention.pk), {"version": 1, "note": "x"}, headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200 and "changed since you loaded it" in content
    assert "Acknowledged" in content and 'value="2"' in content
    assert Intervention.objects.get(pk=intervention.pk).state == "acknowledged"


def test_an_action_the_state_machine_refuses_says_why(world, login):
    intervention = simple(world.org, state="resolved")
    response = login(world.analyst).post(url("acknowledge", intervention.pk), {"version": 1}, headers=HTMX)
    assert b"cannot be acknowledged" in response.content


def test_a_rejected_import_cannot_be_retried_and_offers_no_retry(world, login):
    intervention = simple(world.org)
    client = login(world.analyst)
    assert "/retry/" not in client.get(url("detail", intervention.pk)).content.decode()
    response = client.post(url("retry", intervention.pk), {"version": 1}, headers=HTMX)
    assert b"upload a corrected file" in response.content


def test_without_javascript_an_action_redirects_back_where_it_came_from(world, login):
    intervention = simple(world.org)
    client = login(world.analyst)
    response = client.post(url("acknowledge", intervention.pk), {"version": 1, "next": "/o/acme/interventions/?state=open"})
    assert response.status_code == 302 and response["Location"] == "/o/acme/interventions/?state=open"
    response = client.post(url("resolve", intervention.pk), {"version": 2, "next": "https://evil.example/"})
    assert response["Location"] == "/o/acme/interventions/"
    assert Intervention.objects.get(pk=intervention.pk).state == "resolved"


def test_an_action_without_a_version_changes_nothing(world, login):
    intervention = simple(world.org)
    response = login(world.analyst).post(url("resolve", intervention.pk), {}, headers=HTMX)
    assert b"reload the page" in response.content
    assert Intervention.objects.get(pk=intervention.pk).state == "open"


# --- the row's actions, fetched on demand --------------------------------------------------------


def test_the_queue_rows_offer_their_actions_on_demand_with_a_link_to_the_full_forms(world, login):
    intervention = failed_job_intervention(world.org)
    content = login(world.analyst).get(url("list")).content.decode()
    assert f'hx-get="{url("actions", intervention.pk)}"' in content and 'hx-trigger="toggle once"' in content
    assert f'href="{url("detail", intervention.pk)}#actions"' in content  # the no-JavaScript path
    assert "/resolve/" not in content  # no forms until the person opens a row's actions


def test_opening_a_rows_actions_gets_its_forms_coming_back_to_the_page_one_is_on(world, login):
    intervention = failed_job_intervention(world.org)
    here = "http://testserver/o/acme/interventions/?state=open&page=1"
    response = login(world.analyst).get(url("actions", intervention.pk),
                                        headers={**HTMX, "HX-Current-URL": here})
    content = response.content.decode()
    assert response.status_code == 200 and "<html" not in content
    for expected in ("/resolve/", "/acknowledge/", "/retry/", "/dismiss/", f'value="{intervention.version}"',
                     'name="csrfmiddlewaretoken"', 'value="/o/acme/interventions/?state=open&amp;page=1"'):
        assert expected in content, expected


def test_a_rows_actions_do_not_come_back_to_another_site(world, login):
    intervention = simple(world.org)
    content = login(world.analyst).get(url("actions", intervention.pk),
                                       headers={**HTMX, "HX-Current-URL": "https://evil.example/o/acme/interventions/"}
                                       ).content.decode()
    assert 'name="next" value="/o/acme/interventions/"' in content


def test_a_rows_actions_follow_the_checklist(world):
    intervention = simple(world.org)
    theirs = simple(world.other_org, n=1)

    def as_(user):
        client = Client()
        client.force_login(user)
        return client

    assert as_(world.outsider).get(url("actions", intervention.pk)).status_code == 404
    assert as_(world.owner).get(url("actions", theirs.pk)).status_code == 404
    assert as_(world.viewer).get(url("actions", intervention.pk), headers=HTMX).status_code == 403
    assert as_(world.owner).post(url("actions", intervention.pk)).status_code == 405
    response = Client().get(url("actions", intervention.pk))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_after_an_action_the_row_comes_back_with_its_forms_open(world, login):
    intervention = simple(world.org)
    content = login(world.analyst).post(url("acknowledge", intervention.pk), {"version": intervention.version},
                                        headers=HTMX).content.decode()
    assert "/resolve/" in content and "<details" not in content
