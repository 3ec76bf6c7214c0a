"""Scoring: node score 0-100 and grade A-F, the organization roll-up, score history.

The policy is chosen by name from the registered set (``SCORING_POLICIES``) with
``settings.WATCHPOST_SCORING_POLICY``, so a deployment can replace it; it sees counts only,
never rows. ``scoring_run`` gathers
those counts for any number of nodes with a fixed number of queries per chunk of
nodes (one GROUP BY over findings, one over interventions), then rewrites the nodes'
dashboard snapshots in one upsert per chunk: dashboards read snapshots and never
aggregate findings live.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from config.bulk import bulk_insert
from interventions.models import Intervention
from nodes.models import Node, NodeScore, NodeSnapshot
from orgs.events import SETTINGS_CHANGED, event_subscribe
from scans.findings.groups import finding_groups_refresh, finding_groups_refresh_for_nodes
from scans.models import SEVERITIES, Finding, OrganizationScore

EXPOSURE_PREFIX = "exposure-"
NODE_CHUNK = 2000  # nodes per round of queries: keeps IN lists and upserts a sane size


@dataclass(frozen=True)
class NodeFacts:
    """What a policy may know of a node: its active, certain findings counted by severity, exposures, and
    priorities."""

    counts: Mapping[str, int] = field(default_factory=dict)
    exposures: int = 0  # active findings whose rule id starts with "exposure-" (also in counts)
    # Open findings counted by priority (scans.findings.priority): 1 -> how many P1, 2 -> how many P2.
    priorities: Mapping[int, int] = field(default_factory=dict)


class ScoringPolicy(Protocol):
    def node_score(self, facts: NodeFacts) -> int: ...

    def grade(self, score: int) -> str: ...

    def organization_score(self, scores: Sequence[int]) -> int: ...


class DefaultScoringPolicy:
    """DESIGN.md's default: start at 100, subtract per active finding with diminishing returns.

    The n-th finding of a severity costs ``base * decay**(n-1)``, so a severity can take at
    most ``base / (1 - decay)`` points: one critical costs 30 (grade C), a second 15 more,
    and a thousand criticals cost 60, never more. Unauthenticated exposures (a datastore,
    a container API) cost their own points on top of their severity's. Informational
    findings cost nothing.

    Priority weighs on top of severity: what the priority policy put first (P1: exploited, likely
    to be, reachable, on a critical node) costs more than the same severity ranked lower, so two
    nodes with the same counts per severity are told apart by what is urgent on them.
    """

    # severity -> (cost of the first finding, factor for each further one)
    SEVERITY_PENALTIES: Mapping[str, tuple[float, float]] = {
        "critical": (30.0, 0.5),
        "high": (15.0, 0.5),
        "medium": (6.0, 0.6),
        "low": (2.0, 0.7),
        "info": (0.0, 0.0),
    }
    EXPOSURE_PENALTY: tuple[float, float] = (20.0, 0.5)
    # priority -> (cost of the first finding, factor for each further one), on top of its severity's
    PRIORITY_PENALTIES: Mapping[int, tuple[float, float]] = {1: (10.0, 0.5), 2: (5.0, 0.5)}
    GRADES: Sequence[tuple[int, str]] = ((90, "A"), (80, "B"), (65, "C"), (40, "D"))
    LOWEST_GRADE = "F"

    def node_score(self, facts: NodeFacts) -> int:
        penalty = sum(_diminishing(facts.counts.get(sev, 0), *cost) for sev, cost in self.SEVERITY_PENALTIES.items())
        penalty += _diminishing(facts.exposures, *self.EXPOSURE_PENALTY)
        penalty += sum(_diminishing(facts.priorities.get(p, 0), *cost) for p, cost in self.PRIORITY_PENALTIES.items())
        # Floor, so a grade boundary is reached only by a score that truly reaches it.
        return max(0, min(100, math.floor(100 - penalty + 1e-9)))

    def grade(self, score: int) -> str:
        for floor, grade in self.GRADES:
            if score >= floor:
                return grade
        return self.LOWEST_GRADE

    def organization_score(self, scores: Sequence[int]) -> int:
        """Node-weighted mean where a worse node weighs more (a 0 counts three times a 100).

        A plain mean would let a few failing nodes vanish among hundreds of healthy ones.
        """
        if not scores:
            return 100
        weights = [1 + (100 - s) / 50 for s in scores]
        return math.floor(sum(s * w for s, w in zip(scores, weights)) / sum(weights) + 1e-9)


def _diminishing(count: int, base: float, decay: float) -> float:
    if count <= 0 or base <= 0:
        return 0.0
    if decay <= 0:
        return base
    if decay >= 1:
        return base * count
    return base * (1 - decay**count) / (1 - decay)


# The policies WATCHPOST_SCORING_POLICY can name. No dynamic import: a deployment's own policy
# is registered by name (``scoring_policy_register`` from its app's ``ready()``), so a reader
# can follow which class scores.
SCORING_POLICIES: dict[str, type] = {"default": DefaultScoringPolicy}
# A deployment whose setting names the default policy by its dotted path keeps that policy.
_FORMER_NAMES = {"scans.findings.scoring.DefaultScoringPolicy": "default"}


def scoring_policy_register(name: str, policy: type) -> None:
    SCORING_POLICIES[name] = policy


def scoring_policy() -> ScoringPolicy:
    name = _FORMER_NAMES.get(settings.WATCHPOST_SCORING_POLICY, settings.WATCHPOST_SCORING_POLICY)
    try:
        return SCORING_POLICIES[name]()
    except KeyError:
        raise ImproperlyConfigured(
            f"WATCHPOST_SCORING_POLICY={settings.WATCHPOST_SCORING_POLICY!r} names no registered scoring policy; "
            f"known: {', '.join(sorted(SCORING_POLICIES))}"
        ) from None


def scoring_on_settings_changed(*, org, changes) -> None:
    """A new certainty threshold moves findings in or out of the counts: score the organization again."""
    if "potential_threshold" in changes:
        scoring_run(org=org)


def scoring_hooks_connect() -> None:
    """Listen to the organizations' settings (``orgs`` sits below and never imports scans)."""
    event_subscribe(SETTINGS_CHANGED, scoring_on_settings_changed)


