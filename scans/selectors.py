"""Reads of sessions and findings, always scoped to one organization.

The findings filter is parsed once here (``finding_filters_from``) and applied by
``finding_list_for_org``: the console list, its bulk triage ("all matching this filter")
and the API read the same rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Case, Count, F, IntegerField, Max, Q, QuerySet, Sum, Value, When
from django.db.models.expressions import RawSQL
from django.utils import timezone

from config import prepared
from config.bounds import DAY_YEARS, OUT_OF_RANGE_DAY
from config.fields import columns
from interventions.models import Intervention
from nodes.models import GRADES, Node, NodeSnapshot
from orgs.models import Organization
from orgs.scope import canonical_target
from scans.fields import FINDING_API, FINDING_ROW, JOB_ROW
from scans.models import (
    CERTAINTIES,
    SEVERITIES,
    SEVERITY_RANK,
    CveRecord,
    Finding,
    FindingDailyStats,
    FindingComment,
    FindingEvent,
    ImportRequest,
    FindingGroup,
    OrganizationScore,
    ScanJob,
    ScanProfile,
    ScanSession,
    is_potential,
)
from scans.pipeline.sessions import STAGES

CHANGES = (FindingEvent.Kind.NEW, FindingEvent.Kind.FIXED, FindingEvent.Kind.REOPENED)
# sort key -> ORDER BY (the last term makes the order total, so pages never overlap)
FINDING_SORTS = {
    "severity": None,  # special: one severity at a time over the (org, severity, id) index
    "-last_seen": ("-last_seen", "-id"),
    "last_seen": ("last_seen", "id"),
    "-first_seen": ("-first_seen", "-id"),
    "first_seen": ("first_seen", "id"),
    "-cvss": ("-cvss_score", "-id"),
    "cvss": ("cvss_score", "id"),
    "node": ("node__address", "-id"),
    "-node": ("-node__address", "-id"),
    # The (org, status, severity, id) index gives this order without a sort.
    "status": ("status", "severity", "id"),
    "-status": ("-status", "-severity", "-id"),
    # P1 first, newest first within one, findings without a priority (not open) last: the
    # (org, priority, -id) index walked forward, or backward for P4 first.
    "priority": ("priority", "-id"),
    "-priority": ("-priority", "id"),
}
# Columns without an index to sort a million findings by: the list says so instead of sorting.
UNSORTABLE = {"title": "Not sortable (no index at this scale): search the title instead.",
              "port": "Not sortable (no index at this scale): filter by a port instead."}
DEFAULT_SORT = "severity"


@dataclasses.dataclass(frozen=True)
class FindingFilters:
    """What a findings list shows; every field optional. Built by ``finding_filters_from``."""

    severity: tuple[str, ...] = ()
    priority: tuple[int, ...] = ()  # 1-4 (P1-P4)
    status: tuple[str, ...] = ()
    node: int | None = None
    rule: tuple[str, ...] = ()  # exact rule ids: a "by vulnerability" group's findings
    host: str = ""  # a node's address, hostname or name, as typed: resolved to the node(s) by the query
    cve: str = ""
    source: str = ""
    port: int | None = None
    first_seen_from: date | None = None
    first_seen_to: date | None = None
    last_seen_from: date | None = None
    last_seen_to: date | None = None
    q: str = ""
    session: int | None = None
    change: str = ""
    certainty: str = ""  # "certain" or "potential" (scans.models.potential_q); empty: both
    assignee: str = ""  # a user id, or "none" (unassigned); "me" in a query string is the reader's id
    overdue: bool = False  # open and past its due date
    sort: str = DEFAULT_SORT

    @property
    def is_empty(self) -> bool:
        """No filter at all (the sort aside)."""
        return all(getattr(self, f.name) == f.default for f in dataclasses.fields(self) if f.name != "sort")


FILTER_KEYS = tuple(f.name for f in dataclasses.fields(FindingFilters))


def _multi(params: Mapping, key: str) -> list[str]:
    if hasattr(params, "getlist"):
        values = params.getlist(key)
    else:
        value = params.get(key)
        values = value if isinstance(value, (list, tuple)) else [value] if value not in (None, "") else []
    out = []
    for value in values:
        out.extend(v.strip() for v in str(value).split(",") if v.strip())
    return out


def _int(value) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 <= number < 2**31 else None


def _date(value) -> date | None:
    try:
        day = date.fromisoformat(str(value).strip()) if value else None
    except ValueError:
        return None
    return day if day is None or DAY_YEARS[0] <= day.year <= DAY_YEARS[1] else None


DATE_KEYS = ("first_seen_from", "first_seen_to", "last_seen_from", "last_seen_to")


def finding_filter_errors(params: Mapping) -> dict[str, str]:
    """Why a day in the query string was left out of the filter (the list still opens, wider):
    {"first_seen_to": "Out of the supported range ..."}, for the console to say so beside the list."""
    errors = {}
    for key in DATE_KEYS:
        value = str(params.get(key) or "").strip()
        if not value:
            continue
        try:
            day = date.fromisoformat(value)
        except ValueError:
            errors[key] = f"{value!r} is not a day (YYYY-MM-DD); this filter was not applied."
            continue
        if not DAY_YEARS[0] <= day.year <= DAY_YEARS[1]:
            errors[key] = f"{OUT_OF_RANGE_DAY} This filter was not applied."
    return errors


def assignee_value(value, user=None) -> str:
    """``me`` (the reader, when known), ``none`` or a user id, as the filter keeps it; "" for anything else."""
    text = str(value or "").strip().lower()
    if text == "me":
        return str(user.pk) if user is not None and user.is_authenticated else ""
    if text == "none":
        return text
    number = _int(text)
    return str(number) if number else ""


def finding_filters_from(params: Mapping, *, user=None) -> FindingFilters:
    """Read filters from a query string (a QueryDict or a plain dict). Unknown or malformed values are
    dropped, not errors: a shared link with a typo still opens a list, just a wider one. ``user`` is
    who reads: ``assignee=me`` means them."""
    get = params.get
    change = (get("change") or "").strip()
    sort = (get("sort") or "").strip()
    return FindingFilters(
        severity=tuple(dict.fromkeys(v for v in _multi(params, "severity") if v in SEVERITIES)),
        priority=tuple(dict.fromkeys(p for p in (priority_value(v) for v in _multi(params, "priority")) if p)),
        status=tuple(dict.fromkeys(v for v in _multi(params, "status") if v in Finding.Status.values)),
        node=_int(get("node")),
        rule=tuple(dict.fromkeys(_rules(params))),
        host=(get("host") or "").strip()[:255],
        cve=(get("cve") or "").strip().upper()[:32],
        source=(get("source") or "").strip()[:64],
        port=_int(get("port")),
        first_seen_from=_date(get("first_seen_from")),
        first_seen_to=_date(get("first_seen_to")),
        last_seen_from=_date(get("last_seen_from")),
        last_seen_to=_date(get("last_seen_to")),
        q=(get("q") or "").strip()[:200],
        session=_int(get("session")),
        change=change if change in CHANGES else "",
        certainty=certainty if (certainty := (get("certainty") or "").strip()) in CERTAINTIES else "",
        assignee=assignee_value(get("assignee"), user),
        overdue=str(get("overdue") or "").strip().lower() in ("1", "true", "yes", "on"),
        sort=sort if sort in FINDING_SORTS else DEFAULT_SORT,
    )


def _rules(params: Mapping) -> list[str]:
    """Rule ids as sent, one per parameter (a rule id may hold a comma: no splitting)."""
    values = params.getlist("rule") if hasattr(params, "getlist") else params.get("rule")
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [str(v).strip()[:255] for v in values if str(v).strip()][:MAX_RULES]


MAX_RULES = 100  # the groups one bulk triage may name


def finding_filter_problems(params: Mapping) -> list[str]:
    """What in a query string does not parse as a findings filter, in words; [] when all of it does.

    ``finding_filters_from`` drops what it cannot read (a shared link with a typo still opens a
    list); a saved view must not: its filter is checked here when it is saved and when it is
    opened, and a view whose filter stopped parsing says so instead of showing a wider list.
    """
    problems = []
    keys = [key for key in (params.keys() if hasattr(params, "keys") else params)]
    for key in keys:
        if key not in FILTER_KEYS and key != "page":
            problems.append(f"{key!r} is not a filter of the findings list.")
    choices = (("severity", SEVERITIES), ("status", tuple(Finding.Status.values) + ("all",)),
               ("change", CHANGES), ("certainty", CERTAINTIES), ("sort", tuple(FINDING_SORTS)))
    for key, allowed in choices:
        for value in _multi(params, key):
            if value not in allowed:
                problems.append(f"{key}: {value!r} is not one of {', '.join(allowed)}.")
    for value in _multi(params, "priority"):
        if priority_value(value) is None:
            problems.append(f"priority: {value!r} is not one of P1, P2, P3, P4.")
    for key in ("node", "port", "session"):
        value = str(params.get(key) or "").strip()
        if value and _int(value) is None:
            problems.append(f"{key}: {value[:40]!r} is not a number.")
    problems.extend(f"{key}: {text}" for key, text in finding_filter_errors(params).items())
    return problems


def priority_value(value) -> int | None:
    """``1`` or ``P1`` (any case) as 1; None for anything but P1-P4."""
    text = str(value).strip().upper().removeprefix("P")
    return int(text) if text in ("1", "2", "3", "4") else None


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def finding_list_for_org(*, org, filters: FindingFilters) -> QuerySet[Finding]:
    """The organization's findings matching ``filters`` (unordered: see ``finding_page``)."""
    qs = Finding.objects.filter(org=org)
    f = filters
    if f.severity:
        qs = qs.filter(severity__in=f.severity)
    if f.status:
        qs = qs.filter(status__in=f.status)
    if f.priority:
        qs = qs.filter(priority__in=f.priority)
    if f.node is not None:
        qs = qs.filter(node_id=f.node)
    if f.rule:
        qs = qs.filter(rule_id__in=f.rule)
    if f.host:
        # Resolved inside the query (the (org, address) unique index; names over the org's nodes):
        # a field that scales to 10,000 nodes where a select of every node would not.
        # An address is matched in its canonical spelling, as nodes are stored (127.1 finds 127.0.0.1).
        nodes = Node.objects.filter(org=org).filter(Q(address=canonical_target(f.host))
                                                    | Q(hostname__iexact=f.host) | Q(name__iexact=f.host))
        qs = qs.filter(node_id__in=nodes.values("id"))
    if f.cve:
        qs = qs.filter(cve_ids__contains=[f.cve])
    if f.source:
        qs = qs.filter(source=f.source)
    if f.port is not None:
        qs = qs.filter(port=f.port)
    if f.first_seen_from:
        qs = qs.filter(first_seen__gte=_day_start(f.first_seen_from))
    if f.first_seen_to:
        qs = qs.filter(first_seen__lt=_day_start(f.first_seen_to + timedelta(days=1)))
    if f.last_seen_from:
        qs = qs.filter(last_seen__gte=_day_start(f.last_seen_from))
    if f.last_seen_to:
        qs = qs.filter(last_seen__lt=_day_start(f.last_seen_to + timedelta(days=1)))
    if f.q:
        qs = qs.filter(Q(title__icontains=f.q) | Q(rule_id__icontains=f.q))
    if f.session is not None:
        events = FindingEvent.objects.filter(session_id=f.session, session__org=org)
        if f.change:
            events = events.filter(kind=f.change)
        else:
            events = events.filter(kind__in=CHANGES)
        qs = qs.filter(id__in=events.values("finding_id"))
    if f.assignee == "none":
        qs = qs.filter(assignee__isnull=True)
    elif f.assignee:
        qs = qs.filter(assignee_id=int(f.assignee))
    if f.overdue:
        qs = qs.overdue()
    if f.certainty == "potential":
        qs = qs.potential(org.potential_threshold)
    elif f.certainty == "certain":
        qs = qs.certain(org.potential_threshold)
    return qs


