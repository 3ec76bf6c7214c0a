"""CVE fingerprinting, the analysis stage: services seen on ports -> CVE finding candidates.

A service's product, version and CPE name the NVD ``(vendor, product)`` pairs it may be
known as (``scans.cve.cpe.nvd_products``). The catalog rows indexed under those pairs are
loaded in one query for the whole call, whatever the number of services (a fleet runs
the same few builds on thousands of nodes), and matched in memory by ``scans.cve``,
which remembers its answer per (product, version).

Why it matched is kept: ``match_confidence``, ``match_basis`` and ``match_reason`` travel in
the evidence (``scans.findings.candidates.certainty``); confidence and reason become the
Finding's fields. The banner counts: ``SSH-2.0-OpenSSH_7.2p2 Ubuntu-4ubuntu2.8`` and
``Apache/2.4.29 (Ubuntu)`` name a distribution build that the version alone does not.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Q

from scans.cve.catalog import WILDCARD_PRODUCT, cve_entry_from_record
from scans.cve.cpe import try_parse_cpe
from scans.cve.match import CveIndex, observe
from scans.cve.nvd import CveEntry
from scans.findings.candidates import FindingCandidate, ServiceObservation, certainty
from scans.models import CveProduct, CveRecord

SOURCE = "cve"
# Products per query: every pair is one OR term of the lookup.
_PAIRS_PER_QUERY = 200


def cve_coverage(services: Iterable[ServiceObservation]) -> tuple[int, ...]:
    """The ports a fingerprinting run speaks for: those whose product was named. A CVE finding on
    any other port is not judged by this run, so it must not be closed by it."""
    return tuple(sorted({s.port for s in services if s.cpe or s.product}))


def cve_candidates_for_services(
    *, services: Iterable[ServiceObservation], min_confidence: float = 0.0, entries: Iterable[CveEntry] | None = None
) -> list[FindingCandidate]:
    """One candidate per (service, matching CVE); services without a version match nothing.

    The catalog's entries for the services' products are read, unless ``entries`` names the
    ones to match against (a re-match speaks for the records of one catalog update only).
    """
    observed = []
    pairs: dict[tuple[str, str], None] = {}
    for service in services:
        if not (service.product or service.cpe) or not (service.version or service.cpe):
            continue
        observation = observe(service.product, service.version, service.cpe, service.banner)
        if observation.version is None or not observation.products:
            continue
        observed.append((service, observation))
        pairs.update(dict.fromkeys(observation.products))
    if not observed:
        return []
    index = CveIndex(_catalog_entries(list(pairs)) if entries is None else entries)
    candidates = []
    for service, observation in observed:
        for match in index.match(observation):
            if match.confidence >= min_confidence:
                candidates.append(_candidate(service, match))
    return candidates


def cve_candidates_by_node(
    services: dict[int, list[ServiceObservation]], *, entries: Iterable[CveEntry] | None = None
) -> dict[int, list[FindingCandidate]]:
    """Match every node's services against the catalog in one call (one catalog read, not one per node).

    Each service is tagged with its node for the call, so a match finds its node even when
    two nodes report the same address; the candidate keeps the host the service named.
    ``entries`` as for ``cve_candidates_for_services``.
    """
    tagged = [dataclasses.replace(s, host=str(node_id)) for node_id, named in services.items() for s in named
              if s.cpe or s.product]
    if not tagged:
        return {}
    hosts = {node_id: named[0].host for node_id, named in services.items() if named}
    matches: dict[int, list[FindingCandidate]] = defaultdict(list)
    for candidate in cve_candidates_for_services(services=tagged, entries=entries):
        node_id = int(candidate.host)
        matches[node_id].append(dataclasses.replace(candidate, host=hosts[node_id]))
    return matches


def _catalog_entries(pairs: list[tuple[str, str]]):
    """Catalog entries indexed under any of ``pairs`` (or under the wildcard key), each once."""
    records: dict[int, CveRecord] = {}
    for start in range(0, len(pairs), _PAIRS_PER_QUERY):
        chunk = pairs[start : start + _PAIRS_PER_QUERY]
        if start == 0:
            chunk = [*chunk, WILDCARD_PRODUCT]
        match = Q()
        for vendor, product in chunk:
            match |= Q(vendor=vendor, product=product)
        ids = CveProduct.objects.filter(match).values("cve_id")
        for record in CveRecord.objects.filter(pk__in=ids).exclude(pk__in=records):
            records[record.pk] = record
    return [cve_entry_from_record(record) for record in records.values()]


def _cpe_product(text: str) -> str:
    cpe = try_parse_cpe(text) if text else None
    return (cpe.literal("product") or "") if cpe is not None else ""


def _candidate(service: ServiceObservation, match) -> FindingCandidate:
    product = service.product or _cpe_product(service.cpe) or _cpe_product(match.criteria)
    version = service.version or ""
    evidence = {
        "product": service.product,
        "version": service.version,
        "cpe": service.cpe,
        "service": service.service,
        "criteria": match.criteria,
        **certainty(match.confidence, match.basis, match.reason),
    }
    if service.banner:
        evidence["banner"] = service.banner[:500]
    named = f"{product} {version}".strip()
    return FindingCandidate(
        source=SOURCE,
        rule_id=match.cve_id,
        title=f"{match.cve_id} in {named}" if named else match.cve_id,
        host=service.host,
        severity=match.severity or None,
        cvss_score=match.cvss_score,
        cvss_vector=match.cvss_vector,
        cve_ids=(match.cve_id,),
        cwe=match.cwe,
        port=service.port,
        protocol=service.protocol or "tcp",
        # One CVE per port: the location stays empty so an upgrade that is still affected
        # updates the same finding rather than opening another.
        location="",
        description=match.description,
        remediation=f"Upgrade {product or 'the service'} to a release that fixes {match.cve_id} "
        f"(affected: {match.reason}).",
        references=tuple(match.references[:20]),
        evidence=evidence,
    )
