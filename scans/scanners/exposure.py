"""Exposure checks: services that answer what they should only answer to someone authenticated.

Each check asks one harmless read-only question (Redis INFO, memcached stats,
MongoDB listDatabases, Docker /containers/json, a JSON-RPC admin method...) and
reports a FindingCandidate when the answer comes back without credentials, keeping
what was sent and a trimmed copy of what was received as evidence.

Access checks of other protocols (``scans.scanners.access``: FTP anonymous login, telnet,
ZooKeeper, NATS, MQTT, Cassandra, control-plane APIs...) run here too; each gives a verdict,
open, protected or cleartext, kept in ``data["access"]`` with its proof, and the open and
cleartext ones become findings. A service that asks for credentials is reported protected.

Which ports get which checks: the target's known services when discovery gave them
(by service name and transport), else the target's known ports (by the check's usual ports), else
every usual port of every check. UDP services get the checks of ``udp_exposure``.
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from scans.findings.candidates import Coverage, FindingCandidate, ScanResult, certainty
from scans.scanners.access import ACCESS_CHECKS, CLEARTEXT, PROTECTED, Access, check_access
from scans.scanners.base import ScanContext, Scanner, Target, register
from scans.scanners.fingerprint import (
    STARTUP,
    Probe,
    mongo_op_msg,
    mongo_reply,
    postgres_reply_complete,
    redis_command,
    trimmed,
)
from scans.scanners.port_sets import RESERVED_PORTS
from scans.scanners.udp import Asker, Pacer
from scans.scanners.udp_exposure import UDP_CHECKS, UdpCheck

SOURCE = "exposure"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    services: frozenset[str]  # ServiceObservation.service values this check applies to
    ports: tuple[int, ...]  # where the service usually listens
    run: Callable[[Probe], Awaitable[list[FindingCandidate] | list[Access]]]


def finding(probe: Probe, rule_id: str, title: str, severity: str, *, sent: str, received: bytes | str,
            remediation: str, description: str = "", cwe: int = 306, proof: str = "", **extra: Any) -> FindingCandidate:
    """Every exposure finding is proven by the answer it keeps: a stranger asked, the service answered.
    ``proof`` says what the answer proves, in words (by default: it answered without credentials)."""
    scheme = "tls" if probe.tls else "tcp"
    proof = proof or f"the service answered an unauthenticated {sent}"
    return FindingCandidate(
        source=SOURCE, rule_id=rule_id, title=title, host=probe.hostname or probe.address, severity=severity,
        cwe=cwe, port=probe.port, protocol="tcp", location=f"{scheme}://{probe.address}:{probe.port}",
        description=description, remediation=remediation,
        evidence={"sent": sent, "received": trimmed(received), **extra, **certainty(1.0, "proven", proof)},
    )


async def check_redis(probe: Probe) -> list[FindingCandidate] | list[Access]:
    result = await probe.send("redis-info", redis_command("INFO", "server"), complete=lambda d: b"\r\n\r\n" in d or d.startswith(b"-"))
    if result.data.startswith((b"-NOAUTH", b"-WRONGPASS", b"-DENIED")):
        return [Access("redis", PROTECTED, "INFO server", result.data.split(b"\r\n")[0])]
    if b"redis_version:" not in result.data:
        return []
    version = re.search(rb"redis_version:([\d.]+)", result.data)
    return [finding(
        probe, "exposure-redis-unauthenticated", "Redis accepts commands without authentication", "high",
        sent="INFO server", received=result.data, version=version.group(1).decode() if version else "",
        description="Anyone who can reach this port can read and change every key, and often run code "
                    "through CONFIG SET / MODULE LOAD.",
        remediation="Set requirepass (or ACL users) and bind Redis to private interfaces; enable protected-mode.",
    )]


async def check_memcached(probe: Probe) -> list[FindingCandidate]:
    result = await probe.send("memcached-stats", b"stats\r\n", complete=lambda d: d.endswith((b"END\r\n", b"ERROR\r\n")))
    if b"STAT version" not in result.data:
        return []
    return [finding(
        probe, "exposure-memcached-unauthenticated", "Memcached is reachable without authentication", "medium",
        sent="stats", received=result.data,
        description="Cached data can be read and overwritten; an exposed memcached is also a DDoS amplifier.",
        remediation="Listen on localhost or a private network only (-l), or enable SASL authentication.",
    )]


async def check_mongodb(probe: Probe) -> list[FindingCandidate] | list[Access]:
    result = await probe.send("mongodb-listdatabases", mongo_op_msg({"listDatabases": 1, "nameOnly": True, "$db": "admin"}),
                              complete=lambda d: len(d) >= 4 and len(d) >= int.from_bytes(d[:4], "little"))
    reply = mongo_reply(result.data) or {}
    if reply.get("code") in (13, 18):  # Unauthorized, AuthenticationFailed
        return [Access("mongodb", PROTECTED, '{"listDatabases": 1, "nameOnly": true}',
                       json.dumps({k: reply.get(k) for k in ("ok", "errmsg", "code", "codeName")}))]
    if reply.get("ok") != 1.0 or "databases" not in reply:
        return []
    names = [d.get("name") for d in reply["databases"] if isinstance(d, dict)]
    return [finding(
        probe, "exposure-mongodb-unauthenticated", "MongoDB lists its databases without authentication", "critical",
        sent='{"listDatabases": 1, "nameOnly": true}', received=json.dumps({"databases": names, "ok": 1}), databases=names,
        description="Every database on this server can be read, changed or dropped by anyone who reaches it.",
        remediation="Enable authorization (security.authorization: enabled), create users, and bind to private interfaces.",
    )]


async def check_postgres(probe: Probe) -> list[FindingCandidate]:
    startup = struct.pack("!II", 8 + len(STARTUP), 196608) + STARTUP
    result = await probe.send("postgres-startup", startup, complete=postgres_reply_complete)
    if not result.data.startswith(b"R\0\0\0\x08\0\0\0\0"):  # AuthenticationOk straight after the startup
        return []
    return [finding(
        probe, "exposure-postgres-unauthenticated", "PostgreSQL lets a client in without a password", "critical",
        sent="StartupMessage user=watchpost database=postgres", received=result.data,
        description="The server answered AuthenticationOk with no password exchange (trust authentication).",
        remediation="Replace 'trust' entries in pg_hba.conf with scram-sha-256 and restrict listen_addresses.",
    )]


async def check_elasticsearch(probe: Probe) -> list[FindingCandidate] | list[Access]:
    root, document = await probe.get_json("/")
    if root is not None and root.status == 401 and "security_exception" in root.body.decode("utf-8", "replace"):
        return [Access("elasticsearch", PROTECTED, "GET /", root.body, extra={"status": 401})]
    if not (isinstance(document, dict) and document.get("tagline") == "You Know, for Search"):
        return []
    indices = await probe.http("GET", "/_cat/indices")
    readable = indices is not None and indices.status == 200
    return [finding(
        probe, "exposure-elasticsearch-unauthenticated", "Elasticsearch answers without authentication",
        "high" if readable else "medium", sent="GET / ; GET /_cat/indices",
        received=(indices.body if readable else root.body), indices_listed=readable,
        description="The cluster's indices can be listed and searched by anyone who reaches this port.",
        remediation="Enable Elasticsearch security (xpack.security.enabled: true) with TLS and users; "
                    "do not expose 9200 publicly.",
    )]


async def check_docker(probe: Probe) -> list[FindingCandidate]:
    version, info = await probe.get_json("/version")
    if not (isinstance(info, dict) and "ApiVersion" in info):
        return []
    containers = await probe.http("GET", "/containers/json")
    listed = containers is not None and containers.status == 200
    return [finding(
        probe, "exposure-docker-api-unauthenticated", "Docker Engine API is open without authentication", "critical",
        sent="GET /version ; GET /containers/json", received=(containers.body if listed else version.body),
        docker_version=str(info.get("Version", "")), containers_listed=listed,
        description="Whoever reaches this API can start a privileged container and take over the host.",
        remediation="Do not expose dockerd on TCP; if remote access is needed, use the TLS socket (2376) "
                    "with client certificates (--tlsverify) or SSH.",
    )]


async def check_etcd(probe: Probe) -> list[FindingCandidate]:
    version, info = await probe.get_json("/version")
    if not (isinstance(info, dict) and "etcdserver" in info):
        return []
    # A range over the whole keyspace, keys only and at most one: proves read access, takes nothing.
    ranged = await probe.http("POST", "/v3/kv/range", json.dumps({"key": "AA==", "range_end": "AA==", "keys_only": True,
                                                                  "limit": 1}).encode())
    readable = ranged is not None and ranged.status == 200 and "header" in (ranged.json() or {})
    return [finding(
        probe, "exposure-etcd-unauthenticated", "etcd answers without client authentication",
        "high" if readable else "medium", sent="GET /version ; POST /v3/kv/range (keys only, limit 1)",
        received=(ranged.body if readable else version.body), keys_readable=readable,
        description="etcd often holds cluster secrets (Kubernetes stores Secrets there).",
        remediation="Require client certificates (--client-cert-auth) and enable etcd RBAC; never expose 2379.",
    )]


async def check_kubelet(probe: Probe) -> list[FindingCandidate]:
    reply, document = await probe.get_json("/pods")
    if not (isinstance(document, dict) and document.get("kind") == "PodList"):
        return []
    return [finding(
        probe, "exposure-kubelet-unauthenticated", "Kubelet API lists pods without authentication", "high",
        sent="GET /pods", received=reply.body, pods=len(document.get("items") or []),
        description="The kubelet reveals every pod spec (images, env) and may allow exec into containers.",
        remediation="Set --anonymous-auth=false and --authorization-mode=Webhook; disable the read-only port 10255.",
    )]


async def check_prometheus(probe: Probe) -> list[FindingCandidate]:
    reply = await probe.http("GET", "/metrics")
    if reply is None or reply.status != 200 or b"# TYPE " not in reply.body:
        return []
    return [finding(
        probe, "exposure-prometheus-metrics", "Prometheus metrics are readable without authentication", "low",
        sent="GET /metrics", received=reply.body[:400], cwe=200,
        description="Metrics reveal software versions, hostnames, internal endpoints and load.",
        remediation="Put metrics endpoints behind authentication or a private network.",
    )]


JSONRPC_NAMESPACES = (
    ("admin", "admin_nodeInfo", [], "high",
     "The admin namespace lets a caller add peers, start RPC listeners and read node details.",
     "Remove 'admin' from --http.api/--ws.api; expose only eth,net,web3 publicly."),
    ("personal", "personal_listAccounts", [], "critical",
     "The personal namespace manages keystore accounts; unlocked accounts can be drained by any caller.",
     "Remove 'personal' from --http.api/--ws.api and never unlock accounts on an RPC node."),
    ("debug", "debug_getBadBlocks", [], "medium",
     "The debug namespace offers expensive tracing calls (denial of service) and state-changing ones (debug_setHead).",
     "Remove 'debug' from --http.api/--ws.api on public endpoints."),
)


async def check_jsonrpc(probe: Probe) -> list[FindingCandidate]:
    found = []
    for namespace, method, params, severity, description, remediation in JSONRPC_NAMESPACES:
        answer, reply = await probe.jsonrpc(method, params)
        if answer is None:
            return found  # not a JSON-RPC endpoint: no point asking further
        if "result" in answer and "error" not in answer:
            found.append(finding(
                probe, f"exposure-jsonrpc-{namespace}-namespace", f"JSON-RPC {namespace}_* methods are open",
                severity, sent=json.dumps({"method": method, "params": params}), received=reply.body,
                description=description, remediation=remediation, cwe=749, method=method,
            ))
    return found


CHECKS: tuple[Check, ...] = (
    Check("redis", frozenset({"redis"}), (6379, 6380), check_redis),
    Check("memcached", frozenset({"memcached"}), (11211,), check_memcached),
    Check("mongodb", frozenset({"mongodb"}), (27017, 27018), check_mongodb),
    Check("postgres", frozenset({"postgresql"}), (5432,), check_postgres),
    Check("elasticsearch", frozenset({"elasticsearch"}), (9200,), check_elasticsearch),
    Check("docker", frozenset({"docker"}), (2375,), check_docker),
    Check("etcd", frozenset({"etcd"}), (2379,), check_etcd),
    Check("kubelet", frozenset({"kubelet"}), (10250, 10255), check_kubelet),
    Check("prometheus", frozenset({"prometheus", "prometheus-metrics"}), (9090, 9100), check_prometheus),
    Check("jsonrpc", frozenset({"ethereum-jsonrpc", "jsonrpc"}), (8545, 8546, 8547), check_jsonrpc),
    *(Check(name, services, ports, lambda probe, name=name: check_access(name, probe))
      for name, (services, ports) in ACCESS_CHECKS.items()),
)


def access_finding(probe: Probe, access: Access) -> FindingCandidate:
    proof = (f"the service offered a login without encryption ({access.sent})" if access.state == CLEARTEXT
             else f"the service answered an anonymous {access.sent}")
    return finding(probe, access.rule_id, access.title, access.severity, sent=access.sent, received=access.received,
                   description=access.description, remediation=access.remediation, cwe=access.cwe, proof=proof,
                   verdict=access.state, **access.extra)


def plan_checks(target: Target) -> list[tuple[int, bool, Check]]:
    """(port, tls, check) to run, from what the target already says about itself."""
    if target.services:
        return [(s.port, s.tls, check) for s in target.services if s.protocol != "udp" for check in CHECKS
                if s.service in check.services and s.port not in RESERVED_PORTS]
    ports = target.ports or tuple(sorted({p for check in CHECKS for p in check.ports}))
    return [(port, False, check) for port in ports for check in CHECKS if port in check.ports and port not in RESERVED_PORTS]


def plan_udp_checks(target: Target) -> list[tuple[int, UdpCheck]]:
    """(port, check) for the target's UDP services; with nothing known about the target, the usual ports.
    A target known only by its (TCP) open ports gets none: UDP needs discovery to say what answers."""
    if target.services:
        return [(s.port, check) for s in target.services if s.protocol == "udp" for check in UDP_CHECKS
                if s.service in check.services and s.port not in RESERVED_PORTS]
    if target.ports:
        return []
    return [(port, check) for check in UDP_CHECKS for port in check.ports if port not in RESERVED_PORTS]


@register
class ExposureScanner(Scanner):
    name = "exposure"
    version = "1.0"
    description = "Unauthenticated datastores, container and cluster APIs, metrics, admin JSON-RPC namespaces."
    options = {"concurrency": (int, 32)}
    default_budget = 60.0

    async def scan(self, target: Target, options: dict[str, Any], context: ScanContext) -> ScanResult:
        result = self.new_result(target, options)
        limit = asyncio.Semaphore(max(1, options["concurrency"]))
        plan = plan_checks(target)

        verdicts: list[dict[str, Any]] = []

        async def one(port: int, tls: bool, check: Check) -> list[FindingCandidate]:
            async with limit:
                probe = Probe(target.address, port, hostname=target.hostname, tls=tls,
                              connect_timeout=context.connect_timeout, read_timeout=context.read_timeout,
                              attempts=result.attempts)
                found = await check.run(probe)
            accesses = [f for f in found if isinstance(f, Access)]
            verdicts.extend({"port": port, "check": a.check, "verdict": a.state, "proof": a.proof()} for a in accesses)
            return [f for f in found if not isinstance(f, Access)] + [access_finding(probe, a) for a in accesses
                                                                       if a.state != PROTECTED]

        udp_plan = plan_udp_checks(target)
        pacer = Pacer(context.rate_limit)
        wait = float(context.extra.get("udp_wait", min(context.read_timeout, 1.0)))

        async def one_udp(port: int, check: UdpCheck) -> list[FindingCandidate]:
            async with limit:
                asker = Asker(target.address, port, wait, pacer, result.attempts)
                return await check.run(asker, target.hostname or target.address)

        for found in await asyncio.gather(*(one(*item) for item in plan), *(one_udp(*item) for item in udp_plan)):
            result.findings.extend(found)
        result.data["access"] = sorted(verdicts, key=lambda v: (v["port"], v["check"]))
        checked = sorted({port for port, _, _ in plan} | {port for port, _ in udp_plan})
        result.data["checks"] = [{"port": port, "tls": tls, "check": check.name} for port, tls, check in plan]
        result.data["checks"] += [{"port": port, "transport": "udp", "check": check.name} for port, check in udp_plan]
        result.coverage = [Coverage(host=target.host_label, ports=tuple(checked))]
        return result
