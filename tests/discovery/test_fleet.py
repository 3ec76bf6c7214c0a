"""Discovery at fleet scale: one sweep over many nodes, one socket budget per process, even messages."""

from __future__ import annotations

import asyncio
import threading

from scans.discovery.discover import discover, discover_many
from scans.lab.services import start_node
from scans.models import ScanJob
from scans.pipeline import dispatch
from scans.pipeline.execution import jobs_pump
from scans.scanners.base import ScanContext, Target
from scans.scanners.portscan import SocketBudget, sweep
from tests.factories import NodeFactory, ScanSessionFactory

KINDS = (("ssh", "http"), ("redis",), ("http", "ethereum"), ("ssh",))
CONTEXT = ScanContext(connect_timeout=0.5, read_timeout=0.6, extra={"banner_timeout": 0.3})


def serve(lab, base: str, count: int) -> list[str]:
    addresses = [f"{base}.{i + 1}" for i in range(count)]
    for i, address in enumerate(addresses):
        start_node(lab, address, KINDS[i % len(KINDS)])
    return addresses


def test_many_nodes_in_one_sweep_find_what_each_node_alone_finds(lab):
    addresses = serve(lab, "127.0.71", 6)
    ports = "22,80,443,6379,8545,9999"

    together = asyncio.run(discover_many([Target(a) for a in addresses], ports, CONTEXT))
    alone = [discover(Target(a), ports, CONTEXT) for a in addresses]

    for fleet, single in zip(together, alone):
        assert fleet.address == single.address and fleet.complete
        assert fleet.open_ports == single.open_ports != []
        assert sorted((p.protocol, p.port) for p in fleet.protocols) == sorted((p.protocol, p.port) for p in single.protocols)
        assert [s.service for s in fleet.services] == [s.service for s in single.services]


def test_open_ports_are_reported_while_the_sweep_goes_on(lab):
    addresses = serve(lab, "127.0.72", 8)
    events: list[tuple[str, int]] = []
    outcomes = sweep([(a, list(range(1, 1025))) for a in addresses], concurrency=64,
                     on_open=lambda h, port: events.append(("open", h)),
                     on_host_done=lambda h, outcome: events.append(("done", h)))

    assert [sorted(o.open) for o in outcomes][:2] == [[22, 80], []]  # the second node's redis is above 1024
    # The first node's open ports were handed on (for identification) long before the last node was swept.
    assert events.index(("open", 0)) < events.index(("done", 7))
    assert [h for kind, h in events if kind == "done"] == list(range(8))  # node after node


def test_the_sweeps_of_a_process_share_one_socket_budget(lab):
    addresses = serve(lab, "127.0.73", 4)
    budget = SocketBudget(16)
    results: list = []

    def one(part):
        results.append(sweep([(a, list(range(1, 2049))) for a in part], budget=budget))

    threads = [threading.Thread(target=one, args=(addresses[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert len(results) == 2 and all(o.untried == 0 for r in results for o in r)
    assert sum(o.counts["closed"] + o.counts["open"] for r in results for o in r) == 4 * 2048
    assert 0 < budget.peak <= 16 and budget.free == 16  # never more than the budget, all given back


def test_a_sessions_discovery_jobs_go_out_in_few_even_messages(world, settings):
    settings.WATCHPOST_DISCOVERY_BATCH = 4
    session = ScanSessionFactory(org=world.org, status="running", stage="discovery")
    nodes = [NodeFactory(org=world.org, address=f"127.0.74.{i + 1}") for i in range(10)]
    ScanJob.objects.bulk_create([ScanJob(session=session, node=n, scanner="discovery") for n in nodes])

    with dispatch.inline() as queue:
        assert jobs_pump(org_id=world.org.pk) == 10
        sizes = sorted(len(kwargs["job_ids"]) for name, kwargs in queue if name == "scans.tasks.discovery_jobs_run")

    assert sizes == [3, 3, 4]  # three messages, none nearly empty


def test_a_worker_message_discovers_its_nodes_together(world, lab, settings):
    from scans.models import ScanProfile
    from scans.pipeline.execution import jobs_run

    addresses = serve(lab, "127.0.75", 3)
    profile = ScanProfile.objects.create(org=None, slug="fleet-test", name="Fleet", scanners=[], ports="22,80,6379",
                                         job_timeout_seconds=30,
                                         options={"context": {"connect_timeout": 0.5, "read_timeout": 0.6}})
    session = ScanSessionFactory(org=world.org, status="running", stage="discovery", profile=profile)
    nodes = [NodeFactory(org=world.org, address=a) for a in addresses + ["10.9.9.9"]]  # the last is out of scope
    jobs = ScanJob.objects.bulk_create([ScanJob(session=session, node=n, scanner="discovery") for n in nodes])

    with dispatch.inline():
        counts = jobs_run(job_ids=[j.pk for j in jobs])

    assert counts["succeeded"] == 3 and counts["failed"] == 1
    ok = ScanJob.objects.filter(session=session, status="succeeded").order_by("node__address")
    assert [j.raw_result["open_ports"] for j in ok] == [[22, 80], [6379], [80]]
    assert "scope" in ScanJob.objects.get(session=session, status="failed").error.lower()


def test_a_node_that_overruns_the_time_budget_times_out_alone(lab):
    start_node(lab, "127.0.76.1", ["ssh"])
    start_node(lab, "127.0.76.2", ["tarpit"])  # accepts and never answers
    slow = ScanContext(connect_timeout=0.5, read_timeout=30.0, extra={"banner_timeout": 30.0})

    quick, stuck = asyncio.run(discover_many([Target("127.0.76.1"), Target("127.0.76.2")], "22,9999", slow,
                                             timeout=10.0))

    assert [s.service for s in quick.services] == ["ssh"]
    assert isinstance(stuck, TimeoutError) and "time budget of 10s" in str(stuck)
