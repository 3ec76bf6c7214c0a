"""A small HTTP/1.1 server for the lab, with routes and configurable headers.

It speaks just enough HTTP for scanners to be tested against real sockets: request
line, headers, Content-Length bodies, and persistent connections as HTTP/1.1 servers
(nginx, Apache) keep them: open after a response unless the client asked to close (or
spoke HTTP/1.0 without keep-alive), closed after ``KEEP_ALIVE_SECONDS`` of quiet. Routes
map (method, path) to a response or to a function of the request; ``"*"`` matches any
method.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from scans.lab.base import Handler

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
KEEP_ALIVE_SECONDS = 5.0  # Apache's KeepAliveTimeout


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    version: str = "HTTP/1.1"

    @property
    def keep_alive(self) -> bool:
        """Whether the client lets the connection stay open after the response (RFC 9112, 9.3)."""
        connection = {token.strip().lower() for token in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


@dataclass(slots=True)
class HttpResponse:
    status: int = 200
    body: bytes | str = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "text/html; charset=utf-8"

    def encoded(self, default_headers: list[tuple[str, str]], *, keep_alive: bool = False) -> bytes:
        body = self.body.encode() if isinstance(self.body, str) else self.body
        reason = REASONS.get(self.status, "Status")
        lines = [f"HTTP/1.1 {self.status} {reason}"]
        names = {name.lower() for name, _ in self.headers}
        for name, value in default_headers:
            if name.lower() not in names:
                lines.append(f"{name}: {value}")
        lines += [f"{name}: {value}" for name, value in self.headers]
        if "content-type" not in names:
            lines.append(f"Content-Type: {self.content_type}")
        lines += [f"Content-Length: {len(body)}", f"Connection: {'keep-alive' if keep_alive else 'close'}", "", ""]
        return "\r\n".join(lines).encode("latin-1") + body


REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}

Route = HttpResponse | Callable[[HttpRequest], HttpResponse]


def json_response(data: object, status: int = 200) -> HttpResponse:
    import json

    return HttpResponse(status=status, body=json.dumps(data), content_type="application/json")


def http_handler(
    routes: dict[tuple[str, str], Route],
    *,
    server_header: str | None = "lab-httpd/1.0",
    headers: list[tuple[str, str]] | None = None,
    not_found: Route | None = None,
    keep_alive: bool = True,
) -> Handler:
    """Build a lab handler serving ``routes``; ``headers`` are added to every response.

    ``not_found`` answers every other request: a response, or a function of the request
    (a site that answers 200 to everything, echoing the path, is a "soft 404").
    ``keep_alive=False`` closes after every response, as a server with keep-alive off does."""
    default_headers = list(headers or [])
    if server_header:
        default_headers.insert(0, ("Server", server_header))
    missing = not_found or HttpResponse(status=404, body="<html><head><title>404 Not Found</title></head></html>")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        if request is None:
            writer.write(HttpResponse(status=400, body="bad request").encoded(default_headers))
            await writer.drain()
            return
        while request is not None:
            route = routes.get((request.method, request.path)) or routes.get(("*", request.path)) or missing
            response = route(request) if callable(route) else route
            persistent = keep_alive and request.keep_alive
            writer.write(response.encoded(default_headers, keep_alive=persistent))
            await writer.drain()
            if not persistent:
                return
            # The next request on the same connection; a client that hangs up or goes quiet ends it.
            request = await read_request(reader, timeout=KEEP_ALIVE_SECONDS)

    handle.__name__ = "http"
    return handle


async def read_request(reader: asyncio.StreamReader, *, timeout: float = 10) -> HttpRequest | None:
    """The next request, or None when it is malformed, cut off, or does not come within ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        return None
    if len(head) > MAX_HEADER_BYTES:
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = b""
    length = headers.get("content-length", "0")
    if length.isdigit() and 0 < int(length) <= MAX_BODY_BYTES:
        body = await reader.readexactly(int(length))
    return HttpRequest(method=parts[0], path=parts[1], headers=headers, body=body, version=parts[2])


# --- sites exposing what they should not (for the HTTP inspector's sensitive paths) ---------

