"""Lab UDP services: a DNS server, an NTP server and an SNMP agent, in their real wire formats.

Each ``*_answer(...)`` returns a function from one request datagram to the datagrams the real
daemon would send back (an empty list: it stays silent, as agents do to a wrong community).
They are written from the protocols' RFCs and ntpd's ``ntp_request.h``, apart from the
scanner's own code, so a scanner that understands these understands the real thing.

The DNS server answers from its own records only: asked about a name it holds no data for,
a recursive one says NXDOMAIN as a resolver would, an authoritative one refuses. It never
forwards a query anywhere.

``start_udp_node(lab, "127.0.100.7", ["dns-recursive", "ntp", "snmp-public"])`` stands them up
on one loopback address.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
import uuid
from xml.etree import ElementTree
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from scans.lab.base import Lab, LabService

Answer = Callable[[bytes], list[bytes]]


class DatagramServer(asyncio.DatagramProtocol):
    """Answers each datagram with ``answer(datagram)``; what it cannot parse gets silence, as a daemon would."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            replies = self.answer(data)
        except (ValueError, IndexError, struct.error, UnicodeDecodeError, ElementTree.ParseError):
            return
        for reply in replies:
            self.transport.sendto(reply, addr)


# --- DNS ----------------------------------------------------------------------------------

QTYPES = {"A": 1, "NS": 2, "SOA": 6, "PTR": 12, "TXT": 16, "AAAA": 28}


def _labels(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split(".") if p) + b"\0"


def _question(data: bytes) -> tuple[str, int, int, int]:
    """(name, type, class, end offset) of a query's first question (queries carry no compression)."""
    labels, offset = [], 12
    while data[offset]:
        if data[offset] & 0xC0:
            raise ValueError("compressed question")
        labels.append(data[offset + 1:offset + 1 + data[offset]].decode("ascii"))
        offset += 1 + data[offset]
    qtype, qclass = struct.unpack("!HH", data[offset + 1:offset + 5])
    return ".".join(labels).lower(), qtype, qclass, offset + 5


def _rdata(qtype: int, value: str) -> bytes:
    if qtype == 1:
        return bytes(int(x) for x in value.split("."))
    if qtype == 16:
        raw = value.encode()
        return b"".join(bytes([len(raw[i:i + 255])]) + raw[i:i + 255] for i in range(0, max(1, len(raw)), 255))
    return _labels(value)


def dns_answer(zone: str = "lab.test", records: dict[tuple[str, str], list[str]] | None = None, *,
               version: str | None = "9.18.18-0ubuntu0.22.04.1-Ubuntu", recursion: bool = False) -> Answer:
    """A DNS server authoritative for ``zone``. ``version`` answers ``version.bind`` (None refuses it,
    as ``version none;`` does); ``recursion`` advertises RA and answers any name from its own records."""
    zone = zone.lower().strip(".")
    records = {(name.lower().strip("."), QTYPES[kind]): values
               for (name, kind), values in (records or {("www." + zone, "A"): ["192.0.2.10"]}).items()}

    def answer(data: bytes) -> list[bytes]:
        ident, flags, qdcount = struct.unpack("!HHH", data[:6])
        if flags & 0x8000 or qdcount != 1:
            return []  # a response, or nothing we can answer: ignored
        name, qtype, qclass, end = _question(data)
        question = data[12:end]
        opcode, rd = (flags >> 11) & 0xF, flags & 0x0100
        base = 0x8000 | (opcode << 11) | rd | (0x0080 if recursion else 0)
        found: list[tuple[int, int, bytes]] = []
        if opcode != 0:
            rcode, aa = 4, 0  # NOTIMP
        elif qclass == 3:  # CHAOS: the server describes itself
            if name in ("version.bind", "version.server") and qtype == 16 and version is not None:
                rcode, aa, found = 0, 0x0400, [(16, 3, _rdata(16, version))]
            else:
                rcode, aa = 5, 0
        elif name == zone or name.endswith("." + zone):
            values = records.get((name, qtype), [])
            known = any(n == name for n, _ in records) or name == zone
            rcode, aa, found = (0 if known else 3), 0x0400, [(qtype, 1, _rdata(qtype, v)) for v in values]
        elif recursion and rd:
            # A resolver answering from what it holds; whatever it does not hold does not exist here.
            values = records.get((name, qtype), [])
            rcode, aa, found = (0 if values else 3), 0, [(qtype, 1, _rdata(qtype, v)) for v in values]
        else:
            rcode, aa = 5, 0  # REFUSED: not our zone, and no recursion for strangers
        header = struct.pack("!HHHHHH", ident, base | aa | rcode, 1, len(found), 0, 0)
        rrs = b"".join(b"\xc0\x0c" + struct.pack("!HHIH", t, c, 300, len(r)) + r for t, c, r in found)
        return [header + question + rrs]

    return answer


