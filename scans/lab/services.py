"""Lab imitations of the services Watchpost identifies, speaking enough of each protocol.

Each ``*_handler(...)`` returns a lab handler (``Lab.serve(address, port, handler)``).
They answer what the fingerprint, exposure and discovery probes ask, with the same
bytes the real daemon sends for those requests (banners, RESP, PostgreSQL and MySQL
handshakes, memcached text protocol, MongoDB OP_MSG/OP_QUERY, JSON over HTTP), so a
scanner that identifies these identifies the real thing.

``start_node(lab, "127.0.100.7", kinds=["ssh", "redis", "ethereum"])`` stands up one
"node": a set of services on one loopback address, on their standard ports.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from scans.lab.base import Handler, Lab, LabService
from scans.lab.http import HttpRequest, HttpResponse, http_handler, json_response

READ_LIMIT = 64 * 1024
IDLE_SECONDS = 15.0  # a client that goes quiet is dropped so the lab never holds sockets forever


async def _read(reader: asyncio.StreamReader, n: int = READ_LIMIT) -> bytes:
    async with asyncio.timeout(IDLE_SECONDS):
        return await reader.read(n)


async def _readline(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(IDLE_SECONDS):
        return await reader.readline()


def _named(handler: Handler, name: str) -> Handler:
    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Scanners send garbage on purpose; a lab service just hangs up on what it cannot parse.
        try:
            await handler(reader, writer)
        except (ValueError, IndexError, struct.error, UnicodeDecodeError):
            pass
        except asyncio.CancelledError:
            # Lab.close() cancels open handlers; ending quietly keeps Python 3.11's stream
            # callback from printing a traceback for every tarpit or idle client.
            return

    guarded.__name__ = name
    return guarded


async def _serve_commands(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          answer: Callable[[bytes, bytes], bytes], *, greeting: bytes = b"", goodbye: bytes = b"") -> None:
    """A text protocol of one command a line (SMTP, FTP, memcached): ``greeting`` first, then
    ``answer(verb, argument)`` for each line, the verb upper-cased, until the client leaves or
    says QUIT, which gets ``goodbye``."""
    if greeting:
        writer.write(greeting)
        await writer.drain()
    while line := await _readline(reader):
        verb, _, argument = line.strip().partition(b" ")
        verb = verb.upper()
        if verb == b"QUIT":
            writer.write(goodbye)
            await writer.drain()
            return
        writer.write(answer(verb, argument))
        await writer.drain()


# --- banner-first services --------------------------------------------------------------


def ssh_handler(banner: str = "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.1") -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(banner.encode() + b"\r\n")
        await writer.drain()
        client = await _readline(reader)
        if client and not client.startswith(b"SSH-"):
            writer.write(b"Invalid SSH identification string.\r\n")
        await writer.drain()

    return _named(handle, "ssh")


def smtp_handler(banner: str = "220 mail.lab.test ESMTP Postfix (Ubuntu)") -> Handler:
    def answer(verb: bytes, argument: bytes) -> bytes:
        if verb in (b"EHLO", b"HELO"):
            return b"250-mail.lab.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 STARTTLS\r\n"
        return b"502 5.5.2 Error: command not recognized\r\n"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_commands(reader, writer, answer, greeting=banner.encode() + b"\r\n", goodbye=b"221 2.0.0 Bye\r\n")

    return _named(handle, "smtp")


def ftp_handler(banner: str = "220 (vsFTPd 3.0.5)", *, anonymous: bool = False) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        user = b""

        def answer(verb: bytes, argument: bytes) -> bytes:
            nonlocal user
            if verb == b"USER":
                user = argument
                return b"331 Please specify the password.\r\n"
            if verb == b"PASS":
                ok = anonymous and user.lower() in (b"anonymous", b"ftp")
                return b"230 Login successful.\r\n" if ok else b"530 Login incorrect.\r\n"
            return b"530 Please login with USER and PASS.\r\n"

        await _serve_commands(reader, writer, answer, greeting=banner.encode() + b"\r\n", goodbye=b"221 Goodbye.\r\n")

    return _named(handle, "ftp")


def munin_handler(host: str = "lab-node.example", version: str = "2.0.69") -> Handler:
    """A Munin node (TCP 4949): a comment-line greeting, then one lower-case command a line."""
    plugins = b"cpu df load memory uptime"

    def answer(verb: bytes, argument: bytes) -> bytes:
        if verb == b"VERSION":
            return f"munins node on {host} version: {version}\n".encode()
        if verb == b"LIST":
            return plugins + b"\n"
        if verb == b"NODES":
            return host.encode() + b"\n.\n"
        if verb == b"CAP":
            return b"cap multigraph dirtyconfig\n"
        if verb == b"FETCH" and argument == b"load":
            return b"load.value 0.42\n.\n"
        return b"# Unknown command. Try cap, list, nodes, config, fetch, version or quit\n"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_commands(reader, writer, answer, greeting=f"# munin node at {host}\n".encode())

    return _named(handle, "munin")


def mysql_handler(version: str = "8.0.32") -> Handler:
    """Sends a protocol-10 handshake, then refuses whatever login follows."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        salt = os.urandom(20).replace(b"\0", b"\1")
        capabilities = 0xFFFFF7FF  # everything but CLIENT_SSL, as a server without TLS configured
        payload = (
            b"\x0a" + version.encode() + b"\0" + struct.pack("<I", 8) + salt[:8] + b"\0"
            + struct.pack("<H", capabilities & 0xFFFF) + b"\xff" + struct.pack("<H", 0x0002)
            + struct.pack("<H", capabilities >> 16) + bytes([21]) + b"\0" * 10 + salt[8:] + b"\0"
            + b"caching_sha2_password\0"
        )
        writer.write(_mysql_packet(0, payload))
        await writer.drain()
        if await _read(reader):
            message = b"Access denied for user"
            writer.write(_mysql_packet(2, b"\xff" + struct.pack("<H", 1045) + b"#28000" + message))
            await writer.drain()

    return _named(handle, "mysql")


