"""Scan profiles, sessions and jobs; findings and the CVE catalog."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from nodes.models import SEVERITIES, SEVERITY_RANK, Severity  # noqa: F401 - the findings' scale, defined with the snapshots that count it


class ScanProfile(models.Model):
    """What a session runs: which scanners, over which ports, within what time.

    Built-in profiles (light, standard, deep) have no organization; an organization
    may add its own.
    """

    org = models.ForeignKey("orgs.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="profiles")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=100)
    scanners = models.JSONField(default=list, help_text="Scanner names run per node, e.g. ['tls', 'http', 'exposure']")
    ports = models.CharField(max_length=2000, default="top1000", help_text="top100, top1000, all or a list like 22,80,8000-8100")
    time_budget_seconds = models.PositiveIntegerField(default=600, help_text="Whole session")
    job_timeout_seconds = models.PositiveIntegerField(default=120, help_text="One (node, scanner) job")
    options = models.JSONField(default=dict, blank=True, help_text="Per-scanner options: {scanner: {option: value}}")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["org_id", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["org", "slug"], name="profile_unique_org_slug"),
            models.UniqueConstraint(fields=["slug"], condition=Q(org__isnull=True), name="profile_unique_builtin_slug"),
        ]

    def __str__(self) -> str:
        return self.name


class ScanSession(models.Model):
    """One orchestration run for one organization. Progress lives in this row."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        CONSOLE = "console", "Console"
        API = "api", "API"
        CLI = "cli", "Command line"
        IMPORT = "import", "File import"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partial"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Stage(models.TextChoices):
        DISCOVERY = "discovery", "Discovery"
        SCAN_CREATION = "scan_creation", "Scan creation"
        EXECUTION = "execution", "Execution"
        ANALYSIS = "analysis", "Analysis"
        NORMALIZATION = "normalization", "Normalization"
        SCORING = "scoring", "Scoring"
        REPORTING = "reporting", "Reporting"
        DONE = "done", "Done"

    FINISHED = (Status.SUCCEEDED, Status.PARTIAL, Status.FAILED, Status.CANCELLED)

    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="sessions")
    profile = models.ForeignKey(ScanProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="sessions")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.DISCOVERY)
    targets = models.JSONField(default=list, blank=True, help_text="Explicit targets; empty = every enabled node")
    correlation_id = models.CharField(max_length=128, db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    requested_by_token = models.ForeignKey("orgs.ApiToken", null=True, blank=True, on_delete=models.SET_NULL)
    # Fan-in counters, moved with F() updates: the job that brings pending to zero advances the stage.
    nodes_total = models.PositiveIntegerField(default=0)
    stage_pending = models.IntegerField(default=0)
    jobs_total = models.PositiveIntegerField(default=0)
    jobs_succeeded = models.PositiveIntegerField(default=0)
    jobs_failed = models.PositiveIntegerField(default=0)
    jobs_cancelled = models.PositiveIntegerField(default=0)
    findings_new = models.PositiveIntegerField(default=0)
    findings_updated = models.PositiveIntegerField(default=0)
    findings_reopened = models.PositiveIntegerField(default=0)
    findings_fixed = models.PositiveIntegerField(default=0)
    stage_timings = models.JSONField(default=dict, blank=True, help_text="{stage: {started_at, finished_at, seconds}}")
    stage_deadline_at = models.DateTimeField(null=True, blank=True)
    stage_attempts = models.PositiveSmallIntegerField(default=0, help_text="Watchdog retries of the current stage")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # Started "now, outside the window" by an owner or admin: no scan window holds its jobs back.
    window_override = models.BooleanField(default=False, db_default=False)
    # Jobs held back by a closed scan window: until when (the earliest opening), and whether the
    # session had already begun (paused) or not (waiting). Null when nothing is held back.
    window_waiting_until = models.DateTimeField(null=True, blank=True)
    window_paused = models.BooleanField(default=False, db_default=False)
    error = models.TextField(blank=True)
    # Why a finished session failed or is partial, in words ("all 4 targets unreachable"); empty otherwise.
    reason = models.CharField(max_length=300, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["org", "-created_at"], name="session_org_created"),
            models.Index(fields=["status", "heartbeat_at"], name="session_status_heartbeat"),
        ]

    def __str__(self) -> str:
        return f"session {self.pk} of {self.org_id} ({self.status}/{self.stage})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def jobs_finished(self) -> int:
        return self.jobs_succeeded + self.jobs_failed + self.jobs_cancelled