# --- NTP ----------------------------------------------------------------------------------

NTP_EPOCH = 2208988800
NTPD_VARIABLES = (
    'version="{version}", processor="x86_64", system="Linux/5.15.0-91-generic", leap=0, stratum=2, '
    'precision=-24, rootdelay=1.525, rootdisp=22.314, refid=192.0.2.123, reftime=0xe93a1b2c.3e1f0a2b, '
    'clock=0xe93a1d04.8c2b9f10, peer=38213, tc=10, mintc=3, offset=-0.118207, frequency=-14.552, '
    'sys_jitter=0.267019, clk_jitter=0.143, clk_wander=0.006, tai=37, leapsec=201701010000, expire=202706280000'
)
CTL_MAX_DATA = 468  # ntpd's largest mode 6 data field: longer answers go out in fragments


def _ntp_time() -> bytes:
    now = time.time() + NTP_EPOCH
    return struct.pack("!II", int(now), int((now % 1) * 2**32))


def ntp_answer(*, version: str = "ntpd 4.2.8p15@1.3728-o Wed Sep 23 11:46:38 UTC 2020 (1)", readvar: bool = True,
               monlist: bool = False, clients: Iterable[str] = ("192.0.2.41", "192.0.2.77", "198.51.100.9")) -> Answer:
    """ntpd: mode 3 answered with mode 4; mode 6 READVAR answered when ``readvar`` (else ignored, as
    ``restrict noquery`` does); mode 7 MON_GETLIST answered when ``monlist``."""
    variables = NTPD_VARIABLES.format(version=version).encode()
    monitored = list(clients)

    def client(data: bytes) -> list[bytes]:
        vn = (data[0] >> 3) & 0x7
        reference = _ntp_time()
        head = struct.pack("!BBbb", (vn << 3) | 4, 2, data[2], -24) + struct.pack("!II", 0x0000_0190, 0x0000_05b6)
        return [head + bytes([192, 0, 2, 123]) + reference + data[40:48] + _ntp_time() + _ntp_time()]

    def control(data: bytes) -> list[bytes]:
        vn = (data[0] >> 3) & 0x7
        _, op, sequence, _, association, _, _ = struct.unpack("!BBHHHHH", data[:12])
        if not readvar or op & 0x80 or op & 0x1F != 2 or association != 0:
            return []
        out = []
        for offset in range(0, len(variables), CTL_MAX_DATA):
            chunk = variables[offset:offset + CTL_MAX_DATA]
            more = 0x20 if offset + CTL_MAX_DATA < len(variables) else 0
            header = struct.pack("!BBHHHHH", (vn << 3) | 6, 0x80 | more | 2, sequence, 0x0615, 0, offset, len(chunk))
            out.append(header + chunk + b"\0" * (-len(chunk) % 4))
        return out

    def private(data: bytes) -> list[bytes]:
        vn = (data[0] >> 3) & 0x7
        _, _, implementation, request = struct.unpack("!BBBB", data[:4])
        if not monlist or data[0] & 0x80 or implementation not in (2, 3) or request != 42:
            return []
        items = b""
        for n, address in enumerate(monitored):
            items += struct.pack("!IIIII", 64, 3 + n, 0, 12 + n, int.from_bytes(bytes(map(int, address.split("."))), "big"))
            items += struct.pack("!IIHBBII", 0x7F000001, 0, 123, 3, 4, 0, 0) + b"\0" * 32
        header = struct.pack("!BBBBHH", 0x80 | (vn << 3) | 7, 0, implementation, request, len(monitored), 72)
        return [header + items]

    def answer(data: bytes) -> list[bytes]:
        mode = data[0] & 0x7
        if mode == 3 and len(data) >= 48:
            return client(data)
        if mode == 6 and len(data) >= 12:
            return control(data)
        if mode == 7 and len(data) >= 8:
            return private(data)
        return []

    return answer


