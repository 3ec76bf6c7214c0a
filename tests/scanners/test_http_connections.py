"""The HTTP inspector's connections: requests to a port share persistent connections, and a
server that closes them (after each response, between requests, or mid-body) is still read right."""

from __future__ import annotations

import asyncio
import socket

import pytest

from scans.lab import Lab
from scans.lab.http import HttpResponse, exposed_site_handler, http_handler, read_request
from scans.scanners import ScanContext, Target, get_scanner
from scans.scanners.http import PATH_CONCURRENCY, SENSITIVE_PATHS, HttpClient

ADDRESS = "127.0.4.44"
SENSITIVE_RULES = {item.rule_id for item in SENSITIVE_PATHS}


@pytest.fixture(scope="module")
def lab():
    with Lab() as lab:
        yield lab


def counting(handler, connections: list):
    """The handler, noting each connection the server accepts."""

    async def handle(reader, writer):
        connections.append(1)
        await handler(reader, writer)

    return handle


def run_client(lab, handler, gets, *, grow_after: float = 60.0):
    """Serve ``handler``, run ``gets(client)`` against it; (its result, client.opened)."""
    service = lab.serve(ADDRESS, 0, handler)

    async def go():
        client = HttpClient(Target(ADDRESS), service.port, "http", ScanContext(), connections=PATH_CONCURRENCY,
                            grow_after=grow_after)
        try:
            return await gets(client), client.opened
        finally:
            await client.close()

    try:
        return asyncio.run(go())
    finally:
        lab.stop(service)


def scan_findings(lab, handler, *, tls_context=None):
    service = lab.serve(ADDRESS, 0, handler, ssl_context=tls_context)
    try:
        result = get_scanner("http").run(Target(address=ADDRESS), {"ports": [service.port]})
    finally:
        lab.stop(service)
    return result, sorted((f.rule_id, f.location.rsplit(str(service.port), 1)[1]) for f in result.findings)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_port_is_inspected_over_a_few_kept_alive_connections_not_one_per_request(lab, tls_context, tls):
    connections: list = []
    handler = counting(exposed_site_handler(), connections)

    result, found = scan_findings(lab, handler, tls_context=tls_context if tls else None)

    asked = sum(1 for value in result.data["ports"][str(result.open_ports[0])]["sensitive"].values())
    assert asked == len(SENSITIVE_PATHS) + 2  # every sensitive path and both random-path probes, as before
    assert 1 <= len(connections) <= PATH_CONCURRENCY
    assert ("http-exposed-git", "/.git/HEAD") in found and result.complete


def test_a_server_that_closes_after_every_response_yields_the_same_findings(lab):
    _, kept_alive = scan_findings(lab, exposed_site_handler())
    connections: list = []

    result, found = scan_findings(lab, counting(exposed_site_handler(keep_alive=False), connections))

    assert found == kept_alive and result.complete
    assert len(connections) == len(SENSITIVE_PATHS) + 3  # "/", the two random paths, every sensitive path


def test_concurrent_requests_to_a_quick_server_share_one_connection(lab):
    handler = http_handler({}, not_found=lambda request: HttpResponse(body=request.path))

    async def gets(client):
        return await asyncio.gather(*(client.get(f"/{n}") for n in range(12)))

    replies, opened = run_client(lab, handler, gets)

    assert [reply.body for reply in replies] == [f"/{n}".encode() for n in range(12)]
    assert opened == 1


def test_a_slow_server_gets_more_connections_up_to_the_limit(lab):
    async def slow(reader, writer):
        while (request := await read_request(reader)) is not None:
            await asyncio.sleep(0.5)  # ten times the wait after which the client opens another connection
            writer.write(HttpResponse(body=request.path).encoded([], keep_alive=True))
            await writer.drain()

    async def gets(client):
        return await asyncio.gather(*(client.get(f"/{n}") for n in range(8)))

    replies, opened = run_client(lab, slow, gets, grow_after=0.05)

    assert [reply.body for reply in replies] == [f"/{n}".encode() for n in range(8)]
    assert opened == PATH_CONCURRENCY


def test_a_kept_alive_connection_the_server_dropped_is_replaced_without_an_error(lab):
    async def one_then_hang_up(reader, writer):
        request = await read_request(reader)
        writer.write(HttpResponse(body=request.path).encoded([], keep_alive=True))  # says it stays open...
        await writer.drain()
        # ...and closes anyway, as servers do when their keep-alive timeout passes.

    async def gets(client):
        first = await client.get("/first")
        await asyncio.sleep(0.05)  # the server's close reaches us before the next request goes out
        return first, await client.get("/second")

    (first, second), opened = run_client(lab, one_then_hang_up, gets)

    assert (first.status, first.body, second.status, second.body) == (200, b"/first", 200, b"/second")
    assert opened == 2


def test_chunked_replies_are_read_to_their_last_chunk_and_the_connection_kept(lab):
    async def chunked(reader, writer):
        while (request := await read_request(reader)) is not None:
            body = request.path.encode()
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:2], body[2:]))
                         + b"0\r\nX-Trailer: yes\r\n\r\n")
            await writer.drain()

    async def gets(client):
        return [await client.get(path) for path in ("/alpha", "/beta")]

    replies, opened = run_client(lab, chunked, gets)

    assert [reply.body for reply in replies] == [b"/alpha", b"/beta"]
    assert opened == 1


def test_a_body_cut_at_the_size_limit_leaves_nothing_behind_for_the_next_request(lab):
    handler = http_handler({("GET", "/big"): HttpResponse(body="x" * 5000)},
                           not_found=lambda request: HttpResponse(body="small"))

    async def gets(client):
        return await client.get("/big", max_bytes=1000), await client.get("/after")

    (big, after), opened = run_client(lab, handler, gets)

    assert big.truncated and big.body == b"x" * 1000
    assert after.body == b"small" and not after.truncated
    assert opened == 2  # the rest of the big body was never read: that connection was not used again


def test_the_lab_keeps_an_http11_connection_open_until_the_client_asks_to_close(lab):
    service = lab.serve(ADDRESS, 0, http_handler({}, not_found=lambda request: HttpResponse(body=request.path)))
    try:
        with socket.create_connection((ADDRESS, service.port), timeout=5) as sock:
            answers = []
            for path, last in (("/one", False), ("/two", False), ("/three", True)):
                close = "Connection: close\r\n" if last else ""
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: lab\r\n{close}\r\n".encode())
                answers.append(_read_response(sock))
            assert sock.recv(1) == b""  # closed after the last
    finally:
        lab.stop(service)

    assert [body for _, body in answers] == [b"/one", b"/two", b"/three"]
    assert [head.split("connection: ")[1].split("\r\n")[0] for head, _ in answers] == ["keep-alive", "keep-alive",
                                                                                        "close"]


def _read_response(sock: socket.socket) -> tuple[str, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(4096)
    return head.decode().lower(), body