# The finding as PostgreSQL writes it for the API's list: generated from the same fields as the
# API's representation of one finding (scans.fields), over the finding (f) joined to its node (n).
_FINDING_JSON = FINDING_API.json_sql(columns(Finding, {"": "f", "node": "n", "org": "o"}))
_FINDINGS_PAGE = f"""
    SELECT coalesce(json_agg(j ORDER BY position), '[]')::text FROM (
      SELECT array_position(%(ids)s::bigint[], f.id) AS position, {_FINDING_JSON} AS j
      FROM {Finding._meta.db_table} f JOIN {Node._meta.db_table} n ON n.id = f.node_id
        JOIN {Organization._meta.db_table} o ON o.id = f.org_id
      WHERE f.org_id = %(org)s AND f.id = ANY(%(ids)s::bigint[])) page"""


def findings_page_json(*, org, ids: list[int]) -> str:
    """The JSON array of these findings of ``org`` (in this order), as ``FINDING_API.represent`` writes
    each: PostgreSQL writes the JSON, Python passes it through (as ``nodes.selectors.nodes_page_json``)."""
    return prepared.fetchone(_FINDINGS_PAGE, {"org": org.pk, "ids": ids})[0]


# Counting stops here per severity: a million findings are not counted on every page view.
COUNT_CAP = 10_000


