"""Lab targets for the application families (``scans/discovery/families.yaml``) and access checks.

Each ``*_handler(...)`` answers in its product's own wire format what the families table
and the access checks ask: chain nodes' JSON-RPC and REST, control-plane APIs with their
headers and error documents, and the binary or line protocols of ZooKeeper, NATS,
RabbitMQ (AMQP 0-9-1), Mosquitto (MQTT 3.1.1) and Cassandra (CQL v4). Most take a switch
that makes them demand credentials, as the product does when configured to: those are the
negatives, which must be reported protected and never open.

``FAMILY_KINDS`` lists them, each on its product's default port, for
``start_family_node(lab, address, kinds)``; a variant demanding credentials ("-auth", "-acl")
shares the port of its open twin, so the two go on different addresses (``OPEN_KINDS``,
``PROTECTED_KINDS``).
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Callable, Iterable

from scans.lab.base import Handler, Lab, LabService
from scans.lab.http import HttpRequest, HttpResponse, http_handler, json_response
from scans.lab.services import (
    IDLE_SECONDS,
    ServiceKind,
    _named,
    _read,
    _readline,
    jsonrpc_handler,
    lab_tls_context,
)

# --- chains --------------------------------------------------------------------------------------


def bitcoin_handler(subversion: str = "/Satoshi:25.0.0/", *, auth: bool = False) -> Handler:
    """bitcoind's RPC server: JSON-RPC 1.0 answers over POST; GET is 405; with ``auth`` (rpcauth,
    the default) a request without credentials gets 401 and bitcoind's Basic realm "jsonrpc"."""
    methods = {
        "getnetworkinfo": {"version": 250000, "subversion": subversion, "protocolversion": 70016,
                           "localservices": "0000000000000c09", "localrelay": True, "timeoffset": 0,
                           "networkactive": True, "connections": 10, "connections_in": 0, "connections_out": 10,
                           "networks": [], "relayfee": 0.00001, "incrementalfee": 0.00001, "localaddresses": [],
                           "warnings": ""},
        "getblockcount": 819240,
    }

    def respond(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(status=405, body="", content_type="text/html; charset=ISO-8859-1")
        if auth and "authorization" not in request.headers:
            return HttpResponse(status=401, body="", headers=[("WWW-Authenticate", 'Basic realm="jsonrpc"')],
                                content_type="text/html; charset=ISO-8859-1")
        try:
            call = json.loads(request.body)
        except ValueError:
            return json_response({"result": None, "error": {"code": -32700, "message": "Parse error"}, "id": None},
                                 status=500)
        name = call.get("method") if isinstance(call, dict) else None
        if name not in methods:
            return json_response({"result": None, "error": {"code": -32601, "message": "Method not found"},
                                  "id": call.get("id") if isinstance(call, dict) else None}, status=404)
        return json_response({"result": methods[name], "error": None, "id": call.get("id")})

    return _named(http_handler({("*", "/"): respond}, server_header=None), "bitcoin")


def solana_handler(version: str = "1.17.6") -> Handler:
    methods = {"getVersion": {"feature-set": 3580551090, "solana-core": version},
               "getHealth": "ok", "getSlot": 233958001}
    return _named(jsonrpc_handler(methods, not_found=lambda name: "Method not found"), "solana")


def substrate_handler(name: str = "Parity Polkadot", version: str = "1.3.0-7c9fd83805c") -> Handler:
    methods = {"system_name": name, "system_version": version, "system_chain": "Polkadot",
               "system_health": {"peers": 40, "isSyncing": False, "shouldHavePeers": True},
               "rpc_methods": {"methods": ["system_name", "system_version", "system_chain", "system_health"]}}
    return _named(jsonrpc_handler(methods, not_found=lambda n: "Method not found"), "substrate")


def tendermint_handler(version: str = "0.37.2", network: str = "cosmoshub-4") -> Handler:
    """CometBFT/Tendermint RPC (port 26657): URI endpoints over GET, JSON-RPC 2.0 envelopes."""
    status = {"jsonrpc": "2.0", "id": -1, "result": {
        "node_info": {"protocol_version": {"p2p": "8", "block": "11", "app": "0"},
                      "id": "2d1bc1b0c4e8f1a1d5b3f0e6a4c3b2a1d0e9f8c7", "listen_addr": "tcp://0.0.0.0:26656",
                      "network": network, "version": version, "channels": "40202122233038606100",
                      "moniker": "lab-node", "other": {"tx_index": "on", "rpc_address": "tcp://0.0.0.0:26657"}},
        "sync_info": {"latest_block_height": "18045123", "catching_up": False},
        "validator_info": {"address": "9F3C9E1B7E0D", "voting_power": "0"}}}
    index = ("<html><body><br>Available endpoints:<br><br>Endpoints that require arguments:<br>"
             "<a href=\"//localhost:26657/status?\">//localhost:26657/status?</a></br></body></html>")
    routes = {("GET", "/status"): json_response(status), ("GET", "/"): HttpResponse(body=index)}
    return _named(http_handler(routes, server_header=None), "tendermint")


def near_handler(version: str = "1.36.0") -> Handler:
    status = {"chain_id": "mainnet", "latest_protocol_version": 63, "protocol_version": 63,
              "rpc_addr": "0.0.0.0:3030", "sync_info": {"latest_block_height": 107231234, "syncing": False},
              "validators": [], "version": {"build": f"crates-{version}", "rustc_version": "1.72.0",
                                             "version": version}}
    return _named(jsonrpc_handler({"status": status}, not_found=lambda n: "Method not found"), "near")


def aptos_handler(git_hash: str = "e5fb7f5c6b2c09ebe2a6c3e1a5a2fbd1c2a03d7f") -> Handler:
    index = {"chain_id": 1, "epoch": "5982", "ledger_version": "402376311", "oldest_ledger_version": "0",
             "ledger_timestamp": "1701950000000000", "node_role": "full_node", "oldest_block_height": "0",
             "block_height": "148931232", "git_hash": git_hash}
    headers = [("X-Aptos-Chain-Id", "1"), ("X-Aptos-Ledger-Version", index["ledger_version"]),
               ("X-Aptos-Epoch", index["epoch"])]
    not_found = json_response({"message": "not found", "error_code": "web_framework_error", "vm_error_code": None},
                              status=404)
    routes = {("GET", "/v1"): json_response(index), ("GET", "/v1/"): json_response(index)}
    return _named(http_handler(routes, server_header=None, headers=headers, not_found=not_found), "aptos")


# --- control planes and infrastructure APIs ------------------------------------------------------


def _k8s_status(code: int, reason: str, message: str) -> HttpResponse:
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": message, "reason": reason, "details": {}, "code": code}, status=code)


def kubernetes_api_handler(version: str = "1.28.4", *, anonymous: str = "public-info") -> Handler:
    """kube-apiserver: ``anonymous`` is "off" (--anonymous-auth=false: 401 everywhere),
    "public-info" (the default RBAC: /version readable, resources forbidden) or "admin"
    (system:anonymous bound to cluster-admin: resources listed)."""
    info = {"major": "1", "minor": version.split(".")[1], "gitVersion": f"v{version}",
            "gitCommit": "bae2c62678db2b5053817bc97181fcc2e8388103", "gitTreeState": "clean",
            "buildDate": "2023-11-15T16:48:54Z", "goVersion": "go1.20.11", "compiler": "gc", "platform": "linux/amd64"}
    namespaces = {"kind": "NamespaceList", "apiVersion": "v1", "metadata": {"resourceVersion": "4242"},
                  "items": [{"metadata": {"name": n}} for n in ("default", "kube-system", "payments")]}

    def respond(request: HttpRequest) -> HttpResponse:
        if anonymous == "off":
            return _k8s_status(401, "Unauthorized", "Unauthorized")
        if request.path in ("/version", "/version/"):
            return json_response(info)
        if anonymous == "admin" and request.path == "/api/v1/namespaces":
            return json_response(namespaces)
        return _k8s_status(403, "Forbidden", f'forbidden: User "system:anonymous" cannot get path "{request.path}"')

    routes = {("GET", path): respond for path in ("/", "/version", "/version/", "/api/v1/namespaces", "/pods",
                                                   "/metrics", "/login")}
    return _named(http_handler(routes, server_header=None, not_found=respond), "kubernetes-api")


def consul_handler(version: str = "1.17.0", *, acl: bool = False) -> Handler:
    """Consul's HTTP API; with ``acl`` (default_policy deny, no token) reads get 403 Permission denied."""
    self_doc = {"Config": {"Datacenter": "dc1", "PrimaryDatacenter": "dc1", "NodeName": "lab-node",
                           "NodeID": "2b7e1c3e-7d9a-4c1f-9d2b-0c3a4b5d6e7f", "Revision": "4e3f428b",
                           "Server": True, "Version": version, "BuildDate": "2023-11-03T17:07:18Z"},
                "Member": {"Name": "lab-node", "Addr": "127.0.0.1", "Port": 8301,
                           "Tags": {"build": f"{version}:4e3f428b", "dc": "dc1", "role": "consul"}}}
    headers = [("X-Consul-Default-Acl-Policy", "deny" if acl else "allow"), ("Vary", "Accept-Encoding")]

    def guarded(document: object) -> Callable[[HttpRequest], HttpResponse]:
        def respond(request: HttpRequest) -> HttpResponse:
            if acl and "x-consul-token" not in request.headers:
                return HttpResponse(status=403, content_type="text/plain; charset=utf-8",
                                    body="Permission denied: token with AccessorID "
                                         "'00000000-0000-0000-0000-000000000002' lacks permission 'agent:read' "
                                         "on \"lab-node\"")
            response = json_response(document)
            response.headers = [("X-Consul-Index", "42"), ("X-Consul-Knownleader", "true"),
                                ("X-Consul-Lastcontact", "0")]
            return response
        return respond

    routes = {("GET", "/v1/agent/self"): guarded(self_doc),
              ("GET", "/v1/catalog/services"): guarded({"consul": [], "payments": ["v2"], "vault": ["active"]}),
              ("GET", "/"): HttpResponse(status=301, headers=[("Location", "/ui/")], body="")}
    return _named(http_handler(routes, server_header=None, headers=headers,
                               not_found=HttpResponse(status=404, body="404 page not found\n",
                                                      content_type="text/plain; charset=utf-8")), "consul")


def nomad_handler(version: str = "1.6.3", *, acl: bool = False) -> Handler:
    agent = {"config": {"Region": "global", "Datacenter": "dc1", "Version": {
        "Revision": "588d4d3d8cd9d7ee5b6c2b4d1e6b1d5a", "Version": version, "VersionMetadata": "",
        "VersionPrerelease": ""}}, "member": {"Name": "lab.global", "Tags": {"build": version, "region": "global"}},
        "stats": {"nomad": {"server": "true", "leader": "true"}}}
    jobs = [{"ID": "payments-api", "Name": "payments-api", "Type": "service", "Status": "running"}]

    def guarded(document: object) -> Callable[[HttpRequest], HttpResponse]:
        def respond(request: HttpRequest) -> HttpResponse:
            if acl and "x-nomad-token" not in request.headers:
                return HttpResponse(status=403, body="Permission denied", content_type="text/plain; charset=utf-8")
            response = json_response(document)
            if isinstance(document, list):  # list endpoints are blocking queries: they carry the raft index
                response.headers = [("X-Nomad-Index", "118"), ("X-Nomad-Knownleader", "true"),
                                    ("X-Nomad-Lastcontact", "0")]
            return response
        return respond

    routes = {("GET", "/v1/agent/self"): guarded(agent), ("GET", "/v1/jobs"): guarded(jobs),
              ("GET", "/"): HttpResponse(status=307, headers=[("Location", "/ui/")], body="")}
    return _named(http_handler(routes, server_header=None), "nomad")


def vault_handler(version: str = "1.15.2") -> Handler:
    health = {"initialized": True, "sealed": False, "standby": False, "performance_standby": False,
              "replication_performance_mode": "disabled", "replication_dr_mode": "disabled",
              "server_time_utc": 1701950000, "version": version, "cluster_name": "vault-cluster-5b3e2f1a",
              "cluster_id": "6d1c8c2e-3f0b-4b7a-9c5e-2a1f0e9d8c7b"}
    routes = {("GET", "/v1/sys/health"): json_response(health),
              ("GET", "/"): HttpResponse(status=307, headers=[("Location", "/ui/")], body="")}
    errors = json_response({"errors": []}, status=404)
    return _named(http_handler(routes, server_header=None, headers=[("Cache-Control", "no-store")], not_found=errors),
                  "vault")


def grafana_handler(version: str = "10.2.2") -> Handler:
    routes = {("GET", "/api/health"): json_response({"commit": "161e3cac5075540918e3a39004f2364ad104d5bb",
                                                      "database": "ok", "version": version}),
              ("GET", "/"): HttpResponse(status=302, headers=[("Location", "/login")], body="<a href=\"/login\">Found</a>.")}
    return _named(http_handler(routes, server_header=None, headers=[("X-Frame-Options", "deny")]), "grafana")


def jenkins_handler(version: str = "2.426.1", *, anonymous_read: bool = False) -> Handler:
    """Jenkins (on Jetty): every answer carries X-Jenkins; /api/json needs Overall/Read."""
    headers = [("X-Jenkins", version), ("X-Hudson", "1.395"), ("X-Jenkins-Session", "4f7c2a1e")]
    jobs = {"_class": "hudson.model.Hudson", "mode": "NORMAL", "nodeName": "", "numExecutors": 2,
            "jobs": [{"_class": "hudson.model.FreeStyleProject", "name": "deploy-prod", "color": "blue"}]}
    forbidden = HttpResponse(status=403, headers=[("X-You-Are-Authenticated-As", "anonymous")],
                             body="<html><head><title>Authentication required</title></head></html>")
    login = HttpResponse(body="<html><head><title>Sign in [Jenkins]</title></head><body></body></html>")
    routes = {("GET", "/login"): login,
              ("GET", "/api/json"): json_response(jobs) if anonymous_read else forbidden,
              ("GET", "/"): HttpResponse(status=302 if not anonymous_read else 200,
                                         headers=[] if anonymous_read else [("Location", "/login?from=%2F")],
                                         body="<html><head><title>Dashboard [Jenkins]</title></head></html>")}
    return _named(http_handler(routes, server_header="Jetty(10.0.18)", headers=headers, not_found=forbidden), "jenkins")


def registry_handler(*, auth: bool = False) -> Handler:
    """A distribution (Docker Registry v2) server; with ``auth`` token auth, as Harbor or Docker Hub."""
    api = [("Docker-Distribution-Api-Version", "registry/2.0")]
    denied = HttpResponse(status=401, content_type="application/json; charset=utf-8",
                          headers=api + [("WWW-Authenticate", 'Bearer realm="https://auth.lab.test/token",'
                                                              'service="registry.lab.test"')],
                          body=json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required",
                                                       "detail": None}]}))

    def answer(document: object) -> HttpResponse:
        if auth:
            return denied
        response = json_response(document)
        response.headers = list(api)
        return response

    routes = {("GET", "/v2/"): answer({}), ("GET", "/v2/_catalog"): answer({"repositories": ["payments/api", "web"]}),
              ("GET", "/"): HttpResponse(body="")}
    return _named(http_handler(routes, server_header=None), "registry")


