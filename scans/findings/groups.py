"""The "by vulnerability" summary: one ``FindingGroup`` row per rule with open findings, rewritten set-wise.

The view lists groups sorted by their most urgent finding, then their size, and at a million
findings no aggregate over them answers in a page's time; so the groups are kept, like node
snapshots, and rewritten where findings change: ``scoring_run`` refreshes the rules found on the
nodes it scores (every rule when it scores the whole organization), a triage the rules of the
findings it changed. One refresh is two statements whatever the number of rules: an upsert from
one GROUP BY over the open findings of those rules (the partial (org, rule_id) index of open
findings), then the removal of the groups among them left without an open finding.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.utils import timezone

from scans.models import SEVERITIES, Finding, FindingGroup

# Above this many rules one pass over the organization's open findings is cheaper than a list of rules.
WHOLE_ORG_ABOVE = 2000
PORTS_KEPT = 20

_RANK = " ".join(f"WHEN '{s}' THEN {len(SEVERITIES) - n}" for n, s in enumerate(SEVERITIES))
_BY_RANK = ", ".join(f"'{s}'" for s in reversed(SEVERITIES))
_F, _G = Finding._meta.db_table, FindingGroup._meta.db_table

_UPSERT = f"""
    INSERT INTO {_G} (org_id, rule_id, title, source, cve_ids, severity, priority, open_count, node_count, ports,
                      port_count, first_seen, due_at, refreshed_at)
    SELECT %(org)s, f.rule_id, min(f.title), min(f.source), coalesce(max(f.cve_ids::text), '[]')::jsonb,
           (ARRAY[{_BY_RANK}])[max(CASE f.severity {_RANK} ELSE 1 END)],
           min(f.priority), count(*), count(DISTINCT f.node_id),
           to_jsonb(coalesce((array_agg(DISTINCT f.port) FILTER (WHERE f.port IS NOT NULL))[1:{PORTS_KEPT}],
                             ARRAY[]::integer[])),
           count(DISTINCT f.port), min(f.first_seen), min(f.due_at), %(now)s
    FROM {_F} f
    WHERE f.org_id = %(org)s AND f.status = 'open' {{rules}}
    GROUP BY f.rule_id
    ORDER BY f.rule_id
    ON CONFLICT (org_id, rule_id) DO UPDATE SET
      title = EXCLUDED.title, source = EXCLUDED.source, cve_ids = EXCLUDED.cve_ids, severity = EXCLUDED.severity,
      priority = EXCLUDED.priority, open_count = EXCLUDED.open_count, node_count = EXCLUDED.node_count,
      ports = EXCLUDED.ports, port_count = EXCLUDED.port_count, first_seen = EXCLUDED.first_seen,
      due_at = EXCLUDED.due_at, refreshed_at = EXCLUDED.refreshed_at"""
_REMOVE = f"DELETE FROM {_G} WHERE org_id = %(org)s AND refreshed_at < %(now)s {{rules}}"
_RULES = "AND {column} = ANY(%(rules)s::varchar[])"
_RULES_OF_NODES = f"SELECT DISTINCT rule_id FROM {_F} WHERE org_id = %s AND node_id = ANY(%s::bigint[])"


def finding_groups_refresh(*, org, rule_ids: Iterable[str] | None = None) -> None:
    """Rewrite the groups of ``rule_ids`` (every rule of ``org`` when None) from their open findings."""
    rules = None if rule_ids is None else sorted(set(rule_ids))
    if rules is not None and not rules:
        return
    if rules is not None and len(rules) > WHOLE_ORG_ABOVE:
        rules = None
    params = {"org": org.pk, "now": timezone.now(), "rules": rules}
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT.format(rules=_RULES.format(column="f.rule_id") if rules else ""), params)
        cursor.execute(_REMOVE.format(rules=_RULES.format(column="rule_id") if rules else ""), params)


def finding_groups_refresh_for_nodes(*, org, node_ids: Iterable[int] | None) -> None:
    """Rewrite the groups of every rule found on ``node_ids`` (in any status: a fixed one left its group)."""
    if node_ids is None:
        finding_groups_refresh(org=org)
        return
    ids = list(node_ids)
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(_RULES_OF_NODES, [org.pk, ids])
        rules = [row[0] for row in cursor.fetchall()]
    finding_groups_refresh(org=org, rule_ids=rules)
