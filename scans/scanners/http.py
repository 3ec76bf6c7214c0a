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
import re
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scans.candidates import Coverage, FindingCandidate, ScanResult, ServiceObservation
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
PATH_CONCURRENCY = 4  # sensitive-path requests in flight per port


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


def _client_context() -> ssl.SSLContext:
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


def parse_reply(data: bytes) -> HttpReply:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    lines = head.decode("latin-1").splitlines()
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
    reply = HttpReply(int(parts[1]), parts[2] if len(parts) > 2 else "", headers)
    if (reply.header("transfer-encoding") or "").lower() == "chunked":
        body = _dechunk(body)
    length = reply.header("content-length")
    if length and length.isdigit():
        body = body[: int(length)]
    reply.body = body
    return reply


def _dechunk(body: bytes) -> bytes:
    out, rest = bytearray(), body
    while rest:
        size_line, sep, rest = rest.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if not sep or size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2:]
    return bytes(out)


async def fetch(target: Target, port: int, scheme: str, path: str, context: ScanContext,
                max_bytes: int = MAX_RESPONSE_BYTES) -> HttpReply:
    """One GET with ``Connection: close``; reads to EOF, the declared length or ``max_bytes``."""
    ssl_context = _client_context() if scheme == "https" else None
    sni = target.hostname if target.hostname and not is_ip_literal(target.hostname) else None
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(target.address, port, ssl=ssl_context, server_hostname=sni if ssl_context else None,
                                ssl_handshake_timeout=context.read_timeout if ssl_context else None),
        context.connect_timeout + (context.read_timeout if ssl_context else 0),
    )
    try:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {_host_header(target, port, scheme)}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode("latin-1"))
        await writer.drain()
        data = bytearray()
        truncated = False
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), context.read_timeout)
            if not chunk:
                break
            data += chunk
            if len(data) >= max_bytes:
                truncated = True
                break
            if _complete(data):
                break
        reply = parse_reply(bytes(data))
        reply.truncated = truncated
        tls = writer.get_extra_info("ssl_object")
        reply.tls_version = tls.version() if tls else ""
        return reply
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 1)
        except (OSError, ssl.SSLError, TimeoutError):
            pass


def _complete(data: bytearray) -> bool:
    # A server that ignores "Connection: close" must not cost a read timeout.
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    match = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", bytes(data[:end]))
    return bool(match) and len(data) - end - 4 >= int(match.group(1))


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

    async def _first_reply(self, target, port, scheme, context, result) -> tuple[str, HttpReply | None, bool]:
        """Fetch "/" with the guessed scheme, then the other one; (scheme, reply, definitive answer)."""
        outcomes = []
        for candidate in (scheme, "http" if scheme == "https" else "https"):
            try:
                reply = await fetch(target, port, candidate, "/", context)
            except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError, NotHttp) as exc:
                outcome, detail = _classify(exc)
                result.attempts.append({"port": port, "probe": f"{candidate} GET /", "outcome": outcome,
                                        "detail": detail})
                outcomes.append(outcome)
                if outcome in {"refused", "timeout"}:
                    break  # the other scheme would meet the same closed or silent port
                continue
            result.attempts.append({"port": port, "probe": f"{candidate} GET /", "outcome": "ok",
                                    "detail": f"{reply.status}"})
            return candidate, reply, True
        return scheme, None, "timeout" not in outcomes and "error" not in outcomes

    async def _scan_port(self, target: Target, port: int, scheme: str, paths: list[str], context: ScanContext,
                         result: ScanResult, budget: PathBudget | None = None) -> None:
        scheme, reply, definitive = await self._first_reply(target, port, scheme, context, result)
        if reply is None:
            if definitive:
                result.coverage.append(Coverage(host=target.address, ports=(port,)))
            return
        result.open_ports.append(port)
        base = f"{scheme}://{_host_header(target, port, scheme)}"
        findings: list[FindingCandidate] = []

        def finding(rule_id: str, title: str, severity: str, *, cwe: int | None, remediation: str, path: str = "/",
                    suffix: str = "", description: str = "", evidence: dict | None = None) -> None:
            findings.append(FindingCandidate(
                source=self.name, rule_id=rule_id, title=title, host=target.address, severity=severity, cwe=cwe,
                port=port, location=f"{base}{path}{suffix}", description=description, remediation=remediation,
                evidence=evidence or {},
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
                replies[path] = await fetch(target, port, scheme, path, context)
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
            checked = await self._sensitive(target, port, scheme, context, budget, set(paths), finding, port_data,
                                            result)
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

    async def _sensitive(self, target: Target, port: int, scheme: str, context: ScanContext, budget: PathBudget,
                         asked: set[str], finding, port_data: dict[str, Any], result: ScanResult) -> bool:
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
                reply = await asyncio.wait_for(fetch(target, port, scheme, path, context, max_bytes=SENSITIVE_BYTES),
                                               timeout=max(budget.remaining(), 0.001))
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
