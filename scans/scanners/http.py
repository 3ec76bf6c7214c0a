"""HTTP inspector: security headers, version disclosure, directory listings, cookies.

One ``GET`` per port and path, to ``Target.address`` only, with ``Host:`` set to the
target's name (or its address). HTTPS certificates are not verified here: the TLS
inspector judges them. Redirects are reported, never followed, so the scan never
leaves the checked address.
"""

from __future__ import annotations

import asyncio
import re
import ssl
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


async def fetch(target: Target, port: int, scheme: str, path: str, context: ScanContext) -> HttpReply:
    """One GET with ``Connection: close``; reads to EOF or the declared length."""
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
            if len(data) >= MAX_RESPONSE_BYTES:
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


@register
class HttpScanner(Scanner):
    name = "http"
    version = "1.0"
    description = "HTTP security headers, version disclosure, directory listing, cookie flags, HTTPS redirect"
    options = {
        "ports": (list, None),  # explicit ports; scheme detected (TLS first on typical HTTPS ports)
        "paths": (list, None),  # paths to fetch besides "/"
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

        async def one(port: int, scheme: str) -> None:
            async with limit:
                await self._scan_port(target, port, scheme, paths, context, result)

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
                         result: ScanResult) -> None:
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