# Discovery's verdicts for a node that answered on no port (scans.pipeline.execution._node_discovered).
UNREACHED_STATES = frozenset({Node.State.DOWN, Node.State.UNREACHABLE})


def node_unscorable(*, state: str, counts: Mapping[str, int]) -> bool:
    """True for a node never reached with no active finding: there is nothing to score it on.

    A down node that still carries findings from an earlier scan keeps a score: those findings
    are real, and dropping it would hide a failing node from the roll-up.
    """
    return state in UNREACHED_STATES and not any(counts.values())


@transaction.atomic
def scoring_run(
    *, org, node_ids: Iterable[int] | None = None, session=None, scan_status: str = "",
    rule_ids: Iterable[str] | None = None,
) -> OrganizationScore | None:
    """Score ``node_ids`` (every node of ``org`` when None), rewrite their snapshots, roll up the org.

    The "by vulnerability" groups are rewritten with the snapshots: those of ``rule_ids`` when the
    caller knows which rules changed (a triage), else those of every rule found on the nodes.

    Writes one NodeScore per node and one OrganizationScore per session: run twice for one
    session, it replaces its own rows instead of adding more. With no scored node (none
    reached yet) there is nothing to roll up: no organization score is written, rather than
    a perfect one for an organization nobody could scan.
    """
    policy = scoring_policy()
    now = timezone.now()
    if node_ids is None:
        # The whole organization: filter by org, no IN list; the writes are batched below.
        _score_chunk(org=org, node_ids=None, policy=policy, session=session, scan_status=scan_status, now=now)
    else:
        ids = sorted(set(node_ids))
        for start in range(0, len(ids), NODE_CHUNK):
            _score_chunk(org=org, node_ids=ids[start : start + NODE_CHUNK], policy=policy, session=session,
                         scan_status=scan_status, now=now)
    if rule_ids is not None:
        finding_groups_refresh(org=org, rule_ids=rule_ids)
    else:
        finding_groups_refresh_for_nodes(org=org, node_ids=None if node_ids is None else ids)
    scores = list(
        NodeSnapshot.objects.filter(org=org, score__isnull=False, node__enabled=True).values_list("score", flat=True)
    )
    if not scores:
        if session is not None:
            OrganizationScore.objects.filter(org=org, session=session).delete()
        return None
    values = {"score": policy.organization_score(scores), "node_count": len(scores), "created_at": now}
    values["grade"] = policy.grade(values["score"])
    if session is None:
        return OrganizationScore.objects.create(org=org, **values)
    rollup, _ = OrganizationScore.objects.update_or_create(org=org, session=session, defaults=values)
    return rollup


