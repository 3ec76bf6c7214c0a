"""UDP discovery: a bounded table of well-known UDP services, each asked in its own protocol.

UDP has no handshake: a silent port may be open, filtered or closed, and an ICMP port
unreachable only says "closed". So every entry of :data:`UDP_SERVICES` sends a request of its
protocol (never an empty datagram) and a port counts as open only when the answer parses as
that protocol's answer to that request (our DNS id and question, our NTP transmit timestamp
echoed, our SNMP request id). Silence, ICMP unreachable or bytes of anything else: not reported.

Results have the TCP services' shape: a :class:`ServiceObservation` with ``protocol="udp"`` and
a :class:`DetectedProtocol`-like entry (see ``scans.discovery.discover``), with the request sent
and the answer's decoded fields as evidence.

Like every scanner, this connects only to ``Target.address``, an IP literal the scope guard
(``orgs.scope``) already checked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from scans.findings.candidates import ServiceObservation
from scans.scanners import connections
from scans.scanners import udp_wire as wire
from scans.scanners.base import ScanContext, Target
from scans.scanners.fingerprint import cpe_for
from scans.scanners.port_sets import RESERVED_PORTS

DEFAULT_WAIT = 1.0  # seconds an answer may take, per try
TRIES = 2  # a datagram or its answer may be lost: ask twice before calling a port silent

T = TypeVar("T")


@dataclass(slots=True)
class DatagramExchange:
    """``outcome``: answered, refused (ICMP port unreachable), timeout (silent), error."""

    outcome: str
    datagrams: list[bytes] = field(default_factory=list)
    detail: str = ""


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: list[bytes] = []
        self.arrived = asyncio.Event()
        self.error: OSError | None = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams.append(data)
        self.arrived.set()

    def error_received(self, exc: OSError) -> None:
        self.error = exc
        self.arrived.set()


class Pacer:
    """At most ``rate`` datagrams a second over a whole run (the context's rate budget); None: no limit."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot, self.next = max(now, self.next), max(now, self.next) + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass(slots=True)
class Asker:
    """Sends one service's requests to one port and collects the answers."""

    address: str
    port: int
    wait: float = DEFAULT_WAIT
    pacer: Pacer = field(default_factory=lambda: Pacer(None))
    attempts: list[dict[str, Any]] = field(default_factory=list)

    async def ask(self, probe: str, payload: bytes, *, complete: Callable[[list[bytes]], bool] | None = None,
                  idle: float = 0.2) -> DatagramExchange:
        """Send ``payload`` (twice at most) and collect answers: the first one, or every one until
        ``complete(answers)`` holds or none came for ``idle`` seconds."""
        if not payload:
            raise ValueError("UDP probes carry a request of their protocol, never an empty datagram")
        try:
            transport, collector = await connections.datagram_endpoint(_Collector, remote_addr=(self.address, self.port))
        except OSError as exc:
            return self._record(probe, DatagramExchange("error", detail=str(exc)))
        try:
            for _ in range(TRIES):
                await self.pacer.wait()
                transport.sendto(payload)
                try:
                    await asyncio.wait_for(collector.arrived.wait(), self.wait)
                except TimeoutError:
                    continue
                break
            if isinstance(collector.error, ConnectionRefusedError) and not collector.datagrams:
                return self._record(probe, DatagramExchange("refused", detail="ICMP port unreachable"))
            if not collector.datagrams:
                return self._record(probe, DatagramExchange("timeout"))
            while complete is not None and not complete(collector.datagrams):
                collector.arrived.clear()
                try:
                    await asyncio.wait_for(collector.arrived.wait(), idle)
                except TimeoutError:
                    break
            return self._record(probe, DatagramExchange("answered", list(collector.datagrams)))
        finally:
            transport.close()

    async def answer(self, probe: str, payload: bytes, parse: Callable[[bytes], T | None]) -> T | None:
        """Send ``payload`` and read each answer with ``parse``: the first that parses as the reply
        to this request, or None (silence, a refusal, or only bytes of something else)."""
        exchange = await self.ask(probe, payload)
        return next((found for datagram in exchange.datagrams if (found := parse(datagram))), None)

    def _record(self, probe: str, exchange: DatagramExchange) -> DatagramExchange:
        self.attempts.append({"port": self.port, "transport": "udp", "probe": probe, "outcome": exchange.outcome,
                              "detail": exchange.detail or f"{len(exchange.datagrams)} datagram(s)"})
        return exchange


@dataclass(slots=True)
class Identified:
    """A valid answer to a service's request, and what it names."""

    probe: str
    signature: str  # what made the answer valid
    matched: str  # the answer's deciding fields, as text
    confidence: float
    product: str = ""
    version: str = ""
    cpe: str = ""
    banner: str = ""
    details: dict[str, Any] = field(default_factory=dict)


async def identify_dns(asker: Asker) -> Identified | None:
    query = wire.dns_query("version.bind", wire.TYPE_TXT, wire.CLASS_CH)
    answer = await asker.answer("dns-version-bind", query.encode(), lambda d: wire.parse_dns(query, d))
    if answer is None:
        return None
    text = (answer.txt() or [""])[0]
    product, version, cpe = wire.dns_product(text)
    return Identified(
        "dns-version-bind", "DNS response with our query id and question", f"rcode={answer.rcode_name}"
        + (f' version.bind TXT "{text}"' if text else ""), 0.95, product, version, cpe, text,
        {"sent": "version.bind CHAOS TXT", "rcode": answer.rcode_name, "version_bind": text,
         "recursion_available": answer.recursion_available, "authoritative": answer.authoritative})


async def identify_mdns(asker: Asker) -> Identified | None:
    """A legacy unicast query (RFC 6762 section 6.7): responders answer it to the asking port."""
    query = wire.dns_query(wire.DNS_SD_SERVICES, wire.TYPE_PTR)
    answer = await asker.answer("mdns-service-enumeration", query.encode(), lambda d: wire.parse_dns(query, d))
    if answer is None:
        return None
    listed = ", ".join(answer.pointers)
    return Identified("mdns-service-enumeration", "mDNS response with our query id and question",
                      f"{len(answer.pointers)} service type(s): {listed[:200]}", 0.95, "", "", "", listed[:400],
                      {"sent": f"PTR {wire.DNS_SD_SERVICES}", "service_types": answer.pointers})


async def identify_ntp(asker: Asker) -> Identified | None:
    request, nonce = wire.ntp_client_request()
    reply = await asker.answer("ntp-client", request, lambda d: wire.parse_ntp_reply(nonce, d))
    if reply is None:
        return None
    details: dict[str, Any] = {"sent": "mode 3 client request", "ntp_version": reply.version,
                               "stratum": reply.stratum, "reference_id": reply.reference_id}
    # The server's own version string is a system variable, read with one mode 6 READVAR.
    readvar, sequence = wire.ntp_readvar_request()
    answered = await asker.ask("ntp-readvar", readvar, complete=lambda d: wire.parse_ntp_readvar(sequence, d) is not None)
    text = wire.parse_ntp_readvar(sequence, answered.datagrams)
    product = version = cpe = ""
    if text is not None:
        variables = wire.ntp_variables(text)
        product, version, cpe = wire.ntp_product(variables)
        details.update(readvar=True, version_variable=variables.get("version", ""))
    return Identified("ntp-client", "NTP mode 4 answer echoing our transmit timestamp",
                      f"stratum={reply.stratum} refid={reply.reference_id}", 0.99, product, version, cpe,
                      details.get("version_variable", ""), details)


async def identify_snmp(asker: Asker) -> Identified | None:
    """The well-known read community first (sysDescr only); an agent deaf to it is still found, and
    named by its engine, through SNMPv3 engine discovery, which needs no credential at all."""
    request, request_id = wire.snmp_get_request("public")
    discovery, message_id = wire.snmp_v3_discovery_request()
    v2c, v3 = await asyncio.gather(asker.ask("snmp-v2c-public-sysdescr", request),
                                   asker.ask("snmp-v3-engine-discovery", discovery))
    reply = next((r for d in v2c.datagrams if (r := wire.parse_snmp_response(request_id, d))), None)
    engine = next((e for d in v3.datagrams if (e := wire.parse_snmp_v3_report(message_id, d))), None)
    if reply is None and engine is None:
        return None
    details: dict[str, Any] = {"sent": "v2c GetRequest sysDescr.0 community public; v3 engine discovery",
                               "public_community": reply is not None and reply.error_status == 0}
    description = ""
    if reply is not None:
        description = str(reply.bindings.get(wire.SYS_DESCR, ""))
        details["sys_descr"] = description
    if engine is not None:
        details.update(engine)
    product = (engine or {}).get("maker", "")
    if reply is not None:
        signature, matched = "SNMP GetResponse with our request id", f"sysDescr.0 = {description}"
    else:
        signature, matched = "SNMPv3 Report to our engine discovery", f"engine id {engine['engine_id']}"
    probe = "snmp-v2c-public-sysdescr" if reply is not None else "snmp-v3-engine-discovery"
    return Identified(probe, signature, matched, 0.95, product, "", "", description, details)


async def identify_memcached(asker: Asker) -> Identified | None:
    request, request_id = wire.memcached_version_request()
    version = await asker.answer("memcached-udp-version", request,
                                 lambda d: wire.parse_memcached_version(request_id, d))
    if version is None:
        return None
    return Identified("memcached-udp-version", "memcached UDP frame with our request id and a VERSION line",
                      f"VERSION {version}", 0.95, "memcached", version,
                      cpe_for("memcached", version), f"VERSION {version}",
                      {"sent": "version (UDP frame)"})


async def identify_ssdp(asker: Asker) -> Identified | None:
    headers = await asker.answer("ssdp-m-search", wire.SSDP_SEARCH, wire.parse_ssdp)
    if headers is None:
        return None
    server = headers.get("server", "")
    product, version, cpe = wire.upnp_product(server)
    return Identified("ssdp-m-search", "HTTP/1.1 200 search response with ST and USN", f"SERVER: {server}", 0.9,
                      product, version, cpe, server,
                      {"sent": "M-SEARCH ST: upnp:rootdevice", "st": headers["st"], "usn": headers["usn"],
                       "location": headers.get("location", "")})


async def identify_rmcp(asker: Asker) -> Identified | None:
    ping, tag = wire.rmcp_presence_ping()
    pong = await asker.answer("rmcp-presence-ping", ping, lambda d: wire.parse_rmcp_pong(tag, d))
    if pong is None:
        return None
    return Identified("rmcp-presence-ping", "ASF Presence Pong with our message tag",
                      f"enterprise {pong['enterprise']} IPMI {'supported' if pong['ipmi_supported'] else 'absent'}",
                      0.95, "", "", "", "", {"sent": "RMCP ASF Presence Ping", **pong})


async def identify_coap(asker: Asker) -> Identified | None:
    request, message_id, token = wire.coap_discovery_request()
    answer = await asker.answer("coap-well-known-core", request, lambda d: wire.parse_coap(message_id, token, d))
    if answer is None:
        return None
    code, payload = answer
    return Identified("coap-well-known-core", "CoAP response with our message id and token",
                      f"{code} {payload[:120]}", 0.95, "", "", "", payload[:400],
                      {"sent": "CON GET /.well-known/core", "code": code})


async def identify_netbios(asker: Asker) -> Identified | None:
    request, ident = wire.netbios_status_request()
    status = await asker.answer("netbios-nbstat", request, lambda d: wire.parse_netbios_status(ident, d))
    if status is None:
        return None
    listed = ", ".join(f"{name}<{suffix:02x}>{' group' if group else ''}" for name, suffix, group in status["names"])
    # The <20> name is the file server service (Windows or Samba): worth saying, not a product.
    file_server = any(suffix == 0x20 for _, suffix, _ in status["names"])
    return Identified("netbios-nbstat", "NetBIOS node status response to our transaction id", listed, 0.95,
                      "", "", "", listed, {"sent": "NBSTAT *", "names": [n for n, _, _ in status["names"]],
                                           "mac": status["mac"], "file_server": file_server})


async def identify_openvpn(asker: Asker) -> Identified | None:
    request, session = wire.openvpn_reset_request()
    reset = await asker.answer("openvpn-hard-reset", request, lambda d: wire.parse_openvpn_reset(session, d))
    if reset is None:
        return None
    return Identified("openvpn-hard-reset", "P_CONTROL_HARD_RESET_SERVER_V2 acknowledging our session",
                      f"server session {reset['server_session']}", 0.95, "OpenVPN", "", "", "",
                      {"sent": "P_CONTROL_HARD_RESET_CLIENT_V2 (no tls-auth)", "tls_auth": False, **reset})


async def identify_wsd(asker: Asker) -> Identified | None:
    probe, message_id = wire.wsd_probe()
    matches = await asker.answer("ws-discovery-probe", probe, lambda d: wire.parse_wsd_matches(message_id, d))
    if matches is None:
        return None
    onvif = matches["onvif"]
    # ONVIF devices put their maker's name and model in scopes; that names a product, not a version.
    product = " ".join(x for x in (onvif.get("name", ""), onvif.get("hardware", "")) if x)
    return Identified("ws-discovery-probe", "ProbeMatches relating to our Probe's MessageID",
                      " ".join(matches["types"]), 0.95, product, "", "", " ".join(matches["scopes"])[:400],
                      {"sent": "WS-Discovery Probe", **matches})


@dataclass(frozen=True, slots=True)
class UdpService:
    name: str  # ServiceObservation.service
    port: int
    identify: Callable[[Asker], Awaitable[Identified | None]]


UDP_SERVICES: tuple[UdpService, ...] = (
    UdpService("dns", 53, identify_dns),
    UdpService("ntp", 123, identify_ntp),
    UdpService("netbios-ns", 137, identify_netbios),
    UdpService("snmp", 161, identify_snmp),
    UdpService("asf-rmcp", 623, identify_rmcp),
    UdpService("openvpn", 1194, identify_openvpn),
    UdpService("ssdp", 1900, identify_ssdp),
    UdpService("ws-discovery", 3702, identify_wsd),
    UdpService("mdns", 5353, identify_mdns),
    UdpService("coap", 5683, identify_coap),
    UdpService("memcached", 11211, identify_memcached),
)


@dataclass(slots=True)
class UdpFound:
    service: ServiceObservation
    detected: dict[str, Any]  # a DetectedProtocol's fields


@dataclass(slots=True)
class UdpOutcome:
    ports_scanned: int = 0
    found: list[UdpFound] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def open_ports(self) -> list[int]:
        return sorted({f.service.port for f in self.found})


async def udp_discover(target: Target, context: ScanContext | None = None, *,
                       services: tuple[UdpService, ...] = UDP_SERVICES, ports: dict[str, int] | None = None,
                       pacer: Pacer | None = None) -> UdpOutcome:
    """Ask every service of the table on ``target`` at once; report those that answered validly.

    ``ports`` moves a service off its usual port (``{"dns": 5353}``), for labs and odd deployments.
    """
    context = context or ScanContext()
    wait = float(context.extra.get("udp_wait", min(context.read_timeout, DEFAULT_WAIT)))
    pacer = pacer or Pacer(context.rate_limit)
    outcome = UdpOutcome()
    plan = [(s, (ports or {}).get(s.name, s.port)) for s in services]
    plan = [(s, port) for s, port in plan if port not in RESERVED_PORTS]
    outcome.ports_scanned = len({port for _, port in plan})

    async def one(service: UdpService, port: int) -> UdpFound | None:
        asker = Asker(target.address, port, wait, pacer, outcome.attempts)
        found = await service.identify(asker)
        if found is None:
            return None
        evidence = {"probe": found.probe, "signature": found.signature, "matched": found.matched, **found.details}
        observation = ServiceObservation(
            host=target.address, port=port, protocol="udp", service=service.name, product=found.product,
            version=found.version, cpe=found.cpe, banner=found.banner, confidence=found.confidence, evidence=evidence)
        detected = {"protocol": service.name, "port": port, "confidence": found.confidence, "tls": False,
                    "version": found.version, "transport": "udp",
                    "evidence": [{"probe": found.probe, "signature": found.signature, "matched": found.matched,
                                  "weight": found.confidence}]}
        return UdpFound(observation, detected)

    for found in await asyncio.gather(*(one(s, port) for s, port in plan)):
        if found is not None:
            outcome.found.append(found)
    outcome.found.sort(key=lambda f: f.service.port)
    return outcome