def opensearch_handler(version: str = "2.11.1") -> Handler:
    root = {"name": "os-node-1", "cluster_name": "lab", "cluster_uuid": "bXk0Jq2dQe6lJ7dJ1mQ2Zw",
            "version": {"distribution": "opensearch", "number": version, "build_type": "tar",
                        "build_hash": "6b1986e964d440be9137eba1413015c31c5a7752", "lucene_version": "9.7.0",
                        "minimum_wire_compatibility_version": "7.10.0"},
            "tagline": "The OpenSearch Project: https://opensearch.org/"}
    return _named(http_handler({("GET", "/"): json_response(root)}, server_header=None), "opensearch")


def elasticsearch_secured_handler() -> Handler:
    """Elasticsearch with security on (8.x's default): a request without credentials gets 401 and a
    security_exception naming the schemes it accepts."""
    challenge = ['Basic realm="security" charset="UTF-8"', "ApiKey"]
    cause = {"type": "security_exception", "reason": "missing authentication credentials for REST request [/]",
             "header": {"WWW-Authenticate": challenge}}
    denied = json_response({"error": {"root_cause": [cause], **cause}, "status": 401}, status=401)
    denied.headers = [("WWW-Authenticate", challenge[0]), ("WWW-Authenticate", challenge[1])]
    return _named(http_handler({}, server_header=None, not_found=denied), "elasticsearch")


