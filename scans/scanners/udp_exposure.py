"""Exposure checks of UDP services: open DNS recursion, SNMP's default community, NTP mode 6/7 queries.

Each check asks one read-only question in the service's protocol and reports a finding only
when the answer proves the exposure; the question and the deciding fields of the answer are
the evidence, with how sure the check is. Silence, a refusal or an error is no finding: a
service that refuses strangers is protected.

- DNS: a name outside any zone (``.invalid``, which RFC 6761 resolvers answer locally, so the
  check never sends a resolver out on the network) with recursion desired; only the RA flag
  and the response code are read.
- SNMP: sysDescr.0 with the community "public", the only community ever tried.
- NTP: a mode 6 READVAR and a mode 7 MON_GETLIST, both reads that amplify a spoofed request.
- memcached: ``stats`` over UDP, the request of the 2018 reflection attacks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from scans.findings.candidates import FindingCandidate, certainty
from scans.scanners import udp_wire as wire
from scans.scanners.udp import Asker

SOURCE = "exposure"


@dataclass(frozen=True, slots=True)
class UdpCheck:
    name: str
    services: frozenset[str]  # ServiceObservation.service values (protocol "udp") this check applies to
    ports: tuple[int, ...]
    run: Callable[[Asker, str], Awaitable[list[FindingCandidate]]]


def udp_finding(asker: Asker, host: str, rule_id: str, title: str, severity: str, *, confidence: float, sent: str,
                received: str, remediation: str, description: str, cwe: int, cve_ids: tuple[str, ...] = (),
                **extra: Any) -> FindingCandidate:
    return FindingCandidate(
        source=SOURCE, rule_id=rule_id, title=title, host=host, severity=severity, cwe=cwe, cve_ids=cve_ids,
        port=asker.port, protocol="udp", location=f"udp://{asker.address}:{asker.port}", description=description,
        remediation=remediation,
        evidence={"sent": sent, "received": received, "confidence": confidence, **extra,
                  **certainty(confidence, "proven", f"the service answered {sent}: {received}")},
    )


async def check_dns_recursion(asker: Asker, host: str) -> list[FindingCandidate]:
    query = wire.dns_query(wire.RECURSION_QUERY_NAME, wire.TYPE_A, recursion_desired=True)
    answer = await asker.answer("dns-recursion", query.encode(), lambda d: wire.parse_dns(query, d))
    # A server that recursed for us says RA and gives an answer (records, or "no such name");
    # an authoritative-only one refuses, or answers without RA.
    if answer is None or not answer.recursion_available or answer.rcode not in (0, 3):
        return []
    return [udp_finding(
        asker, host, "exposure-dns-open-recursion", "DNS server resolves names for anyone (open recursion)", "medium",
        confidence=0.9, sent=f"A {wire.RECURSION_QUERY_NAME}. with RD=1",
        received=f"RA=1 rcode={answer.rcode_name} answers={len(answer.answers)}", cwe=406,
        recursion_available=True, rcode=answer.rcode_name,
        description="The server answered a query for a name outside its zones with recursion available: it "
                    "resolves for any client, which makes it a DNS amplification reflector and a cache-poisoning target.",
        remediation="Restrict recursion to your own clients (allow-recursion / access-control), or disable it on "
                    "authoritative servers (recursion no).",
    )]


async def check_snmp_public(asker: Asker, host: str) -> list[FindingCandidate]:
    request, request_id = wire.snmp_get_request("public")
    reply = await asker.answer("snmp-public-sysdescr", request, lambda d: wire.parse_snmp_response(request_id, d))
    if reply is None or reply.error_status != 0 or wire.SYS_DESCR not in reply.bindings:
        return []
    description = str(reply.bindings[wire.SYS_DESCR])
    return [udp_finding(
        asker, host, "exposure-snmp-default-community", "SNMP agent answers the default community \"public\"", "high",
        confidence=0.95, sent="v2c GetRequest sysDescr.0 community public", received=f"sysDescr.0 = {description}",
        cwe=1392, sys_descr=description,
        description="Anyone can read this device's management information (interfaces, routes, processes, "
                    "often configuration) with the well-known community string.",
        remediation="Remove the public community; use SNMPv3 with authentication and privacy, and restrict the "
                    "agent to management addresses.",
    )]


async def check_ntp_queries(asker: Asker, host: str) -> list[FindingCandidate]:
    found = []
    readvar, sequence = wire.ntp_readvar_request()
    exchange = await asker.ask("ntp-readvar", readvar, complete=lambda d: wire.parse_ntp_readvar(sequence, d) is not None)
    text = wire.parse_ntp_readvar(sequence, exchange.datagrams)
    if text is not None:
        size = sum(map(len, exchange.datagrams))
        found.append(udp_finding(
            asker, host, "exposure-ntp-mode6-readvar", "NTP server answers mode 6 control queries (READVAR)", "low",
            confidence=0.95, sent=f"mode 6 READVAR ({len(readvar)} bytes)",
            received=f"{size} bytes in {len(exchange.datagrams)} datagram(s): {text[:200]}", cwe=406,
            version=wire.ntp_variables(text).get("version", ""), amplification=round(size / len(readvar), 1),
            description="The server reveals its version, system and peers to anyone, and answers a small spoofed "
                        "request with a larger one (reflection).",
            remediation="Add 'restrict default noquery' (and the same for -6) to ntp.conf.",
        ))
    request = wire.ntp_monlist_request()
    exchange = await asker.ask("ntp-monlist", request, complete=wire.ntp_monlist_complete)
    monlist = wire.parse_ntp_monlist(exchange.datagrams)
    if monlist is not None:
        found.append(udp_finding(
            asker, host, "exposure-ntp-monlist", "NTP server answers mode 7 MON_GETLIST (monlist)", "high",
            confidence=0.95, sent=f"mode 7 MON_GETLIST_1 ({len(request)} bytes)",
            received=f"{monlist.bytes} bytes in {monlist.packets} datagram(s), {monlist.items} client(s) listed",
            cwe=406, cve_ids=("CVE-2013-5211",), clients=monlist.clients[:20],
            amplification=round(monlist.bytes / len(request), 1),
            description="monlist returns up to 600 recent clients per request: a reflector that multiplies a "
                        "spoofed request many times over, and a list of who talks to this server.",
            remediation="Upgrade ntpd to 4.2.7p26 or later, or add 'disable monitor' / 'restrict default noquery'.",
        ))
    return found


async def check_memcached_udp(asker: Asker, host: str) -> list[FindingCandidate]:
    request, request_id = wire.memcached_version_request()
    request = request[:8] + b"stats\r\n"
    exchange = await asker.ask("memcached-udp-stats", request,
                               complete=lambda d: d[-1].endswith((b"END\r\n", b"ERROR\r\n")))
    replies = [d for d in exchange.datagrams if len(d) > 8 and d[:2] == request[:2]]
    body = b"".join(d[8:] for d in replies)
    if b"STAT " not in body:
        return []
    size = sum(map(len, replies))
    return [udp_finding(
        asker, host, "exposure-memcached-udp", "memcached answers over UDP without authentication", "high",
        confidence=0.95, sent=f"stats over UDP ({len(request)} bytes)",
        received=f"{size} bytes in {len(replies)} datagram(s): {body[:200].decode('latin-1')}", cwe=406,
        cve_ids=("CVE-2018-1000115",), amplification=round(size / len(request), 1),
        description="memcached's UDP interface answers anyone, with replies many times larger than the request: "
                    "a reflector for denial-of-service attacks, and cached data readable by strangers.",
        remediation="Start memcached with -U 0 (UDP off, the default since 1.5.6) and listen on private addresses only.",
    )]


UDP_CHECKS: tuple[UdpCheck, ...] = (
    UdpCheck("dns-recursion", frozenset({"dns"}), (53,), check_dns_recursion),
    UdpCheck("snmp-public", frozenset({"snmp"}), (161,), check_snmp_public),
    UdpCheck("ntp-queries", frozenset({"ntp"}), (123,), check_ntp_queries),
    UdpCheck("memcached-udp", frozenset({"memcached"}), (11211,), check_memcached_udp),
)
