"""finding_triage: false positives and accepted risks, who and why, kept across re-imports."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from nodes.models import NodeSnapshot
from orgs.models import AuditEvent
from scans.findings.imports import findings_import
from scans.findings.scoring import scoring_run
from scans.findings.triage import finding_triage
from scans.models import Finding
from tests.factories import FindingFactory, NodeFactory
from tests.findings.conftest import nuclei_result

HOST = "127.0.30.1"


@pytest.fixture
def finding(world):
    return FindingFactory(node=NodeFactory(org=world.org), severity="high")


def test_an_analyst_marks_a_finding_a_false_positive_with_a_reason(world, finding):
    triaged = finding_triage(finding=finding, status="false_positive", by=world.analyst, reason="Lab decoy",
                             ip="127.0.0.1")

    triaged.refresh_from_db()
    assert (triaged.status, triaged.triaged_by, triaged.triage_reason) == ("false_positive", world.analyst, "Lab decoy")
    assert triaged.triaged_at is not None
    event = AuditEvent.objects.get(verb="finding.triaged", target_id=str(finding.pk))
    assert (event.actor, event.org, event.ip) == (world.analyst, world.org, "127.0.0.1")
    assert event.changes["status"] == ["open", "false_positive"]
    assert event.changes["reason"] == ["", "Lab decoy"]


def test_accepting_a_risk_needs_an_expiry_in_the_future(world, finding):
    with pytest.raises(ValidationError, match="expiry"):
        finding_triage(finding=finding, status="risk_accepted", by=world.analyst, reason="Vendor patch in Q3")
    with pytest.raises(ValidationError, match="future"):
        finding_triage(finding=finding, status="risk_accepted", by=world.analyst, reason="Vendor patch in Q3",
                       until=timezone.now() - timedelta(days=1))

    until = timezone.now() + timedelta(days=30)
    finding_triage(finding=finding, status="risk_accepted", by=world.analyst, reason="Vendor patch in Q3", until=until)

    finding.refresh_from_db()
    assert (finding.status, finding.risk_accepted_until) == ("risk_accepted", until)


def test_triage_needs_a_reason(world, finding):
    with pytest.raises(ValidationError, match="reason"):
        finding_triage(finding=finding, status="false_positive", by=world.analyst, reason="  ")
    assert not AuditEvent.objects.filter(verb="finding.triaged").exists()


def test_only_triage_statuses_are_accepted(world, finding):
    with pytest.raises(ValidationError, match="not a triage status"):
        finding_triage(finding=finding, status="fixed", by=world.analyst, reason="done")


def test_a_triaged_finding_can_go_back_to_open_and_that_is_audited(world, finding):
    finding_triage(finding=finding, status="false_positive", by=world.analyst, reason="Looked like a decoy")

    finding_triage(finding=finding, status="open", by=world.admin, reason="It was real")

    finding.refresh_from_db()
    assert (finding.status, finding.triaged_by, finding.risk_accepted_until) == ("open", world.admin, None)
    assert AuditEvent.objects.filter(verb="finding.triaged", target_id=str(finding.pk)).count() == 2


def test_an_untriaged_finding_cannot_be_set_back_to_open(world, finding):
    with pytest.raises(ValidationError, match="Only a triaged finding"):
        finding_triage(finding=finding, status="open", by=world.analyst, reason="")


def test_triage_rescores_the_node(world, finding):
    finding_triage(finding=finding, status="false_positive", by=world.analyst, reason="Decoy")

    snapshot = NodeSnapshot.objects.get(node=finding.node)
    assert (snapshot.high, snapshot.score, snapshot.grade) == (0, 100, "A")


def test_a_false_positive_survives_a_reimport_of_the_same_file(world, nuclei_file):
    path = nuclei_file([nuclei_result(HOST, "git-config"), nuclei_result(HOST, "cors-misconfig")])
    findings_import(org=world.org, fmt="nuclei", path=path)
    decoy = Finding.objects.get(rule_id="git-config")
    finding_triage(finding=decoy, status="false_positive", by=world.analyst, reason="Honeypot repository")

    report = findings_import(org=world.org, fmt="nuclei", path=path)

    decoy.refresh_from_db()
    assert (decoy.status, decoy.triage_reason, decoy.triaged_by) == ("false_positive", "Honeypot repository", world.analyst)
    assert decoy.last_session == report.session
    assert report.counts.reopened == 0
    assert NodeSnapshot.objects.get(node=decoy.node).medium == 1  # only cors-misconfig counts


def test_an_accepted_risk_is_neither_fixed_nor_reopened_by_imports(world, nuclei_file):
    findings_import(org=world.org, fmt="nuclei",
                    path=nuclei_file([nuclei_result(HOST, "git-config"), nuclei_result(HOST, "cors-misconfig")]))
    accepted = Finding.objects.get(rule_id="git-config")
    finding_triage(finding=accepted, status="risk_accepted", by=world.analyst, reason="Internal only",
                   until=timezone.now() + timedelta(days=7))

    gone = findings_import(org=world.org, fmt="nuclei", path=nuclei_file([nuclei_result(HOST, "cors-misconfig")]))
    accepted.refresh_from_db()
    assert (gone.counts.fixed, accepted.status) == (0, "risk_accepted")

    back = findings_import(org=world.org, fmt="nuclei", path=nuclei_file([nuclei_result(HOST, "git-config")]))
    accepted.refresh_from_db()
    assert (back.counts.reopened, accepted.status) == (0, "risk_accepted")


def test_an_expired_acceptance_counts_against_the_score_again(world, finding):
    finding_triage(finding=finding, status="risk_accepted", by=world.analyst, reason="Until the patch",
                   until=timezone.now() + timedelta(days=1))
    assert NodeSnapshot.objects.get(node=finding.node).score == 100

    Finding.objects.filter(pk=finding.pk).update(risk_accepted_until=timezone.now() - timedelta(minutes=1))
    scoring_run(org=world.org, node_ids=[finding.node_id])

    snapshot = NodeSnapshot.objects.get(node=finding.node)
    assert (snapshot.high, snapshot.score) == (1, 85)