def finding_severity_counts(*, org, filters: FindingFilters, cap: int = COUNT_CAP) -> dict[str, int]:
    """Counts per severity for the filter, in one GROUP BY, each counted up to ``cap + 1``.

    A count above ``cap`` means "more than cap". Each severity reads at most cap + 1 index
    entries (over the (org, severity, id) or (org, status, severity) index), so the query
    costs the same at ten thousand findings as at ten million; exact counts of what is open
    are the dashboard's (precomputed snapshots).
    """
    base = finding_list_for_org(org=org, filters=filters).order_by()
    branches, params = [], []
    for n, severity in enumerate(filters.severity or SEVERITIES):
        sql, branch_params = base.filter(severity=severity).values("severity")[:cap + 1].query.sql_with_params()
        branches.append(f"SELECT s{n}.severity FROM ({sql}) s{n}")
        params.extend(branch_params)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT t.severity, COUNT(*) FROM ({' UNION ALL '.join(branches)}) t GROUP BY t.severity",
                       params)
        rows = cursor.fetchall()
    counts = dict.fromkeys(SEVERITIES, 0)
    counts.update(dict(rows))
    return counts


def finding_page(*, org, filters: FindingFilters, counts: dict[str, int], offset: int, limit: int) -> list[dict]:
    """One page of the filtered list, as ``FINDING_ROW`` dicts (no model instances for fifty rows of a million).

    Sorted by severity, the page is read one severity at a time, newest first, with the offset
    inside each severity computed from ``counts`` (the same GROUP BY that shows the totals):
    each query walks the (org, severity, id) index instead of sorting every matching row.
    Offsets below the count cap land exactly: a capped severity holds more rows than the cap.
    """
    rows = _finding_rows(org=org, filters=filters, counts=counts, offset=offset, limit=limit)
    labels = dict(Finding.Status.choices)
    for row in rows:
        row["status_label"] = labels.get(row["status"], row["status"])
        row["potential"] = is_potential(row["match_confidence"], row["confirmed_at"], org.potential_threshold)
    return rows


