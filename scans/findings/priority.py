"""Priority: what to fix first, P1 to P4, with the reasons in words.

The policy is chosen by name from the registered set (``PRIORITY_POLICIES``) with
``settings.WATCHPOST_PRIORITY_POLICY``, as the scoring policy is. It sees one finding's facts
(``PriorityFacts``: CVSS or severity, KEV listing and ransomware use, EPSS percentile, certainty,
reachability, the node's criticality), never rows, and answers the priority and its reasons.

``priority_refresh`` recomputes the open findings of some nodes (or some findings) with a fixed
number of queries: one read of every input per 2,000 nodes (the finding joined to its node, the
port's reachability decided in SQL from the node's last discovery), streamed from a server-side
cursor 5,000 rows at a time; per 5,000 rows, one UPDATE ... FROM of the rows whose priority or
reasons changed (each distinct list of reasons sent once) and one insert of the history events of
changed priorities. A
finding that is not open has no priority (null). Whoever changes an input calls it: the pipeline's
scoring stage and imports (before scoring: node scores count P1 and P2 findings), triage, a node's
criticality (through the ``node.criticality_changed`` event), and the CVE feeds and re-matching
(``findings_reprioritize``, for findings of any organizations).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

import orjson
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from nodes.models import Node
from orgs.models import Organization
from scans.cve.exploitation import exploitation_values_of
from scans.findings.candidates import severity_from_cvss
from scans.findings.scoring import scoring_run
from scans.findings.sla import due_dates_refresh
from scans.models import Finding, FindingEvent, KevEntry, is_potential

PRIORITIES = (1, 2, 3, 4)
CHUNK = 5000  # findings per round of queries
NODE_CHUNK = 2000  # nodes per IN list

REACHABLE = "reachable"
UNREACHABLE = "unreachable"
UNKNOWN = "unknown"


def priority_label(priority: int | None) -> str:
    return f"P{priority}" if priority else ""


@dataclass(frozen=True)
class PriorityFacts:
    """What a policy may know of one open finding."""

    severity: str
    cvss: float | None = None
    kev_added: date | None = None
    kev_ransomware: bool = False
    epss_percentile: float | None = None  # 0-1
    potential: bool = False
    reachability: str = UNKNOWN  # REACHABLE | UNREACHABLE | UNKNOWN
    port: int | None = None
    protocol: str = "tcp"
    criticality: str = Node.Criticality.MEDIUM


class PriorityPolicy(Protocol):
    def priority(self, facts: PriorityFacts) -> tuple[int, list[str]]:
        """(1-4, the reasons in words, most telling first)."""
        ...


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class DefaultPriorityPolicy:
    """Points from each input, summed; the sum's band is the priority.

    The CVSS base score (else the severity) sets the start: 50 critical, 35 high, 20 medium, 5 low.
    A CISA KEV listing adds 40 (exploited in the wild: fix first), known ransomware use 15 more; an
    EPSS percentile of 95 or above adds 20, of 80 or above 10. A port not reachable when last
    scanned takes 25 away, an unknown reachability 5; a potential (unconfirmed, uncertain) match 25.
    The node's criticality adds 15 (critical) or 8 (high), or takes 15 away (low).
    P1 from 75 points, P2 from 50, P3 from 20, P4 below: a critical CVE alone is P2, listed by KEV
    it is P1; a high one on a critical node is P2; a medium one P3, on a low node P4.
    """

    SEVERITY_POINTS = {"critical": 50, "high": 35, "medium": 20, "low": 5, "info": 0}
    KEV_POINTS = 40
    RANSOMWARE_POINTS = 15
    EPSS_POINTS: Sequence[tuple[float, int]] = ((0.95, 20), (0.80, 10))
    REACHABILITY_POINTS = {REACHABLE: 0, UNKNOWN: -5, UNREACHABLE: -25}
    POTENTIAL_POINTS = -25
    CRITICALITY_POINTS = {"critical": 15, "high": 8, "medium": 0, "low": -15}
    BANDS: Sequence[tuple[int, int]] = ((75, 1), (50, 2), (20, 3))
    LOWEST = 4

    def priority(self, facts: PriorityFacts) -> tuple[int, list[str]]:
        reasons: list[str] = []
        severity = severity_from_cvss(facts.cvss) or facts.severity
        points = self.SEVERITY_POINTS.get(severity, 0)
        if facts.kev_added is not None:
            points += self.KEV_POINTS
            reasons.append(f"listed by CISA KEV since {facts.kev_added.isoformat()}")
            if facts.kev_ransomware:
                points += self.RANSOMWARE_POINTS
                reasons.append("known ransomware use")
        if facts.epss_percentile is not None:
            points += next((p for floor, p in self.EPSS_POINTS if facts.epss_percentile >= floor), 0)
            reasons.append(f"EPSS {_ordinal(min(100, int(facts.epss_percentile * 100)))} percentile")
        if facts.cvss is not None:
            reasons.append(f"CVSS {facts.cvss:.1f}")
        else:
            reasons.append(f"severity {facts.severity} (no CVSS score)")
        if facts.potential:
            points += self.POTENTIAL_POINTS
            reasons.append("potential: matched below the certainty threshold, not confirmed")
        points += self.REACHABILITY_POINTS.get(facts.reachability, 0)
        reasons.append(_reachability_words(facts))
        points += self.CRITICALITY_POINTS.get(facts.criticality, 0)
        reasons.append(f"node criticality {facts.criticality}")
        priority = next((p for floor, p in self.BANDS if points >= floor), self.LOWEST)
        return priority, reasons


def _reachability_words(facts: PriorityFacts) -> str:
    where = f" on {facts.port}/{facts.protocol}" if facts.port is not None else ""
    if facts.reachability == REACHABLE:
        return f"reachable{where}" if where else "node reachable when last scanned"
    if facts.reachability == UNREACHABLE:
        return f"not reachable{where} when last scanned" if where else "node not reachable when last scanned"
    return f"reachability{where} not known yet" if where else "node's reachability not known yet"


# The policies WATCHPOST_PRIORITY_POLICY can name; a deployment registers its own from its app's
# ``ready()`` (no dynamic import, as for the scoring policy).
PRIORITY_POLICIES: dict[str, type] = {"default": DefaultPriorityPolicy}


def priority_policy_register(name: str, policy: type) -> None:
    PRIORITY_POLICIES[name] = policy


def priority_policy() -> PriorityPolicy:
    name = settings.WATCHPOST_PRIORITY_POLICY
    try:
        return PRIORITY_POLICIES[name]()
    except KeyError:
        raise ImproperlyConfigured(
            f"WATCHPOST_PRIORITY_POLICY={name!r} names no registered priority policy; "
            f"known: {', '.join(sorted(PRIORITY_POLICIES))}"
        ) from None


# --- a new finding's priority, written with it ----------------------------------------------------


class IngestPriorities:
    """The priority a new finding starts with, and what KEV and EPSS say of its CVEs, for the lifecycle
    to write with the finding itself: an import of a hundred thousand new findings then writes each
    row once, not once and again to set its priority. Read once per ingest: the nodes' criticality,
    state and open ports, and the feeds' values of the CVE sets the candidates name. A finding the
    run changes or reopens is recomputed afterwards by ``priority_refresh``."""

    def __init__(self, *, org, node_ids: Iterable[int], cve_id_sets: Iterable[Iterable[str]]) -> None:
        self.policy = priority_policy()
        self.threshold = org.potential_threshold
        self.nodes: dict[int, tuple[str, str, bool, frozenset[tuple[int, str]]]] = {}
        rows = Node.objects.filter(pk__in=list(node_ids)).values_list("pk", "criticality", "state",
                                                                     "last_discovered_at", "services")
        for pk, criticality, state, discovered_at, services in rows:
            # A port is open when the node's last discovery observed it, on that transport (the same
            # reading as the SQL of priority_refresh, tested against it).
            opened = frozenset((s["port"], s.get("protocol") or "tcp") for s in services or ()
                               if isinstance(s, dict) and isinstance(s.get("port"), int))
            self.nodes[pk] = (criticality, state, discovered_at is not None, opened)
        self.exploitation = exploitation_values_of(tuple(c.upper() for c in ids) for ids in cve_id_sets)
        self.answers: dict[tuple, tuple] = {}
        # KEV's due dates of the listed CVEs named (a new finding's due date takes the earliest).
        listed = {cve for ids, values in self.exploitation.items() if values[0] is not None for cve in ids}
        self.kev_due_dates: dict[str, date] = dict(
            KevEntry.objects.filter(cve_id__in=sorted(listed), due_date__isnull=False)
            .values_list("cve_id", "due_date")) if listed else {}

    def kev_due_of(self, cve_ids) -> date | None:
        """The earliest KEV due date of these CVEs, if any is listed with one."""
        dates = [self.kev_due_dates[c.upper()] for c in cve_ids or () if c.upper() in self.kev_due_dates]
        return min(dates) if dates else None

    def of(self, node_id: int, values: dict, *, port: int | None, protocol: str,
           confidence: float | None) -> tuple[int, list[str], date | None, bool, float | None, float | None]:
        """(priority, reasons, kev_added, kev_ransomware, epss_score, epss_percentile) of a new, open
        finding on ``node_id`` with the normalized content ``values``."""
        criticality, state, discovered, opened = self.nodes.get(node_id, (Node.Criticality.MEDIUM, Node.State.UNKNOWN,
                                                                        False, frozenset()))
        kev_added, ransomware, epss_score, epss_percentile = self.exploitation.get(
            tuple(values["cve_ids"]), (None, False, None, None))
        cvss = values["cvss_score"]
        reachability = _reachability(port=port, port_open=(port, protocol) in opened, state=state, discovered=discovered)
        potential = is_potential(confidence, None, self.threshold)
        # Most findings share their inputs with many others (one template on many nodes' same port):
        # each answer is worked out, and kept, once.
        key = (values["severity"], cvss, tuple(values["cve_ids"]), port, protocol, potential, reachability,
               criticality)
        if (answer := self.answers.get(key)) is not None:
            return answer
        facts = PriorityFacts(
            severity=values["severity"], cvss=float(cvss) if cvss is not None else None, kev_added=kev_added,
            kev_ransomware=bool(ransomware), epss_percentile=epss_percentile, potential=potential,
            reachability=reachability, port=port, protocol=protocol, criticality=criticality,
        )
        priority, reasons = self.policy.priority(facts)
        answer = self.answers[key] = (priority, reasons, kev_added, bool(ransomware), epss_score, epss_percentile)
        return answer


# --- recomputing --------------------------------------------------------------------------------

_F = Finding._meta.db_table
_N = Node._meta.db_table
# Every input of a finding's priority in one row. Reachability from the node's last discovery: the
# finding's (port, transport) among the node's service observations, else the node's state.
_READ = f"""
    SELECT f.id, f.status, f.severity, f.cvss_score, f.kev_added, f.kev_ransomware, f.epss_percentile,
           f.match_confidence, f.confirmed_at, f.port, f.protocol, f.priority, f.priority_reasons,
           n.criticality, n.state, n.last_discovered_at IS NOT NULL,
           f.port IS NOT NULL AND EXISTS (
             SELECT 1 FROM jsonb_array_elements(CASE jsonb_typeof(n.services) WHEN 'array' THEN n.services
                                                ELSE '[]' END) s
             WHERE jsonb_typeof(s) = 'object' AND s->>'port' = f.port::text
               AND coalesce(s->>'protocol', 'tcp') = f.protocol)
    FROM {_F} f JOIN {_N} n ON n.id = f.node_id
    WHERE f.org_id = %(org)s AND {{scope}} AND (f.status = 'open' OR f.priority IS NOT NULL)"""
_BY_NODES = _READ.format(scope="f.node_id = ANY(%(ids)s::bigint[])")
_BY_FINDINGS = _READ.format(scope="f.id = ANY(%(ids)s::bigint[])")
_BY_ORG = _READ.format(scope="TRUE")
# Most findings share their list of reasons with many others: each list travels once, by position.
_WRITE = f"""
    UPDATE {_F} f SET priority = v.priority, priority_reasons = r.reasons
    FROM unnest(%(ids)s::bigint[], %(priorities)s::smallint[], %(reasons_at)s::int[]) AS v(id, priority, at)
    LEFT JOIN jsonb_array_elements(%(reasons)s::jsonb) WITH ORDINALITY AS r(reasons, at) ON r.at = v.at
    WHERE f.id = v.id"""


def _reachability(*, port, port_open: bool, state: str, discovered: bool) -> str:
    if port is not None:
        if port_open:
            return REACHABLE
        return UNREACHABLE if discovered else UNKNOWN
    if state == Node.State.UP:
        return REACHABLE
    if state in (Node.State.DOWN, Node.State.UNREACHABLE):
        return UNREACHABLE
    return UNKNOWN


def priority_of(row: Sequence, *, policy: PriorityPolicy, threshold: float) -> tuple[int | None, list[str] | None]:
    (_, status, severity, cvss, kev_added, kev_ransomware, epss_percentile, match_confidence, confirmed_at, port,
     protocol, _, _, criticality, state, discovered, port_open) = row
    if status != Finding.Status.OPEN:
        return None, None
    facts = PriorityFacts(
        severity=severity, cvss=float(cvss) if isinstance(cvss, Decimal) else cvss, kev_added=kev_added,
        kev_ransomware=bool(kev_ransomware), epss_percentile=epss_percentile,
        potential=is_potential(match_confidence, confirmed_at, threshold),
        reachability=_reachability(port=port, port_open=port_open, state=state, discovered=discovered),
        port=port, protocol=protocol or "tcp", criticality=criticality,
    )
    return policy.priority(facts)


@transaction.atomic
def priority_refresh(*, org, node_ids: Iterable[int] | None = None, finding_ids: Iterable[int] | None = None) -> int:
    """Recompute the priority of ``org``'s findings on ``node_ids`` (or the findings ``finding_ids``;
    every finding of the organization when both are None). Returns how many findings changed.

    Open findings get a priority and reasons, others none. Constant queries per chunk of findings:
    one read, one UPDATE of the changed rows, one insert of "priority changed" events (for a finding
    whose earlier priority was another one: a new finding's first priority is not a change); then the
    due dates of the findings whose priority changed (``scans.findings.sla``), one UPDATE per chunk.
    """
    if node_ids is not None and finding_ids is not None:
        raise ValueError("give node_ids or finding_ids, not both")
    judge = _Judge(priority_policy(), threshold=org.potential_threshold)
    now = timezone.now()
    changed: list[int] = []
    if node_ids is None and finding_ids is None:
        _refresh(_BY_ORG, {"org": org.pk}, judge=judge, now=now, changed=changed)
    else:
        sql = _BY_NODES if node_ids is not None else _BY_FINDINGS
        ids = sorted({int(pk) for pk in (node_ids if node_ids is not None else finding_ids)})
        for start in range(0, len(ids), NODE_CHUNK):
            _refresh(sql, {"org": org.pk, "ids": ids[start:start + NODE_CHUNK]}, judge=judge, now=now,
                     changed=changed)
    if changed:
        due_dates_refresh(org=org, finding_ids=changed)
    return len(changed)


class _Judge:
    """The policy asked once per distinct inputs of a run: most findings share theirs (the same
    severity, CVSS and port on the same kind of node), and so do their stored reasons."""

    def __init__(self, policy: PriorityPolicy, *, threshold: float):
        self.policy, self.threshold = policy, threshold
        self.answers: dict[tuple, tuple[int | None, list[str] | None]] = {}
        self.stored: dict[str, list[str]] = {}

    def answer(self, row: tuple) -> tuple[int | None, list[str] | None]:
        inputs = row[1:11] + row[13:]  # all but the id and the stored priority and reasons
        answer = self.answers.get(inputs)
        if answer is None:
            answer = self.answers[inputs] = priority_of(row, policy=self.policy, threshold=self.threshold)
        return answer

    def stored_reasons(self, value) -> list[str] | None:
        if not isinstance(value, str):
            return value
        reasons = self.stored.get(value)  # Django's connection reads jsonb as its text
        if reasons is None:
            reasons = self.stored[value] = orjson.loads(value)
        return reasons


def _refresh(sql: str, params: dict, *, judge: _Judge, now, changed: list[int]) -> None:
    # A server-side cursor: the inputs are read once and streamed, however many findings match.
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK):
            changed.extend(_write(rows, judge=judge, now=now))


def _write(rows: Sequence[tuple], *, judge: _Judge, now) -> list[int]:
    """Write the chunk's changed priorities; the ids of the findings changed."""
    ids, priorities, reasons_at, events = [], [], [], []
    # Each list of reasons (the judge's answers are shared objects) -> its position (1-based) in the statement.
    positions: dict[int, int] = {}
    distinct: list[str] = []
    for row in rows:
        priority, reasons = judge.answer(row)
        old_priority, old_reasons = row[11], judge.stored_reasons(row[12])
        if priority == old_priority and reasons == old_reasons:
            continue
        ids.append(row[0])
        priorities.append(priority)
        if reasons is None:
            reasons_at.append(None)
        else:
            if id(reasons) not in positions:
                distinct.append(orjson.dumps(reasons).decode())
                positions[id(reasons)] = len(distinct)
            reasons_at.append(positions[id(reasons)])
        if priority is not None and old_priority is not None and priority != old_priority:
            events.append(FindingEvent(finding_id=row[0], kind=FindingEvent.Kind.PRIORITY,
                                       reason=f"P{old_priority} → P{priority}: {', '.join(reasons)}", at=now))
    if ids:
        # In the table's order: the UPDATE then visits each page of findings once, in sequence.
        ids, priorities, reasons_at = (list(column) for column in zip(*sorted(zip(ids, priorities, reasons_at))))
        with connection.cursor() as cursor:
            cursor.execute(_WRITE, {"ids": ids, "priorities": priorities, "reasons_at": reasons_at,
                                    "reasons": "[" + ",".join(distinct) + "]"})
    if events:
        FindingEvent.objects.bulk_create(events)
    return ids


def nodes_reprioritize(*, org, node_ids: Iterable[int]) -> None:
    """After a node input changed outside a session (its criticality): its findings' priorities, then
    its score and snapshot, which count P1 and P2 findings."""
    ids = list(node_ids)
    if priority_refresh(org=org, node_ids=ids):
        scoring_run(org=org, node_ids=ids)


def findings_reprioritize(*, finding_ids: Iterable[int]) -> int:
    """After the CVE feeds or a catalog re-match changed findings' values (KEV, EPSS, CVSS, certainty),
    in any organizations: their priorities, then the scores of their nodes where a priority changed.
    One read per 10,000 ids to group them by organization, then ``priority_refresh`` per organization.
    Returns how many findings changed."""
    ids = sorted({int(pk) for pk in finding_ids})
    by_org: dict[int, tuple[set[int], set[int]]] = {}
    for start in range(0, len(ids), 10_000):
        for org_id, pk, node_id in (Finding.objects.filter(pk__in=ids[start:start + 10_000])
                                    .values_list("org_id", "pk", "node_id")):
            findings, nodes = by_org.setdefault(org_id, (set(), set()))
            findings.add(pk)
            nodes.add(node_id)
    changed = 0
    for org in Organization.objects.filter(pk__in=by_org).order_by("pk"):
        findings, nodes = by_org[org.pk]
        with transaction.atomic():
            count = priority_refresh(org=org, finding_ids=findings)
            # A KEV listing's due date may move a due date whose priority stayed.
            due_dates_refresh(org=org, finding_ids=findings)
            if count:
                scoring_run(org=org, node_ids=nodes)
        changed += count
    return changed