def couchdb_handler(version: str = "2.3.1", *, admin_party: bool = True) -> Handler:
    """CouchDB; ``admin_party`` is a server without admins (2.x's default), else /_all_dbs needs an admin."""
    welcome = {"couchdb": "Welcome", "version": version, "git_sha": "c298091a4", "uuid": "85fb71bf700c17267fef77535820e371",
               "features": ["pluggable-storage-engines", "scheduler"], "vendor": {"name": "The Apache Software Foundation"}}
    dbs = json_response(["_replicator", "_users", "customers"]) if admin_party else json_response(
        {"error": "unauthorized", "reason": "You are not a server admin."}, status=401)
    headers = [("Cache-Control", "must-revalidate")]
    return _named(http_handler({("GET", "/"): json_response(welcome), ("GET", "/_all_dbs"): dbs},
                               server_header=f"CouchDB/{version} (Erlang OTP/19)", headers=headers), "couchdb")


def influxdb_handler(version: str = "1.8.10", *, auth: bool = False) -> Handler:
    headers = [("X-Influxdb-Build", "OSS"), ("X-Influxdb-Version", version), ("Request-Id", "c2f0b8a4-94e1-11ee")]
    databases = {"results": [{"statement_id": 0, "series": [{"name": "databases", "columns": ["name"],
                                                             "values": [["_internal"], ["telegraf"]]}]}]}
    query = json_response({"error": "unable to parse authentication credentials"}, status=401) if auth \
        else json_response(databases)
    routes = {("GET", "/ping"): HttpResponse(status=204, body="", content_type="text/plain"),
              ("GET", "/query?q=SHOW%20DATABASES"): query}
    return _named(http_handler(routes, server_header=None, headers=headers), "influxdb")


