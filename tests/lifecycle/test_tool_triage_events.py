"""A finding the tool already judged (Trivy's not_affected, an accepted SARIF suppression) starts in that
status, and its first history event says so: the "new" event carries the status the row really got."""

import pytest

from scans.findings.candidates import Coverage, FindingCandidate
from scans.findings.lifecycle import findings_ingest
from scans.models import Finding, FindingEvent
from tests.factories import NodeFactory

pytestmark = pytest.mark.django_db


def ingest(world, node, candidates):
    coverage = {node.pk: Coverage(host=node.address, ports=(), whole_host=True)}
    return findings_ingest(org=world.org, source="trivy", items=[(node.pk, c) for c in candidates],
                           coverage=coverage, complete=True)


def test_the_new_event_of_a_tool_triaged_finding_carries_its_real_status_and_reason(world):
    node = NodeFactory(org=world.org)
    judged = FindingCandidate(source="trivy", rule_id="CVE-2023-0001", title="judged", location="pkg@1",
                              triage=Finding.Status.FALSE_POSITIVE, triage_reason="vendor: not_affected")
    plain = FindingCandidate(source="trivy", rule_id="CVE-2023-0002", title="plain", location="pkg@1")
    ingest(world, node, [judged, plain])

    judged_row = Finding.objects.get(org=world.org, rule_id="CVE-2023-0001")
    plain_row = Finding.objects.get(org=world.org, rule_id="CVE-2023-0002")
    assert judged_row.status == Finding.Status.FALSE_POSITIVE
    judged_event = FindingEvent.objects.get(finding=judged_row, kind=FindingEvent.Kind.NEW)
    assert judged_event.to_status == Finding.Status.FALSE_POSITIVE
    assert judged_event.reason == "vendor: not_affected"
    plain_event = FindingEvent.objects.get(finding=plain_row, kind=FindingEvent.Kind.NEW)
    assert (plain_event.to_status, plain_event.reason) == (Finding.Status.OPEN, "")
