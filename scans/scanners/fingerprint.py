"""Service fingerprint: what runs on each open port, with product, version and a CPE.

Per port, probes go in the order most likely to answer first: the probe the port
number suggests (6379 → Redis), then a passive banner read (SSH, SMTP, FTP, MySQL
speak first), then an HTTP request, whose answer often names a non-HTTP service too
(Redis, memcached and MongoDB reply to it in their own way). A server that closes on
plain text is retried through a TLS handshake, and the whole ladder is climbed again
inside TLS. A port silent to both the banner read and HTTP is given up (a tarpit
would otherwise cost one timeout per probe).

The wire helpers here (``exchange``, ``http_request``, ``jsonrpc_call``, ...) are
shared with the exposure checks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from scans.findings.candidates import ScanResult, ServiceObservation
from scans.scanners import connections
from scans.scanners.base import ScanContext, Scanner, ScannerError, Target, register
from scans.scanners.port_sets import RESERVED_PORTS, parse_ports

MAX_READ = 256 * 1024
EVIDENCE_CHARS = 400


# --- wire -------------------------------------------------------------------------------


@dataclass(slots=True)
class Exchange:
    """One connection: what was sent, what came back and how it ended.

    ``outcome``: ok (data), closed (EOF with no data), timeout (silent), refused,
    reset, tls-failed, error.
    """

    outcome: str
    data: bytes = b""
    detail: str = ""
    tls_version: str = ""


def client_tls_context() -> ssl.SSLContext:
    """Accepts any certificate and any protocol the local OpenSSL still has: we identify, not judge."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        context.set_ciphers("ALL:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    except (ssl.SSLError, ValueError):
        pass
    return context


_TLS_CONTEXT = client_tls_context()


async def exchange(
    address: str,
    port: int,
    payload: bytes | None = None,
    *,
    tls: bool = False,
    server_hostname: str | None = None,
    connect_timeout: float = 2.0,
    read_timeout: float = 3.0,
    complete: Callable[[bytes], bool] | None = None,
    idle: float = 0.25,
) -> Exchange:
    """Connect, send ``payload``, read until EOF, ``complete(data)``, or ``idle`` seconds of quiet.

    The first byte may take ``read_timeout``; after it, a pause of ``idle`` ends the read,
    so a server that keeps the connection open costs little.
    """
    if port in RESERVED_PORTS:
        return Exchange("error", detail=f"port {port} is reserved and never probed")
    try:
        reader, writer = await connections.open_connection(
            address, port, ssl=_TLS_CONTEXT if tls else None, server_hostname=(server_hostname or None) if tls else None,
            limit=MAX_READ, timeout=connect_timeout + (read_timeout if tls else 0),
        )
    except ConnectionRefusedError:
        return Exchange("refused")
    except TimeoutError:
        return Exchange("timeout", detail="tls handshake timed out" if tls else "connect timed out")
    except ssl.SSLError as exc:
        return Exchange("tls-failed", detail=str(exc)[:200])
    except (ConnectionResetError, BrokenPipeError):
        return Exchange("tls-failed" if tls else "reset", detail="reset during connect")
    except OSError as exc:
        return Exchange("error", detail=str(exc)[:200])
    tls_version = ""
    if tls:
        ssl_object = writer.get_extra_info("ssl_object")
        tls_version = ssl_object.version() if ssl_object else ""
    data = b""
    try:
        if payload:
            writer.write(payload)
            await writer.drain()
        timeout = read_timeout
        while len(data) < MAX_READ:
            async with asyncio.timeout(timeout):
                chunk = await reader.read(65536)
            if not chunk:
                break
            data += chunk
            if complete is not None and complete(data):
                break
            timeout = idle
        outcome = "ok" if data else "closed"
    except TimeoutError:
        outcome = "ok" if data else "timeout"
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError) as exc:
        outcome = "ok" if data else "reset"
        tls_version = tls_version or ("" if not isinstance(exc, ssl.SSLError) else tls_version)
    except OSError as exc:
        return Exchange("error", data, str(exc)[:200], tls_version)
    finally:
        writer.close()
    return Exchange(outcome, data, "", tls_version)


def trimmed(data: bytes | str, limit: int = EVIDENCE_CHARS) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = "".join(ch if ch.isprintable() or ch in "\r\n\t" else "." for ch in text)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


@dataclass(slots=True)
class HttpReply:
    status: int
    reason: str
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes
    raw_head: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def title(self) -> str:
        found = re.search(rb"<title[^>]*>(.*?)</title>", self.body, re.I | re.S)
        return found.group(1).decode("utf-8", "replace").strip()[:200] if found else ""


def parse_http(data: bytes) -> HttpReply | None:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not data.startswith(b"HTTP/"):
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return HttpReply(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body, head.decode("latin-1"))


def _http_complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    found = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    return found is not None and len(body) >= int(found.group(1))


def http_payload(method: str, path: str, host: str, body: bytes = b"", content_type: str = "") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "User-Agent: watchpost-scanner/1.0", "Accept: */*",
             "Connection: close"]
    if body or method in ("POST", "PUT"):
        lines += [f"Content-Type: {content_type or 'application/json'}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass(slots=True)
class Probe:
    """Where probes of one port go: address, port, TLS or not, timeouts; keeps the attempts.

    Probes given the same ``answers`` share their exchanges: a request identical to one already
    made on the port (same mode, bytes and read timeout) takes the earlier answer instead of a
    new connection. Discovery asks "GET /" and waits for a banner while naming the service, then
    again for the protocol registry; on an HTTPS port each of those was a TLS handshake.
    """

    address: str
    port: int
    hostname: str = ""
    tls: bool = False
    connect_timeout: float = 2.0
    read_timeout: float = 3.0
    attempts: list[dict[str, Any]] = field(default_factory=list)
    last: Exchange | None = None
    answers: dict[tuple[bool, bytes | None, float], Exchange] | None = None

    async def send(self, name: str, payload: bytes | None, *, complete=None, read_timeout: float | None = None) -> Exchange:
        timeout = read_timeout or self.read_timeout
        key = (self.tls, payload, timeout)
        result = self.answers.get(key) if self.answers is not None else None
        reused = result is not None
        if result is None:
            result = await exchange(
                self.address, self.port, payload, tls=self.tls, server_hostname=self.hostname,
                connect_timeout=self.connect_timeout, read_timeout=timeout, complete=complete,
            )
            if self.answers is not None:
                self.answers[key] = result
        attempt = {"port": self.port, "probe": ("tls/" if self.tls else "") + name, "outcome": result.outcome}
        if result.detail:
            attempt["detail"] = result.detail
        if reused:
            attempt["reused"] = True  # the answer of an identical earlier request on this port
        self.attempts.append(attempt)
        self.last = result
        return result

    async def http(self, method: str, path: str, body: bytes = b"", *, name: str = "") -> HttpReply | None:
        host = self.hostname or (f"[{self.address}]" if ":" in self.address else self.address)
        result = await self.send(name or f"http-{method.lower()}:{path}", http_payload(method, path, f"{host}:{self.port}", body),
                                 complete=_http_complete)
        return parse_http(result.data)

    async def get_json(self, path: str) -> tuple[HttpReply | None, Any]:
        """GET ``path``: the reply, and its JSON document (None without a reply or a JSON body)."""
        reply = await self.http("GET", path)
        return reply, (reply.json() if reply else None)

    async def jsonrpc(self, method: str, params: list | None = None, *, path: str = "/") -> tuple[Any, HttpReply | None]:
        """Call one JSON-RPC method; returns (the decoded answer or None, the HTTP reply)."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
        reply = await self.http("POST", path, body, name=f"jsonrpc:{method}")
        answer = reply.json() if reply is not None else None
        return (answer if isinstance(answer, dict) else None), reply


def redis_command(*args: str) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)


def mongo_op_msg(command: dict[str, Any]) -> bytes:
    body = struct.pack("<I", 0) + b"\0" + bson_encode(command)
    return struct.pack("<iiii", 16 + len(body), 0x5750, 0, 2013) + body


def mongo_reply(data: bytes) -> dict[str, Any] | None:
    """Decode an OP_MSG or OP_REPLY answer to its first document."""
    if len(data) < 21:
        return None
    length, _, _, opcode = struct.unpack_from("<iiii", data)
    try:
        if opcode == 2013 and data[20] == 0:
            return bson_decode(data[21:length])
        if opcode == 1 and len(data) >= 36:
            return bson_decode(data[36:length])
    except (ValueError, struct.error, IndexError, UnicodeDecodeError):
        return None
    return None


def bson_encode(doc: dict[str, Any]) -> bytes:
    """Just what commands need: strings, ints, floats, bools and nested documents."""
    out = bytearray()
    for key, value in doc.items():
        name = key.encode() + b"\0"
        if isinstance(value, bool):
            out += b"\x08" + name + bytes([value])
        elif isinstance(value, int):
            out += b"\x10" + name + struct.pack("<i", value)
        elif isinstance(value, float):
            out += b"\x01" + name + struct.pack("<d", value)
        elif isinstance(value, str):
            out += b"\x02" + name + struct.pack("<i", len(value.encode()) + 1) + value.encode() + b"\0"
        elif isinstance(value, dict):
            out += b"\x03" + name + bson_encode(value)
        else:
            raise TypeError(f"cannot encode {type(value).__name__}")
    return struct.pack("<i", len(out) + 5) + bytes(out) + b"\0"


_BSON_FIXED = {0x01: ("<d", 8), 0x10: ("<i", 4), 0x12: ("<q", 8), 0x11: ("<q", 8), 0x09: ("<q", 8)}


def bson_decode(data: bytes, offset: int = 0) -> dict[str, Any]:
    (size,) = struct.unpack_from("<i", data, offset)
    end, pos, doc = offset + size - 1, offset + 4, {}
    if end >= len(data) + 0 or size < 5:
        raise ValueError("truncated BSON document")
    while pos < end:
        kind = data[pos]
        name_end = data.index(b"\0", pos + 1)
        key = data[pos + 1:name_end].decode()
        pos = name_end + 1
        if kind in _BSON_FIXED:
            fmt, width = _BSON_FIXED[kind]
            doc[key] = struct.unpack_from(fmt, data, pos)[0]
            pos += width
        elif kind == 0x02:
            (n,) = struct.unpack_from("<i", data, pos)
            doc[key] = data[pos + 4:pos + 3 + n].decode("utf-8", "replace")
            pos += 4 + n
        elif kind in (0x03, 0x04):
            (n,) = struct.unpack_from("<i", data, pos)
            sub = bson_decode(data, pos)
            doc[key] = list(sub.values()) if kind == 0x04 else sub
            pos += n
        elif kind == 0x08:
            doc[key] = data[pos] == 1
            pos += 1
        elif kind in (0x0A, 0x06, 0xFF, 0x7F):
            doc[key] = None
        elif kind == 0x07:
            doc[key] = data[pos:pos + 12].hex()
            pos += 12
        else:
            raise ValueError(f"unsupported BSON type 0x{kind:02x}")
    return doc


# --- CPE --------------------------------------------------------------------------------

# product key -> (CPE vendor, CPE product, display name)
PRODUCTS: dict[str, tuple[str, str, str]] = {
    "openssh": ("openbsd", "openssh", "OpenSSH"),
    "dropbear": ("dropbear_ssh_project", "dropbear_ssh", "Dropbear sshd"),
    "nginx": ("f5", "nginx", "nginx"),
    "apache": ("apache", "http_server", "Apache httpd"),
    "lighttpd": ("lighttpd", "lighttpd", "lighttpd"),
    "iis": ("microsoft", "internet_information_services", "Microsoft IIS"),
    "redis": ("redis", "redis", "Redis"),
    "postgresql": ("postgresql", "postgresql", "PostgreSQL"),
    "mysql": ("oracle", "mysql", "MySQL"),
    "mariadb": ("mariadb", "mariadb", "MariaDB"),
    "memcached": ("memcached", "memcached", "memcached"),
    "mongodb": ("mongodb", "mongodb", "MongoDB"),
    "docker": ("docker", "docker", "Docker Engine"),
    "elasticsearch": ("elastic", "elasticsearch", "Elasticsearch"),
    "etcd": ("etcd", "etcd", "etcd"),
    "kubelet": ("kubernetes", "kubernetes", "Kubernetes kubelet"),
    "prometheus": ("prometheus", "prometheus", "Prometheus"),
    "geth": ("ethereum", "go_ethereum", "Geth"),
    "nethermind": ("nethermind", "nethermind", "Nethermind"),
    "erigon": ("erigon", "erigon", "Erigon"),
    "besu": ("hyperledger", "besu", "Hyperledger Besu"),
    "sui": ("mystenlabs", "sui", "Sui"),
    "lotus": ("filecoin", "lotus", "Lotus"),
    "postfix": ("postfix", "postfix", "Postfix smtpd"),
    "exim": ("exim", "exim", "Exim smtpd"),
    "vsftpd": ("beasts", "vsftpd", "vsftpd"),
    "proftpd": ("proftpd", "proftpd", "ProFTPD"),
}


def cpe_for(product_key: str, version: str) -> str:
    """CPE 2.3 formatted string; an unknown version is ``*`` (any), never guessed."""
    if product_key not in PRODUCTS:
        return ""
    vendor, product, _ = PRODUCTS[product_key]
    return cpe_name(vendor, product, version)


def cpe_name(vendor: str, product: str, version: str) -> str:
    """The CPE 2.3 name of an application; an unknown version is ``*``, special characters escaped."""
    value = re.sub(r"([^A-Za-z0-9._\-])", r"\\\1", version) if version else "*"
    return f"cpe:2.3:a:{vendor}:{product}:{value}:*:*:*:*:*:*:*"


def observation(probe: Probe, service: str, product_key: str = "", version: str = "", *, banner: str = "",
                confidence: float = 0.9, evidence: dict[str, Any] | None = None, product: str = "") -> ServiceObservation:
    name = product or (PRODUCTS[product_key][2] if product_key in PRODUCTS else product_key)
    if probe.tls and service in ("http", "smtp", "ftp", "imap", "pop3"):
        service = {"http": "https", "smtp": "smtps", "ftp": "ftps"}.get(service, service)
    return ServiceObservation(
        host=probe.hostname or probe.address, port=probe.port, service=service, product=name, version=version,
        cpe=cpe_for(product_key, version), tls=probe.tls, banner=trimmed(banner, 200).strip(),
        confidence=confidence, evidence=evidence or {},
    )


# --- identification ---------------------------------------------------------------------

SSH_RE = re.compile(r"^SSH-([\d.]+)-(\S+)(?:\s+(.*))?")


def from_banner(probe: Probe, data: bytes) -> ServiceObservation | None:
    text = data.decode("latin-1")
    first = text.split("\n", 1)[0].strip()
    evidence = {"probe": "banner", "received": trimmed(data)}
    if first.startswith("SSH-"):
        match = SSH_RE.match(first)
        software = match.group(2) if match else ""
        key, version = "", ""
        if m := re.match(r"OpenSSH_([\w.]+)", software):
            key, version = "openssh", m.group(1)
        elif m := re.match(r"dropbear_([\w.]+)", software, re.I):
            key, version = "dropbear", m.group(1)
        return observation(probe, "ssh", key, version, banner=first, confidence=0.99, evidence=evidence,
                           product="" if key else software)
    if len(data) > 5 and data[4] == 0x0A and data[3] == 0:  # MySQL handshake v10 in packet 0
        version = data[5:data.find(b"\0", 5)].decode("latin-1")
        key = "mariadb" if "mariadb" in version.lower() else "mysql"
        clean = re.match(r"[\d.]+", version.split("-MariaDB")[0].replace("5.5.5-", "", 1))
        return observation(probe, "mysql", key, clean.group(0) if clean else "", banner=version, confidence=0.98,
                           evidence=evidence)
    if len(data) > 7 and data[4] == 0xFF and data[3] in (0, 1):  # MySQL error packet (host not allowed...)
        return observation(probe, "mysql", "mysql", banner=trimmed(data[7:]), confidence=0.8, evidence=evidence)
    if first.startswith("220"):
        lowered = first.lower()
        if "ftp" in lowered:
            key, version = "", ""
            if m := re.search(r"vsftpd ([\d.]+)", first, re.I):
                key, version = "vsftpd", m.group(1)
            elif m := re.search(r"proftpd ([\d.]+)", first, re.I):
                key, version = "proftpd", m.group(1)
            return observation(probe, "ftp", key, version, banner=first, confidence=0.9, evidence=evidence)
        if "smtp" in lowered or "mail" in lowered:
            key = "postfix" if "postfix" in lowered else "exim" if "exim" in lowered else ""
            m = re.search(r"exim ([\d.]+)", first, re.I)
            return observation(probe, "smtp", key, m.group(1) if m and key == "exim" else "", banner=first,
                               confidence=0.9, evidence=evidence)
        return observation(probe, "ftp" if probe.port in (21, 990) else "smtp", banner=first, confidence=0.5,
                           evidence=evidence)
    if first.startswith(("+OK", "* OK")):
        return observation(probe, "pop3" if first.startswith("+OK") else "imap", banner=first, confidence=0.8,
                           evidence=evidence)
    return None


SERVER_PRODUCTS = [
    (re.compile(r"nginx(?:/([\d.]+))?", re.I), "nginx"),
    (re.compile(r"Apache(?:/([\d.]+))?", re.I), "apache"),
    (re.compile(r"lighttpd(?:/([\d.]+))?", re.I), "lighttpd"),
    (re.compile(r"Microsoft-IIS(?:/([\d.]+))?", re.I), "iis"),
    (re.compile(r"Docker/([\d.]+)", re.I), "docker"),
]
ETH_CLIENTS = {"geth": "geth", "nethermind": "nethermind", "erigon": "erigon", "besu": "besu"}


async def identify_http(probe: Probe, reply: HttpReply) -> ServiceObservation:
    """An HTTP server answered: name the web server, or the API behind it."""
    if b"trying to access MongoDB over HTTP" in reply.body and (found := await probe_mongodb(probe)):
        return found
    server = reply.headers.get("server", "")
    evidence: dict[str, Any] = {"probe": "http-get:/", "status": reply.status, "server": server, "title": reply.title}
    for pattern, key in SERVER_PRODUCTS:
        if match := pattern.search(server):
            if key == "docker":
                return await identify_docker(probe, reply) or observation(
                    probe, "docker", "docker", match.group(1) or "", banner=server, evidence=evidence)
            return observation(probe, "http", key, match.group(1) or "", banner=server, confidence=0.95,
                               evidence=evidence)
    if api := await identify_http_api(probe, reply):
        return api
    return observation(probe, "http", banner=server or reply.raw_head.split("\r\n", 1)[0], confidence=0.9,
                       evidence=evidence, product=server.split("/")[0] if server else "")


async def identify_docker(probe: Probe, reply: HttpReply | None = None) -> ServiceObservation | None:
    info_reply, info = await probe.get_json("/version")
    if isinstance(info, dict) and "ApiVersion" in info:
        return observation(probe, "docker", "docker", str(info.get("Version", "")), confidence=0.99,
                           banner=f"Docker Engine API {info.get('ApiVersion')}",
                           evidence={"probe": "http-get:/version", "received": trimmed(info_reply.body)})
    return None


async def identify_http_api(probe: Probe, root: HttpReply) -> ServiceObservation | None:
    """The JSON APIs a plain GET / does not name: try the request each answers to, likeliest first."""
    document = root.json()
    if isinstance(document, dict) and document.get("tagline") == "You Know, for Search":
        version = str((document.get("version") or {}).get("number", ""))
        return observation(probe, "elasticsearch", "elasticsearch", version, confidence=0.99,
                           evidence={"probe": "http-get:/", "received": trimmed(root.body)})
    checks: list[Callable[[], Awaitable[ServiceObservation | None]]] = [
        lambda: identify_jsonrpc(probe), lambda: identify_version_endpoint(probe),
        lambda: identify_metrics(probe), lambda: identify_kubelet(probe), lambda: identify_lotus(probe),
    ]
    if probe.port in (9090, 9100):
        checks.insert(0, checks.pop(2))
    for check in checks:
        if found := await check():
            return found
    return None


async def identify_jsonrpc(probe: Probe) -> ServiceObservation | None:
    answer, reply = await probe.jsonrpc("web3_clientVersion")
    if answer and isinstance(answer.get("result"), str):
        client = answer["result"]
        name, _, rest = client.partition("/")
        key = ETH_CLIENTS.get(name.lower(), "")
        version = re.match(r"v?([\d.]+)", rest)
        return observation(probe, "ethereum-jsonrpc", key, version.group(1) if version else "", banner=client,
                           confidence=0.98, product="" if key else name,
                           evidence={"probe": "jsonrpc:web3_clientVersion", "received": trimmed(reply.body)})
    answer, reply = await probe.jsonrpc("sui_getChainIdentifier")
    # JSON-RPC 1.0 servers (bitcoind) send "result": null beside the error for a method they lack.
    if answer and answer.get("result") is not None:
        discover, _ = await probe.jsonrpc("rpc.discover")
        info = ((discover or {}).get("result") or {}).get("info") or {}
        version = str(info.get("version", "")) if "sui" in str(info.get("title", "")).lower() else ""
        return observation(probe, "sui-jsonrpc", "sui", version, banner=f"chain {answer['result']}", confidence=0.98,
                           evidence={"probe": "jsonrpc:sui_getChainIdentifier", "received": trimmed(reply.body)})
    if answer and (answer.get("jsonrpc") == "2.0" or {"result", "error", "id"} <= answer.keys()):
        return observation(probe, "jsonrpc", confidence=0.7,
                           evidence={"probe": "jsonrpc:sui_getChainIdentifier", "received": trimmed(reply.body)})
    return None


async def identify_lotus(probe: Probe) -> ServiceObservation | None:
    answer, reply = await probe.jsonrpc("Filecoin.Version", path="/rpc/v0")
    result = (answer or {}).get("result")
    if isinstance(result, dict) and "APIVersion" in result:
        version = re.match(r"[\d.]+", str(result.get("Version", "")))
        return observation(probe, "filecoin-lotus", "lotus", version.group(0) if version else "",
                           banner=str(result.get("Version", "")), confidence=0.98,
                           evidence={"probe": "jsonrpc:Filecoin.Version", "received": trimmed(reply.body)})
    return None


async def identify_version_endpoint(probe: Probe) -> ServiceObservation | None:
    reply, info = await probe.get_json("/version")
    if not isinstance(info, dict):
        return None
    evidence = {"probe": "http-get:/version", "received": trimmed(reply.body)}
    if "ApiVersion" in info:
        return observation(probe, "docker", "docker", str(info.get("Version", "")), confidence=0.99, evidence=evidence,
                           banner=f"Docker Engine API {info['ApiVersion']}")
    if "etcdserver" in info:
        return observation(probe, "etcd", "etcd", str(info["etcdserver"]), confidence=0.98, evidence=evidence)
    return None


async def identify_metrics(probe: Probe) -> ServiceObservation | None:
    reply = await probe.http("GET", "/metrics")
    if reply is None or reply.status != 200 or b"# TYPE " not in reply.body:
        return None
    evidence = {"probe": "http-get:/metrics", "received": trimmed(reply.body[:300])}
    # A kubelet's read-only port publishes its own metrics, its build among them.
    if b"\nkubelet_" in reply.body and (m := _KUBERNETES_BUILD.search(reply.body)):
        evidence["received"] = trimmed(m.group(0))
        return observation(probe, "kubelet", "kubelet", m.group(1).decode(), confidence=0.97, evidence=evidence)
    if m := re.search(rb'prometheus_build_info\{[^}]*version="([^"]+)"', reply.body):
        return observation(probe, "prometheus", "prometheus", m.group(1).decode(), confidence=0.97, evidence=evidence)
    return observation(probe, "prometheus-metrics", confidence=0.85, evidence=evidence, product="Prometheus exporter")


_KUBERNETES_BUILD = re.compile(rb'kubernetes_build_info\{[^}]*git_version="v([\d.]+)[^"]*"[^}]*\}')


async def identify_kubelet(probe: Probe) -> ServiceObservation | None:
    reply, document = await probe.get_json("/pods")
    if isinstance(document, dict) and document.get("kind") == "PodList":
        return observation(probe, "kubelet", "kubelet", confidence=0.95,
                           evidence={"probe": "http-get:/pods", "received": trimmed(reply.body)})
    return None


async def probe_redis(probe: Probe) -> ServiceObservation | None:
    result = await probe.send("redis-ping", redis_command("PING"), complete=lambda d: d.endswith(b"\r\n"))
    return await identify_redis_reply(probe, result.data)


async def identify_redis_reply(probe: Probe, data: bytes) -> ServiceObservation | None:
    if data.startswith(b"+PONG"):
        info = await probe.send("redis-info", redis_command("INFO", "server"), complete=_resp_bulk_complete)
        version = re.search(rb"redis_version:([\d.]+)", info.data)
        return observation(probe, "redis", "redis", version.group(1).decode() if version else "", confidence=0.99,
                           banner="+PONG", evidence={"probe": "redis-info", "received": trimmed(info.data)})
    if data.startswith((b"-NOAUTH", b"-WRONGPASS", b"-DENIED")):
        return observation(probe, "redis", "redis", confidence=0.95, banner=trimmed(data.split(b"\r\n")[0]),
                           evidence={"probe": "redis-ping", "received": trimmed(data), "auth_required": True})
    if data.startswith(b"-ERR") and (b"unknown command" in data or b"wrong number of arguments" in data):
        return observation(probe, "redis", "redis", confidence=0.7, banner=trimmed(data.split(b"\r\n")[0]),
                           evidence={"received": trimmed(data)})
    return None


def _resp_bulk_complete(data: bytes) -> bool:
    if not data.startswith(b"$"):
        return data.endswith(b"\r\n")
    header, _, rest = data.partition(b"\r\n")
    return header[1:].lstrip(b"-").isdigit() and len(rest) >= int(header[1:]) + 2


async def probe_memcached(probe: Probe) -> ServiceObservation | None:
    result = await probe.send("memcached-stats", b"stats\r\n", complete=lambda d: d.endswith((b"END\r\n", b"ERROR\r\n")))
    if m := re.search(rb"STAT version ([\w.\-]+)", result.data):
        return observation(probe, "memcached", "memcached", m.group(1).decode(), confidence=0.99,
                           evidence={"probe": "memcached-stats", "received": trimmed(result.data)})
    return None


STARTUP = b"user\0watchpost\0database\0postgres\0application_name\0watchpost\0\0"


async def probe_postgres(probe: Probe) -> ServiceObservation | None:
    result = await probe.send("postgres-sslrequest", struct.pack("!II", 8, 80877103), complete=lambda d: len(d) >= 1,
                              read_timeout=min(probe.read_timeout, 2.0))
    if result.data not in (b"N", b"S"):
        return None
    startup = struct.pack("!II", 8 + len(STARTUP), 196608) + STARTUP
    reply = await probe.send("postgres-startup", startup, complete=postgres_reply_complete)
    data = reply.data
    evidence = {"probe": "postgres-startup", "ssl_offered": result.data == b"S", "received": trimmed(data)}
    if m := re.search(rb"server_version\0([^\0]+)\0", data):
        version = re.match(r"[\d.]+", m.group(1).decode())
        evidence["authentication"] = "none (trust)" if data.startswith(b"R\0\0\0\x08\0\0\0\0") else "ok"
        return observation(probe, "postgresql", "postgresql", version.group(0) if version else "", confidence=0.99,
                           evidence=evidence)
    if data[:1] in (b"R", b"E"):
        if data[:1] == b"R" and len(data) >= 9:
            evidence["authentication"] = {3: "cleartext", 5: "md5", 10: "sasl"}.get(struct.unpack_from("!I", data, 5)[0], "other")
        return observation(probe, "postgresql", "postgresql", confidence=0.95, evidence=evidence)
    return observation(probe, "postgresql", "postgresql", confidence=0.6, evidence=evidence)


def postgres_reply_complete(data: bytes) -> bool:
    """An authentication request or an error ends the exchange; AuthenticationOk runs to ReadyForQuery."""
    if len(data) < 5 or len(data) < 1 + struct.unpack_from("!I", data, 1)[0]:
        return False
    if data[:1] == b"E":
        return True
    return data[:1] == b"R" and (data[5:9] != b"\0\0\0\0" or b"Z\0\0\0\x05" in data)


async def probe_mongodb(probe: Probe) -> ServiceObservation | None:
    result = await probe.send("mongodb-hello", mongo_op_msg({"hello": 1, "$db": "admin"}), complete=_mongo_complete)
    hello = mongo_reply(result.data)
    if not hello or not ("maxWireVersion" in hello or "ismaster" in hello or "isWritablePrimary" in hello):
        return None
    build = await probe.send("mongodb-buildinfo", mongo_op_msg({"buildInfo": 1, "$db": "admin"}), complete=_mongo_complete)
    info = mongo_reply(build.data) or {}
    return observation(probe, "mongodb", "mongodb", str(info.get("version", "")), confidence=0.99,
                       evidence={"probe": "mongodb-hello", "max_wire_version": hello.get("maxWireVersion"),
                                 "received": trimmed(json.dumps(info, default=str))})


def _mongo_complete(data: bytes) -> bool:
    return len(data) >= 4 and len(data) >= struct.unpack_from("<i", data)[0]


def from_http_probe_reply(probe: Probe, data: bytes) -> Callable[[], Awaitable[ServiceObservation | None]] | None:
    """Non-HTTP services answer an HTTP request in telltale ways; say which probe to run next."""
    if data.startswith(b"-ERR") or data.startswith(b"-NOAUTH"):
        return lambda: probe_redis(probe)
    if data.startswith(b"ERROR\r\n"):
        return lambda: probe_memcached(probe)
    if b"trying to access MongoDB over HTTP" in data:
        return lambda: probe_mongodb(probe)
    if data[:1] == b"E" and b"SFATAL" in data:
        return lambda: probe_postgres(probe)
    return None


PORT_HINTS: dict[int, str] = {
    6379: "redis", 6380: "redis", 11211: "memcached", 5432: "postgres", 27017: "mongodb", 27018: "mongodb",
    80: "http", 8080: "http", 8000: "http", 2375: "http", 9200: "http", 2379: "http", 10255: "http",
    10250: "tls", 9090: "http", 9100: "http", 8545: "http", 8546: "http", 8547: "http", 9000: "http",
    1234: "http", 443: "tls", 8443: "tls", 993: "tls", 995: "tls", 465: "tls", 2376: "tls",
}
CLIENT_FIRST = {"redis": probe_redis, "memcached": probe_memcached, "postgres": probe_postgres, "mongodb": probe_mongodb}


async def identify(probe: Probe, *, banner_timeout: float) -> tuple[ServiceObservation | None, str]:
    """Climb the probe ladder on one connection mode; returns (observation, why it stopped)."""
    hint = PORT_HINTS.get(probe.port)
    if hint in CLIENT_FIRST and (found := await CLIENT_FIRST[hint](probe)):
        return found, "hint"
    banner = await probe.send("banner", None, read_timeout=banner_timeout)
    if banner.data and (found := from_banner(probe, banner.data)):
        return found, "banner"
    silent = banner.outcome == "timeout"
    if banner.outcome in ("refused", "tls-failed", "error"):
        return None, banner.outcome
    reply_raw = await probe.send("http-get:/", http_payload("GET", "/", f"{probe.hostname or probe.address}:{probe.port}"),
                                 complete=_http_complete)
    if (reply := parse_http(reply_raw.data)) is not None:
        return await identify_http(probe, reply), "http"
    if reply_raw.data and (next_probe := from_http_probe_reply(probe, reply_raw.data)):
        if found := await next_probe():
            return found, "http-reply"
    if silent and reply_raw.outcome == "timeout":
        return None, "silent"
    if reply_raw.outcome in ("closed", "reset") and not probe.tls:
        return None, "closed-on-plaintext"  # TLS servers hang up on plain text; the caller tries TLS
    return await identify_client_first(probe, banner.data or reply_raw.data)


async def identify_client_first(probe: Probe, seen: bytes = b"") -> tuple[ServiceObservation | None, str]:
    """The protocols that wait for the client to speak, tried one by one."""
    hint = PORT_HINTS.get(probe.port)
    # Guesses on an unusual port: a server of the guessed kind answers within a round trip; one of
    # another kind often waits for more bytes, and that wait should not cost a full read timeout.
    probe = dataclasses.replace(probe, read_timeout=min(probe.read_timeout, 1.0))
    for name, client_first in CLIENT_FIRST.items():
        if name != hint and (found := await client_first(probe)):
            return found, name
    if seen:
        return observation(probe, "unknown", banner=seen, confidence=0.2,
                           evidence={"received": trimmed(seen)}), "unrecognised"
    return None, "nothing"


async def fingerprint_port(address: str, port: int, *, hostname: str = "", context: ScanContext | None = None,
                           attempts: list[dict[str, Any]] | None = None,
                           answers: dict | None = None) -> ServiceObservation:
    """Identify the service on one open port: plain first, then inside TLS when plain made no sense.

    ``answers``: exchanges already made on the port, shared with the caller's later probes (see :class:`Probe`).
    """
    context = context or ScanContext()
    attempts = attempts if attempts is not None else []
    answers = answers if answers is not None else {}
    banner_timeout = float(context.extra.get("banner_timeout", min(context.read_timeout, 1.0)))
    kwargs = dict(hostname=hostname, connect_timeout=context.connect_timeout, read_timeout=context.read_timeout,
                  attempts=attempts, answers=answers)
    plain = Probe(address, port, **kwargs)
    found, why = (None, "tls-first") if PORT_HINTS.get(port) == "tls" else await identify(plain, banner_timeout=banner_timeout)
    if found is not None and found.service != "unknown":
        return found
    if why not in ("silent", "refused"):
        secure = Probe(address, port, tls=True, **kwargs)
        # The handshake's connection also waits for a banner, as the ladder's first step inside TLS
        # would: that step then takes this answer instead of a second handshake.
        handshake = await secure.send("tls-handshake", None, read_timeout=banner_timeout)
        if handshake.tls_version:
            found_tls, _ = await identify(secure, banner_timeout=banner_timeout)
            result = found_tls or observation(secure, "ssl", confidence=0.6, evidence={"probe": "tls-handshake"})
            evidence = dict(result.evidence, tls_version=handshake.tls_version)
            return ServiceObservation(**{**result.to_dict(), "tls": True, "evidence": evidence})
        if why == "tls-first":
            found, why = await identify(plain, banner_timeout=banner_timeout)
        elif why == "closed-on-plaintext":
            found, why = await identify_client_first(plain)
    if found is not None:
        return found
    return observation(plain, "unknown", confidence=0.0 if why == "silent" else 0.1,
                       evidence={"reason": "no answer to any probe" if why == "silent" else why})


@register
class FingerprintScanner(Scanner):
    name = "fingerprint"
    version = "1.0"
    description = "Names the service, product and version on each open port (banners, active probes, TLS)."
    options = {
        "ports": (str, ""),  # ports to probe; empty: the target's known open ports, else scan top1000 first
        "concurrency": (int, 64),
    }
    default_budget = 120.0

    async def scan(self, target: Target, options: dict[str, Any], context: ScanContext) -> ScanResult:
        result = self.new_result(target, options)
        ports = await ports_to_probe(target, options["ports"], context, result)
        result.open_ports = sorted(ports)
        result.services = await fingerprint_ports(target, ports, context, result.attempts,
                                                  concurrency=options["concurrency"])
        result.data["identified"] = sum(1 for s in result.services if s.service != "unknown")
        return result


async def ports_to_probe(target: Target, spec: str, context: ScanContext, result: ScanResult) -> list[int]:
    """The target's known open ports, or the given ones, or (neither) what a top-1000 scan finds."""
    from scans.scanners.portscan import scan_ports

    if spec:
        try:
            candidates = parse_ports(spec)
        except ValueError as exc:
            raise ScannerError(f"{result.scanner}: {exc}") from None
    elif target.ports:
        return [p for p in dict.fromkeys(target.ports) if p not in RESERVED_PORTS]
    else:
        candidates = parse_ports("top1000")
    outcome = await scan_ports(target.address, candidates, timeout=context.connect_timeout)
    result.data["portscan"] = dict(outcome.counts)
    return sorted(outcome.open)


async def fingerprint_ports(target: Target, ports: list[int], context: ScanContext,
                            attempts: list[dict[str, Any]] | None = None, *, concurrency: int = 64) -> list[ServiceObservation]:
    limit = asyncio.Semaphore(max(1, concurrency))
    attempts = attempts if attempts is not None else []

    async def one(port: int) -> ServiceObservation:
        async with limit:
            return await fingerprint_port(target.address, port, hostname=target.hostname, context=context,
                                          attempts=attempts)

    return list(await asyncio.gather(*(one(p) for p in ports)))
