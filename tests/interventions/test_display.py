"""Interventions read as labelled values, and only offer a retry that can run (QA, issue 8)."""

import pytest
from django.urls import reverse

from interventions.display import context_facts, context_summary
from interventions.models import Intervention
from interventions.services import InterventionTransitionError, intervention_retry, intervention_retryable
from tests.factories import NodeFactory, ScanJobFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db
Kind = Intervention.Kind


def unreachable_node_intervention(org):
    """What the pipeline opens when discovery found no open port: a node and a session, no job."""
    node = NodeFactory(org=org, address="127.0.10.6", state="down")
    session = ScanSessionFactory(org=org)
    return Intervention.objects.create(
        org=org, kind=Kind.NODE_UNREACHABLE, subject=f"node:{node.pk}", title=f"{node} answered on none of 1017 port(s)",
        session=session, node=node,
        context={"session": session.pk, "correlation_id": "corr-1", "error": "",
                 "portscan": {"open": 0, "closed": 1017, "filtered": 0, "error": 0}})


def test_the_context_has_labels_nested_counts_and_no_empty_rows():
    facts = context_facts({"error": "", "attempts": 2, "max_attempts": 3, "task_id": "t-1",
                           "portscan": {"open": 0, "closed": 1017}})
    assert [f["label"] for f in facts] == ["Attempts", "Port scan", "Task id"]
    assert facts[0]["value"] == "2 of 3"
    assert facts[1]["items"] == [{"label": "Open ports", "value": "0"}, {"label": "Closed ports", "value": "1017"}]


def test_an_unknown_key_still_shows_with_spaces_for_underscores():
    assert context_facts({"retry_after_s": 30}) == [
        {"key": "retry_after_s", "label": "Retry after s", "mono": False, "value": "30", "items": []}]


def test_the_row_summary_has_no_dangling_separator():
    assert [p["label"] for p in context_summary({"correlation_id": "c", "session": 4})] == ["correlation"]
    assert context_summary({"error": "x"}) == []
    assert context_summary({"portscan": {"open": 0, "closed": 1017}})[0]["value"] == "0 open, 1017 closed"


def test_the_detail_page_shows_no_python_repr_no_snake_case_and_a_readable_subject(world, login):
    intervention = unreachable_node_intervention(world.org)

    content = login(world.viewer).get(reverse("interventions:detail", args=["acme", intervention.pk])).content.decode()

    assert "{&#x27;open&#x27;" not in content and "{'open'" not in content
    assert "correlation_id" not in content and "portscan" not in content and "<dt>error</dt>" not in content
    assert "Closed ports" in content and "1017" in content and "Correlation id" in content
    assert f"node:{intervention.node_id}" not in content and "Node 127.0.10.6" in content


def test_the_queue_row_shows_no_dangling_separator(world, login):
    unreachable_node_intervention(world.org)

    content = login(world.viewer).get(reverse("interventions:list", args=["acme"])).content.decode()

    cell = content.split('class="cell-wrap context"')[1].split("</td>")[0]
    line = cell.split('<div class="muted small">')[1].split("</div>")[0].strip()
    assert line.startswith("ports 0 open, 1017 closed") and not line.startswith("·")
    assert " · correlation <span" in line


def test_an_unreachable_node_without_a_job_offers_a_scan_of_the_node_instead_of_retry(world, login):
    intervention = unreachable_node_intervention(world.org)
    client = login(world.analyst)

    for page in (reverse("interventions:list", args=["acme"]),
                 reverse("interventions:detail", args=["acme", intervention.pk])):
        content = client.get(page).content.decode()
        assert f"/interventions/{intervention.pk}/retry/" not in content, page
        assert f"/o/acme/nodes/{intervention.node_id}/scan/" in content and "Scan this node now" in content, page


def test_a_failed_job_still_offers_retry(world, login):
    session = ScanSessionFactory(org=world.org)
    job = ScanJobFactory(session=session, node=NodeFactory(org=world.org), status="failed")
    intervention = Intervention.objects.create(org=world.org, kind=Kind.JOB_EXHAUSTED, subject=f"job:{job.pk}",
                                               title="t", session=session, job=job, node=job.node)

    client = login(world.analyst)
    content = client.get(reverse("interventions:list", args=["acme"])).content.decode()
    actions = client.get(reverse("interventions:actions", args=["acme", intervention.pk]),
                         headers={"HX-Request": "true"}).content.decode()

    assert "Scan this node now" not in content  # the row's forms come when opened: Retry is among them
    assert f"/interventions/{intervention.pk}/retry/" in actions and "Scan this node now" not in actions


@pytest.mark.parametrize("kind", [k for k, _ in Kind.choices])
@pytest.mark.parametrize("has_job", [True, False])
@pytest.mark.parametrize("has_session", [True, False])
def test_retry_is_offered_exactly_when_the_intervention_names_work_a_retry_can_requeue(world, kind, has_job,
                                                                                      has_session):
    session = ScanSessionFactory(org=world.org, status="partial", stage="done", jobs_total=1, jobs_failed=1)
    job = ScanJobFactory(session=session, node=NodeFactory(org=world.org), status="failed")
    intervention = Intervention.objects.create(
        org=world.org, kind=kind, subject=f"x:{kind}", title="t", session=session if has_session else None,
        job=job if has_job else None)

    offered = intervention_retryable(intervention)
    try:
        intervention_retry(intervention=intervention, by=world.analyst)
        refusal = ""
    except InterventionTransitionError as error:
        refusal = str(error)

    if not offered:
        assert refusal, "Retry is hidden but would have run"
    else:
        # The work may refuse for its own state (a session at its last stage); never for naming nothing.
        assert "names no" not in refusal and "cannot be retried" not in refusal, refusal
