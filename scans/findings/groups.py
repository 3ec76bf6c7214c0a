"""The "by vulnerability" summary: one ``FindingGroup`` row per rule with open findings, rewritten set-wise.

The view lists groups sorted by their most urgent finding, then their size, and at a million
findings no aggregate over them answers in a page's time; so the groups are kept, like node
snapshots, and rewritten where findings change: ``scoring_run`` refreshes the rules found on the
nodes it scores (every rule when it scores the whole organization), a triage the rules of the
findings it changed. One refresh is one statement whatever the number of rules: an upsert from
one GROUP BY over the open findings of those rules (the partial (org, rule_id) index of open
findings), and beside it the removal of the groups among them left without an open finding; the
rules of a list of nodes are read inside that statement too.
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
      due_at = EXCLUDED.due_at, refreshed_at = EXCLUDED.refreshed_at
    RETURNING rule_id"""
# The upsert and the removal in one statement: the removal takes the groups of the rules that the
# upsert did not write (no open finding left), so the two never touch the same row.
_REFRESH = f"""
    WITH {{rules_cte}} kept AS ({_UPSERT})
    DELETE FROM {_G} g WHERE g.org_id = %(org)s {{group_rules}} AND g.rule_id NOT IN (SELECT rule_id FROM kept)"""
_RULES_LISTED = "rules AS (SELECT unnest(%(rules)s::varchar[]) AS rule_id),"
_RULES_OF_NODES = (f"rules AS MATERIALIZED (SELECT DISTINCT rule_id FROM {_F} "
                   "WHERE org_id = %(org)s AND node_id = ANY(%(nodes)s::bigint[])),")
_IN_RULES = "AND {column} IN (SELECT rule_id FROM rules)"


def finding_groups_refresh(*, org, rule_ids: Iterable[str] | None = None) -> None:
    """Rewrite the groups of ``rule_ids`` (every rule of ``org`` when None) from their open findings."""
    rules = None if rule_ids is None else sorted(set(rule_ids))
    if rules is not None and not rules:
        return
    if rules is not None and len(rules) > WHOLE_ORG_ABOVE:
        rules = None
    _refresh(org, _RULES_LISTED if rules else "", {"rules": rules})


def finding_groups_refresh_for_nodes(*, org, node_ids: Iterable[int] | None) -> None:
    """Rewrite the groups of every rule found on ``node_ids`` (in any status: a fixed one left its group)."""
    if node_ids is None:
        finding_groups_refresh(org=org)
        return
    ids = list(node_ids)
    if not ids:
        return
    _refresh(org, _RULES_OF_NODES, {"nodes": ids})


def _refresh(org, rules_cte: str, params: dict) -> None:
    """The one statement of a refresh: of the rules ``rules_cte`` names, or of every rule when it is empty."""
    sql = _REFRESH.format(
        rules_cte=rules_cte, rules=_IN_RULES.format(column="f.rule_id") if rules_cte else "",
        group_rules=_IN_RULES.format(column="g.rule_id") if rules_cte else "")
    with connection.cursor() as cursor:
        cursor.execute(sql, {"org": org.pk, "now": timezone.now(), **params})
