"""TLS inspector: protocol versions, certificate, weak cipher suites.

Per port it makes a handful of short connections to ``Target.address`` only:

- one handshake per protocol version (TLS 1.0 to 1.3), each pinned with
  ``minimum_version == maximum_version`` at security level 0, so legacy versions are
  testable although Debian's OpenSSL refuses them by default;
- one verifying handshake, for the chain against the trust store;
- hand-built ClientHellos offering only one family of weak suites (NULL, EXPORT,
  anonymous, RC4, DES, 3DES). The local OpenSSL cannot offer most of those any more;
  a raw ClientHello can, and the server's ServerHello says which one it picked.

When the local OpenSSL cannot even *offer* a legacy version (checked in memory, once),
the version probe falls back to a raw ClientHello too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ipaddress
import os
import ssl
import struct
import warnings
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from scans.findings.candidates import Coverage, FindingCandidate, ScanResult, ServiceObservation, certainty
from scans.scanners import connections
from scans.scanners.base import ScanContext, Scanner, ScannerError, Target, is_ip_literal, register
from scans.scanners.port_sets import RESERVED_PORTS

# Ports where TLS is the norm: used when discovery has not said which ports speak TLS.
TLS_PORTS = frozenset({
    443, 465, 563, 636, 853, 989, 990, 992, 993, 994, 995, 1443, 2376, 2484, 3269, 4443, 5061, 5986,
    6443, 6679, 6697, 8443, 8883, 9443, 10250, 10443, 18443,
})
DEFAULT_PORTS = (443,)

VERSIONS = ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_SSL_VERSIONS = {
    "TLSv1.0": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_WIRE_VERSIONS = {"TLSv1.0": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_WIRE_NAMES = {v: k for k, v in _WIRE_VERSIONS.items()} | {0x0300: "SSLv3"}

# Cipher suites by IANA code and OpenSSL name; the family is read from the name.
_WEAK_SUITES = {
    0x0001: "NULL-MD5", 0x0002: "NULL-SHA", 0x003B: "NULL-SHA256", 0xC006: "ECDHE-ECDSA-NULL-SHA",
    0xC010: "ECDHE-RSA-NULL-SHA", 0xC015: "AECDH-NULL-SHA",
    0x0003: "EXP-RC4-MD5", 0x0006: "EXP-RC2-CBC-MD5", 0x0008: "EXP-DES-CBC-SHA", 0x000B: "EXP-DH-DSS-DES-CBC-SHA",
    0x000E: "EXP-DH-RSA-DES-CBC-SHA", 0x0011: "EXP-EDH-DSS-DES-CBC-SHA", 0x0014: "EXP-EDH-RSA-DES-CBC-SHA",
    0x0017: "EXP-ADH-RC4-MD5", 0x0019: "EXP-ADH-DES-CBC-SHA", 0x0062: "EXP1024-DES-CBC-SHA",
    0x0064: "EXP1024-RC4-SHA",
    0x0034: "ADH-AES128-SHA", 0x003A: "ADH-AES256-SHA", 0x006C: "ADH-AES128-SHA256", 0x006D: "ADH-AES256-SHA256",
    0x00A6: "ADH-AES128-GCM-SHA256", 0x00A7: "ADH-AES256-GCM-SHA384", 0x0046: "ADH-CAMELLIA128-SHA",
    0x0089: "ADH-CAMELLIA256-SHA", 0xC018: "AECDH-AES128-SHA", 0xC019: "AECDH-AES256-SHA",
    0x0018: "ADH-RC4-MD5", 0x001A: "ADH-DES-CBC-SHA", 0x001B: "ADH-DES-CBC3-SHA", 0xC016: "AECDH-RC4-SHA",
    0xC017: "AECDH-DES-CBC3-SHA",
    0x0004: "RC4-MD5", 0x0005: "RC4-SHA", 0x0066: "DHE-DSS-RC4-SHA", 0xC007: "ECDHE-ECDSA-RC4-SHA",
    0xC011: "ECDHE-RSA-RC4-SHA",
    0x0009: "DES-CBC-SHA", 0x000C: "DH-DSS-DES-CBC-SHA", 0x000F: "DH-RSA-DES-CBC-SHA", 0x0012: "EDH-DSS-DES-CBC-SHA",
    0x0015: "EDH-RSA-DES-CBC-SHA",
    0x000A: "DES-CBC3-SHA", 0x000D: "DH-DSS-DES-CBC3-SHA", 0x0010: "DH-RSA-DES-CBC3-SHA",
    0x0013: "EDH-DSS-DES-CBC3-SHA", 0x0016: "EDH-RSA-DES-CBC3-SHA", 0xC008: "ECDHE-ECDSA-DES-CBC3-SHA",
    0xC012: "ECDHE-RSA-DES-CBC3-SHA",
}
# Ordinary suites a raw version probe offers so any server has something to pick.
_COMMON_SUITES = {
    0xC02F: "ECDHE-RSA-AES128-GCM-SHA256", 0xC030: "ECDHE-RSA-AES256-GCM-SHA384",
    0xC02B: "ECDHE-ECDSA-AES128-GCM-SHA256", 0xC02C: "ECDHE-ECDSA-AES256-GCM-SHA384",
    0x009E: "DHE-RSA-AES128-GCM-SHA256", 0x009F: "DHE-RSA-AES256-GCM-SHA384",
    0x009C: "AES128-GCM-SHA256", 0x009D: "AES256-GCM-SHA384",
    0xC013: "ECDHE-RSA-AES128-SHA", 0xC014: "ECDHE-RSA-AES256-SHA", 0xC009: "ECDHE-ECDSA-AES128-SHA",
    0xC00A: "ECDHE-ECDSA-AES256-SHA", 0x0033: "DHE-RSA-AES128-SHA", 0x0039: "DHE-RSA-AES256-SHA",
    0x002F: "AES128-SHA", 0x0035: "AES256-SHA", 0x003C: "AES128-SHA256", 0x003D: "AES256-SHA256",
    0xC027: "ECDHE-RSA-AES128-SHA256", 0xC028: "ECDHE-RSA-AES256-SHA384",
    0xC023: "ECDHE-ECDSA-AES128-SHA256", 0xC024: "ECDHE-ECDSA-AES256-SHA384",
    0x000A: "DES-CBC3-SHA", 0x0005: "RC4-SHA",
}


def _family(name: str) -> str:
    # One family per suite, by its worst property, so a suite is never reported twice.
    if "NULL" in name:
        return "null"
    if name.startswith("EXP"):
        return "export"
    if name.startswith(("ADH", "AECDH")):
        return "anon"
    if "RC4" in name:
        return "rc4"
    if "DES-CBC3" in name:
        return "3des"
    return "des"


@dataclass(frozen=True, slots=True)
class WeakFamily:
    severity: str
    title: str
    why: str


WEAK_FAMILIES = {
    "null": WeakFamily("high", "NULL cipher suites accepted (no encryption)", "traffic is sent in clear text"),
    "export": WeakFamily("high", "EXPORT cipher suites accepted", "40/56-bit keys break in minutes (FREAK, Logjam)"),
    "anon": WeakFamily("high", "Anonymous cipher suites accepted", "no server authentication, so man-in-the-middle"),
    "rc4": WeakFamily("medium", "RC4 cipher suites accepted", "RC4 biases allow plaintext recovery (RFC 7465)"),
    "des": WeakFamily("medium", "Single-DES cipher suites accepted", "56-bit DES keys can be brute-forced"),
    "3des": WeakFamily("low", "3DES cipher suites accepted", "64-bit blocks allow the SWEET32 birthday attack"),
}
SUITES_BY_FAMILY: dict[str, tuple[int, ...]] = {
    fam: tuple(code for code, name in _WEAK_SUITES.items() if _family(name) == fam) for fam in WEAK_FAMILIES
}

PROTOCOL_SEVERITY = {"TLSv1.0": "medium", "TLSv1.1": "low"}
PROTOCOL_RULES = {"TLSv1.0": "tls-protocol-tls1.0", "TLSv1.1": "tls-protocol-tls1.1"}
REMEDIATE_PROTOCOLS = "Disable TLS 1.0 and 1.1 (RFC 8996); offer TLS 1.2 and TLS 1.3 only."
REMEDIATE_CIPHERS = (
    "Offer only AEAD suites with forward secrecy (ECDHE with AES-GCM or ChaCha20-Poly1305); "
    "for example Mozilla's 'intermediate' configuration."
)


@functools.cache
def client_can_offer(version: str) -> bool:
    """Whether this process's OpenSSL will send a ClientHello for ``version`` (no network)."""
    context = _client_context(version)
    if context is None:
        return False
    tls = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        return True
    except ssl.SSLError:
        return False
    return False


