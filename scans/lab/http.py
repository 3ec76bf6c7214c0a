"""A small HTTP/1.1 server for the lab, with routes and configurable headers.

It speaks just enough HTTP for scanners to be tested against real sockets: request
line, headers, Content-Length bodies, keep-alive off. Routes map (method, path) to a
response or to a function of the request; ``"*"`` matches any method.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from scans.lab.base import Handler

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""


@dataclass(slots=True)
class HttpResponse:
    status: int = 200
    body: bytes | str = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "text/html; charset=utf-8"

    def encoded(self, default_headers: list[tuple[str, str]]) -> bytes:
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
        lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
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
    not_found: HttpResponse | None = None,
) -> Handler:
    """Build a lab handler serving ``routes``; ``headers`` are added to every response."""
    default_headers = list(headers or [])
    if server_header:
        default_headers.insert(0, ("Server", server_header))
    missing = not_found or HttpResponse(status=404, body="<html><head><title>404 Not Found</title></head></html>")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        if request is None:
            writer.write(HttpResponse(status=400, body="bad request").encoded(default_headers))
        else:
            route = routes.get((request.method, request.path)) or routes.get(("*", request.path)) or missing
            response = route(request) if callable(route) else route
            writer.write(response.encoded(default_headers))
        await writer.drain()

    handle.__name__ = "http"
    return handle


async def read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
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
    return HttpRequest(method=parts[0], path=parts[1], headers=headers, body=body)
