"""Which services run which products: the ``ServiceProduct`` rows a re-match looks services up by.

``Node.services`` holds what was seen on a node's ports (product, version, CPE), and stays the
one place it is kept. Fingerprinting names, for each service, the NVD ``(vendor, product)``
pairs it may be known as; whoever matches a node's services against the catalog (the analysis
stage, an import's services) writes those pairs here, replacing the node's rows, so that a
catalog update naming ``openbsd:openssh`` finds the nodes running OpenSSH in one indexed read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from config.bulk import bulk_insert
from scans.cve.match import observe
from scans.findings.candidates import ServiceObservation
from scans.models import ServiceProduct

NODE_CHUNK = 1000  # nodes per DELETE


def service_products(service: ServiceObservation) -> Iterator[tuple[str, str]]:
    """The NVD pairs a service is matched by; none for a service the matcher cannot use (no
    product, no version): a catalog update can never give it a finding."""
    if not (service.product or service.cpe) or not (service.version or service.cpe):
        return iter(())
    observation = observe(service.product, service.version, service.cpe)
    if observation.version is None:
        return iter(())
    return iter(observation.products)


def service_products_replace(*, org_id: int, services: Mapping[int, Iterable[ServiceObservation]]) -> None:
    """Rewrite the rows of every node in ``services`` (node id -> the node's services, all of them)."""
    node_ids = sorted(services)
    for start in range(0, len(node_ids), NODE_CHUNK):
        ServiceProduct.objects.filter(node_id__in=node_ids[start : start + NODE_CHUNK]).delete()
    rows: dict[tuple, ServiceProduct] = {}
    for node_id in node_ids:
        for service in services[node_id]:
            protocol = (service.protocol or "tcp")[:8]
            for vendor, product in service_products(service):
                key = (node_id, service.port, protocol, vendor[:128], product[:128])
                rows.setdefault(key, ServiceProduct(org_id=org_id, node_id=node_id, port=service.port,
                                                    protocol=protocol, vendor=key[3], product=key[4]))
    bulk_insert(list(rows.values()))