def _finding_rows(*, org, filters: FindingFilters, counts: dict[str, int], offset: int, limit: int) -> list[dict]:
    base = finding_list_for_org(org=org, filters=filters)
    if filters.sort != "severity":
        return FINDING_ROW.rows(base.order_by(*FINDING_SORTS[filters.sort])[offset:offset + limit])
    rows: list[dict] = []
    skip = offset
    for sev in SEVERITIES:
        if len(rows) >= limit:
            break
        available = counts.get(sev, 0)
        if skip >= available:
            skip -= available
            continue
        take = limit - len(rows)
        # Overdue findings, most overdue first: the (org, severity, due_at, id) index of open findings.
        order = ("due_at", "id") if filters.overdue else ("-id",)
        rows.extend(FINDING_ROW.rows(base.filter(severity=sev).order_by(*order)[skip:skip + take]))
        skip = 0
    return rows


def finding_list_params(params: Mapping) -> Mapping:
    """The console's list filter: open findings unless the query names a status (``status=all``: every
    status) or a session (whose fixed findings a session's link shows). The API keeps every status."""
    if "status" in params or "session" in params:
        return params
    params = params.copy() if hasattr(params, "copy") else dict(params)
    params["status"] = Finding.Status.OPEN
    return params


GROUP_SORT = (F("priority").asc(nulls_last=True), "-open_count", "rule_id")


