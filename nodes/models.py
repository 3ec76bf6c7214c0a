"""Nodes (what gets scanned), their dashboard snapshot and their score history."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from orgs.budgets import MAX_AT_ONCE, MAX_NEW_PER_SECOND


class Severity(models.TextChoices):
    """How bad a finding is, most severe first. Defined here, below the findings (scans), because a
    node's snapshot counts its open findings per severity in a column each."""

    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"
    INFO = "info", "Info"


SEVERITIES = tuple(Severity.values)
SEVERITY_RANK = {Severity.CRITICAL: 4, Severity.HIGH: 3, Severity.MEDIUM: 2, Severity.LOW: 1, Severity.INFO: 0}

# Best first. Where each begins is the scoring policy's (scans.findings.scoring); an unscored snapshot has "".
GRADES = ("A", "B", "C", "D", "F")


class _HoldsTag(models.Func):
    """A JSON list of tags holds a tag, case aside (an element that is not text is compared as its text)."""

    output_field = models.BooleanField()

    def as_sql(self, compiler, connection, **extra_context):
        tags, tag = (compiler.compile(expression) for expression in self.get_source_expressions())
        return (f"EXISTS (SELECT 1 FROM jsonb_array_elements_text(CASE jsonb_typeof({tags[0]}) WHEN 'array' "
                f"THEN {tags[0]} ELSE '[]' END) AS tag WHERE upper(tag) = upper({tag[0]}))",
                [*tags[1], *tags[1], *tag[1]])


def carries_tag(tag: str, *, tags: str = "tags") -> models.Func:
    """The condition "the node carries ``tag``": the one rule for a tag (the API's filter, the nodes
    page, "scan this tag"), case-insensitive. ``tags`` is the path to the node's tags from the
    rows filtered (``node__tags`` from a snapshot)."""
    return _HoldsTag(models.F(tags), models.Value(tag, output_field=models.TextField()))


DEFAULT_ZONE = "default"  # a zone filter's value for nodes in no zone (the central workers')


def in_zone(zone: str, *, prefix: str = "") -> models.Q:
    """The condition "the node is in ``zone``": a zone's id, or ``DEFAULT_ZONE`` for nodes in none;
    the one rule of the nodes page's filter and the API's. ``prefix`` is the path to the node from
    the rows filtered (``node__`` from a snapshot). A value that is neither raises ValueError."""
    if zone == DEFAULT_ZONE:
        return models.Q(**{f"{prefix}zone__isnull": True})
    return models.Q(**{f"{prefix}zone_id": int(zone)})


class NodeQuerySet(models.QuerySet):
    def for_org(self, org):
        return self.filter(org=org)

    def enabled(self):
        return self.filter(enabled=True)

    def tagged(self, tag: str):
        return self.filter(carries_tag(tag))


