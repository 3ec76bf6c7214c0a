"""A small organization worth reporting on: scored nodes, open findings with CVE data, a score history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from nodes.models import NodeSnapshot
from scans.models import CveRecord, Finding, OrganizationScore
from tests.factories import FindingFactory, NodeFactory, ScanJobFactory, ScanSessionFactory


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Each test stores report files in its own folder, through the default storage."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@dataclass
class Estate:
    org: object
    web: object
    db: object
    session: object
    log4shell: Finding
    redis: Finding
    headers: Finding


@pytest.fixture
def estate(world) -> Estate:
    org = world.org
    now = timezone.now()
    web = NodeFactory(org=org, address="127.0.60.1", name="web-1")
    db = NodeFactory(org=org, address="127.0.60.2", name="db-1")
    NodeSnapshot.objects.filter(node=web).update(score=35, grade="F", critical=1, medium=1)
    NodeSnapshot.objects.filter(node=db).update(score=70, grade="C", high=1)
    for days, score, grade in ((14, 80, "B"), (7, 66, "C"), (0, 52, "D")):
        OrganizationScore.objects.create(org=org, score=score, grade=grade, node_count=2,
                                         created_at=now - timedelta(days=days))
    CveRecord.objects.create(cve_id="CVE-2021-44228", cvss_score=Decimal("10.0"), severity="critical",
                             description="Apache Log4j2 JNDI features do not protect against attacker controlled "
                                         "LDAP and other JNDI related endpoints.")
    session = ScanSessionFactory(org=org, status="succeeded", stage="done", started_at=now - timedelta(minutes=5),
                                 finished_at=now)
    ScanJobFactory(session=session, node=web, scanner="http")
    ScanJobFactory(session=session, node=db, scanner="exposure", status="failed", error="connection refused", attempts=3)
    log4shell = FindingFactory(
        node=web, source="nuclei", rule_id="CVE-2021-44228", title="Apache Log4j2 Remote Code Injection",
        severity="critical", cvss_score=Decimal("10.0"), cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
        cve_ids=["CVE-2021-44228"], port=8080, evidence={"matched": "http://127.0.60.1:8080/api", "payload": "${jndi:ldap}"},
        remediation="Upgrade Log4j to 2.17.1 or later. Remove the JndiLookup class if you cannot upgrade.",
        first_session=session, last_session=session,
    )
    redis = FindingFactory(
        node=db, source="exposure", rule_id="exposure-redis-unauthenticated", title="Redis answers without a password",
        severity="high", cvss_score=Decimal("8.6"), port=6379, evidence={"info": "redis_version:7.2.4"},
        remediation="Require a password (requirepass) and bind Redis to a private interface.",
    )
    headers = FindingFactory(
        node=web, source="http", rule_id="http-missing-hsts", title="Missing Strict-Transport-Security header",
        severity="medium", cvss_score=Decimal("4.3"), port=443, evidence={"header": "absent"},
        remediation="Send Strict-Transport-Security with a max-age of at least six months.",
    )
    return Estate(org=org, web=web, db=db, session=session, log4shell=log4shell, redis=redis, headers=headers)
