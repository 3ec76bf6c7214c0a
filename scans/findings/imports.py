"""Importing a third-party results file: the pipeline's path, fed from a file.

``findings_import`` parses the whole file first, maps every host it names to a node of
the organization and checks each against the organization's scope, and only then
writes, in one transaction: a ScanSession (trigger "import") with one succeeded ScanJob
per node, the findings through the same bulk lifecycle as scans (the file counts as a
completed run of its source on the hosts it covers), then scores. A refused file
(unreadable, a host out of scope, findings with no host) writes nothing but an
``import_rejected`` intervention saying why.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import hashlib
import ipaddress
import os
import stat
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
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
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase: parse, plan, nodes, ingest, scoring

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
    timings = _Timings()
    with _collector_paused():
        try:
            digest = _sha256(path, filename=filename, limit=limit)
            with timings("parse"):
                result = importer.parse(path, filename, default_host=node_address, strict=strict, max_bytes=limit)
            with timings("plan"):
                plan = _plan(org=org, result=result, filename=filename, node_address=node_address)
        except ImportRejected as rejected:
            _open_intervention(org=org, fmt=fmt, filename=filename, digest=digest, rejected=rejected, by=by,
                               token=token)
            raise
        return _write(org=org, importer_name=importer.name, fmt=fmt, filename=filename, digest=digest,
                      result=result, plan=plan, by=by, token=token, timings=timings)


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


@dataclass
class _Plan:
    """What the file says, checked and keyed by canonical host, before anything is written."""

    by_host: dict[str, list[FindingCandidate]]
    coverage: dict[str, Coverage]


def _plan(*, org, result: ImportResult, filename: str, node_address: str) -> _Plan:
    by_host: dict[str, list[FindingCandidate]] = defaultdict(list)
    hostless: list[FindingCandidate] = []
    for candidate in result.findings:
        host = _canonical_host(candidate.host)
        if host and node_address and (result.hosts_are_artifacts or not _is_host(host)):
            # Trivy images and SARIF repositories are things, not hosts: --node says where they run.
            candidate = dataclasses.replace(candidate, evidence={**candidate.evidence, "artifact": candidate.host})
            host = node_address
        host = host or node_address
        if not host:
            hostless.append(candidate)
        else:
            by_host[host].append(candidate)
    if hostless:
        raise ImportRejected(
            filename, f"{len(hostless)} finding(s) name no host (the first: {hostless[0].rule_id!r}); "
            "name the node they belong to (--node ADDRESS)",
        )
    coverage: dict[str, Coverage] = {}
    for cov in result.coverage:
        host = _canonical_host(cov.host)
        if not host or (node_address and (result.hosts_are_artifacts or not _is_host(host))):
            host = node_address
        if host:
            coverage[host] = _merge(coverage.get(host), Coverage(host=host, ports=cov.ports, whole_host=cov.whole_host))
    if node_address and node_address in by_host and node_address not in coverage:
        # Findings attached to --node: the file speaks for that node as a whole.
        coverage[node_address] = Coverage(host=node_address, whole_host=True)
    hosts = {*by_host, *coverage, *(_canonical_host(s.host) for s in result.services if s.host)}
    if node_address:
        hosts.add(node_address)
    _check_scope(org=org, hosts=hosts, filename=filename)
    return _Plan(by_host=dict(by_host), coverage=coverage)


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


def _write(*, org, importer_name: str, fmt: str, filename: str, digest: str, result: ImportResult, plan: _Plan,
           by, token, timings: _Timings) -> ImportReport:
    now = timezone.now()
    with transaction.atomic():
        with timings("nodes"):
            node_ids, created = _nodes_for_hosts(org=org, hosts=list(plan.by_host))
            # Covered hosts without findings close what they no longer report, but only on
            # nodes we already know: a host the file merely lists does not become a node.
            node_ids.update(_existing_nodes(org=org, hosts=[h for h in plan.coverage if h not in node_ids]))
            coverage = {node_ids[h]: cov for h, cov in plan.coverage.items() if h in node_ids}
            job_nodes = sorted({node_ids[h] for h in plan.by_host} | set(coverage))
            session = _session_start(org=org, fmt=fmt, filename=filename, digest=digest, result=result, by=by,
                                     token=token, nodes=len(job_nodes), now=now)
            _jobs_create(session=session, scanner=importer_name, fmt=fmt, filename=filename, digest=digest,
                         plan=plan, node_ids=node_ids, coverage=coverage, job_nodes=job_nodes, now=now)
        with timings("ingest"):
            # One ingest per source the file speaks for (an importer normally has exactly one).
            by_source: dict[str, list[tuple[int, FindingCandidate]]] = defaultdict(list)
            for host, candidates in plan.by_host.items():
                node_id = node_ids[host]
                for candidate in candidates:
                    by_source[candidate.source].append((node_id, candidate))
            counts = IngestCounts()
            # New findings are written with their priority and their CVEs' KEV and EPSS values.
            priorities = IngestPriorities(org=org, node_ids=job_nodes, cve_id_sets={
                tuple(c.cve_ids) for candidates in plan.by_host.values() for c in candidates if c.cve_ids})
            for source in sorted(by_source.keys() | {importer_name}):
                counts += findings_ingest(org=org, source=source, items=by_source.get(source, ()),
                                          coverage=coverage, complete=True, session=session, seen_at=now,
                                          priorities=priorities)
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
                              findings=len(result.findings), nodes=len(job_nodes), nodes_created=created,
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


def _session_start(*, org, fmt, filename, digest, result, by, token, nodes: int, now) -> ScanSession:
    return ScanSession.objects.create(
        org=org, trigger=ScanSession.Trigger.IMPORT, status=ScanSession.Status.RUNNING,
        stage=ScanSession.Stage.NORMALIZATION, correlation_id=current_request_id() or f"import-{uuid.uuid4().hex}",
        requested_by=by if by is not None and by.is_authenticated else None, requested_by_token=token,
        nodes_total=nodes, jobs_total=nodes, created_at=now, started_at=now, heartbeat_at=now,
        summary={"import": {"format": fmt, "filename": filename, "sha256": digest, "metadata": result.metadata}},
    )


def _jobs_create(*, session, scanner, fmt, filename, digest, plan: _Plan, node_ids, coverage, job_nodes, now) -> None:
    """One succeeded job per node the file spoke for; its raw result is a summary, the file is not copied."""
    per_node: dict[int, int] = defaultdict(int)
    for host, candidates in plan.by_host.items():
        per_node[node_ids[host]] += len(candidates)
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
    session.jobs_succeeded = report.nodes
    session.findings_new, session.findings_updated = counts.new, counts.updated
    session.findings_reopened, session.findings_fixed = counts.reopened, counts.fixed
    session.finished_at = session.heartbeat_at = finished
    session.stage_timings = {"normalization": {"started_at": started.isoformat(), "finished_at": finished.isoformat(),
                                               "seconds": round((finished - started).total_seconds(), 3)}}
    session.summary = {**session.summary, "counts": counts.as_dict(), "findings": report.findings,
                       "nodes": report.nodes, "nodes_created": report.nodes_created, "timings": dict(report.timings),
                       "skipped": {"count": report.skipped, "reasons": report.skipped_reasons}}
    session.save(update_fields=[
        "status", "stage", "jobs_succeeded", "findings_new", "findings_updated", "findings_reopened",
        "findings_fixed", "finished_at", "heartbeat_at", "stage_timings", "summary",
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
