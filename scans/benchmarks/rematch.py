"""The re-match part of ``bench cves``: a catalog update matched against a fleet's stored services.

``rematch_run`` builds, in a fresh organization deleted afterwards, ``nodes`` nodes with
``services_per_node`` service observations each (OpenSSH, nginx, Redis... at a spread of
versions, stored as discovery stores them, with the product rows the analysis stage writes
beside them), and a catalog update of 1,000 generated records: a few dozen name those
products with version ranges that many of the services fall in, the rest name products no
node runs. It then times ``scans.cve.rematch.catalog_rematch`` over the update's ids: every
service is matched again and its findings written (all new: the first update that knows
them), and the nodes rescored; then the same update again (``rematch_again_s``: every service
matched, nothing written). The records are generated here (ids ``CVE-2099-*``, which NVD
never issued) and deleted afterwards.

PostgreSQL only, like the other benchmarks. Setup is bulk (COPY) and not timed.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from django.db import connection

from config.bulk import bulk_insert
from nodes.models import Node, NodeSnapshot
from orgs.models import Organization
from scans.benchmarks.cleanup import bench_organization_delete
from scans.cve.catalog import cve_catalog_import
from scans.cve.rematch import catalog_rematch
from scans.cve.service_index import service_products_replace
from scans.findings.candidates import ServiceObservation
from scans.models import CveRecord, Finding, FindingEvent, ServiceProduct

RECORDS = 1000
ID_PREFIX = "CVE-2099-"
# (port, service, product as fingerprinted, NVD vendor, NVD product, versions seen across the fleet)
PRODUCTS = (
    (22, "ssh", "OpenSSH", "openbsd", "openssh", ("7.4", "8.2p1", "8.9p1", "9.3p1", "9.8p1")),
    (80, "http", "nginx", "f5", "nginx", ("1.18.0", "1.20.1", "1.22.1", "1.24.0", "1.26.0")),
    (6379, "redis", "Redis", "redis", "redis", ("5.0.7", "6.0.16", "6.2.6", "7.0.11", "7.2.4")),
    (3306, "mysql", "MySQL", "oracle", "mysql", ("5.7.40", "8.0.30", "8.0.36", "8.4.0", "9.0.1")),
    (443, "https", "Apache httpd", "apache", "http_server", ("2.4.49", "2.4.54", "2.4.58", "2.4.62", "2.4.63")),
)
# Per product: CVEs affecting every version below each of these bounds (index into its versions).
BOUNDS = (1, 2, 3, 4, 5, 5)


def rematch_seconds(nodes: int = 10_000, services_per_node: int = 3) -> float:
    """Seconds the re-match of ``nodes`` x ``services_per_node`` stored services took."""
    return rematch_run(nodes=nodes, services_per_node=services_per_node)["rematch_s"]


def rematch_run(*, nodes: int = 10_000, services_per_node: int = 3) -> dict[str, Any]:
    if not 1 <= services_per_node <= len(PRODUCTS):
        raise ValueError(f"services_per_node must be 1 to {len(PRODUCTS)}")
    products = PRODUCTS[:services_per_node]
    org = Organization.objects.create(name="Bench rematch", slug=f"bench-rematch-{uuid.uuid4().hex[:8]}",
                                      scope_networks=["127.0.0.0/8"])
    try:
        ids = _catalog(products)
        _fleet(org, nodes=nodes, products=products)
        _vacuum()  # statistics as a production table has them, and no dead rows of an earlier run
        started = time.perf_counter()
        counts = catalog_rematch(cve_ids=ids)
        seconds = time.perf_counter() - started
        # The same update delivered again: every service matched, nothing to write.
        started = time.perf_counter()
        again = catalog_rematch(cve_ids=ids)
        again_seconds = time.perf_counter() - started
    finally:
        _cleanup(org)
    return {"rematch_services": counts.services, "rematch_s": round(seconds, 2), "rematch_records": len(ids),
            "rematch_findings": counts.new, "rematch_nodes_rescored": counts.rescored,
            "rematch_again_s": round(again_seconds, 2),
            "rematch_again_changed": again.new + again.updated + again.fixed}


def _catalog(products) -> list[str]:
    """Import the update's records through the catalog's own import, as a sync would."""
    cves, number = [], 0
    for _port, _service, _name, vendor, product, versions in products:
        for bound in BOUNDS:
            number += 1
            match = {"vulnerable": True, "criteria": f"cpe:2.3:a:{vendor}:{product}:*:*:*:*:*:*:*:*"}
            if bound < len(versions):
                match["versionEndExcluding"] = versions[bound]
            else:
                match["versionEndIncluding"] = versions[-1]
            cves.append(_record(number, match, score=4.0 + (number % 6)))
    while number < RECORDS:
        number += 1
        cves.append(_record(number, {"vulnerable": True, "versionEndExcluding": "2.0",
                                     "criteria": f"cpe:2.3:a:benchvendor{number}:benchproduct{number}:*:*:*:*:*:*:*:*"},
                            score=5.0))
    with tempfile.TemporaryDirectory(prefix="watchpost-bench-rematch-") as workdir:
        path = Path(workdir) / "update.json.gz"
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            json.dump({"resultsPerPage": len(cves), "startIndex": 0, "totalResults": len(cves), "format": "NVD_CVE",
                       "version": "2.0", "timestamp": "2099-01-01T00:00:00.000",
                       "vulnerabilities": [{"cve": c} for c in cves]}, handle)
        cve_catalog_import(paths=[path])
    return [c["id"] for c in cves]


def _record(number: int, match: dict, *, score: float) -> dict:
    return {
        "id": f"{ID_PREFIX}{number:05d}", "published": "2099-01-01T00:00:00.000",
        "lastModified": "2099-01-01T00:00:00.000", "vulnStatus": "Analyzed",
        "descriptions": [{"lang": "en", "value": "A generated benchmark record."}],
        "metrics": {"cvssMetricV31": [{"source": "nvd@nist.gov", "type": "Primary", "cvssData": {
            "version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", "baseScore": score,
            "baseSeverity": "HIGH"}}]},
        "configurations": [{"nodes": [{"operator": "OR", "negate": False, "cpeMatch": [match]}]}],
        "references": [],
    }


def _fleet(org, *, nodes: int, products) -> None:
    """Nodes with their services stored in bulk, and the product rows the analysis stage writes."""
    rows = []
    for index in range(nodes):
        address = f"127.{1 + index // 65025}.{index // 255 % 255}.{1 + index % 255}"
        rows.append(Node(org=org, address=address, resolved_ip=address, state=Node.State.UP,
                         services=[_service(address, product, index).to_dict() for product in products]))
    bulk_insert(rows)
    stored = Node.objects.filter(org=org).values_list("pk", "services")
    service_products_replace(org_id=org.pk, services={
        node_id: [ServiceObservation.from_dict(s) for s in services] for node_id, services in stored})


def _service(address: str, product, index: int) -> ServiceObservation:
    port, service, name, vendor, nvd_product, versions = product
    version = versions[index % len(versions)]
    return ServiceObservation(host=address, port=port, service=service, product=name, version=version,
                              cpe=f"cpe:2.3:a:{vendor}:{nvd_product}:{version}:*:*:*:*:*:*:*", confidence=1.0,
                              banner=f"{name} {version}")


def _vacuum() -> None:
    with connection.cursor() as cursor:
        for model in (Node, ServiceProduct, CveRecord, Finding, FindingEvent, NodeSnapshot):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


def _cleanup(org) -> None:
    bench_organization_delete(org)
    CveRecord.objects.filter(cve_id__startswith=ID_PREFIX).delete()
