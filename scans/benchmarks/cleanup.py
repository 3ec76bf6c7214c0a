"""Removing a benchmark's organization: table by table, one statement each.

Django's cascade would collect a hundred thousand findings and their events row by row before
deleting them; a benchmark's own organization needs none of its signals.
"""

from __future__ import annotations

from django.db import connection

from interventions.models import Intervention
from nodes.models import Node, NodeScore, NodeSnapshot
from orgs.models import AuditEvent
from scans.models import Finding, FindingEvent, OrganizationScore, ScanJob, ScanSession, ServiceProduct


def bench_organization_delete(org) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {FindingEvent._meta.db_table} WHERE finding_id IN "
                       f"(SELECT id FROM {Finding._meta.db_table} WHERE org_id = %s)", [org.pk])
        cursor.execute(f"DELETE FROM {Finding._meta.db_table} WHERE org_id = %s", [org.pk])
    for model, scope in ((ServiceProduct, "org"), (NodeScore, "node__org"), (NodeSnapshot, "org"),
                         (OrganizationScore, "org"), (Intervention, "org"), (AuditEvent, "org"),
                         (ScanJob, "session__org"), (ScanSession, "org"), (Node, "org")):
        model.objects.filter(**{scope: org}).delete()
    org.delete()