def clickhouse_handler(version: str = "23.8.2.7", *, password: bool = False) -> Handler:
    """ClickHouse's HTTP interface (8123): queries in ?query=, answers in TabSeparated."""
    summary = '{"read_rows":"1","read_bytes":"1","written_rows":"0","written_bytes":"0","total_rows_to_read":"0"}'
    headers = [("X-ClickHouse-Server-Display-Name", "lab-clickhouse"), ("X-ClickHouse-Timezone", "UTC")]
    results = {"SELECT version()": f"{version}\n", "SHOW DATABASES": "INFORMATION_SCHEMA\ndefault\nsystem\n"}

    def respond(request: HttpRequest) -> HttpResponse:
        if request.path == "/":
            return HttpResponse(body="Ok.\n", content_type="text/html; charset=UTF-8")
        query = request.path.partition("?query=")[2].replace("%20", " ")
        if password:
            return HttpResponse(status=401, content_type="text/plain; charset=UTF-8",
                                headers=[("X-ClickHouse-Exception-Code", "516")],
                                body="Code: 516. DB::Exception: default: Authentication failed: password is "
                                     "incorrect, or there is no user with such name. (AUTHENTICATION_FAILED) "
                                     f"(version {version} (official build))\n")
        if query not in results:
            return HttpResponse(status=400, headers=[("X-ClickHouse-Exception-Code", "62")],
                                body=f"Code: 62. DB::Exception: Syntax error. (SYNTAX_ERROR) (version {version} "
                                     "(official build))\n", content_type="text/plain; charset=UTF-8")
        return HttpResponse(body=results[query], content_type="text/tab-separated-values; charset=UTF-8",
                            headers=[("X-ClickHouse-Format", "TabSeparated"), ("X-ClickHouse-Summary", summary)])

    routes = {("GET", "/"): respond, ("GET", "/?query=SELECT%20version()"): respond,
              ("GET", "/?query=SHOW%20DATABASES"): respond}
    return _named(http_handler(routes, server_header=None, headers=headers, not_found=respond), "clickhouse")


# --- coordination, brokers, data stores ----------------------------------------------------------