GIT_HEAD = "ref: refs/heads/main\n"
DOT_ENV = (
    "APP_NAME=billing\nAPP_ENV=production\nAPP_KEY=base64:3q2+7w9XbGQ0l4Pz1Yy7rjv8fHcK0aT1sH2dM5nB6cE=\n"
    "DB_CONNECTION=pgsql\nDB_HOST=10.0.3.12\nDB_PASSWORD=Winter2026!\n"
)
SQL_DUMP = (
    "-- MySQL dump 10.13  Distrib 8.0.35, for Linux (x86_64)\n--\n-- Host: localhost    Database: shop\n"
    "-- ------------------------------------------------------\nCREATE TABLE `users` (\n  `id` int NOT NULL,\n"
    "  `email` varchar(255) NOT NULL,\n  `password_hash` char(60) NOT NULL\n);\n"
    "INSERT INTO `users` VALUES (1,'admin@shop.test','$2y$10$abcdefghijklmnopqrstuv');\n"
)
# The first bytes of a real ZIP archive: local file header signature, version, flags, a name.
ZIP_ARCHIVE = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 16 + b"\x09\x00\x00\x00www/index.php" + b"\x00" * 64
SERVER_STATUS = (
    "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html><head>\n<title>Apache Status</title>\n"
    "</head><body>\n<h1>Apache Server Status for 127.0.0.1 (via 127.0.0.1)</h1>\n\n<dl><dt>Server Version: "
    "Apache/2.4.57 (Debian)</dt>\n<dt>Server MPM: event</dt>\n</dl>\n</body></html>\n"
)
PHPINFO = (
    "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\">"
    "<head>\n<title>PHP 8.2.7 - phpinfo()</title><meta name=\"ROBOTS\" content=\"NOINDEX,NOFOLLOW,NOARCHIVE\" />"
    "</head>\n<body><div class=\"center\">\n<table>\n<tr class=\"h\"><td>\n<h1 class=\"p\">PHP Version 8.2.7</h1>"
    "\n</td></tr>\n</table>\n</div></body></html>\n"
)


def directory_listing(path: str, names: list[str]) -> str:
    """An Apache-style autoindex page for ``path``."""
    rows = "".join(f'<tr><td><a href="{n}">{n}</a></td><td align="right">2026-11-20 10:00  </td></tr>\n' for n in names)
    return (
        f"<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html>\n <head>\n  <title>Index of {path}</title>\n"
        f" </head>\n <body>\n<h1>Index of {path}</h1>\n  <table>\n{rows}</table>\n</body></html>\n"
    )


def exposed_site_handler(server_header: str = "Apache/2.4.57 (Debian)", *, keep_alive: bool = True) -> Handler:
    """A web server leaking what careless deployments leak: a Git checkout, a .env, an Apache
    status page, phpinfo(), directory indexes and backups. Anything else is a real 404."""
    routes: dict[tuple[str, str], Route] = {
        ("GET", "/"): HttpResponse(body="<html><head><title>Shop</title></head><body>Welcome</body></html>"),
        ("GET", "/.git/HEAD"): HttpResponse(body=GIT_HEAD, content_type="text/plain"),
        ("GET", "/.env"): HttpResponse(body=DOT_ENV, content_type="text/plain"),
        ("GET", "/server-status"): HttpResponse(body=SERVER_STATUS),
        ("GET", "/phpinfo.php"): HttpResponse(body=PHPINFO),
        ("GET", "/files/"): HttpResponse(body=directory_listing("/files", ["invoice-2026-10.pdf", "price-list.xlsx"])),
        ("GET", "/uploads/"): HttpResponse(body=directory_listing("/uploads", ["avatar-17.png"])),
        ("GET", "/backup.zip"): HttpResponse(body=ZIP_ARCHIVE, content_type="application/zip"),
        ("GET", "/db.sql"): HttpResponse(body=SQL_DUMP, content_type="application/sql"),
    }
    return http_handler(routes, server_header=server_header, keep_alive=keep_alive)


def soft_404_handler(*, echo_path: bool = True, status: int = 200) -> Handler:
    """A site answering ``status`` (200) to every path with the same page (a single-page app's
    catch-all, a parked domain); with ``echo_path`` the page names the path it was asked for."""

    def page(request: HttpRequest) -> HttpResponse:
        said = f"<p>Sorry, {request.path} was not found.</p>" if echo_path else "<p>Sorry, not found.</p>"
        return HttpResponse(status=status, body=f"<html><head><title>Shop</title></head><body>{said}</body></html>")

    return http_handler({}, not_found=page)


def lookalike_handler() -> Handler:
    """A site whose pages only look sensitive: a .git/HEAD that is an HTML page, a .env that is
    prose, an index page that does not list a directory. Nothing here is a finding."""
    html = "<html><head><title>Docs</title></head><body>{}</body></html>"
    routes: dict[tuple[str, str], Route] = {
        ("GET", "/"): HttpResponse(body=html.format("Welcome")),
        ("GET", "/.git/HEAD"): HttpResponse(body=html.format("Our Git guide: what HEAD means")),
        ("GET", "/.env"): HttpResponse(body="Environment variables are documented on the wiki.",
                                       content_type="text/plain"),
        ("GET", "/backup/"): HttpResponse(body=html.format("Backups run nightly.")),
        ("GET", "/backup.zip"): HttpResponse(body=html.format("No backups here")),
        ("GET", "/db.sql"): HttpResponse(body="SELECT 1;", content_type="text/plain"),
    }
    return http_handler(routes)