@functools.lru_cache(maxsize=64)
def _client_context(version: str, *, verify: bool = False, ca_file: str = "") -> ssl.SSLContext | None:
    # Cached: loading the system trust store costs tens of milliseconds per context, and
    # contexts are never modified once built.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # hostname is judged separately and reported, not enforced
    if verify:
        context.load_default_certs()
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
    else:
        context.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            # Authenticated suites only: the probes must bring back the certificate.
            context.set_ciphers("ALL:!aNULL:!eNULL:@SECLEVEL=0")
            context.minimum_version = context.maximum_version = _SSL_VERSIONS[version]
    except (ValueError, ssl.SSLError):
        return None
    return context


def _classify(exc: BaseException) -> tuple[str, str]:
    """Map a handshake failure to an attempt outcome and a short detail."""
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or exc.__class__.__name__
        if reason in {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"}:
            return "not-tls", reason
        if reason == "UNEXPECTED_EOF_WHILE_READING" or isinstance(exc, ssl.SSLEOFError):
            return "closed", reason
        return "rejected", reason
    if isinstance(exc, ConnectionRefusedError):
        return "refused", str(exc)
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "reset", str(exc)
    if isinstance(exc, (asyncio.IncompleteReadError, EOFError)):
        return "closed", "connection closed during handshake"
    if isinstance(exc, TimeoutError):
        return "timeout", "no answer in time"
    return "error", f"{exc.__class__.__name__}: {exc}"


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1)
    except (OSError, ssl.SSLError, TimeoutError):
        pass