# --- SNMP ---------------------------------------------------------------------------------


def _tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + value


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        encoded = [part & 0x7F]
        while part >= 0x80:
            part >>= 7
            encoded.insert(0, 0x80 | (part & 0x7F))
        body += bytes(encoded)
    return _tlv(0x06, bytes(body))


def _decode_oid(raw: bytes) -> str:
    parts, value = [str(raw[0] // 40), str(raw[0] % 40)], 0
    for byte in raw[1:]:
        value = value << 7 | byte & 0x7F
        if byte < 0x80:
            parts.append(str(value))
            value = 0
    return ".".join(parts)


def _items(data: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i < len(data):
        tag, length = data[i], data[i + 1]
        i += 2
        if length & 0x80:
            width = length & 0x7F
            length, i = int.from_bytes(data[i:i + width], "big"), i + width
        if i + length > len(data):
            raise ValueError("truncated")
        out.append((tag, data[i:i + length]))
        i += length
    return out


def snmp_answer(*, community: str = "public",
                sys_descr: str = "Linux lab-gw 5.15.0-91-generic #101-Ubuntu SMP Tue Nov 14 13:30:08 UTC 2023 x86_64",
                sys_object_id: str = "1.3.6.1.4.1.8072.3.2.10",
                engine_id: bytes = bytes.fromhex("80001f8880") + b"lab-gw-engine") -> Answer:
    """A net-snmp agent: v1/v2c GetRequests with ``community`` answered from its system group (any
    other community: silence); v3 engine discovery answered with a Report (no user is ever admitted)."""
    started = time.monotonic()
    mib = {"1.3.6.1.2.1.1.1.0": _tlv(0x04, sys_descr.encode()), "1.3.6.1.2.1.1.2.0": _oid(sys_object_id),
           "1.3.6.1.2.1.1.5.0": _tlv(0x04, b"lab-gw")}
    unknown_engines = 0

    def uptime() -> int:
        return int((time.monotonic() - started) * 100)

    def community_based(version: int, given: bytes, pdu_tag: int, pdu: bytes) -> list[bytes]:
        if given.decode("latin-1") != community or pdu_tag != 0xA0:
            return []
        request_id, _, _, bindings = _items(pdu)[:4]
        out, error, index = b"", 0, 0
        for n, (_, binding) in enumerate(_items(bindings[1]), start=1):
            name = _items(binding)[0][1]
            value = mib.get(_decode_oid(name))
            if value is None:
                if version == 0:
                    error, index, value = error or 2, index or n, b"\x05\x00"  # noSuchName
                else:
                    value = b"\x80\x00"  # noSuchObject
            out += _tlv(0x30, _tlv(0x06, name) + value)
        response = _tlv(0xA2, _tlv(0x02, request_id[1]) + _int(error) + _int(index) + _tlv(0x30, out))
        return [_tlv(0x30, _int(version) + _tlv(0x04, given) + response)]

    def user_based(parts: list[tuple[int, bytes]]) -> list[bytes]:
        nonlocal unknown_engines
        header = _items(parts[1][1])
        message_id = header[0][1]
        scoped = _items(parts[3][1])
        request_id = _items(scoped[2][1])[0][1]
        unknown_engines += 1
        usm = _tlv(0x30, _tlv(0x04, engine_id) + _int(1) + _int(uptime() // 100) + _tlv(0x04, b"") * 3)
        report = _tlv(0xA8, _tlv(0x02, request_id) + _int(0) + _int(0) + _tlv(0x30, _tlv(
            0x30, _oid("1.3.6.1.6.3.15.1.1.4.0") + _tlv(0x41, unknown_engines.to_bytes(4, "big")))))
        out_header = _tlv(0x30, _tlv(0x02, message_id) + _int(65507) + _tlv(0x04, b"\x00") + _int(3))
        return [_tlv(0x30, _int(3) + out_header + _tlv(0x04, usm)
                     + _tlv(0x30, _tlv(0x04, engine_id) + _tlv(0x04, b"") + report))]

    def answer(data: bytes) -> list[bytes]:
        (tag, message), = _items(data)[:1]
        if tag != 0x30:
            return []
        parts = _items(message)
        version = int.from_bytes(parts[0][1], "big")
        if version in (0, 1):
            return community_based(version, parts[1][1], *parts[2])
        if version == 3 and len(parts) >= 4:
            return user_based(parts)
        return []

    return answer


# --- memcached, SSDP, RMCP, CoAP -------------------------------------------------------------


def memcached_answer(version: str = "1.6.9") -> Answer:
    """memcached started with -U 11211: each request behind the 8-byte UDP frame header."""
    def answer(data: bytes) -> list[bytes]:
        request_id, _, total, _ = struct.unpack("!HHHH", data[:8])
        if total != 1:
            return []
        command = data[8:].split(b"\r\n", 1)[0].strip().lower()
        if command == b"version":
            body = f"VERSION {version}\r\n".encode()
        elif command == b"stats":
            body = f"STAT pid 812\r\nSTAT uptime 86400\r\nSTAT version {version}\r\nEND\r\n".encode()
        else:
            body = b"ERROR\r\n"
        return [struct.pack("!HHHH", request_id, 0, 1, 0) + body]

    return answer


def ssdp_answer(server: str = "Ubuntu/22.04 UPnP/1.1 MiniUPnPd/2.2.1") -> Answer:
    """A UPnP router answering M-SEARCH for the root device or for everything."""
    def answer(data: bytes) -> list[bytes]:
        text = data.decode("ascii")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in text.split("\r\n")[1:])}
        if not text.startswith("M-SEARCH * HTTP/1.1\r\n") or headers.get("man") != '"ssdp:discover"':
            return []
        if headers.get("st") not in ("ssdp:all", "upnp:rootdevice"):
            return []
        return [("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: upnp:rootdevice\r\n"
                 "USN: uuid:a3c1f2d4-5b6e-4f70-8a9b-0c1d2e3f4a5b::upnp:rootdevice\r\nEXT:\r\n"
                 f"SERVER: {server}\r\nLOCATION: http://192.168.1.1:5000/rootDesc.xml\r\n"
                 "OPT: \"http://schemas.upnp.org/upnp/1/0/\"; ns=01\r\nBOOTID.UPNP.ORG: 1\r\n\r\n").encode()]

    return answer


def rmcp_answer(enterprise: int = 4542) -> Answer:
    """A BMC's ASF Presence Pong, announcing IPMI."""
    def answer(data: bytes) -> list[bytes]:
        version, _, sequence, klass, iana, kind, tag, _, _ = struct.unpack("!BBBBIBBBB", data[:12])
        if version != 0x06 or klass != 0x06 or iana != 4542 or kind != 0x80:
            return []
        body = struct.pack("!IIBB", enterprise, 0, 0x81, 0x00) + b"\0" * 6
        return [struct.pack("!BBBBIBBBB", 0x06, 0x00, sequence, 0x06, 4542, 0x40, tag, 0x00, len(body)) + body]

    return answer


def coap_answer(resources: str = '</sensors/temp>;rt="temperature-c";if="sensor",</firmware/v2>;rt="firmware"') -> Answer:
    """A constrained device answering GET /.well-known/core with its link-format resource list."""
    def answer(data: bytes) -> list[bytes]:
        first, code, message_id = struct.unpack("!BBH", data[:4])
        if first >> 6 != 1 or (first >> 4) & 3 != 0 or code != 0x01:
            return []
        token_length = first & 0xF
        token, offset, number, path = data[4:4 + token_length], 4 + token_length, 0, []
        while offset < len(data) and data[offset] != 0xFF:
            delta, length = data[offset] >> 4, data[offset] & 0xF
            if delta > 12 or length > 12:
                return []  # extended forms: not in any request this device gets
            number += delta
            if number == 11:
                path.append(data[offset + 1:offset + 1 + length].decode())
            offset += 1 + length
        head = struct.pack("!BBH", 0x60 | token_length, 0x45 if path == [".well-known", "core"] else 0x84, message_id)
        if path != [".well-known", "core"]:
            return [head + token]
        return [head + token + b"\xc1\x28" + b"\xff" + resources.encode()]  # Content-Format 40, link-format

    return answer


def netbios_answer(host: str = "LAB-FS", workgroup: str = "WORKGROUP", mac: str = "52:54:00:12:34:56") -> Answer:
    """A Samba nmbd answering node status (NBSTAT) with its name table."""
    table = [(host, 0x00, 0x0400), (host, 0x03, 0x0400), (host, 0x20, 0x0400), (workgroup, 0x00, 0x8400),
             (workgroup, 0x1E, 0x8400)]

    def answer(data: bytes) -> list[bytes]:
        ident, flags, qdcount = struct.unpack("!HHH", data[:6])
        if flags & 0x8000 or qdcount != 1 or data[12] != 0x20:
            return []
        name, qtype = data[12:46], struct.unpack("!H", data[46:48])[0]
        decoded = bytes(((name[1 + 2 * i] - 0x41) << 4) | (name[2 + 2 * i] - 0x41) for i in range(16))
        if qtype != 0x21 or decoded[:1] != b"*":
            return []
        names = b"".join(n.encode().ljust(15)[:15] + bytes([suffix]) + struct.pack("!H", f) for n, suffix, f in table)
        statistics = bytes(int(x, 16) for x in mac.split(":")) + b"\0" * 40
        rdata = bytes([len(table)]) + names + statistics
        header = struct.pack("!HHHHHH", ident, 0x8400, 0, 1, 0, 0)
        return [header + name + struct.pack("!HHIH", 0x21, 1, 0, len(rdata)) + rdata]

    return answer


def openvpn_answer(*, tls_auth: bool = False) -> Answer:
    """An OpenVPN server's reset answer; with ``tls_auth`` a packet without its HMAC gets silence."""
    def answer(data: bytes) -> list[bytes]:
        if tls_auth or len(data) != 14 or data[0] >> 3 != 7:
            return []
        client_session, packet_id = data[1:9], data[10:14]
        server_session = os.urandom(8)
        return [bytes([8 << 3]) + server_session + b"\x01" + packet_id + client_session + b"\0\0\0\0"]

    return answer


def wsd_answer(name: str = "HIKVISION", hardware: str = "DS-2CD2143G2-I") -> Answer:
    """An ONVIF camera answering a WS-Discovery Probe with its ProbeMatches."""
    soap, wsa, wsd = ("http://www.w3.org/2003/05/soap-envelope", "http://schemas.xmlsoap.org/ws/2004/08/addressing",
                      "http://schemas.xmlsoap.org/ws/2005/04/discovery")

    def answer(data: bytes) -> list[bytes]:
        root = ElementTree.fromstring(data)
        message_id = root.find(f"{{{soap}}}Header/{{{wsa}}}MessageID")
        if message_id is None or root.find(f"{{{soap}}}Body/{{{wsd}}}Probe") is None:
            return []
        scopes = " ".join(["onvif://www.onvif.org/type/video_encoder", "onvif://www.onvif.org/Profile/Streaming",
                           f"onvif://www.onvif.org/name/{name}", f"onvif://www.onvif.org/hardware/{hardware}",
                           "onvif://www.onvif.org/location/city/hangzhou"])
        return [(f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{soap}" xmlns:wsadis="{wsa}" '
                 f'xmlns:d="{wsd}" xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><env:Header>'
                 f"<wsadis:MessageID>urn:uuid:{uuid.uuid4()}</wsadis:MessageID>"
                 f"<wsadis:RelatesTo>{message_id.text}</wsadis:RelatesTo>"
                 "<wsadis:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsadis:To>"
                 f"<wsadis:Action>{wsd}/ProbeMatches</wsadis:Action></env:Header><env:Body><d:ProbeMatches>"
                 "<d:ProbeMatch><wsadis:EndpointReference><wsadis:Address>urn:uuid:544f4e56-4445-4f41-5345-c056e3a1b2c4"
                 "</wsadis:Address></wsadis:EndpointReference><d:Types>dn:NetworkVideoTransmitter</d:Types>"
                 f"<d:Scopes>{scopes}</d:Scopes><d:XAddrs>http://192.168.1.64/onvif/device_service</d:XAddrs>"
                 "<d:MetadataVersion>10</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></env:Body>"
                 "</env:Envelope>").encode()]

    return answer


# --- negatives and nodes --------------------------------------------------------------------


def garbage_answer() -> Answer:
    """Answers every datagram with random bytes: a port that says something, in no protocol."""
    return lambda data: [os.urandom(48)]


@dataclass(frozen=True, slots=True)
class UdpKind:
    service: str  # the name UDP discovery gives it
    port: int
    answer: Callable[[], Answer]


UDP_KINDS: dict[str, UdpKind] = {
    "dns-recursive": UdpKind("dns", 53, lambda: dns_answer(recursion=True)),
    "dns-authoritative": UdpKind("dns", 53, lambda: dns_answer(version="NSD 4.3.9", recursion=False)),
    "ntp": UdpKind("ntp", 123, lambda: ntp_answer(readvar=True, monlist=True)),
    "ntp-quiet": UdpKind("ntp", 123, lambda: ntp_answer(readvar=False, monlist=False)),
    "snmp-public": UdpKind("snmp", 161, snmp_answer),
    "snmp-private": UdpKind("snmp", 161, lambda: snmp_answer(community="n0t-public-lab")),
    "netbios": UdpKind("netbios-ns", 137, netbios_answer),
    # An Avahi responder answering a legacy unicast query from its own records.
    "mdns": UdpKind("mdns", 5353, lambda: dns_answer("local", {
        ("_services._dns-sd._udp.local", "PTR"): ["_ssh._tcp.local", "_ipp._tcp.local", "_smb._tcp.local"]},
        version=None)),
    "ipmi": UdpKind("asf-rmcp", 623, rmcp_answer),
    "openvpn": UdpKind("openvpn", 1194, openvpn_answer),
    "openvpn-tls-auth": UdpKind("openvpn", 1194, lambda: openvpn_answer(tls_auth=True)),
    "ssdp": UdpKind("ssdp", 1900, ssdp_answer),
    "coap": UdpKind("coap", 5683, coap_answer),
    "ws-discovery": UdpKind("ws-discovery", 3702, wsd_answer),
    "memcached-udp": UdpKind("memcached", 11211, memcached_answer),
    "garbage": UdpKind("", 0, garbage_answer),
}


def udp_ports(services: dict[str, LabService]) -> dict[str, int]:
    """Where each lab service listens, by the name UDP discovery gives it (for ``udp_discover(ports=...)``)."""
    return {UDP_KINDS[kind].service: service.port for kind, service in services.items() if UDP_KINDS[kind].service}


def start_udp_node(lab: Lab, address: str, kinds: Iterable[str], *, standard_ports: bool = True) -> dict[str, LabService]:
    """Serve ``kinds`` on ``address``, each on its usual port when it can be bound, else a free one."""
    services = {}
    for kind in kinds:
        spec = UDP_KINDS[kind]
        port = spec.port if standard_ports else 0
        try:
            services[kind] = lab.serve_datagram(address, port, lambda s=spec: DatagramServer(s.answer()), name=kind)
        except OSError:
            if port == 0:
                raise
            services[kind] = lab.serve_datagram(address, 0, lambda s=spec: DatagramServer(s.answer()), name=kind)
    return services