def _score_chunk(*, org, node_ids: list[int] | None, policy: ScoringPolicy, session, scan_status: str, now) -> None:
    nodes = Node.objects.filter(org=org)
    # Potential findings (too uncertain, unconfirmed) count against nothing until an analyst confirms them.
    findings = Finding.objects.active().certain(org.potential_threshold).filter(org=org)
    interventions = Intervention.objects.unresolved().filter(org=org, node__isnull=False)
    if node_ids is not None:
        nodes = nodes.filter(pk__in=node_ids)
        findings = findings.filter(node_id__in=node_ids)
        interventions = interventions.filter(node_id__in=node_ids)

    counts: dict[int, dict[str, int]] = defaultdict(dict)
    exposures: dict[int, int] = defaultdict(int)
    priorities: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for row in findings.order_by().values("node_id", "severity").annotate(
        n=Count("pk"), exposed=Count("pk", filter=Q(rule_id__startswith=EXPOSURE_PREFIX)),
        p1=Count("pk", filter=Q(priority=1)), p2=Count("pk", filter=Q(priority=2)),
    ):
        counts[row["node_id"]][row["severity"]] = row["n"]
        exposures[row["node_id"]] += row["exposed"]
        priorities[row["node_id"]][1] += row["p1"]
        priorities[row["node_id"]][2] += row["p2"]
    open_interventions = dict(
        interventions.order_by().values("node_id").annotate(n=Count("pk")).values_list("node_id", "n")
    )

    history: list[NodeScore] = []
    snapshots: list[NodeSnapshot] = []
    for node_id, services, protocols, state in nodes.order_by().values_list(
        "pk", "services", "protocols", "state"
    ).iterator(chunk_size=NODE_CHUNK):
        node_counts = {sev: counts.get(node_id, {}).get(sev, 0) for sev in SEVERITIES}
        if node_unscorable(state=state, counts=node_counts):
            # Nothing answered and nothing is known against it: a 100 would claim health nobody
            # observed and lift the roll-up. Unscored (NULL) rows stay out of it and out of history.
            score, grade = None, ""
        else:
            score = policy.node_score(NodeFacts(counts=node_counts, exposures=exposures.get(node_id, 0),
                                                priorities=dict(priorities.get(node_id, {}))))
            grade = policy.grade(score)
            history.append(NodeScore(node_id=node_id, session=session, score=score, grade=grade,
                                     counts=node_counts, created_at=now))
        snapshots.append(NodeSnapshot(
            node_id=node_id, org=org, score=score, grade=grade, **node_counts,
            open_ports=Node.ports_of(services),
            protocols=list(protocols or ()), open_interventions=open_interventions.get(node_id, 0),
            last_scan_status=scan_status, last_scan_at=now if scan_status else None, updated_at=now,
        ))

    if session is not None:  # also when every node went unscored: drop rows this session wrote before
        stale = NodeScore.objects.filter(session=session)
        if node_ids is not None:
            stale = stale.filter(node_id__in=node_ids)
        else:
            stale = stale.filter(node__org=org)
        stale.delete()
    bulk_insert(history)
    fields = ["score", "grade", *SEVERITIES, "open_ports", "protocols", "open_interventions", "updated_at"]
    if scan_status:
        fields += ["last_scan_status", "last_scan_at"]
    # An upsert rather than bulk_update: one statement per batch (bulk_update builds a CASE
    # per field per row) and a node that lost its snapshot row gets it back.
    bulk_insert(snapshots, update_conflicts=True, unique_fields=["node"], update_fields=fields)
