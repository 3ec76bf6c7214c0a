"""The findings list's SQL (scans.selectors.findings_page_json) writes what the finding's fields write in Python."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

from scans.fields import FINDING_API
from scans.models import Finding
from scans.selectors import findings_page_json
from tests.factories import FindingFactory, NodeFactory

AT = datetime(2026, 11, 30, 20, 5, 0, 123456, tzinfo=timezone.utc)
WHOLE_SECOND = datetime(2026, 11, 29, 3, 0, tzinfo=timezone.utc)


def test_the_list_sql_writes_each_finding_as_its_fields_do_in_python(world):
    node = NodeFactory(org=world.org, address="127.0.70.1")
    findings = [
        FindingFactory(node=node, severity="critical", cvss_score=Decimal("9.8"), cve_ids=["CVE-2024-6387"], cwe=362,
                       port=22, location="127.0.70.1:22", title="Quotes \" and <tags> & ünïcode", first_seen=AT,
                       last_seen=WHOLE_SECOND),
        FindingFactory(node=node, severity="low", cvss_score=Decimal("0.0"), status="risk_accepted",
                       triage_reason="lab only", risk_accepted_until=AT),
        FindingFactory(node=node, severity="info", cvss_score=None, port=None, cwe=None, protocol="udp"),
    ]
    ids = [finding.pk for finding in reversed(findings)]

    from_sql = json.loads(findings_page_json(org=world.org, ids=ids))
    in_python = [FINDING_API.represent(Finding.objects.select_related("node").get(pk=pk)) for pk in ids]

    assert from_sql == in_python
    assert [list(row) for row in from_sql] == [list(row) for row in in_python]  # the keys' order too


def test_a_whole_cvss_score_is_the_same_number_in_both_forms(world):
    # PostgreSQL writes 10 where Python writes 10.0: the same JSON number, spelled as the API always has.
    finding = FindingFactory(node=NodeFactory(org=world.org), cvss_score=Decimal("10.0"))

    from_sql = json.loads(findings_page_json(org=world.org, ids=[finding.pk]))[0]["cvss_score"]

    assert from_sql == FINDING_API.represent(finding)["cvss_score"] == 10


def test_another_organizations_finding_is_left_out_of_the_page(world):
    mine = FindingFactory(node=NodeFactory(org=world.org))
    foreign = FindingFactory(node=NodeFactory(org=world.other_org))

    from_sql = json.loads(findings_page_json(org=world.org, ids=[foreign.pk, mine.pk]))

    assert [row["id"] for row in from_sql] == [mine.pk]
