"""The re-match benchmark runs end to end on a small fleet and leaves nothing behind."""

from __future__ import annotations

import pytest

from nodes.models import Node
from orgs.models import Organization
from scans.benchmarks.rematch import rematch_run
from scans.models import CveRecord, Finding, ServiceProduct


@pytest.mark.django_db(transaction=True)  # the benchmark vacuums, which no transaction may enclose
def test_the_benchmark_rematches_every_stored_service_then_finds_nothing_to_change():
    figures = rematch_run(nodes=40, services_per_node=3)

    assert figures["rematch_services"] == 120 and figures["rematch_records"] == 1000
    assert figures["rematch_findings"] > 0 and figures["rematch_nodes_rescored"] == 40
    assert figures["rematch_again_changed"] == 0
    assert not Organization.objects.filter(slug__startswith="bench-rematch").exists()
    assert not (Node.objects.exists() or Finding.objects.exists() or ServiceProduct.objects.exists()
                or CveRecord.objects.exists())