def finding_group_list_for_org(*, org, q: str = "") -> QuerySet[FindingGroup]:
    """The organization's open findings by vulnerability (rule), most urgent first, then the largest.

    Read from the groups kept by ``scans.findings.groups``: a page is an index walk over
    (org, priority, -open_count, rule_id), whatever the number of findings behind it.
    """
    groups = FindingGroup.objects.filter(org=org)
    if q:
        groups = groups.filter(Q(rule_id__icontains=q) | Q(title__icontains=q))
    return groups.order_by(*GROUP_SORT)


def finding_detail(*, finding: Finding) -> dict:
    """What the detail page shows besides the finding: its CVE records and its history."""
    cves = {c.cve_id: c for c in CveRecord.objects.filter(cve_id__in=finding.cve_ids or [])}
    events = list(FindingEvent.objects.filter(finding=finding).select_related("session", "by", "token")
                  .order_by("-at", "-id")[:200])
    return {
        "cves": [(cve_id, cves.get(cve_id)) for cve_id in finding.cve_ids or []],
        "events": events,
    }


def finding_comments(*, finding: Finding) -> list[FindingComment]:
    """The finding's thread, oldest first, with each author."""
    return list(FindingComment.objects.filter(finding=finding).select_related("author").order_by("created_at", "id"))


def assignee_choices(*, org) -> list[tuple[int, str]]:
    """The members a finding of ``org`` may be assigned to, as (user id, name)."""
    users = get_user_model().objects.filter(memberships__org=org).order_by("username")
    return [(user.pk, user.get_full_name() or user.get_username()) for user in users]


# -- sessions ------------------------------------------------------------------------


def session_list_for_org(*, org) -> QuerySet[ScanSession]:
    """Newest first, over the (org, created_at) index; the counters are the session's own columns."""
    return (ScanSession.objects.filter(org=org).select_related("profile", "requested_by")
            .defer("summary", "stage_timings", "targets").order_by("-created_at", "-id"))


def session_jobs(*, session: ScanSession) -> QuerySet[ScanJob]:
    return (ScanJob.objects.filter(session=session).select_related("node").only(*JOB_ROW.sources)
            .order_by("node_id", "scanner"))  # the (session, node, scanner) unique index: no sort


# How session_summary (scans/pipeline/sessions.py) groups a session's jobs: the session's own
# counters (jobs_total, jobs_succeeded, ...) count the scanner jobs of the execution stage only.
JOB_GROUPS = (("execution", "Scanner jobs"), ("discovery", "Discovery jobs"), ("analysis", "CVE analysis jobs"))


def session_job_counts(*, session: ScanSession) -> dict[str, dict]:
    """The session's jobs by group and status, in one GROUP BY over the (session, node, scanner) index:
    ``{group: {"label", "total", "succeeded", "failed", "cancelled", "running"}}`` in JOB_GROUPS order."""
    out = {key: {"key": key, "label": label, "total": 0, "succeeded": 0, "failed": 0, "cancelled": 0, "running": 0}
           for key, label in JOB_GROUPS}
    # Grouped on the raw columns and folded here: cheaper for the database than a CASE per row.
    rows = ScanJob.objects.filter(session=session).order_by().values("scanner", "status").annotate(n=Count("id"))
    for row in rows:
        scanner = row["scanner"]
        counts = out["discovery" if scanner == "discovery" else "analysis" if scanner == "cve" else "execution"]
        counts["total"] += row["n"]
        key = row["status"] if row["status"] in ("succeeded", "failed", "cancelled") else "running"
        counts[key] += row["n"]
    return out