# --- raw ClientHello ---------------------------------------------------------------


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def build_client_hello(version: int, suites: tuple[int, ...], server_name: str = "") -> bytes:
    """A TLS record holding a ClientHello (RFC 5246 layout) that offers exactly ``suites``."""
    exts = b""
    if server_name:
        name = server_name.encode("idna")
        entry = b"\x00" + struct.pack("!H", len(name)) + name
        exts += _ext(0x0000, struct.pack("!H", len(entry)) + entry)
    groups = (0x001D, 0x0017, 0x0018, 0x0019)
    exts += _ext(0x000A, struct.pack("!H", 2 * len(groups)) + struct.pack(f"!{len(groups)}H", *groups))
    exts += _ext(0x000B, b"\x01\x00")
    sigalgs = (0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0201, 0x0203)
    exts += _ext(0x000D, struct.pack("!H", 2 * len(sigalgs)) + struct.pack(f"!{len(sigalgs)}H", *sigalgs))
    exts += _ext(0xFF01, b"\x00")
    body = (
        struct.pack("!H", version) + os.urandom(32) + b"\x00"
        + struct.pack("!H", 2 * len(suites)) + struct.pack(f"!{len(suites)}H", *suites)
        + b"\x01\x00" + struct.pack("!H", len(exts)) + exts
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    # Record version 1.0 for the widest compatibility, as browsers do.
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def parse_server_reply(data: bytes) -> tuple[str, int | None, int | None]:
    """Read the first record: ("hello", version, suite) | ("alert", None, description) | ("other", ...)."""
    if len(data) < 5:
        return "other", None, None
    kind = data[0]
    length = struct.unpack("!H", data[3:5])[0]
    payload = data[5:5 + length]
    if kind == 0x15 and len(payload) >= 2:
        return "alert", None, payload[1]
    if kind != 0x16 or len(payload) < 4 or payload[0] != 0x02:
        return "other", None, None
    hello = payload[4:]
    if len(hello) < 35:
        return "other", None, None
    version = struct.unpack("!H", hello[0:2])[0]
    sid_len = hello[34]
    offset = 35 + sid_len
    if len(hello) < offset + 2:
        return "other", None, None
    suite = struct.unpack("!H", hello[offset:offset + 2])[0]
    return "hello", version, suite


async def raw_hello(address: str, port: int, version: int, suites: tuple[int, ...], *,
                    server_name: str, context: ScanContext) -> tuple[str, int | None, int | None]:
    reader, writer = await connections.open_connection(address, port, timeout=context.connect_timeout)
    try:
        writer.write(build_client_hello(version, suites, server_name))
        await writer.drain()
        head = await asyncio.wait_for(reader.readexactly(5), context.read_timeout)
        length = struct.unpack("!H", head[3:5])[0]
        # A ServerHello fits in the first record; reading more would wait on the certificate.
        body = await asyncio.wait_for(reader.readexactly(min(length, 16384)), context.read_timeout)
        return parse_server_reply(head + body)
    finally:
        await _close(writer)


# --- certificate ---------------------------------------------------------------------


def _names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return san.get_values_for_type(x509.DNSName), [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def _dns_match(pattern: str, hostname: str) -> bool:
    # RFC 6125: a wildcard only as the whole left-most label, never matching a dot.
    pattern, hostname = pattern.lower().rstrip("."), hostname.lower().rstrip(".")
    if pattern == hostname:
        return True
    if not pattern.startswith("*."):
        return False
    head, _, rest = hostname.partition(".")
    return bool(head) and rest == pattern[2:] and rest.count(".") >= 1


def hostname_matches(cert: x509.Certificate, hostname: str) -> bool:
    """True when ``hostname`` (a DNS name or an IP literal) is one the certificate is valid for."""
    dns, ips = _names(cert)
    try:
        ip = ipaddress.ip_address(hostname)
    except ValueError:
        ip = None
    if ip is not None:
        return str(ip) in {str(ipaddress.ip_address(a)) for a in ips}
    if dns:
        return any(_dns_match(name, hostname) for name in dns)
    # Only certificates without any DNS SAN fall back to the common name.
    common = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return any(_dns_match(str(name), hostname) for name in common)


def _key_info(cert: x509.Certificate) -> tuple[str, int]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC ({key.curve.name})", key.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return key.__class__.__name__, 0


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except InvalidSignature:
        return False  # same name as its issuer, but signed by another key
    except Exception:  # noqa: BLE001 - e.g. a SHA-1 signature cryptography will not check: go by the names
        return True
    return True


def describe_certificate(der: bytes, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The facts the checks need, JSON-ready, from a DER certificate."""
    cert = x509.load_der_x509_certificate(der)
    now = now or dt.datetime.now(dt.timezone.utc)
    dns, ips = _names(cert)
    key_type, key_size = _key_info(cert)
    hash_algorithm = cert.signature_hash_algorithm
    oid = cert.signature_algorithm_oid
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "san_dns": dns,
        "san_ip": ips,
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "days_to_expiry": (cert.not_valid_after_utc - now).days,
        "expired": cert.not_valid_after_utc < now,
        "not_yet_valid": cert.not_valid_before_utc > now,
        "self_signed": _is_self_signed(cert),
        "key_type": key_type,
        "key_size": key_size,
        "signature_algorithm": getattr(oid, "_name", oid.dotted_string),
        "signature_hash": hash_algorithm.name if hash_algorithm else "",
    }


def weak_key_reason(key_type: str, key_size: int) -> str:
    if key_type in {"RSA", "DSA"} and key_size < 2048:
        return f"{key_type} key of {key_size} bits (< 2048)"
    if key_type.startswith("EC") and key_size < 224:
        return f"EC key of {key_size} bits (< 224)"
    return ""


# --- the scanner ---------------------------------------------------------------------


@register
class TlsScanner(Scanner):
    name = "tls"
    version = "1.0"
    description = "TLS protocol versions, certificate and weak cipher suites"
    options = {
        "ports": (list, None),  # explicit ports; else TLS services from discovery, else typical TLS ports
        "check_ciphers": (bool, True),
        "expiry_warning_days": (int, 30),
        "ca_file": (str, ""),  # extra trust anchor (a private CA) for the chain check
        # "auto": OpenSSL handshakes, hand-built ClientHellos only for versions OpenSSL cannot offer;
        # "raw": hand-built ClientHellos for TLS 1.0-1.2 (no certificate from those probes).
        "version_probe": (str, "auto"),
    }
    default_budget = 60.0

    def ports_for(self, target: Target, options: dict[str, Any]) -> list[int]:
        # Reserved ports (the sandbox's) are never probed, whoever asks.
        return [p for p in self._ports_for(target, options) if p not in RESERVED_PORTS]

    def _ports_for(self, target: Target, options: dict[str, Any]) -> list[int]:
        if options.get("version_probe") not in {"auto", "raw"}:
            raise ScannerError("tls: version_probe must be 'auto' or 'raw'")
        if options.get("ports"):
            ports = options["ports"]
            if not all(isinstance(p, int) and 0 < p < 65536 for p in ports):
                raise ScannerError("tls: ports must be integers between 1 and 65535")
            return sorted(set(ports))
        from_services = sorted({s.port for s in target.services if s.tls})
        if from_services:
            return from_services
        typical = sorted(p for p in target.ports if p in TLS_PORTS)
        if typical:
            return typical
        return [] if target.ports else list(DEFAULT_PORTS)

    async def scan(self, target: Target, options: dict[str, Any], context: ScanContext) -> ScanResult:
        result = self.new_result(target, options)
        ports = self.ports_for(target, options)
        result.data = {"ports": {}, "local_openssl": ssl.OPENSSL_VERSION}
        limit = asyncio.Semaphore(max(1, min(context.concurrency, 8)))

        async def one(port: int) -> None:
            async with limit:
                await self._scan_port(target, port, options, context, result)

        await asyncio.gather(*(one(port) for port in ports))
        result.open_ports.sort()
        result.findings.sort(key=lambda f: (f.port or 0, f.rule_id))
        return result

    async def _scan_port(self, target: Target, port: int, options: dict, context: ScanContext,
                         result: ScanResult) -> None:
        sni = target.hostname if target.hostname and not is_ip_literal(target.hostname) else ""
        raw = options.get("version_probe") == "raw"
        probes = await asyncio.gather(*(self._probe_version(target, port, v, sni, context, raw=raw) for v in VERSIONS))
        for probe in probes:
            result.attempts.append({"port": port, **{k: v for k, v in probe.items() if k != "der"}})
        accepted = [p for p in probes if p["outcome"] == "ok"]
        outcomes = {p["outcome"] for p in probes}
        port_data: dict[str, Any] = {"protocols": {p["probe"]: p["outcome"] == "ok" for p in probes}}
        result.data["ports"][str(port)] = port_data

        if not accepted:
            if outcomes <= {"refused", "not-tls", "rejected", "closed", "reset"}:
                # Definitive answers: this port does not speak TLS (now), so it is covered.
                result.coverage.append(Coverage(host=target.address, ports=(port,)))
            port_data["tls"] = False
            return

        port_data["tls"] = True
        result.open_ports.append(port)
        best = accepted[-1]
        port_data["negotiated"] = {p["probe"]: p["cipher"] for p in accepted}
        findings: list[FindingCandidate] = []
        location = f"{target.host_label}:{port}"

        def finding(rule_id: str, title: str, severity: str, *, cwe: int, remediation: str,
                    description: str = "", evidence: dict | None = None) -> None:
            # Every TLS finding is what our own handshakes with the server showed: proven.
            findings.append(FindingCandidate(
                source=self.name, rule_id=rule_id, title=title, host=target.address, severity=severity,
                cwe=cwe, port=port, location=location, description=description, remediation=remediation,
                evidence={**(evidence or {}), **certainty(1.0, "proven", f"seen in a TLS handshake with port {port}")},
            ))

        for probe in accepted:
            version = probe["probe"]
            if version in PROTOCOL_SEVERITY:
                finding(
                    PROTOCOL_RULES[version],
                    f"{version.replace('v', ' ')} accepted", PROTOCOL_SEVERITY[version], cwe=327,
                    remediation=REMEDIATE_PROTOCOLS,
                    description=f"The server completes a {version} handshake; this version is deprecated (RFC 8996).",
                    evidence={"version": version, "cipher": probe["cipher"], "method": probe["method"]},
                )
        if not any(p["probe"] in {"TLSv1.2", "TLSv1.3"} for p in accepted):
            finding("tls-protocol-no-modern", "Neither TLS 1.2 nor TLS 1.3 is offered", "medium", cwe=327,
                    remediation=REMEDIATE_PROTOCOLS, evidence={"accepted": [p["probe"] for p in accepted]})
        legacy_cbc = {p["probe"]: p["cipher"] for p in accepted
                      if p["probe"] in PROTOCOL_SEVERITY and p["cipher"] and _is_cbc(p["cipher"])}
        if legacy_cbc:
            finding("tls-weak-cipher-cbc-legacy", "CBC cipher suites negotiated on TLS 1.0/1.1", "low", cwe=327,
                    remediation=REMEDIATE_PROTOCOLS + " " + REMEDIATE_CIPHERS,
                    description="CBC suites with SHA-1 MACs on TLS 1.0/1.1 are exposed to BEAST and Lucky13.",
                    evidence={"negotiated": legacy_cbc})

        der = next((p.get("der") for p in reversed(accepted) if p.get("der")), None)
        if der:
            cert = describe_certificate(der)
            port_data["certificate"] = cert
            self._certificate_findings(cert, der, target, options, finding)
            trust = await self._verify_chain(target, port, best["probe"], sni, options, context)
            port_data["trust"] = trust
            result.attempts.append({"port": port, "probe": "chain", "outcome": trust["outcome"],
                                    "detail": trust.get("detail", "")})
            if trust["outcome"] == "untrusted" and not cert["self_signed"] and not _is_date_error(trust["detail"]):
                finding("tls-cert-untrusted", "Certificate chain is not trusted", "medium", cwe=295,
                        remediation="Serve a certificate issued by a trusted CA, with the full intermediate chain.",
                        evidence={"verify_error": trust["detail"], "issuer": cert["issuer"]})

        cipher_check_complete = True
        if options.get("check_ciphers", True):
            wire = _WIRE_VERSIONS[max((p["probe"] for p in accepted if p["probe"] != "TLSv1.3"),
                                      default="TLSv1.2", key=VERSIONS.index)]
            weak, cipher_check_complete = await self._weak_suites(target, port, wire, sni, context, result)
            port_data["weak_ciphers"] = weak
            for family, names in weak.items():
                info = WEAK_FAMILIES[family]
                finding(f"tls-weak-cipher-{family}", info.title, info.severity, cwe=327,
                        remediation=REMEDIATE_CIPHERS, description=f"Accepted: {', '.join(names)}; {info.why}.",
                        evidence={"suites": names})

        result.findings.extend(findings)
        result.services.append(ServiceObservation(
            host=target.address, port=port, service="tls", tls=True, confidence=1.0,
            evidence={"protocols": [p["probe"] for p in accepted], "cipher": best["cipher"]},
        ))
        if cipher_check_complete and all(p["outcome"] != "timeout" for p in probes):
            result.coverage.append(Coverage(host=target.address, ports=(port,)))

    def _certificate_findings(self, cert: dict, der: bytes, target: Target, options: dict, finding) -> None:
        dates = {"not_before": cert["not_before"], "not_after": cert["not_after"]}
        renew = "Renew the certificate and automate renewal (ACME) with monitoring of expiry."
        if cert["expired"]:
            finding("tls-cert-expired", "Certificate has expired", "high", cwe=298, remediation=renew,
                    description=f"Expired {-cert['days_to_expiry']} day(s) ago.",
                    evidence={**dates, "days_to_expiry": cert["days_to_expiry"], "subject": cert["subject"]})
        elif cert["not_yet_valid"]:
            finding("tls-cert-not-yet-valid", "Certificate is not yet valid", "medium", cwe=298,
                    remediation="Check the issuing system's clock and serve a currently valid certificate.",
                    evidence={**dates, "subject": cert["subject"]})
        elif cert["days_to_expiry"] < options.get("expiry_warning_days", 30):
            finding("tls-cert-expiring-soon", f"Certificate expires in {cert['days_to_expiry']} day(s)", "low",
                    cwe=298, remediation=renew, evidence={**dates, "days_to_expiry": cert["days_to_expiry"]})
        if cert["self_signed"]:
            finding("tls-cert-self-signed", "Certificate is self-signed", "medium", cwe=295,
                    remediation="Serve a certificate issued by a trusted (public or internal) CA.",
                    evidence={"subject": cert["subject"], "issuer": cert["issuer"]})
        weak = weak_key_reason(cert["key_type"], cert["key_size"])
        if weak:
            finding("tls-weak-key", f"Weak certificate key: {weak}", "high", cwe=326,
                    remediation="Reissue with an RSA key of at least 2048 bits or an ECDSA P-256 key.",
                    evidence={"key_type": cert["key_type"], "key_size": cert["key_size"]})
        if cert["signature_hash"] in {"sha1", "md5", "md2"}:
            finding("tls-weak-signature", f"Certificate signed with {cert['signature_hash'].upper()}",
                    "high" if cert["signature_hash"] != "sha1" else "medium", cwe=327,
                    remediation="Reissue the certificate with a SHA-256 (or stronger) signature.",
                    evidence={"signature_algorithm": cert["signature_algorithm"]})
        if target.hostname:
            matches = hostname_matches(x509.load_der_x509_certificate(der), target.hostname)
            cert["hostname_checked"] = target.hostname
            cert["hostname_matches"] = matches
            if not matches:
                finding("tls-hostname-mismatch", f"Certificate does not match {target.hostname}", "medium", cwe=297,
                        remediation=f"Serve a certificate whose subjectAltName includes {target.hostname}.",
                        evidence={"hostname": target.hostname, "san_dns": cert["san_dns"],
                                  "san_ip": cert["san_ip"], "subject": cert["subject"]})

    async def _probe_version(self, target: Target, port: int, version: str, sni: str,
                             context: ScanContext, *, raw: bool = False) -> dict[str, Any]:
        attempt: dict[str, Any] = {"probe": version, "outcome": "", "detail": "", "cipher": "", "method": "openssl"}
        if (raw and version != "TLSv1.3") or not client_can_offer(version):
            attempt["method"] = "raw-hello"
            if version == "TLSv1.3":
                attempt.update(outcome="skipped", detail="local OpenSSL cannot offer TLS 1.3")
                return attempt
            try:
                kind, wire, value = await raw_hello(target.address, port, _WIRE_VERSIONS[version],
                                                    tuple(_COMMON_SUITES), server_name=sni, context=context)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                attempt["outcome"], attempt["detail"] = _classify(exc)
                return attempt
            if kind == "hello" and wire == _WIRE_VERSIONS[version]:
                attempt.update(outcome="ok", cipher=_COMMON_SUITES.get(value, f"0x{value:04X}"))
            elif kind == "hello":
                attempt.update(outcome="rejected", detail=f"server answered {_WIRE_NAMES.get(wire, hex(wire))}")
            elif kind == "alert":
                attempt.update(outcome="rejected", detail=f"alert {value}")
            else:
                attempt.update(outcome="not-tls", detail="no ServerHello")
            return attempt

        client = _client_context(version)
        try:
            reader, writer = await connections.open_connection(
                target.address, port, ssl=client, server_hostname=sni or None,
                ssl_handshake_timeout=context.read_timeout, timeout=context.connect_timeout + context.read_timeout,
            )
        except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError) as exc:
            attempt["outcome"], attempt["detail"] = _classify(exc)
            return attempt
        tls = writer.get_extra_info("ssl_object")
        attempt.update(outcome="ok", cipher=(tls.cipher() or ("",))[0], der=tls.getpeercert(binary_form=True))
        await _close(writer)
        return attempt

    async def _verify_chain(self, target: Target, port: int, version: str, sni: str, options: dict,
                            context: ScanContext) -> dict[str, str]:
        client = _client_context(version, verify=True, ca_file=options.get("ca_file") or "")
        if client is None:
            return {"outcome": "skipped", "detail": f"local OpenSSL cannot offer {version}"}
        try:
            _, writer = await connections.open_connection(
                target.address, port, ssl=client, server_hostname=sni or None,
                ssl_handshake_timeout=context.read_timeout, timeout=context.connect_timeout + context.read_timeout,
            )
        except ssl.SSLCertVerificationError as exc:
            return {"outcome": "untrusted", "detail": exc.verify_message or str(exc)}
        except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError) as exc:
            outcome, detail = _classify(exc)
            return {"outcome": outcome, "detail": detail}
        await _close(writer)
        return {"outcome": "trusted", "detail": ""}

    async def _weak_suites(self, target: Target, port: int, wire: int, sni: str, context: ScanContext,
                           result: ScanResult) -> tuple[dict[str, list[str]], bool]:
        """Offer each weak family alone, removing each suite the server picks, until it refuses."""

        async def family(name: str) -> tuple[str, list[str], bool]:
            offered = list(SUITES_BY_FAMILY[name])
            accepted: list[str] = []
            while offered:
                try:
                    kind, _, value = await raw_hello(target.address, port, wire, tuple(offered),
                                                     server_name=sni, context=context)
                except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                    outcome, detail = _classify(exc)
                    if outcome in {"closed", "reset"}:
                        # Hanging up instead of sending an alert is a refusal too (asyncio servers do
                        # that); silence or a refused connection is not an answer.
                        break
                    result.attempts.append({"port": port, "probe": f"ciphers-{name}", "outcome": outcome,
                                            "detail": detail})
                    return name, accepted, False
                if kind != "hello" or value not in offered:
                    break
                accepted.append(_WEAK_SUITES[value])
                offered.remove(value)
            result.attempts.append({"port": port, "probe": f"ciphers-{name}",
                                    "outcome": "accepted" if accepted else "rejected", "detail": ",".join(accepted)})
            return name, accepted, True

        found = await asyncio.gather(*(family(name) for name in WEAK_FAMILIES))
        return {name: suites for name, suites, _ in found if suites}, all(ok for *_, ok in found)


def _is_cbc(cipher: str) -> bool:
    return not any(mark in cipher for mark in ("GCM", "CHACHA20", "CCM", "TLS_", "RC4", "NULL"))


def _is_date_error(detail: str) -> bool:
    return "expired" in detail or "not yet valid" in detail