class OrganizationScore(models.Model):
    """The organization roll-up written at scoring time (``scans.findings.scoring``), one row per scored session."""

    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="scores")
    session = models.ForeignKey(ScanSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    score = models.PositiveSmallIntegerField()
    grade = models.CharField(max_length=1)
    node_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "orgs_organizationscore"  # the table it was created with, in orgs
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["org", "-created_at"], name="orgscore_org_created")]


class ScanJob(models.Model):
    """One (node, scanner) piece of a session's execution stage."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        RETRYING = "retrying", "Retrying"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    # No index of its own: the unique constraint and job_session_status lead with it, and every
    # index is one more write each time a job is claimed, recorded or normalized.
    session = models.ForeignKey(ScanSession, on_delete=models.CASCADE, related_name="jobs", db_index=False)
    node = models.ForeignKey("nodes.Node", on_delete=models.CASCADE, related_name="jobs")
    scanner = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    raw_result = models.JSONField(null=True, blank=True, help_text="The scanner's own output, kept as it was")
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    normalized = models.BooleanField(default=False, help_text="Results turned into findings")
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    # The Celery worker (its node name) that claimed the job last; empty when run in-process.
    worker = models.CharField(max_length=255, blank=True, default="", db_default="")

    class Meta:
        ordering = ["session", "node", "scanner"]
        constraints = [
            # Scan creation is idempotent: one job per (session, node, scanner), whatever runs twice.
            models.UniqueConstraint(fields=["session", "node", "scanner"], name="job_unique_session_node_scanner"),
        ]
        indexes = [
            models.Index(fields=["session", "status"], name="job_session_status"),
            models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat"),
            # Jobs waiting for admission (queued, not yet dispatched): every finished message asks
            # whether its organization has any. Few rows whatever the table's size, and the plan
            # stays right when the statistics predate a session's thousands of jobs.
            models.Index(fields=["session"], name="job_waiting", condition=Q(status="queued", task_id="")),
        ]

    def __str__(self) -> str:
        return f"{self.scanner} on {self.node_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class WorkerHeartbeat(models.Model):
    """A Celery worker saying it is alive, every few seconds (``scans.pipeline.workers`` beats it).

    Kept in the database, not in Celery's control channel, so the console's status page and
    /metrics see workers on every broker (the embedded filesystem broker has no broadcast).
    """

    hostname = models.CharField(max_length=255, unique=True)
    queues = models.JSONField(default=list, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    concurrency = models.PositiveIntegerField(null=True, blank=True)
    # The zone the worker serves (``WATCHPOST_ZONE``); null for a central worker.
    zone = models.ForeignKey("orgs.Zone", null=True, blank=True, on_delete=models.SET_NULL, related_name="workers")
    started_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        # The table the model had in interventions: its rows stay where they are.
        db_table = "interventions_workerheartbeat"
        ordering = ["hostname"]

    def __str__(self) -> str:
        return f"{self.hostname} (seen {self.seen_at:%H:%M:%S})"




CERTAINTIES = ("certain", "potential")


def potential_q(threshold: float) -> Q:
    """The one rule of certainty, in SQL: a stated confidence below the organization's threshold,
    and nobody confirmed it. A finding that states no confidence (an imported tool's word) is certain.
    ``is_potential`` is the same rule in Python, ``scans.fields`` writes it for the API's JSON."""
    return Q(match_confidence__lt=threshold, confirmed_at__isnull=True)


def is_potential(match_confidence: float | None, confirmed_at, threshold: float) -> bool:
    """``potential_q`` in Python, for a finding in hand or a row of values."""
    return match_confidence is not None and match_confidence < threshold and confirmed_at is None


class FindingQuerySet(models.QuerySet):
    def for_org(self, org):
        return self.filter(org=org)

    def potential(self, threshold: float):
        """Findings too uncertain to count (see ``potential_q``): shown apart, out of grades and scores."""
        return self.filter(potential_q(threshold))

    def certain(self, threshold: float):
        """Every finding that is not potential: sure enough, confirmed, or stating no confidence."""
        return self.filter(Q(match_confidence__isnull=True) | Q(match_confidence__gte=threshold)
                           | Q(confirmed_at__isnull=False))

    def open(self):
        return self.filter(status=Finding.Status.OPEN)

    def overdue(self, now=None):
        """Open findings past their due date (the (org, severity, due_at) index of open findings)."""
        return self.filter(status=Finding.Status.OPEN, due_at__lt=now or timezone.now())

    def active(self):
        """Findings that count against a score: open, or accepted risk whose acceptance expired."""
        now = timezone.now()
        return self.filter(
            Q(status=Finding.Status.OPEN) | Q(status=Finding.Status.RISK_ACCEPTED, risk_accepted_until__lte=now)
        )


class Finding(models.Model):
    """One normalized, de-duplicated finding on one node."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        FIXED = "fixed", "Fixed"
        FALSE_POSITIVE = "false_positive", "False positive"
        RISK_ACCEPTED = "risk_accepted", "Risk accepted"

    TRIAGED = (Status.FALSE_POSITIVE, Status.RISK_ACCEPTED)

    # No single-column indexes on org and node: the composite indexes below lead with them, and
    # every extra index is written for each of the hundred thousand rows of a large import.
    # The organization is the node's: the database checks the node link, and checking the
    # organization too would be a second key lookup at commit for every row an import writes.
    # Deleting an organization deletes its findings through Django.
    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="findings", db_index=False,
                            db_constraint=False)
    # No foreign key in the database: an ingest locks the nodes it writes to instead
    # (scans.findings.lifecycle), which spares a lookup per new row at commit.
    node = models.ForeignKey("nodes.Node", on_delete=models.CASCADE, related_name="findings", db_index=False,
                             db_constraint=False)
    source = models.CharField(max_length=64, help_text="Scanner or importer")
    rule_id = models.CharField(max_length=255)
    title = models.CharField(max_length=500)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    cvss_score = models.DecimalField(max_digits=3, decimal_places=1, null=True, blank=True)
    cvss_vector = models.CharField(max_length=200, blank=True)
    cve_ids = models.JSONField(default=list, blank=True)
    cwe = models.PositiveIntegerField(null=True, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    protocol = models.CharField(max_length=8, default="tcp")
    location = models.CharField(max_length=1000, blank=True)
    description = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    remediation = models.TextField(blank=True)
    references = models.JSONField(default=list, blank=True)
    # CVE fingerprinting keeps why it matched: "openssh 8.9p1 within [8.5p1, 9.8p1)".
    match_confidence = models.FloatField(null=True, blank=True)
    match_reason = models.CharField(max_length=500, blank=True)
    fingerprint = models.CharField(max_length=64)
    content_hash = models.CharField(max_length=32, blank=True, help_text="Digest of the content fields, to spot changes")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    fixed_at = models.DateTimeField(null=True, blank=True)
    reopened_count = models.PositiveIntegerField(default=0)
    # Not indexed: every rescan rewrites last_seen/last_session on every finding it sees, and an
    # update that touches no indexed column stays a cheap in-page (HOT) update in PostgreSQL
    # when the page has room for the new version: the table's fillfactor is 50 (migration 0016).
    # Nor checked by the database: a history link to a session, nulled by Django when a session
    # is deleted (retention, an organization's removal), where a key check would run for every
    # row an import writes and every row a rescan touches.
    first_session = models.ForeignKey(ScanSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                      db_index=False, db_constraint=False)
    last_session = models.ForeignKey(ScanSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                     db_index=False, db_constraint=False)
    times_seen = models.PositiveIntegerField(default=1, help_text="Sessions and imports that reported it")
    # Indexed only where set (the partial index below): a new finding has no triager. The people a
    # finding names are not checked by the database: each link checked is a trigger event queued
    # for every row an import writes, null or not; Django nulls them when a user is deleted.
    triaged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   db_index=False, db_constraint=False)
    triaged_at = models.DateTimeField(null=True, blank=True)
    triage_reason = models.TextField(blank=True)
    risk_accepted_until = models.DateTimeField(null=True, blank=True)
    # Certainty: a finding whose match_confidence is below its organization's threshold is
    # potential until an analyst confirms it (or dismisses it as a false positive).
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", db_index=False, db_constraint=False)
    # What the CVE feeds say of the finding's CVEs (the highest of them), kept on the finding so
    # that lists sort and filter by them without a join; rewritten by every catalog update.
    kev_added = models.DateField(null=True, blank=True, help_text="Listed by CISA KEV since")
    kev_ransomware = models.BooleanField(default=False, db_default=False, help_text="KEV: known ransomware use")
    epss_score = models.FloatField(null=True, blank=True)
    epss_percentile = models.FloatField(null=True, blank=True)
    # P1 (fix first) to P4, from the priority policy; null while not computed or not open.
    priority = models.PositiveSmallIntegerField(null=True, blank=True)
    priority_reasons = models.JSONField(null=True, blank=True, help_text="The policy's reasons, in words")
    # Ownership and the SLA (scans.findings.remediation): who fixes it, where it is tracked, and by
    # when it is due (null when the finding is not open or its clock is paused by accepted risk).
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+", db_index=False, db_constraint=False)
    ticket_url = models.URLField(max_length=2000, blank=True, default="", db_default="")
    ticket_key = models.CharField(max_length=100, blank=True, default="", db_default="")
    due_at = models.DateTimeField(null=True, blank=True)
    # The SLA clock (scans.findings.sla): when it started (null: at first_seen; a reopening starts a new
    # one), when a triage paused it (the remaining time is given back when the finding opens again), and
    # when the periodic sweep saw the finding overdue (each breach is announced once).
    sla_started_at = models.DateTimeField(null=True, blank=True)
    sla_paused_at = models.DateTimeField(null=True, blank=True)
    sla_breached_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every change a person or token makes (triage), for optimistic concurrency:
    # a triage made from a stale copy is refused (orgs.concurrency). Scans do not bump it.
    version = models.PositiveIntegerField(default=1, db_default=1)

    objects = FindingQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(fields=["org", "node", "fingerprint"], name="finding_unique_org_node_fingerprint"),
        ]
        indexes = [
            # With the id last, a list filtered by one status and one severity walks this index in
            # id order (the API's cursor pages: the same cost at any depth, whatever the data's
            # clustering); it still serves every (org, status[, severity]) lookup the shorter one did.
            models.Index(fields=["org", "status", "severity", "id"], name="finding_org_status_sev_id"),
            # A node's findings by source and status (what a scanner's rerun fixes), and by status
            # alone through the node prefix (PostgreSQL skips over the sources): one index fewer for
            # every new finding to take.
            models.Index(fields=["node", "source", "status"], name="finding_node_source_status"),
            # The console's findings list pages one severity at a time, newest first
            # (scans.selectors): an index walk instead of sorting a million rows per page.
            models.Index(fields=["org", "severity", "id"], name="finding_org_severity_id"),
            models.Index(fields=["triaged_by"], condition=Q(triaged_by__isnull=False), name="finding_triaged_by"),
            # A catalog update names CVEs: their findings from CVE fingerprinting (source "cve",
            # scans.cve.analysis.SOURCE) are found without reading every finding.
            models.Index(fields=["rule_id"], condition=Q(source="cve"), name="finding_cve_rule"),
            # The lists sorted by priority, P1 first and newest first within one (findings without a
            # priority, the closed ones, last): an index walk, as for severity.
            models.Index(fields=["org", "priority", "-id"], name="finding_org_priority_id"),
            # "Overdue" (open, due before now) per severity, most overdue first; open findings only,
            # and only those with a due date.
            models.Index(fields=["org", "severity", "due_at", "id"], name="finding_org_open_due",
                         condition=Q(status="open", due_at__isnull=False)),
            # "Assigned to me" per severity, newest first (the list's counts and pages read the index
            # alone): written only for assigned findings, so an import pays nothing for it.
            models.Index(fields=["org", "assignee", "severity", "id"], name="finding_org_assignee",
                         condition=Q(assignee__isnull=False)),
            # The sweep's accepted risks that expire: a few rows, whatever the table's size.
            models.Index(fields=["risk_accepted_until"], name="finding_risk_expiry",
                         condition=Q(status="risk_accepted")),
            # The open findings of one rule: a FindingGroup's refresh and the list a group opens.
            models.Index(fields=["org", "rule_id"], condition=Q(status="open"), name="finding_org_rule_open"),
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.title}"

    def potential_under(self, threshold: float) -> bool:
        return is_potential(self.match_confidence, self.confirmed_at, threshold)

    @property
    def is_potential(self) -> bool:
        """Below its organization's threshold and not confirmed (``FindingQuerySet.potential``)."""
        return self.potential_under(self.org.potential_threshold)

    @property
    def certainty(self) -> str:
        return "potential" if self.is_potential else "certain"


class FindingDailyStats(models.Model):
    """One organization's findings on one (UTC) day: the charts' rows (scans.findings.daily_stats).

    Rewritten, never incremented, by ``finding_daily_stats_refresh`` (the scoring stage, an
    import, triage, the hourly beat row): today's open counts are the dashboard's own (the sums
    of the node snapshots), its new and fixed counts come from the day's finding events. The
    charts read at most a few hundred of these rows, never the findings.
    """

    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    # Open (active, certain) findings by severity, as the dashboard's tiles count them.
    open_critical = models.PositiveIntegerField(default=0)
    open_high = models.PositiveIntegerField(default=0)
    open_medium = models.PositiveIntegerField(default=0)
    open_low = models.PositiveIntegerField(default=0)
    open_info = models.PositiveIntegerField(default=0)
    # The SLA: open findings that have a due date, and those of them past it.
    sla_open = models.PositiveIntegerField(default=0)
    sla_overdue = models.PositiveIntegerField(default=0)
    new = models.PositiveIntegerField(default=0)
    # Fixed that day, by severity, with the sum of their times to fix (fixed - first seen) in seconds.
    fixed_critical = models.PositiveIntegerField(default=0)
    fixed_high = models.PositiveIntegerField(default=0)
    fixed_medium = models.PositiveIntegerField(default=0)
    fixed_low = models.PositiveIntegerField(default=0)
    fixed_info = models.PositiveIntegerField(default=0)
    fix_seconds_critical = models.BigIntegerField(default=0)
    fix_seconds_high = models.BigIntegerField(default=0)
    fix_seconds_medium = models.BigIntegerField(default=0)
    fix_seconds_low = models.BigIntegerField(default=0)
    fix_seconds_info = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "day"], name="findingdailystats_org_day")]

    def __str__(self) -> str:
        return f"findings of organization {self.org_id} on {self.day}"

    @property
    def fixed(self) -> int:
        return sum(getattr(self, f"fixed_{s}") for s in SEVERITIES)

    @property
    def open_findings(self) -> int:
        return sum(getattr(self, f"open_{s}") for s in SEVERITIES)


