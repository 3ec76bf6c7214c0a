"""The SLA's periodic sweep (beat, every few minutes): expired risk acceptances and newly overdue findings.

An accepted risk whose ``risk_accepted_until`` has passed opens again, its clock resuming with the
time it had left (``scans.findings.sla``); its history says "Risk acceptance expired" (a REOPENED
event by nobody), its priority, due date and node score are computed again, and
``RISK_ACCEPTANCE_EXPIRED`` is published. An open finding past its due date is marked
``sla_breached_at`` and announced once with ``SLA_BREACHED``; a due date moved back into the future
clears the mark (``due_dates_refresh``), so a later breach is announced again.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import structlog
from django.db import connection, transaction
from django.utils import timezone

from orgs.events import RISK_ACCEPTANCE_EXPIRED, SLA_BREACHED, event_publish
from orgs.models import Organization
from scans.findings.priority import priority_refresh
from scans.findings.scoring import scoring_run
from scans.findings.sla import SQL_RESUME_START, due_dates_refresh
from scans.models import Finding, FindingEvent

logger = structlog.get_logger(__name__)

SWEEP_BATCH = 5000  # findings reopened or marked per statement
EXPIRED_REASON = "Risk acceptance expired"
_F = Finding._meta.db_table

_EXPIRE = f"""
    WITH due AS (SELECT id FROM {_F} WHERE status = 'risk_accepted' AND risk_accepted_until <= %(now)s
                 ORDER BY id LIMIT {SWEEP_BATCH} FOR UPDATE SKIP LOCKED),
    reopened AS (
      UPDATE {_F} f SET status = 'open', risk_accepted_until = NULL, version = f.version + 1,
             sla_started_at = {SQL_RESUME_START}, sla_paused_at = NULL, sla_breached_at = NULL
      FROM due WHERE f.id = due.id
      RETURNING f.id, f.org_id, f.node_id),
    events AS (
      INSERT INTO {FindingEvent._meta.db_table} (finding_id, kind, from_status, to_status, reason, at)
      SELECT id, %(kind)s, 'risk_accepted', 'open', %(reason)s, %(now)s FROM reopened)
    SELECT org_id, id, node_id FROM reopened"""
_BREACH = f"""
    WITH due AS (SELECT id FROM {_F} WHERE org_id = %(org)s AND status = 'open' AND due_at <= %(now)s
                   AND sla_breached_at IS NULL ORDER BY id LIMIT {SWEEP_BATCH} FOR UPDATE SKIP LOCKED)
    UPDATE {_F} f SET sla_breached_at = %(now)s FROM due WHERE f.id = due.id RETURNING f.id"""


def sla_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Reopen the findings whose risk acceptance expired, then mark those newly past their due date.

    Each organization's reopened findings get their priority, due date and node scores again, and
    ``RISK_ACCEPTANCE_EXPIRED`` (org=, finding_ids=); its newly overdue findings ``SLA_BREACHED``
    (org=, finding_ids=), once per finding. Safe to run twice at once (rows are claimed, skipped
    when locked). Returns the counts.
    """
    now = now or timezone.now()
    reopened = breached = 0
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(_EXPIRE, {"now": now, "kind": FindingEvent.Kind.REOPENED,
                                         "reason": EXPIRED_REASON})
                rows = cursor.fetchall()
            by_org: dict[int, tuple[list[int], set[int]]] = defaultdict(lambda: ([], set()))
            for org_id, finding_id, node_id in rows:
                by_org[org_id][0].append(finding_id)
                by_org[org_id][1].add(node_id)
            for org in Organization.objects.filter(pk__in=list(by_org)).order_by("pk"):
                ids, nodes = by_org[org.pk]
                priority_refresh(org=org, finding_ids=ids)
                due_dates_refresh(org=org, finding_ids=ids)
                scoring_run(org=org, node_ids=nodes)
                event_publish(RISK_ACCEPTANCE_EXPIRED, org=org, finding_ids=sorted(ids))
        reopened += len(rows)
        if len(rows) < SWEEP_BATCH:
            break
    for org in Organization.objects.order_by("pk"):
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(_BREACH, {"org": org.pk, "now": now})
                ids = sorted(row[0] for row in cursor.fetchall())
                if ids:
                    event_publish(SLA_BREACHED, org=org, finding_ids=ids)
            breached += len(ids)
            if len(ids) < SWEEP_BATCH:
                break
    if reopened or breached:
        logger.info("sla.swept", reopened=reopened, breached=breached)
    return {"reopened": reopened, "breached": breached}
