"""``python manage.py bench cves``: the vulnerability knowledge, measured on a loopback NVD.

A loopback NVD CVE API 2.0 server (``scans.lab.nvd_api``, in a child process so its
memory and CPU are not the sync's) serves 250,000 generated CVEs in the API's format:
CPE criteria with version ranges over 3,000 products, platform conditions, CVSS, a
hundredth rejected. It answers as fast as it can, so the rate limit is lifted by the
setting meant for a mirror (``WATCHPOST_NVD_MIRROR_UNLIMITED``). Steps, one function each:

1. *full sync*: ``nvd_sync`` into an empty catalog, every page of 2,000 records;
2. *incremental*: 1,000 records modified on the server, then ``nvd_sync`` again;
3. *re-match*: 10,000 nodes with 30,000 stored services in one organization, an update of
   1,000 catalog records, and ``catalog_rematch`` over the services those records name
   (``scans.benchmarks.rematch``);
4. *KEV* (1,500 listings) and *EPSS* (250,000 scores) imports, each replacing the day before's
   snapshot inside a transaction that is rolled back (``scans.benchmarks.feeds``).

The benchmark replaces the CVE catalog of the configured database: it refuses to start
on a catalog that holds records unless ``--replace-catalog`` is given, and empties it
afterwards (``--keep`` keeps the generated records). The NVD feed state is put back as
it was. Peak RSS is this process's (``ru_maxrss``), the server's excluded.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from django.db import connection, connections
from django.test.utils import override_settings

from scans.benchmarks import print_summary, print_table
from scans.benchmarks.feeds import epss_import_seconds, kev_import_seconds
from scans.benchmarks.rematch import rematch_run
from scans.cve.nvd_sync import SyncProgress, nvd_sync
from scans.lab.nvd_api import GeneratedCorpus, NvdApiServer
from scans.pipeline import dispatch
from scans.models import CveProduct, CveRecord, Feed, FeedState

help = ("Sync 250k generated CVEs from a loopback NVD API (full, then 1,000 changed), re-match 30,000 stored "
        "services, import KEV and EPSS; peak RSS.")

TARGETS = {"full_sync_s": 180.0, "incremental_s": 10.0, "rematch_s": 60.0, "epss_s": 20.0}
PEAK_RSS_TARGET_MB = 512
REMATCH_NODES = 10_000
SERVICES_PER_NODE = 3


def add_arguments(parser) -> None:
    parser.add_argument("--records", type=int, default=250_000, help="CVEs the loopback NVD serves (default 250,000).")
    parser.add_argument("--changed", type=int, default=1_000, help="Records modified before the incremental sync.")
    parser.add_argument("--rematch-nodes", type=int, default=REMATCH_NODES,
                        help=f"Nodes with {SERVICES_PER_NODE} stored services each for the re-match (default 10,000).")
    parser.add_argument("--kev-entries", type=int, default=1_500, help="KEV listings imported (default 1,500).")
    parser.add_argument("--epss-rows", type=int, default=250_000, help="EPSS scores imported (default 250,000).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--replace-catalog", action="store_true",
                        help="Run even though the catalog holds records: they are deleted.")
    parser.add_argument("--keep", action="store_true", help="Keep the generated catalog afterwards.")


@dataclass
class Bench:
    """What the steps share: the options, the server, the output, and what each step found."""

    options: dict[str, Any]
    out: TextIO
    server: NvdServerProcess
    figures: dict[str, Any] = field(default_factory=dict)
    rows: list[list[Any]] = field(default_factory=list)


def full_sync_step(bench: Bench) -> None:
    seconds, result = _timed_sync(bench, label="full")
    sizes = _catalog_sizes()
    bench.figures["full_sync_s"] = round(seconds, 2)
    bench.figures["catalog_mb"] = sizes["total_mb"]
    bench.rows.append(["full sync", f"{seconds:.1f}", f"{result.counts.created:,} created, "
                       f"{result.counts.rejected:,} rejected, {result.pages} pages",
                       f"{result.counts.created / seconds:,.0f} records/s; catalog {sizes['total_mb']} MB "
                       f"(records {sizes['records_mb']}, index {sizes['products_mb']})"])


def incremental_step(bench: Bench) -> None:
    changed = bench.options["changed"]
    indices = random.Random(bench.options["seed"]).sample(range(bench.options["records"]),
                                                          min(changed, bench.options["records"]))
    # Modified after the full sync began (where the incremental window starts) and before now (where
    # it ends): a full sync shorter than a second must not leave them out of the window.
    synced_through = datetime.fromisoformat(FeedState.objects.get(feed=Feed.NVD).checkpoint["synced_through"])
    revised_at = max(datetime.now(UTC) - timedelta(seconds=1), synced_through + timedelta(milliseconds=1))
    time.sleep(max(0.0, (revised_at - datetime.now(UTC)).total_seconds()) + 0.01)
    bench.server.revise(indices, at=revised_at)
    seconds, result = _timed_sync(bench, label="incremental")
    bench.figures["incremental_s"] = round(seconds, 2)
    bench.rows.append(["incremental sync", f"{seconds:.1f}",
                       f"{result.counts.updated:,} updated, {result.counts.created:,} created, {result.pages} page(s)",
                       f"{len(result.changed_ids):,} changed ids for the re-match"])


def rematch_step(bench: Bench) -> None:
    figures = rematch_run(nodes=bench.options["rematch_nodes"], services_per_node=SERVICES_PER_NODE)
    bench.figures["rematch_s"] = figures["rematch_s"]
    bench.figures["rematch_services"] = figures["rematch_services"]
    bench.rows.append(["re-match", f"{figures['rematch_s']:.1f}",
                       f"{figures['rematch_services']:,} services on {bench.options['rematch_nodes']:,} nodes, "
                       f"{figures['rematch_records']:,} records updated: {figures['rematch_findings']:,} new findings, "
                       f"{figures['rematch_nodes_rescored']:,} nodes rescored",
                       f"the same update again: {figures['rematch_again_s']:.1f} s, "
                       f"{figures['rematch_again_changed']} changed"])


def kev_step(bench: Bench) -> None:
    seconds = kev_import_seconds(entries=bench.options["kev_entries"])
    bench.figures["kev_s"] = round(seconds, 2)
    bench.rows.append(["KEV import", f"{seconds:.2f}", f"{bench.options['kev_entries']:,} listings replace "
                       "the day before's", "rolled back afterwards"])


def epss_step(bench: Bench) -> None:
    seconds = epss_import_seconds(rows=bench.options["epss_rows"])
    bench.figures["epss_s"] = round(seconds, 2)
    bench.rows.append(["EPSS import", f"{seconds:.2f}", f"{bench.options['epss_rows']:,} scores (gzip CSV) replace "
                       "the day before's", "rolled back afterwards"])


# The steps in order: (JSON key, table label, function).
STEPS: tuple[tuple[str, str, Callable[[Bench], None]], ...] = (
    ("full_sync_s", "full sync", full_sync_step),
    ("incremental_s", "incremental sync", incremental_step),
    ("rematch_s", "re-match", rematch_step),
    ("kev_s", "KEV import", kev_step),
    ("epss_s", "EPSS import", epss_step),
)


def run(options: dict[str, Any], out: TextIO) -> None:
    records = options["records"]
    _prepare_catalog(replace=options["replace_catalog"])
    saved_state = FeedState.objects.filter(feed=Feed.NVD).values().first()
    FeedState.objects.filter(feed=Feed.NVD).delete()
    load_before = os.getloadavg()
    out.write(f"loopback NVD with {records:,} generated CVEs; load average {load_before[0]:.2f} "
              f"{load_before[1]:.2f} {load_before[2]:.2f} on {os.cpu_count()} cores\n")
    server = NvdServerProcess(records=records, seed=options["seed"])
    bench = Bench(options=options, out=out, server=server)
    try:
        with override_settings(WATCHPOST_NVD_API_URL=server.url, WATCHPOST_NVD_MIRROR_UNLIMITED=True):
            for _key, _label, step in STEPS:
                step(bench)
    finally:
        server.stop()
        _restore(saved_state, keep=options["keep"])
    peak = _rss_mb()
    load_after = os.getloadavg()
    print_table(out, f"bench cves: {records:,} CVEs from a loopback NVD API (PostgreSQL)",
                ["step", "seconds", "what", "notes"], bench.rows)
    verdicts = {f"{key}_within_{target:g}s": bench.figures[key] <= target
                for key, target in TARGETS.items() if bench.figures.get(key) is not None}
    verdicts[f"peak_rss_within_{PEAK_RSS_TARGET_MB}mb"] = peak <= PEAK_RSS_TARGET_MB
    out.write(f"peak RSS {peak:.0f} MB; load average after {load_after[0]:.2f} {load_after[1]:.2f} "
              f"{load_after[2]:.2f}\n")
    out.write("targets: " + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in verdicts.items()) + "\n")
    # The documented key order, so the summary is written here rather than by the command.
    print_summary(out, {"benchmark": "cves", "records": records, "full_sync_s": bench.figures["full_sync_s"],
                        "incremental_s": bench.figures["incremental_s"],
                        "rematch_services": bench.figures["rematch_services"],
                        "rematch_s": bench.figures["rematch_s"], "kev_s": bench.figures["kev_s"],
                        "epss_s": bench.figures["epss_s"], "peak_rss_mb": round(peak)})


def _timed_sync(bench: Bench, *, label: str):
    every = max(1, bench.options["records"] // 2000 // 10)

    def progress(p: SyncProgress) -> None:
        if p.pages % every == 0 or p.done >= p.total:
            bench.out.write(f"  {label}: {p.window} {p.done:,}/{p.total:,}\n")

    # The re-match a sync hands to a worker is measured by its own step: here it is queued in this
    # process and dropped, never published to a broker for a worker to run later.
    with dispatch.inline():
        started = time.perf_counter()
        result = nvd_sync(progress=progress)
        return time.perf_counter() - started, result


class NvdServerProcess:
    """The loopback NVD in a child process; ``revise`` changes records there."""

    def __init__(self, *, records: int, seed: int) -> None:
        connections.close_all()  # the child never touches the database; it must not share the socket
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, records, seed), name="nvd-api", daemon=True)
        self.process.start()
        self.url = self.conn.recv()

    def revise(self, indices: list[int], *, at: datetime) -> None:
        self.conn.send(("revise", indices, at))
        self.conn.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            self.conn.send(("stop", None, None))
            self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()


def _serve(conn, records: int, seed: int) -> None:
    corpus = GeneratedCorpus(records, seed=seed)
    server = NvdApiServer(corpus).start()
    conn.send(server.url)
    while True:
        command, indices, at = conn.recv()
        if command == "stop":
            server.stop()
            return
        corpus.revise(indices, at=at)
        conn.send("ok")


def _prepare_catalog(*, replace: bool) -> None:
    if CveRecord.objects.exists() and not replace:
        raise SystemExit("bench cves replaces the CVE catalog of this database, which holds records: "
                         "run it on a database of its own, or pass --replace-catalog")
    _truncate_catalog()


def _truncate_catalog() -> None:
    # TRUNCATE leaves no dead rows behind to slow the next run down.
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {CveProduct._meta.db_table}, {CveRecord._meta.db_table}")
        cursor.execute(f"VACUUM ANALYZE {CveRecord._meta.db_table}")


def _restore(saved_state: dict | None, *, keep: bool) -> None:
    if keep:
        return  # the generated catalog and the feed state that goes with it
    _truncate_catalog()
    FeedState.objects.filter(feed=Feed.NVD).delete()
    if saved_state:
        FeedState.objects.create(**saved_state)


def _catalog_sizes() -> dict[str, float]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s), pg_total_relation_size(%s)",
                       [CveRecord._meta.db_table, CveProduct._meta.db_table])
        records, products = cursor.fetchone()
    return {"records_mb": round(records / 1e6), "products_mb": round(products / 1e6),
            "total_mb": round((records + products) / 1e6)}


def _rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1e3  # bytes on macOS, KiB on Linux