class FindingGroup(models.Model):
    """The open findings of one rule in one organization, summed up: what the "by vulnerability" view lists.

    A rule id is the vulnerability: CVE fingerprinting writes the CVE id as the rule id
    (``scans.cve.analysis``), importers write the scanner's check (a Nuclei template, an OpenVAS OID),
    and a finding naming several CVEs stays in the one group of its rule. Rewritten set-wise by
    ``scans.findings.groups.finding_groups_refresh`` wherever findings change (the scoring of their
    nodes, a triage), as node snapshots are: the view never aggregates a million findings live.
    """

    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+", db_index=False)
    rule_id = models.CharField(max_length=255)
    title = models.CharField(max_length=500)
    source = models.CharField(max_length=64)
    cve_ids = models.JSONField(default=list, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, help_text="The worst of the group")
    priority = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The most urgent of the group")
    open_count = models.PositiveIntegerField()
    node_count = models.PositiveIntegerField()
    ports = models.JSONField(default=list, blank=True, help_text="The first ports, lowest first")
    port_count = models.PositiveIntegerField(default=0)
    first_seen = models.DateTimeField(help_text="The oldest finding's")
    due_at = models.DateTimeField(null=True, blank=True, help_text="The earliest due date")
    refreshed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "rule_id"], name="findinggroup_unique_org_rule")]
        # The view's order: most urgent first, then the most findings; an index walk for a page.
        indexes = [models.Index(fields=["org", "priority", "-open_count", "rule_id"], name="findinggroup_org_order")]

    def __str__(self) -> str:
        return f"{self.rule_id} ({self.open_count} open)"


