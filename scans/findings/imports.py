"""Importing a third-party results file: the pipeline's path, fed from a file.

``findings_import`` writes a file while it is still being read, in one transaction: the importer
yields its findings on a thread of its own (``_ReadAhead``) while they are written, a round at a
time, through the same bulk lifecycle as scans. Each round maps the hosts it names to nodes of the
organization (checking new ones against its scope, creating the nodes missing) and writes its
findings; once the file is read, what it covered closes what it no longer reports (the file counts
as a completed run of its source on the hosts it covers), then scores. The import is a
ScanSession (trigger "import") with one succeeded ScanJob per node. A refused file (unreadable,
malformed anywhere, a host out of scope, findings with no host) rolls back whatever was written
and leaves only an ``import_rejected`` intervention saying why.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import hashlib
import ipaddress
import os
import queue
import stat
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.bulk import bulk_insert
from config.request_id import current_request_id
from interventions.models import Intervention
from interventions.services import intervention_open
from nodes.models import Node
from nodes.services import literal_ip, nodes_create
from orgs.audit import audit_record
from orgs.events import SESSION_FINISHED, event_publish
from orgs.scope import Scope, ScopeError, canonical_target, parse_scope, valid_hostname
from scans.findings.candidates import Coverage, FindingCandidate, ImportResult, ServiceObservation
from scans.cve.analysis import SOURCE as CVE_SOURCE
from scans.cve.analysis import cve_candidates_for_services, cve_coverage
from scans.cve.service_index import service_products_replace
from scans.importers.base import ImportRejected, get_importer
from scans.findings.lifecycle import IngestCounts, findings_ingest
from scans.models import ScanJob, ScanSession
from scans.findings.priority import IngestPriorities, priority_refresh
from scans.findings.daily_stats import finding_daily_stats_refresh_later
from scans.findings.scoring import scoring_run

ADDRESS_CHUNK = 1000  # addresses per IN list when mapping hosts to nodes
ROUND = 20_000  # findings per round: their new nodes created, and their priorities' inputs read, together
READ_CHUNK = 1000  # findings the reading thread hands over at a time
READ_AHEAD = 200  # chunks it may read ahead of the writing before it waits
_SHOWN = 5  # hosts named in a refusal; the rest are counted


@dataclass
class ImportReport:
    session: ScanSession
    fmt: str
    filename: str
    counts: IngestCounts
    findings: int  # candidates read from the file
    nodes: int  # nodes the file spoke for
    nodes_created: int
    metadata: dict[str, Any] = field(default_factory=dict)
    skipped: int = 0  # records the file holds but that name no target (lenient Nuclei import)
    skipped_reasons: list[str] = field(default_factory=list)
    # Seconds per phase: parse (the reading thread, alongside the others), nodes, ingest, priority, scoring.
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "session": self.session.pk, "format": self.fmt, "filename": self.filename, "findings": self.findings,
            "nodes": self.nodes, "nodes_created": self.nodes_created, "skipped": self.skipped,
            **self.counts.as_dict(),
        }


def findings_import(
    *, org, fmt: str, path: str | os.PathLike[str], node_address: str | None = None, by=None, token=None,
    strict: bool = False,
) -> ImportReport:
    """Import the file at ``path`` in format ``fmt`` (an importer name) into ``org``.

    ``node_address`` is the node for findings that name no host (SARIF, image scans);
    without it such a file is refused. Raises ``ImportRejected`` when the file is refused.
    ``strict`` refuses a file for one record that names no target, where the importer would
    otherwise skip that record and report it (``ImportReport.skipped``).
    """
    importer = get_importer(fmt)  # LookupError for an unknown format: the caller's mistake, not the file's
    filename = Path(path).name
    limit = settings.WATCHPOST_IMPORT_MAX_BYTES
    digest = ""
    node_address = _canonical_host(node_address) if node_address else ""
    result = importer.new_result(filename)
    with _collector_paused():
        try:
            digest = _sha256(path, filename=filename, limit=limit)
            findings = importer.stream(path, result, default_host=node_address, strict=strict, max_bytes=limit)
            with _ReadAhead(findings) as reading:
                return _write(org=org, fmt=fmt, filename=filename, digest=digest, reading=reading, result=result,
                              node_address=node_address, by=by, token=token)
        except ImportRejected as rejected:
            _open_intervention(org=org, fmt=fmt, filename=filename, digest=digest, rejected=rejected, by=by,
                               token=token)
            raise


@contextmanager
def _collector_paused():
    """Python's cycle collector paused for one import.

    A large file becomes hundreds of thousands of objects (candidates, their evidence) that all
    live until the import ends, and each of the collector's passes over the older generations
    walks every one of them again: a third of the time spent parsing went to passes that found
    nothing to free. Reference counting frees as usual meanwhile; only objects in cycles wait
    for the collector's next pass after the import.
    """
    if not gc.isenabled():  # paused already (a nested or concurrent import): the outer one resumes it
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _Timings(dict):
    """Seconds per phase, kept in the session's summary: where an import spends its time."""

    @contextmanager
    def __call__(self, phase: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self[phase] = round(self.get(phase, 0.0) + time.perf_counter() - started, 3)


_END = object()  # the reading thread's last word when the file was read to its end


class _ReadAhead:
    """A file's findings read on a thread of their own, ahead of their writing.

    Reading a file is Python's work alone, writing it mostly the database's: the importer reads the
    next findings while the server stores the ones before. Handed over a thousand at a time, at most
    ``READ_AHEAD`` thousands ahead. What stops the reading (the file refused, anything unforeseen) is
    raised where the findings are taken, in the writing thread, inside its transaction. Leaving the
    ``with`` block early stops the reading and closes the file.
    """

    def __init__(self, findings: Iterator[FindingCandidate]) -> None:
        self.findings = findings
        self.seconds = 0.0  # the reading's own time, from its start to the file's end
        self.count = 0
        self._handed: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._read, name="import-reading", daemon=True)

    def __enter__(self) -> _ReadAhead:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        while self._thread.is_alive():  # make room for a hand-over the thread may be blocked in
            try:
                self._handed.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()

    def rounds(self, size: int) -> Iterator[list[FindingCandidate]]:
        """The findings, ``size`` at a time (the last round may be smaller), in file order."""
        round_: list[FindingCandidate] = []
        while (chunk := self._handed.get()) is not _END:
            if isinstance(chunk, BaseException):
                raise chunk
            round_.extend(chunk)
            self.count += len(chunk)
            if len(round_) >= size:
                yield round_
                round_ = []
        if round_:
            yield round_

    def _read(self) -> None:
        started = time.perf_counter()
        chunk: list[FindingCandidate] = []
        try:
            for finding in self.findings:
                chunk.append(finding)
                if len(chunk) == READ_CHUNK:
                    if not self._hand(chunk):
                        return
                    chunk = []
            self.seconds = time.perf_counter() - started
            self._hand(chunk)
            self._hand(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the writing thread, which raises it
            self._hand(error)
        finally:
            self.findings.close()

    def _hand(self, item) -> bool:
        while not self._stopping.is_set():
            try:
                self._handed.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False


class _Placing:
    """Where a file's findings go, worked out a round at a time: the canonical host of each, its
    node (created when new), and the hosts' verdicts of the organization's scope.

    A finding that names no host, or a host that is not an address or is outside the scope, stops
    the writing (``refused``) but not the reading: ``check`` then refuses the file as a whole,
    naming every such host, as it would have before a single write."""

    def __init__(self, *, org, result: ImportResult, filename: str, node_address: str) -> None:
        self.org, self.result, self.filename, self.node_address = org, result, filename, node_address
        self.node_ids: dict[str, int] = {}
        self.created = 0
        self.per_node: dict[int, int] = defaultdict(int)  # findings per node, for its job
        self.hostless: list[FindingCandidate] = []
        self.refused = False
        self._scope: Scope | None = None
        self._judged: set[str] = set()

    def host_of(self, candidate: FindingCandidate) -> tuple[str, FindingCandidate]:
        host = _canonical_host(candidate.host)
        node_address, result = self.node_address, self.result
        if host and node_address and (result.hosts_are_artifacts or not _is_host(host)):
            # Trivy images and SARIF repositories are things, not hosts: --node says where they run.
            return node_address, dataclasses.replace(candidate, evidence={**candidate.evidence,
                                                                          "artifact": candidate.host})
        return host or node_address, candidate

    def place(self, round_: list[FindingCandidate]) -> list[tuple[int, FindingCandidate]]:
        """The round's findings with their node ids, the missing nodes created; none once refused."""
        placed = [self.host_of(candidate) for candidate in round_]
        self.hostless += [candidate for host, candidate in placed if not host]
        new_hosts = sorted({host for host, _ in placed if host and host not in self._judged})
        self._judged.update(new_hosts)
        if self.hostless or not self._within_scope(new_hosts):
            self.refused = True
        if self.refused:
            return []
        node_ids, created = _nodes_for_hosts(org=self.org, hosts=[h for h in new_hosts if h not in self.node_ids])
        self.node_ids.update(node_ids)
        self.created += created
        items = [(self.node_ids[host], candidate) for host, candidate in placed]
        for node_id, _ in items:
            self.per_node[node_id] += 1
        return items

    def _within_scope(self, hosts: list[str]) -> bool:
        if self._scope is None:
            try:
                self._scope = parse_scope([*self.org.scope_networks, *self.org.scope_hostnames])
            except ScopeError:
                return False  # check says why
        return all(_in_scope(self._scope, host) for host in hosts)

    def check(self) -> None:
        """Refuse the whole file for what stopped the writing, or for the hosts only its end names
        (what it covered, the services it saw)."""
        if self.hostless:
            raise ImportRejected(
                self.filename, f"{len(self.hostless)} finding(s) name no host (the first: "
                f"{self.hostless[0].rule_id!r}); name the node they belong to (--node ADDRESS)",
            )
        hosts = {*self._judged, *self.coverage_of_hosts(), *(_canonical_host(s.host) for s in self.result.services
                                                             if s.host)}
        if self.node_address:
            hosts.add(self.node_address)
        _check_scope(org=self.org, hosts=hosts, filename=self.filename)

    def coverage_of_hosts(self) -> dict[str, Coverage]:
        """What the file covered, by canonical host."""
        coverage: dict[str, Coverage] = {}
        node_address, result = self.node_address, self.result
        for cov in result.coverage:
            host = _canonical_host(cov.host)
            if not host or (node_address and (result.hosts_are_artifacts or not _is_host(host))):
                host = node_address
            if host:
                coverage[host] = _merge(coverage.get(host), Coverage(host=host, ports=cov.ports,
                                                                     whole_host=cov.whole_host))
        if node_address and node_address in self.node_ids and node_address not in coverage:
            # Findings attached to --node: the file speaks for that node as a whole.
            coverage[node_address] = Coverage(host=node_address, whole_host=True)
        return coverage


def _merge(held: Coverage | None, new: Coverage) -> Coverage:
    if held is None:
        return new
    return Coverage(host=new.host, ports=tuple(sorted({*held.ports, *new.ports})),
                    whole_host=held.whole_host or new.whole_host)


@functools.lru_cache(maxsize=65536)
def _canonical_host(host: str | None) -> str:
    """One spelling per host, the nodes' own (``orgs.scope.canonical_target``).

    Cached: a file names the same few hosts on every one of its lines."""
    return canonical_target(host or "")


def _check_scope(*, org, hosts: Iterable[str], filename: str) -> None:
    """Every host must be in the organization's declared scope.

    Names are judged by the names the scope declares, never resolved: an import sends
    no packet, and its outcome must not depend on what DNS answers today. (Scanning is
    bounded again by SCAN_ALLOWED_NETWORKS when the pipeline later scans these nodes.)
    """
    try:
        scope = parse_scope([*org.scope_networks, *org.scope_hostnames])
    except ScopeError as error:
        raise ImportRejected(filename, f"the organization's scope cannot be read ({error})") from None
    invalid, outside = [], []
    for host in sorted(hosts):
        verdict = _in_scope(scope, host)
        if verdict is None:
            invalid.append(host)
        elif not verdict:
            outside.append(host)
    if invalid:
        raise ImportRejected(
            filename, f"{_named(invalid)} {'is' if len(invalid) == 1 else 'are'} not an IP address or host name; "
            "name the node the results belong to (--node ADDRESS)",
        )
    if outside:
        raise ImportRejected(
            filename, f"{_named(outside)} {'is' if len(outside) == 1 else 'are'} outside the organization's scope "
            f"({scope.describe()}); nothing was imported",
        )


@functools.lru_cache(maxsize=65536)
def _is_host(host: str) -> bool:
    """An IP literal or a valid DNS name (not an image reference, a URL or a path)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return valid_hostname(host)


def _in_scope(scope: Scope, host: str) -> bool | None:
    try:
        return scope.contains_address(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not valid_hostname(host):
        return None
    return scope.contains_hostname(host)


def _named(hosts: list[str]) -> str:
    shown = ", ".join(repr(h) for h in hosts[:_SHOWN])
    more = f" and {len(hosts) - _SHOWN} more" if len(hosts) > _SHOWN else ""
    return f"host{'s' if len(hosts) > 1 else ''} {shown}{more}"


def _write(*, org, fmt: str, filename: str, digest: str, reading: _ReadAhead, result: ImportResult,
           node_address: str, by, token) -> ImportReport:
    now = timezone.now()
    timings = _Timings()
    source = result.source
    with transaction.atomic():
        session = _session_start(org=org, fmt=fmt, filename=filename, digest=digest, by=by, token=token, now=now)
        placing = _Placing(org=org, result=result, filename=filename, node_address=node_address)
        counts = IngestCounts()
        for round_ in reading.rounds(ROUND):
            with timings("nodes"):
                items = placing.place(round_)
            if not items:
                continue
            with timings("ingest"):
                # New findings are written with their priority and their CVEs' KEV and EPSS values.
                priorities = IngestPriorities(org=org, node_ids={node_id for node_id, _ in items}, cve_id_sets={
                    tuple(c.cve_ids) for _, c in items if c.cve_ids})
                counts += findings_ingest(org=org, source=source, items=items, complete=False, session=session,
                                          seen_at=now, priorities=priorities)
        timings["parse"] = round(reading.seconds, 3)
        placing.check()
        with timings("nodes"):
            node_ids = placing.node_ids
            # Covered hosts without findings close what they no longer report, but only on
            # nodes we already know: a host the file merely lists does not become a node.
            covered = placing.coverage_of_hosts()
            node_ids.update(_existing_nodes(org=org, hosts=[h for h in covered if h not in node_ids]))
            coverage = {node_ids[h]: cov for h, cov in covered.items() if h in node_ids}
            job_nodes = sorted(set(placing.per_node) | set(coverage))
            _jobs_create(session=session, scanner=source, fmt=fmt, filename=filename, digest=digest,
                         per_node=placing.per_node, coverage=coverage, job_nodes=job_nodes, now=now)
        with timings("ingest"):
            # What the file covered and no longer reports is fixed, once all it reports is written.
            counts += findings_ingest(org=org, source=source, items=(), coverage=coverage, complete=True,
                                      session=session, seen_at=now)
            counts += _services_apply(org=org, session=session, services=result.services, node_ids=node_ids,
                                      seen_at=now)
        with timings("priority"):
            # Before scoring (a node's score counts its P1 and P2 findings): the findings the file
            # changed or reopened, and every finding of a node whose services it named (reachability).
            serviced = sorted({node_ids[h] for h in map(_canonical_host, (s.host for s in result.services))
                               if h in node_ids})
            if serviced:
                priority_refresh(org=org, node_ids=serviced)
            if counts.rewritten:
                priority_refresh(org=org, finding_ids=counts.rewritten)
        with timings("scoring"):
            # A file that only saw known findings again moved no "by vulnerability" group.
            unchanged = not counts.changed and not serviced
            scoring_run(org=org, node_ids=job_nodes, session=session, scan_status=ScanSession.Status.SUCCEEDED,
                        rule_ids=() if unchanged else None)
            # The trend rows after commit, on a worker: the import is not kept waiting for a chart.
            finding_daily_stats_refresh_later(org=org)
        report = ImportReport(session=session, fmt=fmt, filename=filename, counts=counts,
                              findings=reading.count, nodes=len(job_nodes), nodes_created=placing.created,
                              metadata=result.metadata, skipped=result.skipped,
                              skipped_reasons=result.skipped_reasons, timings=timings)
        _session_finish(session=session, report=report, started=now)
        if by is not None or token is not None:
            audit_record(org=org, verb="findings.imported", target=session, actor=by, token=token,
                         changes={"format": fmt, "filename": filename, "sha256": digest, **counts.as_dict()})
        committing = time.perf_counter()
    timings["commit"] = round(time.perf_counter() - committing, 3)
    return report


def _services_apply(*, org, session, services, node_ids: dict[str, int], seen_at) -> IngestCounts:
    """Services a file names (nmap -sV) do what discovery's do in the pipeline: they update their
    node (services, protocols, hence the snapshot's open ports) and go through CVE fingerprinting,
    whose findings close, like the pipeline's, only on the ports whose product the file named."""
    by_node: dict[int, list] = defaultdict(list)
    for service in services:
        node_id = node_ids.get(_canonical_host(service.host))
        if node_id is not None:
            by_node[node_id].append(service)
    if not by_node:
        return IngestCounts()
    nodes = list(Node.objects.filter(pk__in=by_node).only("id", "services", "protocols"))
    for node in nodes:
        named = by_node[node.pk]
        replaced = {(s.port, s.protocol) for s in named}
        kept = [s for s in node.services if (s.get("port"), s.get("protocol", "tcp")) not in replaced]
        node.services = sorted([*kept, *(s.to_dict() for s in named)], key=lambda s: s.get("port", 0))
        node.protocols = sorted({*node.protocols, *(s.service for s in named if s.service)})
    Node.objects.bulk_update(nodes, ["services", "protocols"])
    service_products_replace(org_id=org.pk, services={
        node.pk: [ServiceObservation.from_dict(s) for s in node.services] for node in nodes})
    node_of_host = {_canonical_host(s.host): node_id for node_id, named in by_node.items() for s in named}
    all_services = [s for named in by_node.values() for s in named]
    items = [(node_of_host[_canonical_host(c.host)], c) for c in cve_candidates_for_services(services=all_services)]
    coverage = {node_id: Coverage(host=named[0].host, ports=cve_coverage(named)) for node_id, named in by_node.items()}
    return findings_ingest(org=org, source=CVE_SOURCE, items=items, coverage=coverage, complete=True,
                           session=session, seen_at=seen_at)


def _session_start(*, org, fmt, filename, digest, by, token, now) -> ScanSession:
    """The import's session, running; how many nodes it spoke for is known once the file is read."""
    return ScanSession.objects.create(
        org=org, trigger=ScanSession.Trigger.IMPORT, status=ScanSession.Status.RUNNING,
        stage=ScanSession.Stage.NORMALIZATION, correlation_id=current_request_id() or f"import-{uuid.uuid4().hex}",
        requested_by=by if by is not None and by.is_authenticated else None, requested_by_token=token,
        created_at=now, started_at=now, heartbeat_at=now,
        summary={"import": {"format": fmt, "filename": filename, "sha256": digest, "metadata": {}}},
    )


def _jobs_create(*, session, scanner, fmt, filename, digest, per_node: dict[int, int], coverage, job_nodes,
                 now) -> None:
    """One succeeded job per node the file spoke for; its raw result is a summary, the file is not copied."""
    bulk_insert([
        ScanJob(session=session, node_id=node_id, scanner=scanner, status=ScanJob.Status.SUCCEEDED,
                attempts=1, normalized=True, queued_at=now, started_at=now, finished_at=now,
                raw_result={"import": filename, "format": fmt, "sha256": digest,
                            "findings": per_node.get(node_id, 0),
                            "coverage": coverage[node_id].to_dict() if node_id in coverage else None})
        for node_id in job_nodes
    ])


def _session_finish(*, session: ScanSession, report: ImportReport, started) -> None:
    finished = timezone.now()
    counts = report.counts
    session.status = ScanSession.Status.SUCCEEDED
    session.stage = ScanSession.Stage.DONE
    session.nodes_total = session.jobs_total = session.jobs_succeeded = report.nodes
    session.findings_new, session.findings_updated = counts.new, counts.updated
    session.findings_reopened, session.findings_fixed = counts.reopened, counts.fixed
    session.finished_at = session.heartbeat_at = finished
    session.stage_timings = {"normalization": {"started_at": started.isoformat(), "finished_at": finished.isoformat(),
                                               "seconds": round((finished - started).total_seconds(), 3)}}
    session.summary = {"import": {**session.summary["import"], "metadata": report.metadata},
                       "counts": counts.as_dict(), "findings": report.findings,
                       "nodes": report.nodes, "nodes_created": report.nodes_created, "timings": dict(report.timings),
                       "skipped": {"count": report.skipped, "reasons": report.skipped_reasons}}
    session.save(update_fields=[
        "status", "stage", "nodes_total", "jobs_total", "jobs_succeeded", "findings_new", "findings_updated",
        "findings_reopened", "findings_fixed", "finished_at", "heartbeat_at", "stage_timings", "summary",
    ])
    event_publish(SESSION_FINISHED, session=session)  # subscribers write in this transaction


def _existing_nodes(*, org, hosts: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(hosts), ADDRESS_CHUNK):
        chunk = hosts[start : start + ADDRESS_CHUNK]
        found.update(Node.objects.filter(org=org, address__in=chunk).values_list("address", "pk"))
    return found


def _nodes_for_hosts(*, org, hosts: list[str]) -> tuple[dict[str, int], int]:
    """The node of every host, created (with its snapshot) when new: the bulk form of
    ``nodes.services.node_get_or_create``, with its safety (insert-or-ignore, then re-read),
    in a few queries per thousand hosts instead of several per host."""
    found = _existing_nodes(org=org, hosts=hosts)
    missing = [h for h in hosts if h not in found]
    if not missing:
        return found, 0
    new = [Node(org=org, address=h, resolved_ip=literal_ip(h)) for h in missing]
    nodes_create(org=org, nodes=new, skip_existing=True, batch_size=ADDRESS_CHUNK)
    found.update((node.address, node.pk) for node in new)
    return found, len(missing)


def _sha256(path: str | os.PathLike[str], *, filename: str, limit: int) -> str:
    """The file's digest, refusing it once it is past ``limit`` bytes (``WATCHPOST_IMPORT_MAX_BYTES``).

    A regular file is measured before a byte is read; anything else (a pipe, /dev/zero) is
    counted while it is read, so an endless one is refused at the cap instead of hashed forever.
    """
    digest = hashlib.sha256()
    read = 0
    try:
        with open(path, "rb") as handle:
            status = os.fstat(handle.fileno())
            if stat.S_ISREG(status.st_mode) and status.st_size > limit:
                raise ImportRejected(filename, f"is {status.st_size:,} bytes, over the import limit of {limit:,} bytes")
            while chunk := handle.read(min(1 << 20, limit + 1 - read)):
                digest.update(chunk)
                read += len(chunk)
                if read > limit:
                    raise ImportRejected(filename, f"is more than {limit:,} bytes (read {read:,} so far), "
                                                   f"over the import limit of {limit:,} bytes")
    except OSError:
        return ""  # the importer refuses the unreadable file with a clearer reason
    return digest.hexdigest()


def _open_intervention(*, org, fmt: str, filename: str, digest: str, rejected: ImportRejected, by, token) -> None:
    intervention_open(
        org=org, kind=Intervention.Kind.IMPORT_REJECTED,
        # The same file refused again bumps the open intervention instead of adding one.
        subject=f"import:{digest or filename}",
        title=f"Import of {filename} ({fmt}) rejected: {rejected.reason}"[:300],
        context={
            "error": rejected.message, "format": fmt, "filename": filename, "sha256": digest,
            **{k: v for k, v in rejected.to_dict().items() if v is not None and k not in ("filename",)},
            "requested_by": getattr(by, "username", "") if by is not None else "",
            "token": token.prefix if token is not None else "",
            "correlation_id": current_request_id(),
        },
    )
