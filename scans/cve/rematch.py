"""Re-matching without rescans: when the CVE catalog changes, the stored services are matched again.

A catalog update (an NVD sync, an import) hands over the ids of the CVEs it created, updated
or rejected. ``catalog_rematch`` then, for every organization:

- finds the services those records can concern: the ``ServiceProduct`` rows under the
  records' ``CveProduct`` keys, plus the services where a finding of one of them is open
  (a record that no longer names a product must be able to close what it found there);
- reads those services back from ``Node.services`` and matches them against the updated
  records alone, through the analysis stage's matcher, so a finding reads as a scan's would;
- hands the matches to the findings lifecycle as a catalog run: new matches are findings
  "found by a catalog update", known ones take the record's new CVSS and severity, and what
  no longer matches is closed, but only among the updated CVEs on the services matched again;
- withdraws the open findings of a CVE that NVD rejected: false positives "rejected by NVD";
- rescores the nodes whose findings changed.

Services of other products are never read. The work goes by chunks of nodes with a constant
number of queries per chunk, whatever the number of organizations, nodes or findings.
``catalog_rematch(cve_ids=None)`` matches every stored service against the whole catalog
instead (``manage.py rematch_cves --all``), and rebuilds the ``ServiceProduct`` rows as it
goes: the way to fill them for services stored before they existed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import structlog
from django.db import connection
from django.utils import timezone

from nodes.models import Node
from orgs.models import Organization
from scans.cve.analysis import SOURCE, cve_candidates_by_node, cve_coverage
from scans.cve.catalog import WILDCARD_PRODUCT, cve_entry_from_record
from scans.cve.service_index import service_products_replace
from scans.findings.candidates import Coverage, ServiceObservation
from scans.findings.lifecycle import IngestCounts, findings_ingest, findings_withdraw
from scans.cve.exploitation import exploitation_values_refresh
from scans.findings.priority import priority_refresh
from scans.findings.scoring import scoring_run
from scans.pipeline import dispatch
from scans.models import CveProduct, CveRecord, Finding, FindingEvent, ServiceProduct

logger = structlog.get_logger(__name__)

REJECTED_REASON = "rejected by NVD"
RECORD_CHUNK = 2000  # catalog records matched at once (the index of one chunk is held in memory)
NODE_CHUNK = 1000  # nodes whose services are read, matched and ingested at once
# An update this large concerns most services anyway: matching every service against the whole
# catalog costs less than matching them again for every chunk of its records.
WHOLE_CATALOG_ABOVE = 20_000

_PRODUCTS = ServiceProduct._meta.db_table

# Where the services under some NVD keys run: one indexed probe per key.
_SERVICES_OF_PRODUCTS = (
    f"SELECT DISTINCT s.org_id, s.node_id, s.port, s.protocol FROM {_PRODUCTS} s "
    "JOIN unnest(%s::text[], %s::text[]) AS k(vendor, product) ON s.vendor = k.vendor AND s.product = k.product"
)
_SERVICES_ALL = f"SELECT DISTINCT org_id, node_id, port, protocol FROM {_PRODUCTS}"


@dataclass
class RematchCounts:
    records: int = 0  # catalog records re-matched (rejected ones included)
    rejected: int = 0  # of them, rejected by NVD
    services: int = 0  # stored services matched again
    nodes: int = 0  # nodes whose services were matched again
    new: int = 0
    updated: int = 0  # revalued: the record's CVSS, severity or text changed
    reopened: int = 0
    fixed: int = 0  # no longer matched by the updated records
    unchanged: int = 0
    withdrawn: int = 0  # open findings of rejected CVEs, now false positives
    rescored: int = 0  # nodes whose score was rewritten

    def add(self, counts: IngestCounts) -> None:
        for name, value in counts.as_dict().items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


REMATCH_TASK = "scans.tasks.catalog_rematch"


def catalog_changed(cve_ids: Iterable[str]) -> None:
    """After a catalog update commits, a worker matches the stored services again against the
    records it changed (``scans.tasks.catalog_rematch``): a sync is not held up by the re-match."""
    ids = sorted(set(cve_ids))
    if ids:
        # Above the threshold the re-match reads the whole catalog anyway: a first sync's quarter of a
        # million ids need not travel in the message.
        dispatch.enqueue(REMATCH_TASK, kwargs={"cve_ids": ids if len(ids) <= WHOLE_CATALOG_ABOVE else None})


def catalog_rematch(*, cve_ids: Iterable[str] | None) -> RematchCounts:
    """Match the stored services again after the catalog records ``cve_ids`` changed.

    ``None`` matches every stored service against the whole catalog. Safe to run twice: the
    second run finds everything as the first left it and changes nothing.
    """
    at = timezone.now()
    counts = RematchCounts()
    changed: dict[int, set[int]] = defaultdict(set)  # org id -> nodes whose findings changed
    ids = None if cve_ids is None else sorted(set(cve_ids))
    if ids is None or len(ids) > WHOLE_CATALOG_ABOVE:
        _rematch_all(at=at, counts=counts, changed=changed)
    else:
        for start in range(0, len(ids), RECORD_CHUNK):
            _rematch_records(ids[start : start + RECORD_CHUNK], at=at, counts=counts, changed=changed)
    orgs = Organization.objects.in_bulk([org_id for org_id, nodes in changed.items() if nodes])
    for org_id, org in orgs.items():
        # Findings the catalog made take what KEV and EPSS say of their CVEs before they are scored.
        exploitation_values_refresh(node_ids=sorted(changed[org_id]))
        priority_refresh(org=org, node_ids=changed[org_id])
        scoring_run(org=org, node_ids=changed[org_id])
        counts.rescored += len(changed[org_id])
    logger.info("cve.rematch", **counts.as_dict())
    return counts


def _rematch_records(cve_ids: list[str], *, at, counts: RematchCounts, changed: dict[int, set[int]]) -> None:
    records = list(CveRecord.objects.filter(cve_id__in=cve_ids))
    entries = [cve_entry_from_record(record) for record in records]
    rejected = [entry.cve_id for entry in entries if entry.is_rejected]
    live = {record.pk: entry.cve_id for record, entry in zip(records, entries, strict=True) if not entry.is_rejected}
    counts.records += len(records)
    counts.rejected += len(rejected)
    _withdraw(rejected, at=at, counts=counts, changed=changed)
    if not live:
        return
    keys = set(CveProduct.objects.filter(cve_id__in=live).values_list("vendor", "product").distinct())
    places = _services_under(keys)
    # A record may have stopped naming a product: its open findings are matched again where they are.
    for org_id, node_id, port, protocol in (
        Finding.objects.filter(source=SOURCE, rule_id__in=list(live.values()), status=Finding.Status.OPEN)
        .order_by().values_list("org_id", "node_id", "port", "protocol").distinct()
    ):
        places[org_id][node_id].add((port, protocol))
    rules = set(live.values())
    updated = [entry for entry in entries if not entry.is_rejected]
    orgs = Organization.objects.in_bulk(list(places))
    for org_id, nodes in places.items():
        node_ids = sorted(nodes)
        for start in range(0, len(node_ids), NODE_CHUNK):
            chunk = node_ids[start : start + NODE_CHUNK]
            services = {
                node_id: [s for s in observed if (s.port, s.protocol or "tcp") in nodes[node_id]]
                for node_id, observed in _stored_services(chunk).items()
            }
            _ingest(orgs[org_id], services, entries=updated, rules=rules, at=at, counts=counts, changed=changed)


def _rematch_all(*, at, counts: RematchCounts, changed: dict[int, set[int]]) -> None:
    rejected = list(CveRecord.objects.filter(vuln_status__iexact="rejected").values_list("cve_id", flat=True))
    counts.records = CveRecord.objects.count()
    counts.rejected = len(rejected)
    _withdraw(rejected, at=at, counts=counts, changed=changed)
    ServiceProduct.objects.filter(node__services=[]).delete()  # nodes whose services are gone
    nodes = Node.objects.exclude(services=[]).order_by("org_id", "pk").values_list("org_id", "pk")
    by_org: dict[int, list[int]] = defaultdict(list)
    for org_id, node_id in nodes:
        by_org[org_id].append(node_id)
    orgs = Organization.objects.in_bulk(list(by_org))
    for org_id, node_ids in by_org.items():
        for start in range(0, len(node_ids), NODE_CHUNK):
            services = _stored_services(node_ids[start : start + NODE_CHUNK])
            service_products_replace(org_id=org_id, services=services)
            _ingest(orgs[org_id], services, entries=None, rules=None, at=at, counts=counts, changed=changed)


def _withdraw(cve_ids: list[str], *, at, counts: RematchCounts, changed: dict[int, set[int]]) -> None:
    withdrawn = findings_withdraw(source=SOURCE, rule_ids=cve_ids, reason=REJECTED_REASON, at=at)
    for org_id, node_id in withdrawn:
        changed[org_id].add(node_id)
    counts.withdrawn += len(withdrawn)


def _services_under(keys: set[tuple[str, str]]) -> dict[int, dict[int, set[tuple[int, str]]]]:
    """Where the services known by ``keys`` run: org id -> node id -> {(port, protocol)}."""
    places: dict[int, dict[int, set[tuple[int, str]]]] = defaultdict(lambda: defaultdict(set))
    if not keys:
        return places
    with connection.cursor() as cursor:
        if WILDCARD_PRODUCT in keys:  # a criterion for any product: every service may match
            cursor.execute(_SERVICES_ALL)
        else:
            ordered = sorted(keys)
            cursor.execute(_SERVICES_OF_PRODUCTS, [[v for v, _ in ordered], [p for _, p in ordered]])
        for org_id, node_id, port, protocol in cursor.fetchall():
            places[org_id][node_id].add((port, protocol))
    return places


def _stored_services(node_ids: list[int]) -> dict[int, list[ServiceObservation]]:
    """The nodes' services as discovery or an import stored them (entries that are not one are skipped)."""
    return {
        node_id: [ServiceObservation.from_dict(s) for s in services or () if isinstance(s, dict) and "port" in s]
        for node_id, services in Node.objects.filter(pk__in=node_ids).values_list("pk", "services")
    }


def _ingest(org: Organization, services: dict[int, list[ServiceObservation]], *, entries, rules, at,
            counts: RematchCounts, changed: dict[int, set[int]]) -> None:
    services = {node_id: observed for node_id, observed in services.items() if observed}
    if not services:
        return
    matches = cve_candidates_by_node(services, entries=entries)
    items = [(node_id, candidate) for node_id, found in matches.items() for candidate in found]
    coverage = {node_id: Coverage(host=observed[0].host, ports=cve_coverage(observed))
                for node_id, observed in services.items()}
    ingested = findings_ingest(org=org, source=SOURCE, items=items, coverage=coverage,
                               complete=True, seen_at=at, catalog=True, rules=rules)
    counts.add(ingested)
    counts.services += sum(len(observed) for observed in services.values())
    counts.nodes += len(services)
    if ingested.new or ingested.updated or ingested.reopened or ingested.fixed:
        changed[org.pk] |= set(
            Finding.objects.filter(node_id__in=services, source=SOURCE, events__kind=FindingEvent.Kind.CATALOG,
                                   events__at=at).order_by().values_list("node_id", flat=True).distinct()
        )