class SavedView(models.Model):
    """A named filter of the findings list: personal to whoever saved it, or shared with the organization.

    ``query`` is the list's query string as it was saved; it is parsed again each time the view is
    opened (``scans.selectors.finding_filter_problems``), so a value that stopped meaning anything
    is said instead of silently widening the list. Saved by a person (``owner``) or by an API token
    (``token``): exactly one of them.
    """

    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="saved_views",
                            db_index=False)
    name = models.CharField(max_length=100)
    query = models.CharField(max_length=2000, blank=True)
    shared = models.BooleanField(default=False, help_text="Listed for every member of the organization")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="+")
    token = models.ForeignKey("orgs.ApiToken", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["org", "shared", "name"], name="savedview_org_shared_name")]
        constraints = [
            models.CheckConstraint(condition=Q(owner__isnull=False) | Q(token__isnull=False),
                                   name="savedview_has_owner_or_token"),
        ]

    def __str__(self) -> str:
        return self.name


class FindingComment(models.Model):
    """One message of a finding's discussion, kept as written (rendered as plain text)."""

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]


class FindingEvent(models.Model):
    """One change of a finding's life: found, fixed, reopened by a rescan, or triaged by a person.

    Written in bulk by the lifecycle (one statement per batch) and by triage; the finding's
    history, a session's new/fixed/reopened lists and the dashboard read it.
    """

    class Kind(models.TextChoices):
        NEW = "new", "New"
        FIXED = "fixed", "Fixed"
        REOPENED = "reopened", "Reopened"
        TRIAGED = "triaged", "Triaged"
        # The catalog changed under a finding: found, revalued or closed by a CVE feed, not a scan.
        CATALOG = "catalog", "Catalog update"
        # An analyst confirmed or dismissed a potential (uncertain) finding.
        CONFIRMED = "confirmed", "Confirmed"
        PRIORITY = "priority", "Priority changed"

    # Foreign keys without their own indexes: the composite indexes below lead with the two
    # that are read, and every index is written once per event of a large import.
    # Not checked by the database either: the lifecycle writes an event in the statement that
    # creates or changes its finding, and a key check per event at commit doubled what an
    # import's commit cost. Django deletes a finding's events with it.
    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="events", db_index=False,
                                db_constraint=False)
    # A history link, not checked by the database (as a finding's sessions are): nulled by Django
    # when the session is deleted.
    session = models.ForeignKey(ScanSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                db_index=False, db_constraint=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    # Unchecked by the database, as the finding's people are (Django nulls them on deletion).
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="+", db_index=False, db_constraint=False)
    token = models.ForeignKey("orgs.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              db_index=False, db_constraint=False)
    reason = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["finding", "at"], name="findingevent_finding_at"),
            # Covers "the findings a session made new/fixed/reopened" (an index-only scan).
            models.Index(fields=["session", "kind", "finding"], name="findingevent_session_kind_f"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of finding {self.finding_id}"

    @property
    def from_status_label(self) -> str:
        return dict(Finding.Status.choices).get(self.from_status, self.from_status)

    @property
    def to_status_label(self) -> str:
        return dict(Finding.Status.choices).get(self.to_status, self.to_status)


class Feed(models.TextChoices):
    NVD = "nvd", "NVD CVE API 2.0"
    KEV = "kev", "CISA Known Exploited Vulnerabilities"
    EPSS = "epss", "FIRST EPSS"


class FeedState(models.Model):
    """One row per vulnerability feed: when it last succeeded, what it holds, where a sync resumes."""

    feed = models.CharField(max_length=8, choices=Feed.choices, unique=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    records = models.PositiveIntegerField(default=0, help_text="Records the feed holds after its last success")
    # The feed's own date of what it holds: NVD's last window end, KEV's catalog version, EPSS's model date.
    source_date = models.DateTimeField(null=True, blank=True)
    checkpoint = models.JSONField(default=dict, blank=True, help_text="Where an interrupted sync resumes")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["feed"]

    def __str__(self) -> str:
        return self.get_feed_display()


class KevEntry(models.Model):
    """A CVE the CISA Known Exploited Vulnerabilities catalog lists."""

    cve_id = models.CharField(max_length=32, primary_key=True)
    vendor = models.CharField(max_length=200, blank=True)
    product = models.CharField(max_length=200, blank=True)
    name = models.CharField(max_length=500, blank=True)
    date_added = models.DateField()
    due_date = models.DateField(null=True, blank=True)
    required_action = models.TextField(blank=True)
    known_ransomware_use = models.BooleanField(default=False)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-date_added"]
        verbose_name = "KEV entry"
        verbose_name_plural = "KEV entries"

    def __str__(self) -> str:
        return self.cve_id


class EpssScore(models.Model):
    """FIRST's EPSS: the probability of exploitation in the next 30 days, and its percentile."""

    cve_id = models.CharField(max_length=32, primary_key=True)
    score = models.FloatField()
    percentile = models.FloatField()
    model_date = models.DateField()

    class Meta:
        verbose_name = "EPSS score"

    def __str__(self) -> str:
        return f"{self.cve_id}: {self.score}"


class CveRecord(models.Model):
    """One CVE of the local catalog, imported from NVD CVE API 2.0 JSON."""

    cve_id = models.CharField(max_length=32, unique=True)
    published = models.DateTimeField(null=True, blank=True)
    last_modified = models.DateTimeField(null=True, blank=True)
    description = models.TextField(blank=True)
    cvss_score = models.DecimalField(max_digits=3, decimal_places=1, null=True, blank=True)
    cvss_vector = models.CharField(max_length=200, blank=True)
    cvss_version = models.CharField(max_length=8, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, blank=True)
    cwe_ids = models.JSONField(default=list, blank=True)
    references = models.JSONField(default=list, blank=True)
    configurations = models.JSONField(default=list, blank=True, help_text="NVD CPE match configurations")
    # NVD's word for the record's state ("Analyzed", "Modified", "Rejected"...): a rejected CVE was
    # never a vulnerability, and a re-match withdraws its findings.
    vuln_status = models.CharField(max_length=32, blank=True)
    imported_at = models.DateTimeField(default=timezone.now)

    REJECTED = "Rejected"

    class Meta:
        ordering = ["-published"]
        verbose_name = "CVE record"
        indexes = [models.Index(fields=["vuln_status"], name="cverecord_rejected",
                                condition=models.Q(vuln_status="Rejected"))]

    def __str__(self) -> str:
        return self.cve_id

    @property
    def is_rejected(self) -> bool:
        return self.vuln_status.lower() == self.REJECTED.lower()


class CveProduct(models.Model):
    """(vendor, product) pairs named in a CVE's configurations: the index fingerprinting looks up."""

    cve = models.ForeignKey(CveRecord, on_delete=models.CASCADE, related_name="products")
    vendor = models.CharField(max_length=128)
    product = models.CharField(max_length=128)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cve", "vendor", "product"], name="cveproduct_unique")]
        indexes = [models.Index(fields=["vendor", "product"], name="cveproduct_vendor_product")]

    def __str__(self) -> str:
        return f"{self.vendor}:{self.product} ({self.cve_id})"


class ServiceProduct(models.Model):
    """An NVD (vendor, product) that a service seen on a node may be known as.

    The other half of ``CveProduct``: a catalog update's records name products, and these rows
    say which services run them, so a re-match (``scans.cve.rematch``) reads only those
    services. The services themselves stay in ``Node.services``; these rows are derived from
    them whenever a node's services are matched against the catalog (the analysis stage, an
    import's services) and replaced per node each time.
    """

    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+", db_index=False)
    node = models.ForeignKey("nodes.Node", on_delete=models.CASCADE, related_name="+", db_index=False)
    port = models.PositiveIntegerField()
    protocol = models.CharField(max_length=8, default="tcp")
    vendor = models.CharField(max_length=128)
    product = models.CharField(max_length=128)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["node", "port", "protocol", "vendor", "product"],
                                               name="serviceproduct_unique")]
        indexes = [models.Index(fields=["vendor", "product"], name="serviceproduct_vendor_product")]

    def __str__(self) -> str:
        return f"{self.vendor}:{self.product} on node {self.node_id} {self.port}/{self.protocol}"


class ImportRequest(models.Model):
    """A scanner file uploaded through the API, processed on a queue (scans.findings.import_requests).

    The upload is kept through Django's storage API until it has been processed; the row
    says how far it got: the counts of the import, or why the file was refused.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        SUCCEEDED = "succeeded", "Succeeded"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"

    FINISHED = (Status.SUCCEEDED, Status.REJECTED, Status.FAILED)

    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="import_requests")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    format = models.CharField(max_length=32)
    node_address = models.CharField(max_length=255, blank=True, help_text="Node for findings that name no host")
    filename = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    upload = models.FileField(upload_to="imports/%Y/%m/", max_length=500, blank=True)
    session = models.ForeignKey(ScanSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    counts = models.JSONField(default=dict, blank=True, help_text="new, updated, reopened, fixed, unchanged...")
    reason = models.TextField(blank=True, help_text="Why the file was refused")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    requested_by_token = models.ForeignKey("orgs.ApiToken", null=True, blank=True, on_delete=models.SET_NULL,
                                           related_name="+")
    correlation_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["org", "-created_at"], name="importrequest_org_created")]

    def __str__(self) -> str:
        return f"import {self.pk} of {self.filename} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED
