"""HTTP inspector: security headers, version disclosure, directory listings, cookies, exposed files.

One ``GET`` per port and path, to ``Target.address`` only, with ``Host:`` set to the
target's name (or its address). HTTPS certificates are not verified here: the TLS
inspector judges them. Redirects are reported, never followed, so the scan never
leaves the checked address.

Beyond ``/`` it asks for a bounded list of paths that should never be served
(``SENSITIVE_PATHS``: a Git checkout, ``.env``, server status pages, phpinfo, directory
indexes, backups and database dumps), within a request budget and a time limit per
host. A hit needs status 200 *and* content that is what the path promises (``.git/HEAD``
starts with ``ref:``, a ``.env`` holds KEY=VALUE lines, a listing says "Index of", a zip
starts with its magic bytes), and must not look like the page a random path gets: a
site that answers 200 to everything (a "soft 404") yields nothing. Each hit is a
finding with the evidence: status, content type, length and the first bytes (secret
values masked). A port whose checks the budget or the time limit cut short is not
covered, so findings from earlier runs are not closed on its account.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import re
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scans.findings.candidates import Coverage, FindingCandidate, ScanResult, ServiceObservation, certainty
from scans.scanners import connections
from scans.scanners.base import ScanContext, Scanner, ScannerError, Target, is_ip_literal, register
from scans.scanners.port_sets import RESERVED_PORTS

HTTPS_PORTS = frozenset({443, 4443, 5986, 6443, 8443, 9443, 10443})
HTTP_PORTS = frozenset({80, 591, 3000, 5000, 8000, 8008, 8080, 8081, 8088, 8888, 9000, 9090})
DEFAULT_PORTS = (80, 443)
MAX_RESPONSE_BYTES = 512 * 1024
HSTS_MIN_SECONDS = 180 * 24 * 3600
USER_AGENT = "Watchpost/1.0 (+security scan)"

_VERSIONED = re.compile(r"\d+(\.\d+)+")
_PRODUCT = re.compile(r"^\s*([A-Za-z][\w.-]*)/(\d[\w.-]*)")
_LISTING = re.compile(r"<title>\s*(Index of /|Directory listing for /)", re.IGNORECASE)
DISCLOSURE_HEADERS = ("x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-generator")
SENSITIVE_BYTES = 16 * 1024  # read no more of a probed path: a backup may be gigabytes
PATH_BUDGET = 60  # requests per host for sensitive paths (random-path probes included)
PATH_SECONDS = 20  # seconds per host for sensitive paths
PATH_CONCURRENCY = 4  # sensitive-path requests in flight per port, and connections open to it at most
PATH_GROW_AFTER = 0.2  # seconds a request waits for a busy connection before another one is opened


class NotHttp(Exception):
    """The port answered, but not with HTTP."""


@dataclass(slots=True)
class HttpReply:
    status: int
    reason: str
    headers: list[tuple[str, str]]  # in order, names lower-cased; repeated headers kept
    body: bytes = b""
    truncated: bool = False
    tls_version: str = ""

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n == name), None)

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name]


@dataclass(slots=True)
class Cookie:
    name: str
    attributes: dict[str, str] = field(default_factory=dict)  # lower-cased names; flags map to ""

    @classmethod
    def parse(cls, header: str) -> Cookie:
        parts = [p.strip() for p in header.split(";")]
        name = parts[0].split("=", 1)[0].strip()
        attributes = {}
        for part in parts[1:]:
            key, _, value = part.partition("=")
            if key:
                attributes[key.strip().lower()] = value.strip()
        return cls(name, attributes)


@functools.cache
def _client_context() -> ssl.SSLContext:
    # One per process: a context is never changed once built, and building one per request
    # (cipher list parsing included) cost more than the request.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # Old servers must still be inspectable; the TLS inspector is what reports them.
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def _host_header(target: Target, port: int, scheme: str) -> str:
    host = target.hostname or target.address
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return host if port == default else f"{host}:{port}"


def _parse_head(head: str) -> HttpReply:
    """Status line and headers (no body); NotHttp when the first line is not an HTTP status line."""
    lines = head.splitlines()
    if not lines or not lines[0].startswith("HTTP/"):
        raise NotHttp(lines[0][:80] if lines else "empty reply")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise NotHttp(lines[0][:80])
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers.append((name.strip().lower(), value.strip()))
    return HttpReply(int(parts[1]), parts[2] if len(parts) > 2 else "", headers)


class _Stale(Exception):
    """A kept-alive connection the server had closed before our request reached it: ask again on a new one."""


class _Connection:
    """One open connection to a web port: requests go one after the other, each response read to its end."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used = False

    async def get(self, request: bytes, context: ScanContext, max_bytes: int) -> tuple[HttpReply, bool]:
        """(the reply, whether the connection can carry another request).

        The status line and headers must arrive within ``read_timeout``; the body, each read of it.
        One deadline per head rather than one per line: ``asyncio.wait_for`` wrapped every line's
        read in a task of its own, a good part of a request's CPU against a fast server.
        """
        reused, self.used = self.used, True
        timeout = context.read_timeout
        try:
            async with asyncio.timeout(timeout):
                lines = await self._head(request, max_bytes, reused)
        except (ConnectionResetError, BrokenPipeError):
            if reused:
                raise _Stale() from None
            raise
        reply = _parse_head(b"".join(lines).decode("latin-1"))
        reply.tls_version = self._tls_version()
        reply.body, framed, reply.truncated = await self._body(reply, max_bytes, timeout)
        version = lines[0][:8].decode("latin-1")
        tokens = {t.strip().lower() for t in (reply.header("connection") or "").split(",")}
        persistent = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
        return reply, framed and not reply.truncated and persistent

    async def _head(self, request: bytes, max_bytes: int, reused: bool) -> list[bytes]:
        self.writer.write(request)
        await self.writer.drain()
        try:
            first = await self.reader.readline()
        except ValueError:  # a first "line" beyond the stream's limit: not an HTTP status line
            raise NotHttp("no status line") from None
        if not first:
            if reused:
                raise _Stale()
            raise NotHttp("empty reply")
        if not first.startswith(b"HTTP/"):
            raise NotHttp(first.decode("latin-1").splitlines()[0][:80] if first.strip() else "empty reply")
        lines = [first]
        size = len(first)
        while lines[-1] not in (b"\r\n", b"\n"):
            try:
                line = await self.reader.readline()
            except ValueError:
                raise NotHttp("header line too long") from None
            if not line:
                break  # closed inside the head: what came is what there is
            lines.append(line)
            size += len(line)
            if size > max_bytes:
                raise NotHttp("headers beyond the size limit")
        return lines

    async def _body(self, reply: HttpReply, max_bytes: int, timeout: float) -> tuple[bytes, bool, bool]:
        """(body, whether its end was known and reached, whether max_bytes cut it)."""
        if 100 <= reply.status < 200 or reply.status in (204, 304):
            return b"", True, False
        if (reply.header("transfer-encoding") or "").lower() == "chunked":
            return await self._chunked(max_bytes, timeout)
        length = reply.header("content-length")
        if length and length.isdigit():
            wanted = int(length)
            body, ended = await self._read(min(wanted, max_bytes), timeout)
            return body, not ended and wanted <= max_bytes, wanted > max_bytes and not ended
        body, ended = await self._read(max_bytes, timeout)  # no length: the body ends where the connection does
        return body, False, not ended and len(body) >= max_bytes

    async def _read(self, count: int, timeout: float) -> tuple[bytes, bool]:
        """Up to ``count`` bytes; (data, whether the server closed before ``count``)."""
        data = bytearray()
        while len(data) < count:
            async with asyncio.timeout(timeout):
                chunk = await self.reader.read(min(65536, count - len(data)))
            if not chunk:
                return bytes(data), True
            data += chunk
        return bytes(data), False

    async def _chunked(self, max_bytes: int, timeout: float) -> tuple[bytes, bool, bool]:
        out = bytearray()
        while True:
            async with asyncio.timeout(timeout):
                line = await self.reader.readline()
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                return bytes(out), False, False  # malformed or cut off: keep what came
            if size == 0:
                async with asyncio.timeout(timeout):
                    while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                return bytes(out), True, False
            if len(out) + size > max_bytes:
                chunk, _ = await self._read(max_bytes - len(out), timeout)
                return bytes(out + chunk), False, True
            chunk, ended = await self._read(size, timeout)
            out += chunk
            if ended:
                return bytes(out), False, False
            async with asyncio.timeout(timeout):
                await self.reader.readline()  # the CRLF after the chunk

    def _tls_version(self) -> str:
        tls = self.writer.get_extra_info("ssl_object")
        return tls.version() if tls else ""

    async def close(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(1):
                await self.writer.wait_closed()
        except (OSError, ssl.SSLError, TimeoutError):
            pass


class HttpClient:
    """GET requests to one port of a target, over persistent connections when the server keeps them open.

    A request costs a request, not a connection: against HTTPS a connection per request was a
    full TLS handshake per request, for the target as much as for us. At most ``connections``
    are open at once; past the first, another opens only when a request has waited
    ``grow_after`` seconds for a free one, so a quick server is asked over one connection and a
    slow one over several in parallel. A server that closes after each response (or speaks
    HTTP/1.0) gets a new connection per request, as it asks.
    """

    def __init__(self, target: Target, port: int, scheme: str, context: ScanContext, *, connections: int = 1,
                 grow_after: float = 0.0) -> None:
        self.target, self.port, self.scheme, self.context = target, port, scheme, context
        self.connections = max(1, connections)
        self.grow_after = grow_after
        self.opened = 0  # connections opened over the client's life
        self._idle: list[_Connection] = []
        self._count = 0  # connections open, in use or idle, or being opened
        self._released = asyncio.Event()

    async def get(self, path: str, *, max_bytes: int = MAX_RESPONSE_BYTES) -> HttpReply:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {_host_header(self.target, self.port, self.scheme)}\r\n"
            f"User-Agent: {USER_AGENT}\r\nAccept: */*\r\n\r\n"
        ).encode("latin-1")
        connection = await self._take()
        try:
            if connection is not None:
                try:
                    reply, reusable = await connection.get(request, self.context, max_bytes)
                except _Stale:
                    connection.writer.close()
                    connection = None
            if connection is None:
                connection = await self._open()
                reply, reusable = await connection.get(request, self.context, max_bytes)
        except BaseException:
            # Failed, timed out or cancelled half-way: what is left on that connection is unknown.
            if connection is not None:
                connection.writer.close()
            self._give_back(None)
            raise
        if reusable:
            self._give_back(connection)
        else:
            await connection.close()
            self._give_back(None)
        return reply

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()
            self._count -= 1

    async def _open(self) -> _Connection:
        ssl_context = _client_context() if self.scheme == "https" else None
        hostname = self.target.hostname
        sni = hostname if ssl_context and hostname and not is_ip_literal(hostname) else None
        reader, writer = await connections.open_connection(
            self.target.address, self.port, ssl=ssl_context, server_hostname=sni,
            ssl_handshake_timeout=self.context.read_timeout if ssl_context else None,
            timeout=self.context.connect_timeout + (self.context.read_timeout if ssl_context else 0),
        )
        self.opened += 1
        return _Connection(reader, writer)

    async def _take(self) -> _Connection | None:
        """An idle connection, or None when the caller is to open one (its place already counted)."""
        loop = asyncio.get_running_loop()
        since = loop.time()
        while True:
            if self._idle:
                return self._idle.pop()
            if self._count == 0 or (self._count < self.connections and loop.time() - since >= self.grow_after):
                self._count += 1
                return None
            self._released.clear()
            wait = None if self._count >= self.connections else max(0.0, since + self.grow_after - loop.time())
            try:
                await asyncio.wait_for(self._released.wait(), wait)
            except TimeoutError:
                pass

    def _give_back(self, connection: _Connection | None) -> None:
        if connection is None:
            self._count -= 1
        else:
            self._idle.append(connection)
        self._released.set()


def _classify(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, NotHttp):
        return "not-http", str(exc)
    if isinstance(exc, ssl.SSLError):
        return "tls-error", exc.reason or str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return "refused", str(exc)
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "reset", str(exc)
    if isinstance(exc, TimeoutError):
        return "timeout", "no answer in time"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "closed", "connection closed early"
    return "error", f"{exc.__class__.__name__}: {exc}"


def hsts_max_age(value: str) -> int | None:
    match = re.search(r"max-age\s*=\s*\"?(\d+)", value, re.IGNORECASE)
    return int(match.group(1)) if match else None


# --- sensitive paths --------------------------------------------------------------------------


def _head(reply: HttpReply, n: int = 4096) -> str:
    return reply.body[:n].decode("utf-8", "replace")


def _is_html(reply: HttpReply) -> bool:
    start = reply.body.lstrip()[:15].lower()
    return "html" in (reply.header("content-type") or "").lower() or start.startswith((b"<!doctype", b"<html"))


_GIT_HEAD = re.compile(rb"\A(?:ref: refs/[\x21-\x7e]+|[0-9a-f]{40}|[0-9a-f]{64})\s*\Z")
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
_HTPASSWD_LINE = re.compile(r"^([^:\s]+):(\$apr1\$|\$2[aby]\$|\{SHA\}|\$[56]\$|[./0-9A-Za-z]{13}$)")
_SQL = re.compile(r"(?im)^\s*(?:CREATE TABLE|INSERT INTO|DROP TABLE|-- MySQL dump|-- PostgreSQL database dump|"
                  r"-- MariaDB dump|PRAGMA foreign_keys)")


def _env_file(reply: HttpReply) -> bool:
    """Mostly KEY=VALUE lines (comments and blanks aside), not a page about environment variables."""
    if _is_html(reply):
        return False
    lines = [line for line in _head(reply).splitlines() if line.strip() and not line.lstrip().startswith("#")]
    pairs = sum(1 for line in lines if _ENV_LINE.match(line))
    return pairs >= 1 and pairs * 2 >= len(lines)


def _htpasswd(reply: HttpReply) -> bool:
    lines = [line for line in _head(reply).splitlines() if line.strip()]
    return bool(lines) and not _is_html(reply) and all(_HTPASSWD_LINE.match(line) for line in lines[:20])


def _listing(reply: HttpReply) -> bool:
    return bool(_LISTING.search(_head(reply)))


def _server_status(reply: HttpReply) -> bool:
    text = _head(reply, 8192)
    # Apache mod_status, or nginx's stub_status when mounted at this path.
    return "Apache Server Status for" in text or ("Active connections:" in text and "server accepts handled" in text)


def _phpinfo(reply: HttpReply) -> bool:
    text = _head(reply, 8192)
    return "phpinfo()" in text and "PHP Version" in text


def _actuator_env(reply: HttpReply) -> bool:
    text = _head(reply)
    return text.lstrip().startswith("{") and ('"propertySources"' in text or '"activeProfiles"' in text)


def _zip(reply: HttpReply) -> bool:
    return reply.body.startswith((b"PK\x03\x04", b"PK\x05\x06"))


def _gzip(reply: HttpReply) -> bool:
    return reply.body.startswith(b"\x1f\x8b\x08")


def _sql_dump(reply: HttpReply) -> bool:
    return not _is_html(reply) and bool(_SQL.search(_head(reply)))


def _ds_store(reply: HttpReply) -> bool:
    return reply.body.startswith(b"\x00\x00\x00\x01Bud1")


def _mask_env(text: str) -> str:
    out = []
    for line in text.splitlines():
        match = _ENV_LINE.match(line)
        out.append(f"{match.group(1)}=****" if match and match.group(2).strip() else line)
    return "\n".join(out)


def _mask_htpasswd(text: str) -> str:
    return "\n".join(f"{line.split(':', 1)[0]}:****" if ":" in line else line for line in text.splitlines())


@dataclass(frozen=True, slots=True)
class SensitivePath:
    """A path no public site should serve, and how to tell a real hit from a page that only answers 200."""

    path: str
    rule_id: str
    title: str
    severity: str
    cwe: int
    remediation: str
    is_real: Callable[[HttpReply], bool]
    mask: Callable[[str], str] | None = None  # shows the first bytes without the secrets in them


_BACKUP_FIX = "Remove backups and dumps from the web root; keep them where only the backup system can read them."
_LISTING_FIX = "Disable automatic directory indexes (autoindex off, Options -Indexes)."
SENSITIVE_PATHS: tuple[SensitivePath, ...] = (
    SensitivePath("/.git/HEAD", "http-exposed-git", "Git repository exposed at /.git/", "high", 527,
                  "Deny access to /.git (and every dotted directory) in the web server, or deploy without it.",
                  lambda r: bool(_GIT_HEAD.match(r.body[:200]))),
    SensitivePath("/.env", "http-exposed-env", "Environment file (.env) served publicly", "high", 538,
                  "Move .env out of the web root, deny dotfiles, and rotate every secret it held.", _env_file,
                  _mask_env),
    SensitivePath("/.htpasswd", "http-exposed-htpasswd", "Password file (.htpasswd) served publicly", "high", 538,
                  "Deny access to .ht* files and move password files out of the web root; change the passwords.",
                  _htpasswd, _mask_htpasswd),
    SensitivePath("/server-status", "http-server-status", "Server status page exposed", "medium", 200,
                  "Restrict /server-status to localhost or an admin network (Require local).", _server_status),
    SensitivePath("/phpinfo.php", "http-phpinfo", "phpinfo() page exposed", "medium", 200,
                  "Delete phpinfo pages from production servers.", _phpinfo),
    SensitivePath("/actuator/env", "http-exposed-actuator-env", "Spring Boot actuator /env exposed", "high", 215,
                  "Expose only the health actuator publicly (management.endpoints.web.exposure.include=health).",
                  _actuator_env),
    SensitivePath("/backup.zip", "http-exposed-backup", "Backup archive downloadable", "high", 530, _BACKUP_FIX, _zip),
    SensitivePath("/backup.tar.gz", "http-exposed-backup", "Backup archive downloadable", "high", 530, _BACKUP_FIX,
                  _gzip),
    SensitivePath("/db.sql", "http-exposed-database-dump", "Database dump downloadable", "high", 530, _BACKUP_FIX,
                  _sql_dump),
    SensitivePath("/dump.sql", "http-exposed-database-dump", "Database dump downloadable", "high", 530, _BACKUP_FIX,
                  _sql_dump),
    SensitivePath("/backup.sql", "http-exposed-database-dump", "Database dump downloadable", "high", 530,
                  _BACKUP_FIX, _sql_dump),
    SensitivePath("/files/", "http-directory-listing", "Directory listing enabled at /files/", "medium", 548,
                  _LISTING_FIX, _listing),
    SensitivePath("/backup/", "http-directory-listing", "Directory listing enabled at /backup/", "medium", 548,
                  _LISTING_FIX, _listing),
    SensitivePath("/backups/", "http-directory-listing", "Directory listing enabled at /backups/", "medium", 548,
                  _LISTING_FIX, _listing),
    SensitivePath("/uploads/", "http-directory-listing", "Directory listing enabled at /uploads/", "medium", 548,
                  _LISTING_FIX, _listing),
    SensitivePath("/.DS_Store", "http-exposed-ds-store", "macOS .DS_Store file exposed (lists directory contents)",
                  "low", 538, "Deny dotfiles in the web server and keep .DS_Store out of deployments.", _ds_store),
)


class PathBudget:
    """Requests and seconds one host may spend on sensitive paths, shared by all its ports."""

    def __init__(self, requests: int, seconds: float) -> None:
        self.left = requests
        self.deadline = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def take(self) -> bool:
        if self.left <= 0 or self.remaining() <= 0:
            return False
        self.left -= 1
        return True


def _printable(data: bytes, limit: int = 96) -> str:
    """The first bytes as text a person can read: binary bytes escaped."""
    return "".join(chr(b) if 32 <= b < 127 or b in (9, 10) else f"\\x{b:02x}" for b in data[:limit])


def _page_text(reply: HttpReply, path: str) -> str:
    # A soft-404 page often repeats the path it was asked for; take it out before comparing.
    text = _head(reply, 2048)
    for spelling in {path, path.lstrip("/"), path.rstrip("/")} - {""}:
        text = text.replace(spelling, "")
    return " ".join(text.split())


def same_page(reply: HttpReply, path: str, baseline: HttpReply, baseline_path: str) -> bool:
    """Does ``reply`` to ``path`` look like the page a random path got (a soft 404)?"""
    if reply.status != baseline.status:
        return False
    ours, theirs = _page_text(reply, path), _page_text(baseline, baseline_path)
    return ours == theirs or difflib.SequenceMatcher(None, ours, theirs, autojunk=False).ratio() >= 0.9


# Missing browser protections: the absence is seen, the risk is inferred; it holds for a page a
# browser renders (HTML), hardly for an API's JSON or a download.
BROWSER_HEADER_RULES = frozenset({"http-missing-csp", "http-missing-x-frame-options",
                                  "http-missing-x-content-type-options", "http-missing-referrer-policy"})


def http_certainty(rule_id: str, path: str, root: HttpReply) -> dict[str, Any]:
    """How sure an HTTP finding is: what an answer shows is proven; a missing browser header is a
    guess about the risk, surer on an HTML page than on anything else."""
    if rule_id not in BROWSER_HEADER_RULES:
        return certainty(1.0, "proven", f"seen in the answer to GET {path}")
    content_type = (root.header("content-type") or "").split(";")[0].strip().lower()
    if content_type in ("text/html", "application/xhtml+xml"):
        return certainty(0.9, "inferred", "the header is missing from an HTML page a browser renders")
    shown = content_type or "no content type"
    return certainty(0.5, "inferred", f"the header is missing, but the answer is {shown}, "
                                      "which a browser may never render as a page")


@register
class HttpScanner(Scanner):
    name = "http"
    version = "1.0"
    description = ("HTTP security headers, version disclosure, directory listing, cookie flags, HTTPS redirect, "
                   "exposed files (.git, .env, backups, dumps, status pages)")
    options = {
        "ports": (list, None),  # explicit ports; scheme detected (TLS first on typical HTTPS ports)
        "paths": (list, None),  # paths to fetch besides "/"
        "sensitive_paths": (bool, True),  # look for SENSITIVE_PATHS (exposed .git, .env, backups...)
        "path_budget": (int, None),  # sensitive-path requests per host (default PATH_BUDGET)
        "path_seconds": (int, None),  # seconds per host for sensitive paths (default PATH_SECONDS)
    }
    default_budget = 60.0

    def ports_for(self, target: Target, options: dict[str, Any]) -> list[tuple[int, str]]:
        """(port, scheme guess) pairs. Explicit ports win, then discovery, then typical web ports."""
        # Reserved ports (the sandbox's) are never probed, whoever asks.
        return [(p, s) for p, s in self._ports_for(target, options) if p not in RESERVED_PORTS]

    def _ports_for(self, target: Target, options: dict[str, Any]) -> list[tuple[int, str]]:
        if options.get("ports"):
            ports = options["ports"]
            if not all(isinstance(p, int) and 0 < p < 65536 for p in ports):
                raise ScannerError("http: ports must be integers between 1 and 65535")
            return [(p, "https" if p in HTTPS_PORTS else "http") for p in sorted(set(ports))]
        web = {}
        for service in target.services:
            if service.service.startswith("http") or service.service in {"https", "http-proxy"}:
                web[service.port] = "https" if service.tls or service.service == "https" else "http"
        if web:
            return sorted(web.items())
        typical = [(p, "https" if p in HTTPS_PORTS else "http") for p in sorted(target.ports)
                   if p in HTTPS_PORTS or p in HTTP_PORTS]
        if typical or target.ports:
            return typical
        return [(p, "https" if p in HTTPS_PORTS else "http") for p in DEFAULT_PORTS]

    async def scan(self, target: Target, options: dict[str, Any], context: ScanContext) -> ScanResult:
        result = self.new_result(target, options)
        paths = ["/"] + [p for p in options.get("paths") or () if p != "/"]
        if not all(isinstance(p, str) and p.startswith("/") and not any(c in p for c in " \r\n") for p in paths):
            raise ScannerError("http: paths must start with '/' and contain no spaces or line breaks")
        result.data = {"ports": {}}
        limit = asyncio.Semaphore(max(1, min(context.concurrency, 8)))
        budget = None
        if options.get("sensitive_paths", True):
            budget = PathBudget(options.get("path_budget") or PATH_BUDGET, options.get("path_seconds") or PATH_SECONDS)

        async def one(port: int, scheme: str) -> None:
            async with limit:
                await self._scan_port(target, port, scheme, paths, context, result, budget)

        await asyncio.gather(*(one(port, scheme) for port, scheme in self.ports_for(target, options)))
        result.open_ports.sort()
        result.findings.sort(key=lambda f: (f.port or 0, f.rule_id, f.location))
        return result

    async def _first_reply(self, target, port, scheme, context, result
                           ) -> tuple[str, HttpReply | None, bool, HttpClient | None]:
        """Fetch "/" with the guessed scheme, then the other one; (scheme, reply, definitive answer, the client
        that got the reply: the port's later requests go over its connection)."""
        outcomes = []
        for candidate in (scheme, "http" if scheme == "https" else "https"):
            client = HttpClient(target, port, candidate, context, connections=PATH_CONCURRENCY, grow_after=PATH_GROW_AFTER)
            try:
                reply = await client.get("/")
            except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError, NotHttp) as exc:
                await client.close()
                outcome, detail = _classify(exc)
                result.attempts.append({"port": port, "probe": f"{candidate} GET /", "outcome": outcome,
                                        "detail": detail})
                outcomes.append(outcome)
                if outcome in {"refused", "timeout"}:
                    break  # the other scheme would meet the same closed or silent port
                continue
            result.attempts.append({"port": port, "probe": f"{candidate} GET /", "outcome": "ok",
                                    "detail": f"{reply.status}"})
            return candidate, reply, True, client
        return scheme, None, "timeout" not in outcomes and "error" not in outcomes, None

    async def _scan_port(self, target: Target, port: int, scheme: str, paths: list[str], context: ScanContext,
                         result: ScanResult, budget: PathBudget | None = None) -> None:
        scheme, reply, definitive, client = await self._first_reply(target, port, scheme, context, result)
        if reply is None or client is None:
            if definitive:
                result.coverage.append(Coverage(host=target.address, ports=(port,)))
            return
        try:
            await self._inspect_port(target, port, scheme, reply, client, paths, result, budget)
        finally:
            await client.close()

    async def _inspect_port(self, target: Target, port: int, scheme: str, reply: HttpReply, client: HttpClient,
                            paths: list[str], result: ScanResult, budget: PathBudget | None) -> None:
        result.open_ports.append(port)
        base = f"{scheme}://{_host_header(target, port, scheme)}"
        findings: list[FindingCandidate] = []

        def finding(rule_id: str, title: str, severity: str, *, cwe: int | None, remediation: str, path: str = "/",
                    suffix: str = "", description: str = "", evidence: dict | None = None) -> None:
            findings.append(FindingCandidate(
                source=self.name, rule_id=rule_id, title=title, host=target.address, severity=severity, cwe=cwe,
                port=port, location=f"{base}{path}{suffix}", description=description, remediation=remediation,
                evidence={**(evidence or {}), **http_certainty(rule_id, path, reply)},
            ))

        port_data = {"scheme": scheme, "url": f"{base}/", "status": reply.status, "headers": reply.headers,
                     "tls_version": reply.tls_version, "paths": {}}
        result.data["ports"][str(port)] = port_data
        self._check_transport(reply, scheme, finding)
        self._check_headers(reply, scheme, finding)
        self._check_disclosure(reply, finding)
        self._check_cookies(reply, scheme, finding)
        complete = True
        replies = {"/": reply}
        for path in paths[1:]:
            try:
                replies[path] = await client.get(path)
                result.attempts.append({"port": port, "probe": f"{scheme} GET {path}", "outcome": "ok",
                                        "detail": f"{replies[path].status}"})
                port_data["paths"][path] = replies[path].status
            except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError, NotHttp) as exc:
                outcome, detail = _classify(exc)
                result.attempts.append({"port": port, "probe": f"{scheme} GET {path}", "outcome": outcome,
                                        "detail": detail})
                complete = False
        for path, page in replies.items():
            if page.status == 200 and _LISTING.search(page.body[:4096].decode("utf-8", "replace")):
                finding("http-directory-listing", f"Directory listing enabled at {path}", "medium", cwe=548,
                        path=path, remediation="Disable automatic directory indexes (autoindex off, Options -Indexes).",
                        evidence={"status": page.status, "excerpt": page.body[:200].decode("utf-8", "replace")})
        if budget is not None:
            checked = await self._sensitive(port, scheme, client, budget, set(paths), finding, port_data, result)
            complete = complete and checked

        result.findings.extend(findings)
        server = reply.header("server") or ""
        product = _PRODUCT.match(server)
        result.services.append(ServiceObservation(
            host=target.address, port=port, service="https" if scheme == "https" else "http", tls=scheme == "https",
            product=product.group(1) if product else "", version=product.group(2) if product else "",
            banner=server, confidence=1.0, evidence={"status": reply.status, "server": server},
        ))
        if complete:
            result.coverage.append(Coverage(host=target.address, ports=(port,)))

    async def _sensitive(self, port: int, scheme: str, client: HttpClient, budget: PathBudget, asked: set[str],
                         finding, port_data: dict[str, Any], result: ScanResult) -> bool:
        """Probe SENSITIVE_PATHS on one port; False when the budget or time limit cut the checks short."""
        seen: dict[str, Any] = {}
        port_data["sensitive"] = seen
        cut_short = False

        async def get(path: str) -> HttpReply | None:
            nonlocal cut_short
            if not budget.take():
                cut_short = True
                seen[path] = "budget"
                return None
            try:
                async with asyncio.timeout(max(budget.remaining(), 0.001)):
                    reply = await client.get(path, max_bytes=SENSITIVE_BYTES)
            except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError, NotHttp) as exc:
                outcome, detail = _classify(exc)
                cut_short = True
                seen[path] = outcome
                result.attempts.append({"port": port, "probe": f"{scheme} GET {path}", "outcome": outcome,
                                        "detail": detail})
                return None
            seen[path] = reply.status
            return reply

        # What this site says for paths that cannot exist: a file-like and a directory-like one.
        token = f"/watchpost-{secrets.token_hex(6)}"
        baselines = [(p, r) for p in (token, f"{token}/") if (r := await get(p)) is not None and r.status == 200]
        limit = asyncio.Semaphore(PATH_CONCURRENCY)

        async def check(item: SensitivePath) -> None:
            async with limit:
                reply = await get(item.path)
            if reply is None or reply.status != 200 or not item.is_real(reply):
                return
            if any(same_page(reply, item.path, base, base_path) for base_path, base in baselines):
                seen[item.path] = "soft-404"
                return
            # Masked files are masked whole lines first, then cut: a cut never splits a secret out of its mask.
            excerpt = item.mask(_printable(reply.body, 1024))[:300] if item.mask else _printable(reply.body)
            length = reply.header("content-length")
            finding(item.rule_id, item.title, item.severity, cwe=item.cwe, remediation=item.remediation,
                    path=item.path, description=f"GET {item.path} answered 200 with what the path promises.",
                    evidence={"status": reply.status, "content_type": reply.header("content-type") or "",
                              "length": int(length) if length and length.isdigit() else len(reply.body),
                              "first_bytes": excerpt})

        await asyncio.gather(*(check(item) for item in SENSITIVE_PATHS if item.path not in asked))
        return not cut_short

    def _check_transport(self, reply: HttpReply, scheme: str, finding) -> None:
        if scheme != "http":
            return
        location = reply.header("location") or ""
        if 300 <= reply.status < 400 and location.lower().startswith("https://"):
            return
        finding("http-no-https-redirect", "Plain HTTP served without a redirect to HTTPS", "medium", cwe=319,
                remediation="Redirect every plain-HTTP request to HTTPS (301) and enable HSTS there.",
                description="Credentials and session cookies sent over this port travel in clear text.",
                evidence={"status": reply.status, "location": location})

    def _check_headers(self, reply: HttpReply, scheme: str, finding) -> None:
        if scheme == "https":
            hsts = reply.header("strict-transport-security")
            if hsts is None:
                finding("http-missing-hsts", "Strict-Transport-Security header missing", "medium", cwe=319,
                        remediation="Send Strict-Transport-Security: max-age=31536000; includeSubDomains.")
            elif (hsts_max_age(hsts) or 0) < HSTS_MIN_SECONDS:
                finding("http-weak-hsts", "Strict-Transport-Security max-age is too short", "low", cwe=319,
                        remediation="Use a max-age of at least 15552000 (180 days); 31536000 is usual.",
                        evidence={"strict-transport-security": hsts})
        if 300 <= reply.status < 400:
            return  # a redirect renders no content: framing and sniffing do not apply
        csp = reply.header("content-security-policy")
        if csp is None:
            finding("http-missing-csp", "Content-Security-Policy header missing", "low", cwe=693,
                    remediation="Send a Content-Security-Policy restricting script, object and frame sources.")
        xfo = reply.header("x-frame-options")
        if xfo is None and "frame-ancestors" not in (csp or "").lower():
            finding("http-missing-x-frame-options", "No clickjacking protection (X-Frame-Options / frame-ancestors)",
                    "low", cwe=1021,
                    remediation="Send X-Frame-Options: DENY (or a CSP frame-ancestors directive).")
        xcto = reply.header("x-content-type-options")
        if (xcto or "").strip().lower() != "nosniff":
            finding("http-missing-x-content-type-options", "X-Content-Type-Options: nosniff missing", "low", cwe=693,
                    remediation="Send X-Content-Type-Options: nosniff.", evidence={"x-content-type-options": xcto})
        if reply.header("referrer-policy") is None:
            finding("http-missing-referrer-policy", "Referrer-Policy header missing", "info", cwe=200,
                    remediation="Send Referrer-Policy: strict-origin-when-cross-origin (or stricter).")

    def _check_disclosure(self, reply: HttpReply, finding) -> None:
        server = reply.header("server")
        if server and _VERSIONED.search(server):
            finding("http-server-version-disclosure", f"Server version disclosed: {server}", "low", cwe=200,
                    remediation="Hide the version in the Server header (server_tokens off, ServerTokens Prod).",
                    evidence={"server": server})
        disclosed = {name: reply.header(name) for name in DISCLOSURE_HEADERS if reply.header(name)}
        if disclosed:
            finding("http-technology-disclosure", "Technology disclosed by " + ", ".join(disclosed), "low", cwe=200,
                    remediation="Remove X-Powered-By and similar headers from responses.", evidence=disclosed)

    def _check_cookies(self, reply: HttpReply, scheme: str, finding) -> None:
        for header in reply.all("set-cookie"):
            cookie = Cookie.parse(header)
            attrs = cookie.attributes
            suffix = f"#cookie={cookie.name}"
            evidence = {"cookie": cookie.name, "set-cookie": header}
            if scheme == "https" and "secure" not in attrs:
                finding("http-cookie-missing-secure", f"Cookie {cookie.name} lacks the Secure flag", "medium",
                        cwe=614, suffix=suffix, evidence=evidence,
                        remediation="Set the Secure attribute so the cookie is never sent over plain HTTP.")
            if "httponly" not in attrs:
                finding("http-cookie-missing-httponly", f"Cookie {cookie.name} lacks the HttpOnly flag", "low",
                        cwe=1004, suffix=suffix, evidence=evidence,
                        remediation="Set HttpOnly on cookies scripts do not need (session cookies above all).")
            samesite = attrs.get("samesite", None)
            if samesite is None:
                finding("http-cookie-missing-samesite", f"Cookie {cookie.name} lacks the SameSite attribute", "low",
                        cwe=1275, suffix=suffix, evidence=evidence,
                        remediation="Set SameSite=Lax (or Strict) on the cookie.")
            elif samesite.lower() == "none" and "secure" not in attrs:
                finding("http-cookie-samesite-none-insecure", f"Cookie {cookie.name} has SameSite=None without Secure",
                        "low", cwe=1275, suffix=suffix, evidence=evidence,
                        remediation="SameSite=None requires Secure; browsers reject the cookie otherwise.")
