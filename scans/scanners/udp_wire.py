"""Wire formats of the UDP services discovery asks: DNS, NTP (modes 3, 6 and 7), SNMP v1/v2c/v3,
memcached's UDP frame, SSDP, RMCP/ASF, CoAP, NetBIOS name service, OpenVPN, mDNS (DNS-SD) and
WS-Discovery.

Each protocol has a request builder and a parser of the answer. A parser returns None for
anything that is not a well-formed answer to *that* request (wrong id, wrong opcode, no echo
of our nonce, truncated BER): a port counts as open only on a valid answer, never on "some
bytes came back".
"""

from __future__ import annotations

import os
import re
import struct
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from scans.scanners.fingerprint import cpe_name

# --- DNS (RFC 1035) -----------------------------------------------------------------------

DNS_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
TYPE_A, TYPE_PTR, TYPE_TXT, CLASS_IN, CLASS_CH = 1, 12, 16, 1, 3
# DNS-SD's service enumeration name (RFC 6763 section 9): asked over mDNS, a host lists its service types.
DNS_SD_SERVICES = "_services._dns-sd._udp.local"
# A name no zone holds and that RFC 6761 resolvers answer locally: asking it never sends a
# resolver out on the network on our behalf, yet an open resolver still answers it.
RECURSION_QUERY_NAME = "watchpost-recursion-check.invalid"


@dataclass(slots=True)
class DnsQuery:
    id: int
    name: str
    qtype: int
    qclass: int
    recursion_desired: bool

    def encode(self) -> bytes:
        flags = 0x0100 if self.recursion_desired else 0
        return struct.pack("!HHHHHH", self.id, flags, 1, 0, 0, 0) + encode_name(self.name) + struct.pack(
            "!HH", self.qtype, self.qclass)


@dataclass(slots=True)
class DnsAnswer:
    id: int
    authoritative: bool
    recursion_available: bool
    rcode: int
    answers: list[tuple[str, int, int, bytes]] = field(default_factory=list)  # (name, type, class, rdata)
    pointers: list[str] = field(default_factory=list)  # PTR targets, decompressed

    @property
    def rcode_name(self) -> str:
        return DNS_RCODES.get(self.rcode, str(self.rcode))

    def txt(self) -> list[str]:
        out = []
        for _, rtype, _, rdata in self.answers:
            if rtype == TYPE_TXT:
                out.append(b"".join(_txt_strings(rdata)).decode("utf-8", "replace"))
        return out


def dns_query(name: str, qtype: int, qclass: int = CLASS_IN, *, recursion_desired: bool = False) -> DnsQuery:
    return DnsQuery(int.from_bytes(os.urandom(2), "big"), name, qtype, qclass, recursion_desired)


def encode_name(name: str) -> bytes:
    labels = [label.encode("ascii") for label in name.strip(".").split(".") if label]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\0"


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    """A possibly compressed name at ``offset``; returns it and the offset after it."""
    labels, end, jumps = [], None, 0
    while True:
        length = data[offset]
        if length & 0xC0 == 0xC0:
            jumps += 1
            if jumps > 16:
                raise ValueError("compression loop")
            end = offset + 2 if end is None else end
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length == 0:
            return ".".join(labels), (offset + 1 if end is None else end)
        labels.append(data[offset + 1:offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length


def _txt_strings(rdata: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(rdata):
        out.append(rdata[i + 1:i + 1 + rdata[i]])
        i += 1 + rdata[i]
    return out


def parse_dns(query: DnsQuery, data: bytes) -> DnsAnswer | None:
    """The answer to ``query``: a response (QR set) with its id, echoing its question when it has one."""
    try:
        ident, flags, qdcount, ancount, _, _ = struct.unpack("!HHHHHH", data[:12])
        if ident != query.id or not flags & 0x8000 or (flags >> 11) & 0xF:
            return None
        offset = 12
        if qdcount:
            name, offset = _read_name(data, offset)
            qtype, qclass = struct.unpack("!HH", data[offset:offset + 4])
            offset += 4
            if (name.lower().rstrip("."), qtype, qclass) != (query.name.lower().strip("."), query.qtype, query.qclass):
                return None
        answers, pointers = [], []
        for _ in range(ancount):
            name, offset = _read_name(data, offset)
            rtype, rclass, _, length = struct.unpack("!HHIH", data[offset:offset + 10])
            offset += 10
            rdata = data[offset:offset + length]
            if len(rdata) != length:
                return None
            answers.append((name, rtype, rclass, rdata))
            if rtype == TYPE_PTR:
                pointers.append(_read_name(data, offset)[0])
            offset += length
    except (struct.error, IndexError, ValueError):
        return None
    return DnsAnswer(ident, bool(flags & 0x0400), bool(flags & 0x0080), flags & 0xF, answers, pointers)


# Products that answer ``version.bind``: each names itself, except BIND, whose answer is its version.
DNS_PRODUCTS: tuple[tuple[re.Pattern[str], str, tuple[str, str] | None], ...] = (
    (re.compile(r"^dnsmasq-(\d+(?:\.\d+)+)"), "dnsmasq", ("thekelleys", "dnsmasq")),
    (re.compile(r"^unbound (\d+(?:\.\d+)+)", re.I), "Unbound", ("nlnetlabs", "unbound")),
    (re.compile(r"^NSD (\d+(?:\.\d+)+)"), "NSD", ("nlnetlabs", "name_server_daemon")),
    (re.compile(r"^PowerDNS Authoritative Server (\d+(?:\.\d+)+)"), "PowerDNS Authoritative Server",
     ("powerdns", "authoritative_server")),
    (re.compile(r"^PowerDNS Recursor (\d+(?:\.\d+)+)"), "PowerDNS Recursor",
     ("powerdns", "recursor")),
    (re.compile(r"^Knot DNS (\d+(?:\.\d+)+)"), "Knot DNS", None),
    (re.compile(r"^(9\.\d+\.\d+)(?:-[\w.~+-]*)?$"), "ISC BIND", ("isc", "bind")),
)


def dns_product(version_text: str) -> tuple[str, str, str]:
    """(product, version, cpe) named by a ``version.bind`` answer; empty when it names none."""
    for pattern, product, cpe in DNS_PRODUCTS:
        if found := pattern.match(version_text.strip()):
            version = found.group(1)
            return product, version, cpe_name(*cpe, version) if cpe else ""
    return "", "", ""


# --- NTP (RFC 5905; mode 6 RFC 9327; mode 7 from ntpd's ntp_request.h) ------------------------

NTP_MODES = {3: "client", 4: "server", 6: "control", 7: "private"}
READVAR = 2
MON_GETLIST_1 = 42
IMPL_XNTPD = 3
MONITOR_ITEM_SIZE = 72  # struct info_monitor_1


def ntp_client_request() -> tuple[bytes, bytes]:
    """A mode 3 (client) request, version 4, and the transmit timestamp a server must echo as origin."""
    nonce = os.urandom(8)
    return b"\x23" + b"\0" * 39 + nonce, nonce


@dataclass(slots=True)
class NtpReply:
    version: int
    stratum: int
    reference_id: str


def parse_ntp_reply(nonce: bytes, data: bytes) -> NtpReply | None:
    """A mode 4 (server) answer that echoes our transmit timestamp as its origin timestamp."""
    if len(data) < 48 or data[0] & 0x7 != 4 or data[24:32] != nonce:
        return None
    version, stratum = (data[0] >> 3) & 0x7, data[1]
    refid = data[12:16]
    reference = refid.rstrip(b"\0").decode("ascii", "replace") if stratum <= 1 else ".".join(map(str, refid))
    return NtpReply(version, stratum, reference)


def ntp_readvar_request() -> tuple[bytes, int]:
    """A mode 6 READVAR of the system variables (association 0), and its sequence number."""
    sequence = int.from_bytes(os.urandom(2), "big")
    return struct.pack("!BBHHHHH", 0x16, READVAR, sequence, 0, 0, 0, 0), sequence


def parse_ntp_readvar(sequence: int, datagrams: list[bytes]) -> str | None:
    """The variables text of a complete READVAR response (fragments put back in offset order)."""
    fragments: dict[int, bytes] = {}
    last_seen = False
    for data in datagrams:
        if len(data) < 12:
            continue
        mode_byte, op, seq, _, _, offset, count = struct.unpack("!BBHHHHH", data[:12])
        if mode_byte & 0x7 != 6 or not op & 0x80 or op & 0x1F != READVAR or seq != sequence:
            continue
        if op & 0x40:  # error bit: the server refuses the request
            return None
        fragments[offset] = data[12:12 + count]
        last_seen = last_seen or not op & 0x20
    if not fragments or not last_seen:
        return None
    text, expected = b"", 0
    for offset in sorted(fragments):
        if offset != expected:
            return None  # a fragment is missing
        text += fragments[offset]
        expected = offset + len(fragments[offset])
    return text.decode("ascii", "replace")


def ntp_variables(text: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|[^,]*)', text)}


def ntp_product(variables: dict[str, str]) -> tuple[str, str, str]:
    """(product, version, cpe) from the ``version`` system variable, e.g. "ntpd 4.2.8p15@1.3728-o ..."."""
    found = re.match(r"ntpd (\d+\.\d+\.\d+)(p\d+)?", variables.get("version", ""))
    if not found:
        return "", "", ""
    base, patch = found.group(1), found.group(2) or ""
    return "ntpd", base + patch, f"cpe:2.3:a:ntp:ntp:{base}:{patch or '*'}:*:*:*:*:*:*"


def ntp_monlist_request() -> bytes:
    """A mode 7 MON_GETLIST_1 request (response bit clear, version 2), padded to an NTP packet's 48 bytes."""
    return struct.pack("!BBBBHH", 0x17, 0, IMPL_XNTPD, MON_GETLIST_1, 0, 0) + b"\0" * 40


def ntp_monlist_complete(datagrams: list[bytes]) -> bool:
    """The last response seen says no more follow (its "more" bit is clear)."""
    return bool(datagrams) and len(datagrams[-1]) >= 1 and not datagrams[-1][0] & 0x40


@dataclass(slots=True)
class MonlistReply:
    items: int
    item_size: int
    packets: int
    bytes: int
    clients: list[str]


def parse_ntp_monlist(datagrams: list[bytes]) -> MonlistReply | None:
    """The MON_GETLIST_1 response: mode 7 responses to our implementation and request, without error."""
    items, size, clients, packets, total = 0, 0, [], 0, 0
    for data in datagrams:
        if len(data) < 8:
            continue
        mode_byte, _, implementation, request, err_items, size_field = struct.unpack("!BBBBHH", data[:8])
        if mode_byte & 0x7 != 7 or not mode_byte & 0x80 or request != MON_GETLIST_1 or implementation not in (2, 3):
            continue
        if err_items >> 12:
            return None
        count, size = err_items & 0xFFF, size_field & 0xFFF
        packets, total, items = packets + 1, total + len(data), items + count
        for n in range(count):
            item = data[8 + n * size:8 + (n + 1) * size]
            if len(item) >= 20:
                clients.append(".".join(map(str, item[16:20])))
    return MonlistReply(items, size, packets, total, clients) if packets else None


# --- SNMP (RFC 1157, RFC 3416, RFC 3412/3414) ------------------------------------------------

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
V1, V2C, V3 = 0, 1, 3
GET_REQUEST, GET_RESPONSE, REPORT = 0xA0, 0xA2, 0xA8


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _length(len(value)) + value


def ber_int(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def ber_oid(oid: str) -> bytes:
    parts = [int(p) for p in oid.split(".")]
    out = bytearray([parts[0] * 40 + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        while part > 0x7F:
            part >>= 7
            chunk.append(0x80 | (part & 0x7F))
        out += bytes(reversed(chunk))
    return tlv(0x06, bytes(out))


def ber_read(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """(tag, value, offset after) of the TLV at ``offset``; raises ValueError on a truncated one."""
    tag, length = data[offset], data[offset + 1]
    offset += 2
    if length & 0x80:
        width = length & 0x7F
        if not 1 <= width <= 4:
            raise ValueError("bad BER length")
        length = int.from_bytes(data[offset:offset + width], "big")
        offset += width
    value = data[offset:offset + length]
    if len(value) != length:
        raise ValueError("truncated BER")
    return tag, value, offset + length


def ber_children(value: bytes) -> list[tuple[int, bytes]]:
    out, offset = [], 0
    while offset < len(value):
        tag, child, offset = ber_read(value, offset)
        out.append((tag, child))
    return out


def oid_text(value: bytes) -> str:
    parts, number = [value[0] // 40, value[0] % 40], 0
    for byte in value[1:]:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(number)
            number = 0
    return ".".join(map(str, parts))


def snmp_get_request(community: str, oid: str = SYS_DESCR, *, version: int = V2C) -> tuple[bytes, int]:
    request_id = int.from_bytes(os.urandom(3), "big")
    varbind = tlv(0x30, tlv(0x30, ber_oid(oid) + b"\x05\x00"))
    pdu = tlv(GET_REQUEST, ber_int(request_id) + ber_int(0) + ber_int(0) + varbind)
    return tlv(0x30, ber_int(version) + tlv(0x04, community.encode()) + pdu), request_id


@dataclass(slots=True)
class SnmpReply:
    version: int
    community: str
    error_status: int
    bindings: dict[str, Any]


def _ber_value(tag: int, value: bytes) -> Any:
    if tag == 0x04:
        return value.decode("utf-8", "replace")
    if tag in (0x02, 0x41, 0x42, 0x43, 0x46):
        return int.from_bytes(value, "big", signed=tag == 0x02)
    if tag == 0x06:
        return oid_text(value)
    return value.hex()


def parse_snmp_response(request_id: int, data: bytes) -> SnmpReply | None:
    """A v1/v2c GetResponse carrying our request id."""
    try:
        tag, message, _ = ber_read(data)
        if tag != 0x30:
            return None
        (vtag, version), (ctag, community), (ptag, pdu) = ber_children(message)[:3]
        if vtag != 0x02 or ctag != 0x04 or ptag != GET_RESPONSE:
            return None
        fields = ber_children(pdu)
        if int.from_bytes(fields[0][1], "big", signed=True) != request_id:
            return None
        bindings = {}
        for _, binding in ber_children(fields[3][1]):
            (_, name), (value_tag, value) = ber_children(binding)[:2]
            bindings[oid_text(name)] = _ber_value(value_tag, value)
        return SnmpReply(int.from_bytes(version, "big"), community.decode("utf-8", "replace"),
                         int.from_bytes(fields[1][1], "big"), bindings)
    except (ValueError, IndexError):
        return None


def snmp_v3_discovery_request() -> tuple[bytes, int]:
    """An SNMPv3 engine-discovery GetRequest (no user, reportable): every v3 agent answers it with a
    Report, whatever its communities and users, without any credential being tried."""
    message_id = int.from_bytes(os.urandom(3), "big")
    header = tlv(0x30, ber_int(message_id) + ber_int(65507) + tlv(0x04, b"\x04") + ber_int(3))
    usm = tlv(0x30, tlv(0x04, b"") + ber_int(0) + ber_int(0) + tlv(0x04, b"") + tlv(0x04, b"") + tlv(0x04, b""))
    pdu = tlv(GET_REQUEST, ber_int(message_id & 0x7FFF) + ber_int(0) + ber_int(0) + tlv(0x30, b""))
    scoped = tlv(0x30, tlv(0x04, b"") + tlv(0x04, b"") + pdu)
    return tlv(0x30, ber_int(V3) + header + tlv(0x04, usm) + scoped), message_id


# Enterprise numbers (IANA) of SNMP engines whose engine ID names the agent's maker.
SNMP_ENTERPRISES = {8072: "Net-SNMP", 9: "Cisco", 311: "Microsoft", 2636: "Juniper", 11: "HP", 4526: "Netgear"}


def parse_snmp_v3_report(message_id: int, data: bytes) -> dict[str, Any] | None:
    """The agent's engine id, boots and time from the Report answering our discovery request."""
    try:
        tag, message, _ = ber_read(data)
        children = ber_children(message)
        if tag != 0x30 or len(children) < 4 or int.from_bytes(children[0][1], "big") != V3:
            return None
        header = ber_children(children[1][1])
        if int.from_bytes(header[0][1], "big") != message_id:
            return None
        usm = ber_children(ber_read(children[2][1])[1])
        engine_id, boots, engine_time = usm[0][1], int.from_bytes(usm[1][1], "big"), int.from_bytes(usm[2][1], "big")
        scoped = ber_children(children[3][1])
        if scoped[2][0] != REPORT:
            return None
    except (ValueError, IndexError):
        return None
    enterprise = int.from_bytes(engine_id[:4], "big") & 0x7FFFFFFF if len(engine_id) >= 4 else None
    return {"engine_id": engine_id.hex(), "engine_boots": boots, "engine_time": engine_time,
            "enterprise": enterprise, "maker": SNMP_ENTERPRISES.get(enterprise, "") if enterprise is not None else ""}


# --- memcached over UDP (protocol.txt, "UDP protocol") ---------------------------------------


def memcached_version_request() -> tuple[bytes, int]:
    """``version`` behind memcached's 8-byte UDP frame header (request id, sequence 0, 1 datagram)."""
    request_id = int.from_bytes(os.urandom(2), "big")
    return struct.pack("!HHHH", request_id, 0, 1, 0) + b"version\r\n", request_id


def parse_memcached_version(request_id: int, data: bytes) -> str | None:
    if len(data) < 8 or struct.unpack("!H", data[:2])[0] != request_id:
        return None
    found = re.match(rb"VERSION (\S+)\r\n", data[8:])
    return found.group(1).decode("ascii", "replace") if found else None


# --- SSDP (UPnP Device Architecture 2.0, section 1.3) ---------------------------------------

# The HOST header is the protocol's fixed text (the multicast group); the request goes to the target only.
SSDP_SEARCH = (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n"
               b"ST: upnp:rootdevice\r\n\r\n")


def parse_ssdp(data: bytes) -> dict[str, str] | None:
    """The headers of a search response (``HTTP/1.1 200 OK`` with ST and USN), lower-cased names."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    if not re.match(r"HTTP/1\.[01] 200 ", lines[0] + " "):
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers if "st" in headers and "usn" in headers else None


UPNP_PRODUCTS = (
    (re.compile(r"MiniUPnPd/(\d+(?:\.\d+)+)"), "MiniUPnPd", ("miniupnp_project", "miniupnpd")),
    (re.compile(r"libupnp/(\d+(?:\.\d+)+)", re.I), "libupnp", ("libupnp_project", "libupnp")),
)


def upnp_product(server: str) -> tuple[str, str, str]:
    for pattern, product, cpe in UPNP_PRODUCTS:
        if found := pattern.search(server):
            return product, found.group(1), cpe_name(*cpe, found.group(1))
    return "", "", ""


# --- RMCP / ASF presence ping (DMTF DSP0136), the port of IPMI-over-LAN ----------------------

ASF_IANA = 4542


def rmcp_presence_ping() -> tuple[bytes, int]:
    tag = os.urandom(1)[0] or 1
    return struct.pack("!BBBBIBBBB", 0x06, 0x00, 0xFF, 0x06, ASF_IANA, 0x80, tag, 0x00, 0x00), tag


def parse_rmcp_pong(tag: int, data: bytes) -> dict[str, Any] | None:
    """A Presence Pong with our tag: the enterprise and whether the BMC speaks IPMI."""
    if len(data) < 28:
        return None
    version, _, _, klass, iana, kind, answer_tag, _, length = struct.unpack("!BBBBIBBBB", data[:12])
    if version != 0x06 or klass & 0x1F != 0x06 or iana != ASF_IANA or kind != 0x40 or answer_tag != tag or length < 16:
        return None
    enterprise, _, entities, _ = struct.unpack("!IIBB", data[12:22])
    return {"enterprise": enterprise, "ipmi_supported": bool(entities & 0x80), "asf_version": entities & 0x0F}


# --- CoAP (RFC 7252), resource discovery (RFC 6690) ------------------------------------------


def coap_discovery_request() -> tuple[bytes, int, bytes]:
    """A confirmable GET /.well-known/core; returns it, its message id and its token."""
    message_id, token = int.from_bytes(os.urandom(2), "big"), os.urandom(2)
    options = b"\xbb.well-known" + b"\x04core"  # Uri-Path (11) twice
    return struct.pack("!BBH", 0x42, 0x01, message_id) + token + options, message_id, token


def parse_coap(message_id: int, token: bytes, data: bytes) -> tuple[str, str] | None:
    """(response code "2.05", payload) of the answer to our request: our message id on an ACK, our token."""
    if len(data) < 4:
        return None
    first, code, answer_id = struct.unpack("!BBH", data[:4])
    version, kind, token_length = first >> 6, (first >> 4) & 0x3, first & 0xF
    if version != 1 or code < 0x40 or data[4:4 + token_length] != token or (kind == 2 and answer_id != message_id):
        return None
    offset, delta_sum = 4 + token_length, 0
    while offset < len(data) and data[offset] != 0xFF:
        delta, length = data[offset] >> 4, data[offset] & 0xF
        offset += 1
        for nibble in ("delta", "length"):
            value = delta if nibble == "delta" else length
            if value == 13:
                value, offset = data[offset] + 13, offset + 1
            elif value == 14:
                value, offset = int.from_bytes(data[offset:offset + 2], "big") + 269, offset + 2
            elif value == 15:
                return None
            delta, length = (value, length) if nibble == "delta" else (delta, value)
        delta_sum += delta
        offset += length
    payload = data[offset + 1:] if offset < len(data) else b""
    return f"{code >> 5}.{code & 0x1F:02d}", payload.decode("utf-8", "replace")


# --- NetBIOS name service (RFC 1002), node status --------------------------------------------


def netbios_status_request() -> tuple[bytes, int]:
    """A node status (NBSTAT) query for the wildcard name "*": every NetBIOS host lists its names."""
    ident = int.from_bytes(os.urandom(2), "big")
    wildcard = b"*" + b"\0" * 15
    encoded = bytes(b for byte in wildcard for b in (0x41 + (byte >> 4), 0x41 + (byte & 0xF)))
    return struct.pack("!HHHHHH", ident, 0, 1, 0, 0, 0) + b"\x20" + encoded + b"\0" + struct.pack("!HH", 0x21, 1), ident


def parse_netbios_status(ident: int, data: bytes) -> dict[str, Any] | None:
    """The names (name, suffix, group) and MAC of a node status response to our query."""
    try:
        answer_id, flags, _, ancount = struct.unpack("!HHHH", data[:8])
        if answer_id != ident or not flags & 0x8000 or ancount < 1:
            return None
        offset = 12 + 34  # the echoed wildcard name: length byte, 32 encoded bytes, terminator
        rtype, _, _, _ = struct.unpack("!HHIH", data[offset:offset + 10])
        if rtype != 0x21:
            return None
        offset += 10
        count = data[offset]
        names = []
        for n in range(count):
            entry = data[offset + 1 + n * 18:offset + 1 + (n + 1) * 18]
            if len(entry) != 18:
                return None
            flags = struct.unpack("!H", entry[16:18])[0]
            names.append((entry[:15].decode("latin-1").rstrip(), entry[15], bool(flags & 0x8000)))
        mac = data[offset + 1 + count * 18:offset + 7 + count * 18]
    except (struct.error, IndexError):
        return None
    return {"names": names, "mac": ":".join(f"{b:02x}" for b in mac) if len(mac) == 6 else ""}


# --- OpenVPN (its reliability layer's first packet, as the client sends it) ----------------------

HARD_RESET_CLIENT_V2, HARD_RESET_SERVER_V2 = 7, 8


def openvpn_reset_request() -> tuple[bytes, bytes]:
    """P_CONTROL_HARD_RESET_CLIENT_V2 without tls-auth: key id 0, our session id, no acks, packet id 0."""
    session = os.urandom(8)
    return bytes([HARD_RESET_CLIENT_V2 << 3]) + session + b"\0" + b"\0\0\0\0", session


def parse_openvpn_reset(session: bytes, data: bytes) -> dict[str, Any] | None:
    """The server's HARD_RESET_SERVER_V2 acknowledging our packet and naming our session."""
    if len(data) < 26 or data[0] >> 3 != HARD_RESET_SERVER_V2:
        return None
    acks = data[9]
    if acks < 1 or data[10 + 4 * acks:18 + 4 * acks] != session:
        return None
    return {"server_session": data[1:9].hex()}


# --- WS-Discovery (OASIS, 2005/04 as ONVIF devices speak it) ---------------------------------

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"


def wsd_probe() -> tuple[bytes, str]:
    """A Probe for any type, and its MessageID, which a ProbeMatches names in RelatesTo."""
    message_id = "urn:uuid:" + str(uuid.uuid4())
    return (f'<?xml version="1.0" encoding="UTF-8"?><e:Envelope xmlns:e="{SOAP}" xmlns:w="{WSA}" xmlns:d="{WSD}">'
            f"<e:Header><w:MessageID>{message_id}</w:MessageID>"
            '<w:To e:mustUnderstand="true">urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>'
            f'<w:Action e:mustUnderstand="true">{WSD}/Probe</w:Action></e:Header>'
            "<e:Body><d:Probe/></e:Body></e:Envelope>").encode(), message_id


def parse_wsd_matches(message_id: str, data: bytes) -> dict[str, Any] | None:
    """Types, scopes and service addresses of a ProbeMatches that relates to our Probe."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return None
    relates = root.find(f"{{{SOAP}}}Header/{{{WSA}}}RelatesTo")
    match = root.find(f"{{{SOAP}}}Body/{{{WSD}}}ProbeMatches/{{{WSD}}}ProbeMatch")
    if root.tag != f"{{{SOAP}}}Envelope" or relates is None or (relates.text or "").strip() != message_id or match is None:
        return None

    def words(tag: str) -> list[str]:
        found = match.find(f"{{{WSD}}}{tag}")
        return (found.text or "").split() if found is not None else []

    scopes = words("Scopes")
    onvif = {}
    for scope in scopes:
        if scope.startswith("onvif://www.onvif.org/"):
            key, _, value = scope.removeprefix("onvif://www.onvif.org/").partition("/")
            onvif.setdefault(key, unquote(value))
    return {"types": words("Types"), "scopes": scopes, "xaddrs": words("XAddrs"), "onvif": onvif}