def zookeeper_handler(version: str = "3.8.3", *, acl: bool = False) -> Handler:
    """ZooKeeper's client port: four-letter words (only "srvr" whitelisted, 3.5+'s default) and the
    binary protocol for a session and getChildren("/"); with ``acl`` "/" is readable by authenticated
    clients only (NoAuth, -102)."""
    srvr = (f"Zookeeper version: {version}-6ad6d364c7c0bcf0de452d54ebefa3058098ab56, built on 2023-10-05 10:34 UTC\n"
            "Latency min/avg/max: 0/0.0/0\nReceived: 12\nSent: 11\nConnections: 1\nOutstanding: 0\n"
            "Zxid: 0x2a\nMode: standalone\nNode count: 7\n")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readexactly(4), IDLE_SECONDS)
        if head.isalpha():
            word = head.decode()
            writer.write(srvr.encode() if word == "srvr" else f"{word} is not executed because it is not in the "
                                                              "whitelist.\n".encode())
            await writer.drain()
            return
        (length,) = struct.unpack("!i", head)
        if not 0 < length <= 4096:
            return  # "Len error": ZooKeeper closes the connection
        await asyncio.wait_for(reader.readexactly(length), IDLE_SECONDS)
        writer.write(struct.pack("!iiiq", 36, 0, 30000, 0x1000A2B3C4D0001) + struct.pack("!i", 16) + b"\x5a" * 16)
        await writer.drain()
        while True:
            (length,) = struct.unpack("!i", await asyncio.wait_for(reader.readexactly(4), IDLE_SECONDS))
            body = await asyncio.wait_for(reader.readexactly(length), IDLE_SECONDS)
            xid, kind = struct.unpack_from("!ii", body)
            if kind == -11:  # closeSession
                writer.write(struct.pack("!iiqi", 16, xid, 42, 0))
                await writer.drain()
                return
            if kind == 8:  # getChildren
                if acl:
                    writer.write(struct.pack("!iiqi", 16, xid, 42, -102))
                else:
                    names = [b"zookeeper", b"brokers", b"config"]
                    payload = struct.pack("!iqii", xid, 42, 0, len(names)) + b"".join(
                        struct.pack("!i", len(n)) + n for n in names)
                    writer.write(struct.pack("!i", len(payload)) + payload)
            else:
                writer.write(struct.pack("!iiqi", 16, xid, 42, -6))  # Unimplemented
            await writer.drain()

    return _named(handle, "zookeeper")


def nats_handler(version: str = "2.10.7", *, auth: bool = False) -> Handler:
    info = {"server_id": "NCXNBSSZMXAE4WDFT4ZS4JGSXXTRVFCDUPAYMVWODV2QIOUYQGNGK7HY", "server_name": "lab-nats",
            "version": version, "proto": 1, "git_commit": "fe7bb8d", "go": "go1.21.5", "host": "0.0.0.0",
            "port": 4222, "headers": True, "max_payload": 1048576, "client_id": 5, "client_ip": "127.0.0.1"}
    if auth:
        info["auth_required"] = True

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"INFO " + json.dumps(info, separators=(",", ":")).encode() + b" \r\n")
        await writer.drain()
        connected = False
        while line := await _readline(reader):
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb == b"CONNECT":
                options = json.loads(line[8:] or b"{}")
                if auth and not (options.get("user") or options.get("auth_token") or options.get("nkey")):
                    writer.write(b"-ERR 'Authorization Violation'\r\n")
                    await writer.drain()
                    return
                connected = True
                if options.get("verbose"):
                    writer.write(b"+OK\r\n")
            elif verb == b"PING" and (connected or not auth):
                writer.write(b"PONG\r\n")
            elif verb == b"PONG":
                continue
            else:
                writer.write(b"-ERR 'Unknown Protocol Operation'\r\n")
                await writer.drain()
                return
            await writer.drain()

    return _named(handle, "nats")


def _amqp_table(fields: dict[str, object]) -> bytes:
    out = b""
    for key, value in fields.items():
        out += bytes([len(key)]) + key.encode()
        if isinstance(value, bool):
            out += b"t" + bytes([value])
        elif isinstance(value, dict):
            out += b"F" + _amqp_table(value)
        else:
            out += b"S" + struct.pack("!I", len(str(value).encode())) + str(value).encode()
    return struct.pack("!I", len(out)) + out


def rabbitmq_handler(version: str = "3.12.10", *, product: str = "RabbitMQ") -> Handler:
    """RabbitMQ's AMQP 0-9-1 listener: the protocol header gets Connection.Start with the server
    properties; any other opening gets the supported protocol header and the connection closed.
    Other brokers speaking AMQP 0-9-1 (LavinMQ) answer the same way under their own ``product``."""
    properties = {"capabilities": {"publisher_confirms": True, "exchange_exchange_bindings": True,
                                   "basic.nack": True, "consumer_cancel_notify": True, "connection.blocked": True,
                                   "authentication_failure_close": True, "per_consumer_qos": True},
                  "cluster_name": "rabbit@lab", "copyright": "Copyright (c) 2007-2023 VMware, Inc. or its affiliates.",
                  "information": "Licensed under the MPL 2.0. Website: https://rabbitmq.com",
                  "platform": "Erlang/OTP 26.1.2", "product": product, "version": version}
    start = struct.pack("!HHBB", 10, 10, 0, 9) + _amqp_table(properties) + \
        struct.pack("!I", 14) + b"AMQPLAIN PLAIN" + struct.pack("!I", 5) + b"en_US"
    frame = struct.pack("!BHI", 1, 0, len(start)) + start + b"\xce"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opening = await asyncio.wait_for(reader.readexactly(8), IDLE_SECONDS)
        if opening != b"AMQP\x00\x00\x09\x01":
            writer.write(b"AMQP\x00\x00\x09\x01")
            await writer.drain()
            return
        writer.write(frame)
        await writer.drain()
        await _read(reader)  # Start-Ok would follow; the lab waits for the client to leave

    return _named(handle, "rabbitmq")