def session_finding_changes(*, session: ScanSession, limit: int = 10) -> dict[str, dict]:
    """The session's new, fixed and reopened findings: the counters the session kept, and the first few."""
    out = {}
    totals = {FindingEvent.Kind.NEW: session.findings_new, FindingEvent.Kind.FIXED: session.findings_fixed,
              FindingEvent.Kind.REOPENED: session.findings_reopened}
    for kind in CHANGES:
        if not totals[kind]:
            # The counter moves in the transaction that writes the events (normalization, import):
            # none counted, none to list. Most sessions fix and reopen nothing: two queries saved.
            out[str(kind)] = {"count": 0, "findings": []}
            continue
        # Ordered like the (session, kind, finding) index, so the LIMIT reads a few index entries
        # (unordered, the planner may scan every event hoping to meet ten matches early).
        latest = (FindingEvent.objects.filter(session=session, kind=kind).order_by("-finding_id")
                  .values("finding_id")[:limit])
        findings = list(Finding.objects.filter(
            id__in=latest
        ).select_related("node").only("id", "title", "severity", "status", "node__id", "node__address",
                                      "node__name").order_by("-id"))
        out[str(kind)] = {"count": totals[kind], "findings": findings}
    return out


@dataclasses.dataclass(frozen=True)
class StageProgress:
    name: str
    label: str
    state: str  # "done" | "current" | "queued" (waiting for a worker to claim it) | "failed" | "pending"
    done: int
    total: int


def session_last_finished_for_org(*, org) -> ScanSession | None:
    """What the last session found: the dashboard links its new, fixed and reopened findings."""
    return ScanSession.objects.filter(org=org, status__in=ScanSession.FINISHED).order_by("-finished_at", "-pk").first()


def running_sessions_for_org(*, org, limit: int = 5) -> dict:
    """Sessions still queued or running, each with its seven stages. One query."""
    running = list(ScanSession.objects.filter(org=org).exclude(status__in=ScanSession.FINISHED)
                   .select_related("profile").order_by("-created_at")[:limit])
    return {"running_sessions": [(s, session_stages(s)) for s in running]}


def session_stages(session) -> list[StageProgress]:
    """Per-stage progress from the session row only: earlier stages are done, the current one
    counts its finished jobs (execution) or its finished pieces (``stage_pending``)."""
    labels = dict(ScanSession.Stage.choices)
    current = session.stage
    index = STAGES.index(current) if current in STAGES else len(STAGES)
    stages = []
    for n, name in enumerate(STAGES):
        if n < index or current == "done":
            stages.append(StageProgress(name, labels[name], "done", 1, 1))
        elif n == index:
            failed = session.status == ScanSession.Status.FAILED
            if name == "execution" and session.jobs_total:
                done, total = session.jobs_finished, session.jobs_total
            else:
                pending = max(session.stage_pending, 0)
                total = max(session.nodes_total, pending, 1)
                done = total - pending if pending else 0
            # A queued session's first stage waits for a worker: it is not running yet.
            state = "failed" if failed else "queued" if session.status == ScanSession.Status.QUEUED else "current"
            stages.append(StageProgress(name, labels[name], state, done, total))
        else:
            stages.append(StageProgress(name, labels[name], "pending", 0, 1))
    return stages


def finding_open_list_for_node(*, node, limit: int = 20) -> tuple[list[Finding], bool]:
    """The node's open findings, most urgent first (priority, then severity, CVSS, latest seen), at most
    ``limit``; and whether there are more. Filters use ``node.org_id``: ``node.org`` would cost a query."""
    severity_rank = Case(*(When(severity=s, then=Value(-rank)) for s, rank in SEVERITY_RANK.items()),
                         default=Value(0))
    rows = list(
        Finding.objects.filter(org_id=node.org_id, node=node).open()
        .only("id", "title", "severity", "cvss_score", "cve_ids", "port", "protocol", "source", "last_seen",
              "match_confidence", "confirmed_at", "priority")
        .order_by(F("priority").asc(nulls_last=True), severity_rank, F("cvss_score").desc(nulls_last=True),
                  "-last_seen", "id")[: limit + 1]
    )
    return rows[:limit], len(rows) > limit