class Node(models.Model):
    class State(models.TextChoices):
        UNKNOWN = "unknown", "Unknown"
        UP = "up", "Up"
        DOWN = "down", "Down"
        UNREACHABLE = "unreachable", "Unreachable"

    class Criticality(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        CRITICAL = "critical", "Critical"

    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="nodes")
    address = models.CharField(max_length=255, help_text="IP address or hostname as declared")
    resolved_ip = models.GenericIPAddressField(null=True, blank=True)
    hostname = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.UNKNOWN)
    protocols = models.JSONField(default=list, blank=True, help_text="Detected protocols, e.g. ['ssh', 'redis']")
    services = models.JSONField(default=list, blank=True, help_text="Service observations from discovery")
    tags = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    # How much the business depends on the node: an input of every finding's priority.
    criticality = models.CharField(max_length=8, choices=Criticality.choices, default=Criticality.MEDIUM,
                                   db_default=Criticality.MEDIUM)
    # The zone whose workers scan the node: null is the organization's default zone (the central
    # workers). Follows the zones' networks unless ``zone_pinned`` says it was chosen by hand.
    zone = models.ForeignKey("orgs.Zone", null=True, blank=True, on_delete=models.SET_NULL, related_name="nodes")
    zone_pinned = models.BooleanField(default=False, db_default=False)
    # What a fragile device tolerates (scans.budgets): new connections per second and connections open at
    # once, for every scanner and discovery alike; null = no limit of its own.
    max_new_connections_per_second = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_NEW_PER_SECOND)])
    max_connections_at_once = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_AT_ONCE)])
    discovery_confidence = models.FloatField(null=True, blank=True)
    discovery_evidence = models.JSONField(default=dict, blank=True)
    last_discovered_at = models.DateTimeField(null=True, blank=True)
    last_scanned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = NodeQuerySet.as_manager()

    class Meta:
        ordering = ["address"]
        constraints = [models.UniqueConstraint(fields=["org", "address"], name="node_unique_org_address")]
        indexes = [models.Index(fields=["org", "enabled", "state"], name="node_org_enabled_state")]

    def __str__(self) -> str:
        return self.name or self.address

    @property
    def open_ports(self) -> list[int]:
        return self.ports_of(self.services)

    @staticmethod
    def ports_of(services: list[dict] | None) -> list[int]:
        """The open ports that a node's ``services`` name (for a caller holding the column, not the
        node). An entry that is not an observation (a hand-edited row) names none."""
        return sorted({s["port"] for s in services or () if isinstance(s, dict) and "port" in s})

    @staticmethod
    def ports_sql(services: str) -> str:
        """``ports_of`` in SQL over the jsonb column ``services``, for a query that writes nodes as JSON
        (the node list): the same ports in the same order (tests/api/test_node_fields.py holds them)."""
        return (f"(SELECT coalesce(json_agg(port ORDER BY port), '[]') FROM (SELECT DISTINCT s->'port' AS port "
                f"FROM jsonb_array_elements(CASE jsonb_typeof({services}) WHEN 'array' THEN {services} ELSE '[]' END) s "
                f"WHERE jsonb_typeof(s) = 'object' AND s ? 'port') ports)")

    @property
    def unreached(self) -> bool:
        """Discovery ran and nothing answered (pages say "not reachable" rather than a score)."""
        return self.state in (self.State.DOWN, self.State.UNREACHABLE)


class NodeSnapshot(models.Model):
    """The dashboard's row for a node, rewritten at scoring time: dashboards never aggregate findings live."""

    node = models.OneToOneField(Node, primary_key=True, on_delete=models.CASCADE, related_name="snapshot")
    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="node_snapshots")
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    grade = models.CharField(max_length=1, blank=True)
    critical = models.PositiveIntegerField(default=0)
    high = models.PositiveIntegerField(default=0)
    medium = models.PositiveIntegerField(default=0)
    low = models.PositiveIntegerField(default=0)
    info = models.PositiveIntegerField(default=0)
    open_ports = models.JSONField(default=list, blank=True)
    protocols = models.JSONField(default=list, blank=True)
    last_scan_status = models.CharField(max_length=16, blank=True)
    last_scan_at = models.DateTimeField(null=True, blank=True)
    open_interventions = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # Worst nodes first on the dashboard.
            models.Index(fields=["org", "score"], name="snapshot_org_score"),
            models.Index(fields=["org", "grade"], name="snapshot_org_grade"),
        ]

    def __str__(self) -> str:
        return f"snapshot of {self.node_id}: {self.score} {self.grade}"

    @property
    def open_findings(self) -> int:
        return sum(getattr(self, severity) for severity in SEVERITIES)


class NodeScore(models.Model):
    """Score history: one row per node per scored session, for trends."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="scores")
    session = models.ForeignKey("scans.ScanSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    score = models.PositiveSmallIntegerField()
    grade = models.CharField(max_length=1)
    counts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["node", "-created_at"], name="nodescore_node_created")]


class NodeListVersion(models.Model):
    """A number that changes whenever an organization's nodes or their snapshots change.

    Kept by the database, not by Python: on PostgreSQL, deferred triggers on the node and
    snapshot tables (migration 0003) set it from a sequence when a transaction that wrote
    them commits — once per organization and transaction — so no write path (services,
    pipeline bulk updates, imports, the admin, a psql session) can forget it. Readers use it
    as the key of cached list pages (``nodes.list_cache``). No foreign key: the row of a
    deleted organization is written by the same commit that deletes it.
    """

    org_id = models.BigIntegerField(primary_key=True)
    version = models.BigIntegerField()

    def __str__(self) -> str:
        return f"nodes of org {self.org_id}: version {self.version}"