def _mqtt_packet(kind: int, body: bytes) -> bytes:
    return bytes([kind, len(body)]) + body  # every lab packet is under 128 bytes


def mosquitto_handler(version: str = "2.0.18", *, anonymous: bool = True) -> Handler:
    """Mosquitto (MQTT 3.1.1): CONNACK 0 to anonymous clients when ``anonymous`` (allow_anonymous),
    else 5 (not authorized); $SYS/broker/version is a retained message with the version."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True
        while True:
            kind = (await asyncio.wait_for(reader.readexactly(1), IDLE_SECONDS))[0]
            if first and kind & 0xF0 != 0x10:
                return  # the first packet must be CONNECT: Mosquitto drops the client on its first byte
            first = False
            length = (await asyncio.wait_for(reader.readexactly(1), IDLE_SECONDS))[0]
            if length & 0x80:
                return  # the lab's clients send short packets only
            body = await asyncio.wait_for(reader.readexactly(length), IDLE_SECONDS)
            if kind == 0x10:
                if body[:6] != b"\x00\x04MQTT" or body[6] not in (4, 5):
                    writer.write(_mqtt_packet(0x20, b"\x00\x01"))  # unacceptable protocol version
                    await writer.drain()
                    return
                has_user = bool(body[7] & 0x80)
                accepted = anonymous or has_user
                writer.write(_mqtt_packet(0x20, b"\x00" + (b"\x00" if accepted else b"\x05")))
                await writer.drain()
                if not accepted:
                    return
            elif kind == 0x82:
                packet_id, offset, granted, topics = body[:2], 2, b"", []
                while offset < len(body):
                    (size,) = struct.unpack_from("!H", body, offset)
                    topics.append(body[offset + 2:offset + 2 + size])
                    offset += 3 + size
                    granted += b"\x00"
                writer.write(_mqtt_packet(0x90, packet_id + granted))
                for topic in topics:
                    if topic == b"$SYS/broker/version":
                        message = f"mosquitto version {version}".encode()
                        writer.write(_mqtt_packet(0x31, struct.pack("!H", len(topic)) + topic + message))
                await writer.drain()
            elif kind == 0xC0:
                writer.write(b"\xd0\x00")
                await writer.drain()
            elif kind == 0xE0:
                return
            else:
                return

    return _named(handle, "mosquitto")


def _cql_frame(stream: bytes, opcode: int, body: bytes) -> bytes:
    return b"\x84\x00" + stream + bytes([opcode]) + struct.pack("!i", len(body)) + body


def _cql_string(text: str) -> bytes:
    return struct.pack("!H", len(text)) + text.encode()


def _cql_rows(keyspace: str, table: str, column: str, value: str) -> bytes:
    """A RESULT of kind Rows: global table spec, one varchar column, one row."""
    metadata = struct.pack("!ii", 0x0001, 1) + _cql_string(keyspace) + _cql_string(table) + \
        _cql_string(column) + struct.pack("!H", 0x000D)
    return struct.pack("!i", 2) + metadata + struct.pack("!i", 1) + struct.pack("!i", len(value)) + value.encode()


def cassandra_handler(version: str = "4.1.3", *, auth: bool = False) -> Handler:
    """Cassandra's native protocol v4: OPTIONS gets SUPPORTED; STARTUP gets READY, or AUTHENTICATE
    naming PasswordAuthenticator when ``auth``; after READY, the one query the lab knows (the
    release version from system.local) gets its row; a frame of another protocol version gets
    the protocol error Cassandra sends before closing."""
    supported = {"CQL_VERSION": ["3.4.6"], "COMPRESSION": ["snappy", "lz4"],
                 "PROTOCOL_VERSIONS": ["3/v3", "4/v4", "5/v5", "6/v6-beta"]}
    multimap = struct.pack("!H", len(supported)) + b"".join(
        _cql_string(k) + struct.pack("!H", len(v)) + b"".join(_cql_string(x) for x in v) for k, v in supported.items())

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ready = False
        while True:
            header = await asyncio.wait_for(reader.readexactly(9), IDLE_SECONDS)
            if header[0] != 0x04:
                message = f"Invalid or unsupported protocol version ({header[0]}); supported versions are " \
                          "(3/v3, 4/v4, 5/v5, 6/v6-beta)"
                writer.write(_cql_frame(b"\x00\x00", 0x00, struct.pack("!i", 0x000A) + _cql_string(message)))
                await writer.drain()
                return
            stream, opcode = header[2:4], header[4]
            (length,) = struct.unpack_from("!i", header, 5)
            body = await asyncio.wait_for(reader.readexactly(min(length, 65536)), IDLE_SECONDS) if length else b""
            if opcode == 0x05:
                writer.write(_cql_frame(stream, 0x06, multimap))
            elif opcode == 0x01:
                ready = not auth
                writer.write(_cql_frame(stream, 0x03, _cql_string("org.apache.cassandra.auth.PasswordAuthenticator"))
                             if auth else _cql_frame(stream, 0x02, b""))
            elif opcode == 0x07 and ready and b"release_version FROM system.local" in body:
                writer.write(_cql_frame(stream, 0x08, _cql_rows("system", "local", "release_version", version)))
            elif opcode == 0x07:
                message = "You have not logged in" if auth else "unconfigured table"
                writer.write(_cql_frame(stream, 0x00, struct.pack("!i", 0x0100 if auth else 0x2200) + _cql_string(message)))
            else:
                writer.write(_cql_frame(stream, 0x00, struct.pack("!i", 0x000A) + _cql_string("Unexpected message")))
            await writer.drain()

    return _named(handle, "cassandra")


def _kafka_string(text: str) -> bytes:
    return struct.pack("!h", len(text)) + text.encode()


def kafka_handler(*, sasl: bool = False) -> Handler:
    """A Kafka broker: ApiVersions v0 answered always (clients ask it before authenticating);
    Metadata v0 lists topics on a PLAINTEXT listener, while a SASL listener closes the connection
    on any request but ApiVersions and SaslHandshake before authentication."""
    api_keys = [(0, 0, 9), (1, 0, 13), (2, 0, 7), (3, 0, 12), (8, 0, 8), (9, 0, 8), (10, 0, 4), (17, 0, 1),
                (18, 0, 3), (36, 0, 2)]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            (length,) = struct.unpack("!i", await asyncio.wait_for(reader.readexactly(4), IDLE_SECONDS))
            if not 8 <= length <= 1 << 20:
                return  # an invalid size: the broker closes
            request = await asyncio.wait_for(reader.readexactly(length), IDLE_SECONDS)
            api_key, _, correlation = struct.unpack_from("!hhi", request)
            if api_key == 18:
                body = struct.pack("!hi", 0, len(api_keys)) + b"".join(struct.pack("!hhh", *k) for k in api_keys)
            elif api_key == 3 and not sasl:
                partition = struct.pack("!hiii", 0, 0, 1, 1) + struct.pack("!i", 1) + struct.pack("!ii", 1, 1)
                topics = [b"orders", b"payments.events"]
                body = struct.pack("!i", 1) + struct.pack("!i", 1) + _kafka_string("127.0.0.1") + struct.pack("!i", 9092)
                body += struct.pack("!i", len(topics)) + b"".join(
                    struct.pack("!h", 0) + _kafka_string(t.decode()) + struct.pack("!i", 1) + partition for t in topics)
            else:
                return  # SASL listener before authentication, or a request the lab does not serve
            writer.write(struct.pack("!ii", 4 + len(body), correlation) + body)
            await writer.drain()

    return _named(handle, "kafka")


# --- login protocols -----------------------------------------------------------------------------


def vsftpd_handler(banner: str = "220 (vsFTPd 3.0.5)", *, anonymous: bool = False, tls: bool = False) -> Handler:
    """vsFTPd's dialogue: FEAT (with AUTH TLS when ``tls``), USER/PASS (anonymous allowed when
    ``anonymous``), PWD, QUIT."""
    features = [b" EPRT", b" EPSV", b" MDTM", b" PASV"] + ([b" AUTH TLS", b" PBSZ", b" PROT"] if tls else []) + \
        [b" REST STREAM", b" SIZE", b" TVFS", b" UTF8"]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(banner.encode() + b"\r\n")
        await writer.drain()
        user, logged_in = b"", False
        while line := await _readline(reader):
            verb, _, argument = line.strip().partition(b" ")
            verb = verb.upper()
            if verb == b"QUIT":
                writer.write(b"221 Goodbye.\r\n")
                await writer.drain()
                return
            if verb == b"FEAT":
                reply = b"211-Features:\r\n" + b"\r\n".join(features) + b"\r\n211 End\r\n"
            elif verb == b"USER":
                user = argument
                reply = b"331 Please specify the password.\r\n"
            elif verb == b"PASS":
                logged_in = anonymous and user.lower() in (b"anonymous", b"ftp")
                reply = b"230 Login successful.\r\n" if logged_in else b"530 Login incorrect.\r\n"
            elif verb == b"PWD" and logged_in:
                reply = b'257 "/" is the current directory\r\n'
            else:
                reply = b"530 Please login with USER and PASS.\r\n"
            writer.write(reply)
            await writer.drain()

    return _named(handle, "ftp")


def telnet_handler() -> Handler:
    """A telnetd: option negotiation (WILL ECHO, WILL SUPPRESS-GO-AHEAD, DO TERMINAL-TYPE), then a login prompt."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\xff\xfb\x01\xff\xfb\x03\xff\xfd\x18\xff\xfd\x1f")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"\r\nUbuntu 22.04.3 LTS\r\nlab login: ")
        await writer.drain()
        await _read(reader)

    return _named(handle, "telnet")