def job_list_for_node(*, node, limit: int = 20) -> list[ScanJob]:
    """The node's latest jobs with their sessions, newest first."""
    return list(
        ScanJob.objects.filter(node=node, session__org_id=node.org_id)
        .select_related("session__profile")
        .only("id", "scanner", "status", "attempts", "max_attempts", "error", "queued_at", "started_at",
              "finished_at", "session__id", "session__status", "session__trigger", "session__created_at",
              "session__profile__name")
        .order_by("-queued_at", "-id")[:limit]
    )


def profile_choices_for_org(*, org) -> list[ScanProfile]:
    """Built-in profiles first, then the organization's own."""
    return list(ScanProfile.objects.filter(Q(org=None) | Q(org=org)).order_by("org_id", "name"))


def node_tags_for_org(*, org) -> list[str]:
    tags: set[str] = set()
    for node_tags in Node.objects.filter(org=org).exclude(tags=[]).values_list("tags", flat=True).iterator():
        tags.update(str(t) for t in node_tags or ())
    return sorted(tags)


def node_addresses_for_tag(*, org, tag: str) -> list[str]:
    """The enabled nodes carrying ``tag``: what "scan this tag" scans (console and API alike)."""
    return list(Node.objects.for_org(org).enabled().tagged(tag).order_by("address").values_list("address", flat=True))


def session_targets_for(*, org, tag: str | None = None, node_ids: Sequence[int] | None = None) -> list[str] | None:
    """The addresses a session asked for by ``tag`` or by ``node_ids`` scans (None: every enabled node).

    The console and the API both ask here, so both refuse alike: a tag no enabled node carries,
    or an id that names no node of the organization (another organization's included), raises a
    ``ValidationError`` saying which; nothing asked for is dropped. Nodes come in the order asked.
    """
    if tag is not None:
        targets = node_addresses_for_tag(org=org, tag=tag)
        if not targets:
            raise ValidationError(f"No enabled node carries the tag {tag!r}.", code="unknown_tag")
        return targets
    if node_ids is None:
        return None
    wanted = list(dict.fromkeys(node_ids))
    # An id past the key's range names no node, and the database would refuse it as a parameter.
    found = dict(Node.objects.filter(org=org, pk__in=[pk for pk in wanted if 0 < pk < 2**63])
                 .values_list("pk", "address"))
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        raise ValidationError(f"No node with id {missing[0]} in this organization.", code="unknown_node")
    return [found[pk] for pk in wanted]


# -- dashboard ---------------------------------------------------------------------

REMEDIATION_COUNT_CAP = 1000


def _remediation_tiles(*, org, user, cap: int) -> dict:
    """The dashboard's "assigned to me" (open) and "overdue" tiles as aggregates for the snapshot
    aggregate of ``dashboard_for_org``: each a scalar sub-select that PostgreSQL runs once, counting
    up to ``cap + 1`` over its partial index (a million overdue findings are not counted per page
    view). An organization without nodes has no findings: its empty aggregate's null counts none."""
    mine = (Finding.objects.filter(org=org, assignee_id=getattr(user, "pk", None), status=Finding.Status.OPEN)
            .order_by().values("id")[:cap + 1])
    overdue = Finding.objects.filter(org=org).overdue().order_by().values("id")[:cap + 1]
    tiles = {}
    for name, query in (("assigned", mine), ("overdue", overdue)):
        sql, params = query.query.sql_with_params()
        tiles[f"tile_{name}"] = Max(RawSQL(f"(SELECT count(*) FROM ({sql}) counted)", params,
                                           output_field=IntegerField()))
    return tiles


def dashboard_for_org(*, org, user=None, worst: int = 10, history: int = 60, interventions: int = 10,
                      tile_cap: int = REMEDIATION_COUNT_CAP) -> dict:
    """The dashboard's figures (its sessions come from the selectors above), from precomputed rows: a
    constant number of queries at any size.

    Severity counts and grades are sums over NodeSnapshot (one aggregate); open interventions
    are read from Intervention rows, so ones without a node (an import rejection, a stuck
    stage) count too.
    """
    snapshots = NodeSnapshot.objects.filter(org=org)
    totals = snapshots.aggregate(
        nodes=Count("pk"),
        **{s: Sum(s) for s in SEVERITIES},
        **{f"grade_{g}": Count("pk", filter=Q(grade=g)) for g in GRADES},
        **_remediation_tiles(org=org, user=user, cap=tile_cap),
    )
    assigned, late = totals["tile_assigned"] or 0, totals["tile_overdue"] or 0
    scored = sum(totals[f"grade_{g}"] or 0 for g in GRADES)
    grades = [{"grade": g, "count": totals[f"grade_{g}"] or 0} for g in GRADES]
    # The worst ids first, from the (org, score) index alone, then their nodes: joining before the
    # limit would join every node tied at the lowest score (thousands at 0) to sort them.
    worst_ids = snapshots.exclude(score__isnull=True).order_by("score", "node_id").values("pk")[:worst]
    # The table names each node and shows the snapshot's columns: the node's discovery JSON stays unread.
    worst_nodes = list(NodeSnapshot.objects.filter(pk__in=worst_ids).select_related("node")
                       .defer("node__services", "node__discovery_evidence").order_by("score", "node_id"))
    scores = list(OrganizationScore.objects.filter(org=org).order_by("-created_at")[:history])
    scores.reverse()
    open_interventions = Intervention.objects.unresolved().filter(org=org)
    open_list = list(open_interventions.select_related("node").order_by("-opened_at", "-pk")[:interventions])
    # The count only when the list is full: a small queue needs no second query.
    open_count = len(open_list) if len(open_list) < interventions else open_interventions.count()
    return {
        "node_count": totals["nodes"] or 0,
        "scored_count": scored,
        "severity_counts": [{"severity": s, "count": totals[s] or 0} for s in SEVERITIES],
        "grades": grades,
        "grade_max": max([g["count"] for g in grades] + [1]),
        "worst_snapshots": worst_nodes,
        "score_points": [(s.created_at, s.score) for s in scores],
        "latest_score": scores[-1] if scores else None,
        "open_interventions": open_list,
        "open_intervention_count": open_count,
        "remediation": {"assigned": min(assigned, tile_cap), "assigned_more": assigned > tile_cap,
                        "overdue": min(late, tile_cap), "overdue_more": late > tile_cap},
    }


# -- trends ------------------------------------------------------------------------

TREND_DAYS = 90
TREND_SESSIONS = 20


def finding_trends_for_org(*, org, days: int = TREND_DAYS, sessions: int = TREND_SESSIONS) -> dict:
    """The charts' rows: the last ``days`` daily rollups (``FindingDailyStats``), oldest first, and the
    last ``sessions`` finished sessions, newest first (the first is the dashboard's "since the last
    session", as ``session_last_finished_for_org`` finds it). Two queries, whatever the findings."""
    today = timezone.now().astimezone(dt_timezone.utc).date()
    rows = list(FindingDailyStats.objects.filter(org=org, day__gt=today - timedelta(days=days)).order_by("day"))
    recent = list(ScanSession.objects.filter(org=org, status__in=ScanSession.FINISHED).order_by("-finished_at", "-pk")
                  .only("pk", "org_id", "trigger", "status", "created_at", "finished_at", "findings_new",
                        "findings_fixed", "findings_reopened")[:sessions])
    return {"days": rows, "sessions": recent, "last_session": recent[0] if recent else None, "today": today,
            "window": days}


def import_requests_for_org(*, org) -> QuerySet:
    """The organization's imports, newest first (the upload page pages them in the database)."""
    return ImportRequest.objects.filter(org=org).select_related("requested_by").order_by("-created_at", "-id")
