"""Interventions: one unresolved per (subject, kind), a state machine with audit, retry of the failed work only."""

from __future__ import annotations

import pytest

from interventions.models import Intervention
from interventions.services import (
    InterventionTransitionError,
    intervention_acknowledge,
    intervention_dismiss,
    intervention_open,
    intervention_resolve,
    intervention_retry,
)
from orgs.models import AuditEvent
from scans.models import ScanJob, ScanSession
from tests import inline


def open_one(world, subject="job:1", kind=Intervention.Kind.JOB_EXHAUSTED, **context):
    return intervention_open(org=world.org, kind=kind, subject=subject, title="tls on 127.0.0.9 failed",
                             context=context)


def test_opening_twice_bumps_the_one_unresolved_intervention(world):
    first = open_one(world, error="timeout")
    second = open_one(world, error="timeout again", attempts=3)

    assert second.pk == first.pk
    assert second.occurrences == 2
    assert second.context == {"error": "timeout again", "attempts": 3}
    assert Intervention.objects.count() == 1


def test_a_resolved_intervention_lets_a_new_one_open_for_the_same_subject(world):
    first = open_one(world)
    intervention_resolve(intervention=first, by=world.analyst, note="fixed the firewall")

    assert open_one(world).pk != first.pk


def test_each_transition_records_who_when_and_a_note_and_an_audit_event(world):
    intervention = open_one(world)
    intervention_acknowledge(intervention=intervention, by=world.analyst, note="looking")
    assert (intervention.state, intervention.acknowledged_by, intervention.note) == ("acknowledged", world.analyst, "looking")
    assert intervention.acknowledged_at is not None

    intervention_dismiss(intervention=intervention, by=world.admin, note="decommissioned host")
    assert (intervention.state, intervention.closed_by, intervention.note) == ("dismissed", world.admin,
                                                                               "decommissioned host")
    verbs = list(AuditEvent.objects.filter(target_id=str(intervention.pk)).order_by("pk").values_list("verb", "actor"))
    assert verbs == [("intervention.opened", None), ("intervention.acknowledged", world.analyst.pk),
                     ("intervention.dismissed", world.admin.pk)]


@pytest.mark.parametrize("first, then", [
    (intervention_resolve, intervention_acknowledge),
    (intervention_dismiss, intervention_resolve),
    (intervention_resolve, intervention_resolve),
])
def test_an_invalid_transition_is_refused_with_a_clear_message(world, first, then):
    intervention = open_one(world)
    first(intervention=intervention, by=world.analyst)

    with pytest.raises(InterventionTransitionError, match=rf"Intervention #{intervention.pk} is (resolved|dismissed); "
                                                          r"it cannot be"):
        then(intervention=intervention, by=world.analyst)


def test_a_rejected_import_cannot_be_retried(world):
    intervention = open_one(world, subject="import:abc", kind=Intervention.Kind.IMPORT_REJECTED)
    with pytest.raises(InterventionTransitionError, match="upload a corrected file"):
        intervention_retry(intervention=intervention, by=world.analyst)


def test_retry_requeues_only_the_failed_job_and_resolves_when_it_succeeds(world, lab, impatient_profile, run_inline):
    from scans.lab.services import start_node

    services = start_node(lab, "127.0.60.9", ["redis", "tarpit"], ports={"tarpit": 80})
    session = run_inline(org=world.org, trigger=ScanSession.Trigger.CLI, targets=["127.0.60.9"],
                         profile=impatient_profile)
    assert session.status == ScanSession.Status.PARTIAL
    intervention = Intervention.objects.get(session=session, kind=Intervention.Kind.JOB_EXHAUSTED)
    succeeded_before = dict(ScanJob.objects.filter(session=session, status="succeeded").values_list("pk", "finished_at"))

    # The operator fixes the service, then retries.
    lab.stop(services["tarpit"])
    start_node(lab, "127.0.60.9", ["http"], ports={"http": 80})
    inline.run_inline(intervention_retry, intervention=intervention, by=world.analyst)

    intervention.refresh_from_db()
    session.refresh_from_db()
    assert intervention.state == Intervention.State.RESOLVED and intervention.retry_count == 1
    assert intervention.note == "The retried work succeeded."
    assert session.status == ScanSession.Status.SUCCEEDED
    assert session.jobs_failed == 0 and session.jobs_succeeded == session.jobs_total == 2
    for pk, finished_at in succeeded_before.items():  # nothing else ran again
        assert ScanJob.objects.get(pk=pk).finished_at == finished_at
    assert AuditEvent.objects.filter(verb="intervention.retried", actor=world.analyst).exists()


def test_retrying_a_resolved_intervention_is_refused(world):
    intervention = open_one(world)
    intervention_resolve(intervention=intervention, by=world.analyst)
    with pytest.raises(InterventionTransitionError, match="only an open or acknowledged one can be retried"):
        intervention_retry(intervention=intervention, by=world.analyst)