# --- nodes -------------------------------------------------------------------------------------


# A family target is described as the lab's other services are: its usual port, its handler, TLS or not.
FamilyKind = ServiceKind


FAMILY_KINDS: dict[str, FamilyKind] = {
    "bitcoin": FamilyKind(8332, bitcoin_handler),
    "bitcoin-auth": FamilyKind(8332, lambda: bitcoin_handler(auth=True)),
    "litecoin": FamilyKind(9332, lambda: bitcoin_handler("/LitecoinCore:0.21.2.2/")),
    "solana": FamilyKind(8899, solana_handler),
    "polkadot": FamilyKind(9933, substrate_handler),
    "substrate": FamilyKind(9944, lambda: substrate_handler("Substrate Node", "4.0.0-dev-8e8ae0c4b")),
    "tendermint": FamilyKind(26657, tendermint_handler),
    "near": FamilyKind(3030, near_handler),
    "aptos": FamilyKind(8080, aptos_handler),
    "kubernetes-api": FamilyKind(6443, lambda: kubernetes_api_handler(anonymous="admin"), tls=True),
    "kubernetes-api-default": FamilyKind(6443, kubernetes_api_handler, tls=True),
    "kubernetes-api-auth": FamilyKind(6443, lambda: kubernetes_api_handler(anonymous="off"), tls=True),
    "consul": FamilyKind(8500, consul_handler),
    "consul-acl": FamilyKind(8500, lambda: consul_handler(acl=True)),
    "nomad": FamilyKind(4646, nomad_handler),
    "nomad-acl": FamilyKind(4646, lambda: nomad_handler(acl=True)),
    "vault": FamilyKind(8200, vault_handler),
    "grafana": FamilyKind(3000, grafana_handler),
    "jenkins": FamilyKind(8080, lambda: jenkins_handler(anonymous_read=True)),
    "jenkins-auth": FamilyKind(8080, jenkins_handler),
    "registry": FamilyKind(5000, registry_handler),
    "registry-auth": FamilyKind(5000, lambda: registry_handler(auth=True)),
    "opensearch": FamilyKind(9200, opensearch_handler),
    "elasticsearch-auth": FamilyKind(9200, elasticsearch_secured_handler),
    "couchdb": FamilyKind(5984, couchdb_handler),
    "couchdb-auth": FamilyKind(5984, lambda: couchdb_handler("3.3.2", admin_party=False)),
    "influxdb": FamilyKind(8086, influxdb_handler),
    "influxdb-auth": FamilyKind(8086, lambda: influxdb_handler(auth=True)),
    "clickhouse": FamilyKind(8123, clickhouse_handler),
    "clickhouse-auth": FamilyKind(8123, lambda: clickhouse_handler(password=True)),
    "zookeeper": FamilyKind(2181, zookeeper_handler),
    "zookeeper-acl": FamilyKind(2181, lambda: zookeeper_handler(acl=True)),
    "nats": FamilyKind(4222, nats_handler),
    "nats-auth": FamilyKind(4222, lambda: nats_handler(auth=True)),
    "rabbitmq": FamilyKind(5672, rabbitmq_handler),
    "lavinmq": FamilyKind(5673, lambda: rabbitmq_handler("1.2.7", product="LavinMQ")),
    "mosquitto": FamilyKind(1883, mosquitto_handler),
    "mosquitto-auth": FamilyKind(1883, lambda: mosquitto_handler(anonymous=False)),
    "cassandra": FamilyKind(9042, cassandra_handler),
    "cassandra-auth": FamilyKind(9042, lambda: cassandra_handler(auth=True)),
    "kafka": FamilyKind(9092, kafka_handler),
    "kafka-auth": FamilyKind(9092, lambda: kafka_handler(sasl=True)),
    "ftp-anonymous": FamilyKind(21, lambda: vsftpd_handler(anonymous=True)),
    "ftp-tls": FamilyKind(21, lambda: vsftpd_handler(tls=True)),
    "telnet": FamilyKind(23, telnet_handler),
}


PROTECTED_KINDS = tuple(k for k in FAMILY_KINDS if k.endswith(("-auth", "-acl", "-default")) or k == "ftp-tls")
OPEN_KINDS = tuple(k for k in FAMILY_KINDS if k not in PROTECTED_KINDS)


def start_family_node(lab: Lab, address: str, kinds: Iterable[str] | None = None) -> dict[str, LabService]:
    """Serve ``kinds`` (default: OPEN_KINDS) on ``address``, each on its usual port when free (a
    privileged port needs root), else on any; read the ports from the result."""
    services: dict[str, LabService] = {}
    context = None
    for kind in kinds or OPEN_KINDS:
        spec = FAMILY_KINDS[kind]
        if spec.tls:
            context = context or lab_tls_context(address)
        try:
            services[kind] = lab.serve(address, spec.port, spec.factory(), name=kind,
                                       ssl_context=context if spec.tls else None)
        except OSError:
            services[kind] = lab.serve(address, 0, spec.factory(), name=kind, ssl_context=context if spec.tls else None)
    return services