def _mysql_packet(sequence: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([sequence]) + payload


# --- request/response services ----------------------------------------------------------


def redis_handler(version: str = "7.0.11", *, password: str | None = None) -> Handler:
    """RESP and inline commands; with ``password`` everything but AUTH is answered -NOAUTH."""

    info = (
        f"# Server\r\nredis_version:{version}\r\nredis_mode:standalone\r\nos:Linux 5.15.0 x86_64\r\n"
        "arch_bits:64\r\ntcp_port:6379\r\n\r\n# Clients\r\nconnected_clients:1\r\n\r\n"
        "# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n"
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        authed = password is None
        while True:
            command = await _read_resp_command(reader)
            if command is None:
                return
            if not command:
                continue
            name = command[0].lower()
            if name in (b"post", b"host:"):
                return  # Redis drops what looks like HTTP sent at it (cross-protocol attack guard)
            if name == b"auth":
                authed = password is not None and command[-1].decode(errors="replace") == password
                writer.write(b"+OK\r\n" if authed else b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
            elif not authed:
                writer.write(b"-NOAUTH Authentication required.\r\n")
            elif name == b"ping":
                writer.write(b"+PONG\r\n")
            elif name == b"info":
                body = info.encode()
                writer.write(b"$%d\r\n%s\r\n" % (len(body), body))
            elif name == b"quit":
                writer.write(b"+OK\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"-ERR unknown command '%s', with args beginning with: \r\n" % command[0][:64])
            await writer.drain()

    return _named(handle, "redis")


async def _read_resp_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    line = await _readline(reader)
    if not line:
        return None
    if not line.startswith(b"*"):
        return line.strip().split()
    count = int(line[1:].strip() or 0)
    parts = []
    for _ in range(min(count, 64)):
        header = await _readline(reader)
        if not header.startswith(b"$"):
            return None
        size = int(header[1:].strip())
        parts.append((await reader.readexactly(size + 2))[:-2])
    return parts


def memcached_handler(version: str = "1.6.9") -> Handler:
    stats = {"pid": 1, "uptime": 4242, "version": version, "libevent": "2.1.12-stable",
             "pointer_size": 64, "curr_connections": 2, "curr_items": 17, "total_items": 120}

    def answer(verb: bytes, argument: bytes) -> bytes:
        if verb == b"VERSION":
            return b"VERSION %s\r\n" % version.encode()
        if verb == b"STATS":
            return b"".join(b"STAT %s %s\r\n" % (k.encode(), str(v).encode()) for k, v in stats.items()) + b"END\r\n"
        return b"ERROR\r\n"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_commands(reader, writer, answer)

    return _named(handle, "memcached")


def postgres_handler(version: str = "15.3", *, trust: bool = False) -> Handler:
    """Answers SSLRequest with 'N'; a startup gets MD5 auth, or with ``trust`` the full greeting
    (AuthenticationOk and ParameterStatus server_version), which is how a client learns the version."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            length, code = struct.unpack("!II", await reader.readexactly(8))
            if not 8 <= length <= 10000:
                return  # "invalid length of startup packet": what PostgreSQL says to HTTP or TLS sent at it
            body = await reader.readexactly(max(0, min(length, 10000) - 8))
            if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: not offered
                writer.write(b"N")
                await writer.drain()
                continue
            if code == 80877102:  # CancelRequest
                return
            if code >> 16 != 3:
                writer.write(_pg_error("FATAL", "0A000", f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: "
                                       "server supports 3.0 to 3.0"))
                await writer.drain()
                return
            params = body.split(b"\0")
            user = params[params.index(b"user") + 1].decode(errors="replace") if b"user" in params else ""
            if trust:
                writer.write(_pg_message(b"R", struct.pack("!I", 0)))
                for key, value in (("server_version", version), ("server_encoding", "UTF8"),
                                   ("client_encoding", "UTF8"), ("DateStyle", "ISO, MDY")):
                    writer.write(_pg_message(b"S", key.encode() + b"\0" + value.encode() + b"\0"))
                writer.write(_pg_message(b"K", struct.pack("!II", 4242, 1234)))
                writer.write(_pg_message(b"Z", b"I"))
                await writer.drain()
                await _read(reader)
                return
            writer.write(_pg_message(b"R", struct.pack("!I", 5) + os.urandom(4)))
            await writer.drain()
            if await _read(reader):
                writer.write(_pg_error("FATAL", "28P01", f'password authentication failed for user "{user}"'))
                await writer.drain()
            return

    return _named(handle, "postgres")


def _pg_message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def _pg_error(severity: str, code: str, message: str) -> bytes:
    fields = [b"S" + severity.encode(), b"V" + severity.encode(), b"C" + code.encode(), b"M" + message.encode(),
              b"Fauth.c", b"L335", b"Rauth_failed"]
    return _pg_message(b"E", b"\0".join(fields) + b"\0\0")


def mongodb_handler(version: str = "6.0.5", *, auth: bool = False) -> Handler:
    """OP_MSG and legacy OP_QUERY commands: hello/isMaster, buildInfo, listDatabases
    (refused with code 13 when ``auth`` is on, as mongod with authorization enabled does)."""

    def answer(command: dict[str, Any]) -> dict[str, Any]:
        name = next(iter(command), "")
        lowered = name.lower()
        if lowered in ("hello", "ismaster"):
            return {"ismaster": True, "helloOk": True, "topologyVersion": {"counter": 0},
                    "maxBsonObjectSize": 16777216, "maxMessageSizeBytes": 48000000, "maxWriteBatchSize": 100000,
                    "localTime": 0, "logicalSessionTimeoutMinutes": 30, "connectionId": 7,
                    "minWireVersion": 0, "maxWireVersion": 17, "readOnly": False, "ok": 1.0}
        if lowered == "buildinfo":
            return {"version": version, "gitVersion": "c9a99c120371d4d4c52cbb15dac34a36ce8d3b1d",
                    "versionArray": [int(x) for x in version.split(".")] + [0], "bits": 64, "ok": 1.0}
        if lowered == "listdatabases":
            if auth:
                return {"ok": 0.0, "errmsg": "command listDatabases requires authentication", "code": 13,
                        "codeName": "Unauthorized"}
            dbs = [{"name": n, "sizeOnDisk": 40960.0, "empty": False} for n in ("admin", "config", "local", "shop")]
            return {"databases": dbs, "totalSize": 163840.0, "totalSizeMb": 0, "ok": 1.0}
        return {"ok": 0.0, "errmsg": f"no such command: '{name}'", "code": 59, "codeName": "CommandNotFound"}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            header = await asyncio.wait_for(reader.readexactly(16), timeout=IDLE_SECONDS)
            if header.startswith(b"GET "):
                text = b"It looks like you are trying to access MongoDB over HTTP on the native driver port.\r\n"
                writer.write(b"HTTP/1.0 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(text), text))
                await writer.drain()
                return
            length, request_id, _, opcode = struct.unpack("<iiii", header)
            if not 16 < length <= 48_000_000:
                return
            body = await reader.readexactly(length - 16)
            if opcode == 2013:  # OP_MSG: flagBits, then a kind-0 section holding the command
                command = bson_decode(body[5:])
                reply = struct.pack("<I", 0) + b"\0" + bson_encode(answer(command))
                writer.write(struct.pack("<iiii", 16 + len(reply), 1, request_id, 2013) + reply)
            elif opcode == 2004:  # OP_QUERY: flags, cstring collection, skip, return, query
                end = body.index(b"\0", 4)
                query = bson_decode(body[end + 9:])
                command = query.get("$query", query) if isinstance(query.get("$query"), dict) else query
                doc = bson_encode(answer(command))
                reply = struct.pack("<iqii", 8, 0, 0, 1) + doc  # flags AwaitCapable, cursor 0, from 0, one doc
                writer.write(struct.pack("<iiii", 16 + len(reply), 1, request_id, 1) + reply)
            else:
                return
            await writer.drain()

    return _named(handle, "mongodb")


def bson_encode(doc: dict[str, Any]) -> bytes:
    out = bytearray()
    for key, value in doc.items():
        name = key.encode() + b"\0"
        if isinstance(value, bool):
            out += b"\x08" + name + (b"\x01" if value else b"\x00")
        elif isinstance(value, int):
            out += (b"\x10" + name + struct.pack("<i", value)) if -2**31 <= value < 2**31 else \
                (b"\x12" + name + struct.pack("<q", value))
        elif isinstance(value, float):
            out += b"\x01" + name + struct.pack("<d", value)
        elif isinstance(value, str):
            data = value.encode() + b"\0"
            out += b"\x02" + name + struct.pack("<i", len(data)) + data
        elif isinstance(value, dict):
            out += b"\x03" + name + bson_encode(value)
        elif isinstance(value, (list, tuple)):
            out += b"\x04" + name + bson_encode({str(i): v for i, v in enumerate(value)})
        elif value is None:
            out += b"\x0a" + name
        else:
            raise TypeError(f"cannot encode {type(value).__name__} in BSON")
    return struct.pack("<i", len(out) + 5) + bytes(out) + b"\0"


def bson_decode(data: bytes) -> dict[str, Any]:
    doc, _ = _bson_document(data, 0)
    return doc


def _bson_document(data: bytes, offset: int) -> tuple[dict[str, Any], int]:
    (size,) = struct.unpack_from("<i", data, offset)
    end, pos, doc = offset + size - 1, offset + 4, {}
    while pos < end:
        kind = data[pos]
        name_end = data.index(b"\0", pos + 1)
        key = data[pos + 1:name_end].decode()
        pos = name_end + 1
        if kind == 0x01:
            doc[key] = struct.unpack_from("<d", data, pos)[0]
            pos += 8
        elif kind == 0x02:
            (n,) = struct.unpack_from("<i", data, pos)
            doc[key] = data[pos + 4:pos + 3 + n].decode(errors="replace")
            pos += 4 + n
        elif kind in (0x03, 0x04):
            sub, pos = _bson_document(data, pos)
            doc[key] = list(sub.values()) if kind == 0x04 else sub
        elif kind == 0x08:
            doc[key] = data[pos] == 1
            pos += 1
        elif kind == 0x0A:
            doc[key] = None
        elif kind == 0x10:
            doc[key] = struct.unpack_from("<i", data, pos)[0]
            pos += 4
        elif kind in (0x12, 0x09, 0x11):
            doc[key] = struct.unpack_from("<q", data, pos)[0]
            pos += 8
        elif kind == 0x07:
            doc[key] = data[pos:pos + 12].hex()
            pos += 12
        else:
            raise ValueError(f"unsupported BSON type 0x{kind:02x}")
    return doc, end + 1


def tarpit_handler() -> Handler:
    """Accepts and never answers: the slowest thing a scanner can meet."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(READ_LIMIT):
            pass

    return _named(handle, "tarpit")


# --- HTTP services ----------------------------------------------------------------------


def web_handler(server: str = "nginx/1.18.0 (Ubuntu)", title: str = "Welcome to nginx!") -> Handler:
    page = HttpResponse(body=f"<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>")
    return _named(http_handler({("*", "/"): page}, server_header=server), "http")


def docker_handler(version: str = "24.0.5", api_version: str = "1.43") -> Handler:
    """The Docker Engine API as dockerd serves it on tcp://0.0.0.0:2375 without TLS."""
    info = {"Platform": {"Name": "Docker Engine - Community"}, "Version": version, "ApiVersion": api_version,
            "MinAPIVersion": "1.12", "GitCommit": "a61e2b4", "GoVersion": "go1.20.6", "Os": "linux",
            "Arch": "amd64", "KernelVersion": "5.15.0-78-generic", "BuildTime": "2023-07-24T00:00:00.000000000+00:00"}
    containers = [{"Id": "8dfafdbc3a40" * 5 + "abcd", "Names": ["/web"], "Image": "nginx:1.25", "State": "running",
                   "Status": "Up 3 days", "Ports": [{"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]}]
    ping = HttpResponse(body="OK", content_type="text/plain; charset=utf-8", headers=[("Api-Version", api_version)])
    routes = {("GET", "/version"): json_response(info), (("GET", f"/v{api_version}/version")): json_response(info),
              ("GET", "/_ping"): ping, ("HEAD", "/_ping"): ping,
              ("GET", "/containers/json"): json_response(containers),
              ("GET", f"/v{api_version}/containers/json"): json_response(containers),
              ("GET", "/info"): json_response({"Containers": 1, "Images": 4, "ServerVersion": version})}
    not_found = json_response({"message": "page not found"}, status=404)
    return _named(http_handler(routes, server_header=f"Docker/{version} (linux)", not_found=not_found), "docker")


def elasticsearch_handler(version: str = "8.8.0") -> Handler:
    root = {"name": "es-node-1", "cluster_name": "lab-cluster", "cluster_uuid": "Qw3lYb2nSRWq0aVtKz4j8g",
            "version": {"number": version, "build_flavor": "default", "build_type": "docker",
                        "lucene_version": "9.6.0", "minimum_wire_compatibility_version": "7.17.0"},
            "tagline": "You Know, for Search"}
    indices = "green open customers 3kW1 1 0 1200 0 1.2mb 1.2mb\ngreen open orders Xy9q 1 0 5400 0 4.1mb 4.1mb\n"
    headers = [("X-elastic-product", "Elasticsearch")]
    routes = {("GET", "/"): json_response(root),
              ("GET", "/_cat/indices"): HttpResponse(body=indices, content_type="text/plain; charset=UTF-8")}
    return _named(http_handler(routes, server_header=None, headers=headers), "elasticsearch")


def etcd_handler(version: str = "3.5.9") -> Handler:
    kvs = {"header": {"cluster_id": "14841639068965178418", "revision": "12"}, "count": "2",
           "kvs": [{"key": "L3JlZ2lzdHJ5L3NlY3JldHMvZGVmYXVsdC9kYg==", "value": "c2VjcmV0", "version": "1"}]}
    routes = {("GET", "/version"): json_response({"etcdserver": version, "etcdcluster": version[:3] + ".0"}),
              ("GET", "/health"): json_response({"health": "true", "reason": ""}),
              ("POST", "/v3/kv/range"): json_response(kvs)}
    return _named(http_handler(routes, server_header=None), "etcd")


def kubelet_handler(version: str = "1.28.4") -> Handler:
    """A kubelet's read-only port (10255): its pods and its metrics, anonymous."""
    pods = {"kind": "PodList", "apiVersion": "v1", "metadata": {},
            "items": [{"metadata": {"name": "api-7d9c", "namespace": "prod"},
                       "spec": {"containers": [{"name": "api", "image": "registry.lab/api:2.3"}]}}]}
    build = (f'kubernetes_build_info{{build_date="2023-11-15T16:40:18Z",compiler="gc",'
             f'git_commit="bae2c62678db2b5053817bc97181fcc2e8388103",git_tree_state="clean",git_version="v{version}",'
             f'go_version="go1.20.11",major="1",minor="{version.split(".")[1]}",platform="linux/amd64"}} 1\n')
    metrics = (
        "# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox\n"
        "# TYPE kubelet_running_pods gauge\nkubelet_running_pods 1\n"
        "# HELP kubernetes_build_info [ALPHA] A metric with a constant '1' value labeled by major, minor, git "
        "version, git commit, git tree state, build date, Go version, and compiler from which Kubernetes was "
        "built, and platform on which it is running.\n# TYPE kubernetes_build_info gauge\n" + build
    )
    routes = {("GET", "/pods"): json_response(pods),
              ("GET", "/metrics"): HttpResponse(body=metrics, content_type="text/plain; version=0.0.4; charset=utf-8"),
              ("GET", "/healthz"): HttpResponse(body="ok", content_type="text/plain; charset=utf-8")}
    return _named(http_handler(routes, server_header=None), "kubelet")


def prometheus_handler(version: str = "2.45.0") -> Handler:
    metrics = (
        "# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\n"
        "go_goroutines 38\n"
        "# HELP prometheus_build_info A metric with a constant '1' value labeled by version, revision, "
        "branch, goversion from which prometheus was built.\n# TYPE prometheus_build_info gauge\n"
        f'prometheus_build_info{{branch="HEAD",goversion="go1.20.5",revision="8ef767e",version="{version}"}} 1\n'
        "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds 41\n"
    )
    buildinfo = {"status": "success", "data": {"version": version, "revision": "8ef767e", "branch": "HEAD"}}
    routes = {("GET", "/metrics"): HttpResponse(body=metrics, content_type="text/plain; version=0.0.4; charset=utf-8"),
              ("GET", "/api/v1/status/buildinfo"): json_response(buildinfo),
              ("GET", "/"): HttpResponse(status=302, headers=[("Location", "/graph")])}
    return _named(http_handler(routes, server_header=None), "prometheus")


JsonRpcMethod = Callable[[list[Any]], Any]


def jsonrpc_handler(methods: dict[str, JsonRpcMethod | Any], *, paths: Iterable[str] = ("/",),
                    not_found: Callable[[str], str] | None = None, server_header: str | None = None) -> Handler:
    """A JSON-RPC 2.0 server over HTTP POST, single calls and batches. A method maps to a value
    or to a function of the params; an unknown one gets -32601 with ``not_found(name)`` as message."""
    missing = not_found or (lambda name: f"the method {name} does not exist/is not available")

    def call(message: Any) -> dict[str, Any]:
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}
        name, ident = message["method"], message.get("id")
        if name not in methods:
            return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": missing(name)}}
        method = methods[name]
        params = message.get("params") or []
        return {"jsonrpc": "2.0", "id": ident, "result": method(params) if callable(method) else method}

    def respond(request: HttpRequest) -> HttpResponse:
        try:
            message = json.loads(request.body or b"null")
        except ValueError:
            return json_response({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})
        return json_response([call(m) for m in message] if isinstance(message, list) else call(message))

    routes: dict[tuple[str, str], Any] = {}
    for path in paths:
        routes[("POST", path)] = respond
    return http_handler(routes, server_header=server_header, not_found=HttpResponse(status=405, body="method not allowed"))


def ethereum_handler(
    client: str = "Geth/v1.10.26-stable/linux-amd64/go1.18.5",
    *,
    chain_id: int = 1,
    admin: bool = True,
    personal: bool = True,
    debug: bool = True,
) -> Handler:
    """A geth-like node; ``admin``/``personal``/``debug`` say which namespaces are enabled."""
    methods: dict[str, Any] = {
        "eth_chainId": hex(chain_id), "net_version": str(chain_id), "web3_clientVersion": client,
        "eth_blockNumber": "0x10d4f2a", "eth_syncing": False, "net_peerCount": "0x19",
    }
    modules = {"eth": "1.0", "net": "1.0", "web3": "1.0", "txpool": "1.0"}
    if admin:
        methods["admin_nodeInfo"] = {"id": "a1b2" * 16, "name": client, "enode": "enode://" + "ab" * 64 + "@127.0.0.1:30303",
                                     "ip": "127.0.0.1", "ports": {"discovery": 30303, "listener": 30303}, "protocols": {}}
        methods["admin_peers"] = []
        modules["admin"] = "1.0"
    if personal:
        methods["personal_listAccounts"] = ["0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"]
        modules["personal"] = "1.0"
    if debug:
        methods["debug_getBadBlocks"] = []
        methods["debug_traceTransaction"] = lambda params: {"gas": 21000, "failed": False, "structLogs": []}
        methods["debug_setHead"] = None
        modules["debug"] = "1.0"
    methods["rpc_modules"] = modules
    return _named(jsonrpc_handler(methods), "ethereum")


def sui_handler(version: str = "1.14.0", chain_identifier: str = "35834a8a") -> Handler:
    discover = {"openrpc": "1.2.6", "info": {"title": "Sui JSON-RPC", "version": version},
                "methods": [{"name": n} for n in ("sui_getChainIdentifier", "sui_getLatestCheckpointSequenceNumber",
                                                  "suix_getReferenceGasPrice", "sui_getObject")]}
    methods = {"sui_getChainIdentifier": chain_identifier, "rpc.discover": discover,
               "sui_getLatestCheckpointSequenceNumber": "15466872", "suix_getReferenceGasPrice": "750"}
    return _named(jsonrpc_handler(methods, not_found=lambda name: "Method not found"), "sui")


def lotus_handler(version: str = "1.23.3+mainnet+git.d7e6bbe") -> Handler:
    """Filecoin Lotus: JSON-RPC on /rpc/v0 and /rpc/v1; Filecoin.Version needs no token."""
    methods = {"Filecoin.Version": {"Version": version, "APIVersion": 66816, "BlockDelay": 30},
               "Filecoin.ChainHead": {"Height": 3141592, "Cids": [], "Blocks": []}}
    return _named(jsonrpc_handler(methods, paths=("/rpc/v0", "/rpc/v1"),
                                  not_found=lambda name: f"method '{name}' not found"), "lotus")


# --- nodes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceKind:
    port: int
    factory: Callable[[], Handler]
    tls: bool = False


SERVICE_KINDS: dict[str, ServiceKind] = {
    "ssh": ServiceKind(22, ssh_handler),
    "ftp": ServiceKind(21, ftp_handler),
    "smtp": ServiceKind(25, smtp_handler),
    "http": ServiceKind(80, web_handler),
    "https": ServiceKind(443, lambda: web_handler("Apache/2.4.52 (Ubuntu)", "Apache2 Ubuntu Default Page"), tls=True),
    "redis": ServiceKind(6379, redis_handler),
    "redis-auth": ServiceKind(6380, lambda: redis_handler(password="s3cret-lab")),
    "postgres": ServiceKind(5432, postgres_handler),
    "mysql": ServiceKind(3306, mysql_handler),
    "memcached": ServiceKind(11211, memcached_handler),
    "mongodb": ServiceKind(27017, mongodb_handler),
    "docker": ServiceKind(2375, docker_handler),
    "elasticsearch": ServiceKind(9200, elasticsearch_handler),
    "etcd": ServiceKind(2379, etcd_handler),
    "kubelet": ServiceKind(10255, kubelet_handler),
    "prometheus": ServiceKind(9090, prometheus_handler),
    "ethereum": ServiceKind(8545, ethereum_handler),
    "ethereum-locked": ServiceKind(8547, lambda: ethereum_handler(admin=False, personal=False, debug=False)),
    "sui": ServiceKind(9000, sui_handler),
    "lotus": ServiceKind(1234, lotus_handler),
    "tarpit": ServiceKind(9999, tarpit_handler),
}
DEFAULT_NODE_KINDS = ("ssh", "http", "redis", "ethereum")

_shared_certs: Any = None


def lab_tls_context(address: str, certs: Any = None):
    """A modern server context with a lab-CA certificate for ``address`` (needs scans.lab.tls)."""
    global _shared_certs
    from scans.lab import tls

    if certs is None:
        if _shared_certs is None:
            _shared_certs = tls.CertFactory()
        certs = _shared_certs
    bundle = certs.issue(f"node-{address}.lab", sans=[f"node-{address}.lab", address])
    return tls.modern_server_context(bundle)


def start_node(
    lab: Lab,
    address: str,
    kinds: Iterable[str] = DEFAULT_NODE_KINDS,
    *,
    ports: dict[str, int] | None = None,
    standard_ports: bool = True,
    certs: Any = None,
) -> dict[str, LabService]:
    """Serve ``kinds`` on ``address``; ``"<kind>+tls"`` serves the same behind TLS.

    Each service takes its standard port unless ``ports`` says otherwise or
    ``standard_ports`` is false; a standard port that cannot be bound (taken, or
    privileged without root) falls back to a free one, so read ports from the result.
    """
    services: dict[str, LabService] = {}
    tls_context = None
    for kind in kinds:
        base, _, suffix = kind.partition("+")
        spec = SERVICE_KINDS.get(base)
        if spec is None or suffix not in ("", "tls"):
            raise ValueError(f"unknown lab service kind {kind!r}; known: {', '.join(SERVICE_KINDS)} (+tls)")
        wants_tls = spec.tls or suffix == "tls"
        context = None
        if wants_tls:
            tls_context = tls_context or lab_tls_context(address, certs)
            context = tls_context
        port = (ports or {}).get(kind, spec.port if standard_ports and not suffix else 0)
        try:
            service = lab.serve(address, port, spec.factory(), name=kind, ssl_context=context)
        except OSError:
            if port == 0:
                raise
            service = lab.serve(address, 0, spec.factory(), name=kind, ssl_context=context)
        services[kind] = service
    return services
