"""Confirming or dismissing a potential finding: one service each, audited, re-scored, version-checked."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from nodes.models import NodeSnapshot
from orgs.concurrency import StaleVersionError
from orgs.models import AuditEvent
from scans.findings.scoring import scoring_run
from scans.findings.triage import finding_confirm, finding_dismiss
from scans.models import Finding, FindingEvent
from tests.factories import FindingFactory, NodeFactory


@pytest.fixture
def potential(world):
    node = NodeFactory(org=world.org)
    found = FindingFactory(node=node, severity="critical", title="CVE-2022-0543 in Redis 5.0.7", match_confidence=0.3,
                           match_reason="redis is listed without a version; only when running on debian_linux 9.0, "
                                        "which was not observed")
    scoring_run(org=world.org, node_ids=[node.pk])
    return found


def test_confirming_makes_a_potential_finding_count_in_the_grade(world, potential):
    assert NodeSnapshot.objects.get(node=potential.node).critical == 0

    confirmed = finding_confirm(finding=potential, by=world.analyst, expected_version=potential.version)

    assert confirmed.confirmed_at is not None and confirmed.confirmed_by == world.analyst
    assert not Finding.objects.get(pk=potential.pk).is_potential
    assert NodeSnapshot.objects.get(node=potential.node).critical == 1
    assert confirmed.version == potential.version + 1


def test_a_confirmation_is_in_the_history_and_the_audit_trail(world, potential):
    finding_confirm(finding=potential, by=world.analyst, note="Debian package 5:5.0.7-2 seen on the host")

    event = FindingEvent.objects.get(finding=potential, kind=FindingEvent.Kind.CONFIRMED)
    assert event.by == world.analyst and "30% confidence" in event.reason
    assert event.reason.endswith("Debian package 5:5.0.7-2 seen on the host")
    audit = AuditEvent.objects.get(verb="finding.confirmed", target_id=str(potential.pk))
    assert audit.actor == world.analyst and audit.changes["confirmed"] == [False, True]


def test_dismissing_makes_it_a_false_positive_with_the_reason(world, potential):
    dismissed = finding_dismiss(finding=potential, by=world.analyst, reason="Upstream Redis, not Debian's package")

    assert (dismissed.status, dismissed.triage_reason) == ("false_positive", "Upstream Redis, not Debian's package")
    event = FindingEvent.objects.get(finding=potential, kind=FindingEvent.Kind.CONFIRMED)
    assert (event.from_status, event.to_status) == ("open", "false_positive")
    assert AuditEvent.objects.filter(verb="finding.dismissed", target_id=str(potential.pk)).exists()


def test_dismissing_needs_a_reason(world, potential):
    with pytest.raises(ValidationError, match="reason is required"):
        finding_dismiss(finding=potential, by=world.analyst, reason="  ")
    assert Finding.objects.get(pk=potential.pk).status == "open"


def test_a_certain_finding_is_neither_confirmed_nor_dismissed(world):
    sure = FindingFactory(node=NodeFactory(org=world.org), match_confidence=1.0)

    with pytest.raises(ValidationError, match="not potential"):
        finding_confirm(finding=sure, by=world.analyst)
    with pytest.raises(ValidationError, match="not potential"):
        finding_dismiss(finding=sure, by=world.analyst, reason="no")
    assert not FindingEvent.objects.filter(finding=sure).exists()


def test_a_confirmation_from_a_stale_version_is_refused(world, potential):
    with pytest.raises(StaleVersionError):
        finding_confirm(finding=potential, by=world.analyst, expected_version=potential.version + 5)
    assert Finding.objects.get(pk=potential.pk).confirmed_at is None
