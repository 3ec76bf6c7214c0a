"""The registry's signatures for the products it declares ports for, against their real answers.

Each answer is the product's documented reply to the registry's probe (its API reference or wire
protocol), as bytes on the wire; no server is needed to check that a signature reads it.
"""

import json
import struct

import pytest

from scans.discovery.discover import Answer, score
from scans.discovery.registry import default_registry
from scans.scanners.fingerprint import parse_http


def http(status: str, body: bytes | str = b"", headers: str = "", content_type: str = "application/json") -> bytes:
    body = body.encode() if isinstance(body, str) else body
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def rpc(result) -> bytes:
    return http("200 OK", json.dumps({"jsonrpc": "2.0", "result": result, "id": 1}))


def cql_supported() -> bytes:
    def string(text: str) -> bytes:
        return struct.pack("!H", len(text)) + text.encode()

    options = {"CQL_VERSION": ["3.4.5"], "COMPRESSION": ["snappy", "lz4"]}
    body = struct.pack("!H", len(options)) + b"".join(
        string(key) + struct.pack("!H", len(values)) + b"".join(string(v) for v in values)
        for key, values in options.items())
    return bytes([0x84, 0, 0, 0, 0x06]) + struct.pack("!I", len(body)) + body


CASES = [
    ("kubernetes-api", "http-version", http("200 OK", json.dumps(
        {"major": "1", "minor": "28", "gitVersion": "v1.28.3", "gitCommit": "a8a1abc25cad87333840cd7d54be2efaf31a3177",
         "gitTreeState": "clean", "buildDate": "2023-10-18T11:33:18Z", "goVersion": "go1.20.10",
         "compiler": "gc", "platform": "linux/amd64"})), "1.28.3"),
    ("consul", "agent-self", http("200 OK", json.dumps(
        {"Config": {"Datacenter": "dc1", "NodeName": "consul-1", "NodeID": "9d754d17-d864-b1d3-e758-f3fe25a9874f",
                    "Revision": "e24ff7d0", "Server": True, "Version": "1.16.1", "BuildDate": "2023-08-07T12:00:00Z"}}),
        "X-Consul-Default-Acl-Policy: allow\r\n"), "1.16.1"),
    ("vault", "vault-health", http("200 OK", json.dumps(
        {"initialized": True, "sealed": False, "standby": False, "performance_standby": False,
         "replication_performance_mode": "disabled", "replication_dr_mode": "disabled",
         "server_time_utc": 1700000000, "version": "1.15.2", "cluster_name": "vault-cluster-3bd69ca2",
         "cluster_id": "3bd69ca2-f8c1-9d04-6ae4-2d3a4ab7d6b1"})), "1.15.2"),
    ("nomad", "agent-self", http("200 OK", json.dumps(
        {"config": {"Region": "global", "Datacenter": "dc1"},
         "member": {"Name": "nomad-1.global", "Addr": "127.0.0.1", "Port": 4648, "Status": "alive",
                    "Tags": {"build": "1.6.1", "region": "global", "dc": "dc1", "role": "nomad"}}})), "1.6.1"),
    ("bitcoin-jsonrpc", "bitcoin-networkinfo", http("401 Unauthorized", b"",
                                                    'WWW-Authenticate: Basic realm="jsonrpc"\r\n', "text/html"), ""),
    ("bitcoin-jsonrpc", "bitcoin-networkinfo", rpc(
        {"version": 250000, "subversion": "/Satoshi:25.0.0/", "protocolversion": 70016}), "25.0.0"),
    ("solana-jsonrpc", "solana-version", rpc({"feature-set": 2891131721, "solana-core": "1.16.7"}), "1.16.7"),
    ("tendermint-rpc", "tendermint-status", http("200 OK", json.dumps(
        {"jsonrpc": "2.0", "id": -1, "result": {"node_info": {
            "protocol_version": {"p2p": "8", "block": "11", "app": "0"},
            "id": "5576458aef205977e18fd50b274e9b5d9014525a", "listen_addr": "tcp://0.0.0.0:26656",
            "network": "cosmoshub-4", "version": "0.37.2", "channels": "40202122233038606100",
            "moniker": "node-1", "other": {"tx_index": "on", "rpc_address": "tcp://0.0.0.0:26657"}}}})), "0.37.2"),
    ("aptos-rest", "aptos-ledger", http("200 OK", json.dumps(
        {"chain_id": 1, "epoch": "5280", "ledger_version": "273406453", "oldest_ledger_version": "0",
         "ledger_timestamp": "1697000000000000", "node_role": "full_node", "oldest_block_height": "0",
         "block_height": "120000000", "git_hash": "bfa7b1d2b6d1c1a1c1f3a1e0b7d3c2a1e0f9d8c7"})), ""),
    ("near-jsonrpc", "near-status", rpc(
        {"chain_id": "mainnet", "version": {"version": "1.35.0", "build": "1.35.0", "rustc_version": "1.71.0"},
         "protocol_version": 62, "sync_info": {"latest_block_height": 100000000, "syncing": False}}), "1.35.0"),
    ("zookeeper", "zookeeper-srvr", b"Zookeeper version: 3.8.2-139d619b58292d7734b4fc83a0f44be4e7b0c986, built on "
                                    b"2023-07-05 19:24 UTC\nLatency min/avg/max: 0/0.0/0\nReceived: 1\nSent: 0\n"
                                    b"Connections: 1\nOutstanding: 0\nZxid: 0x0\nMode: standalone\nNode count: 5\n",
     "3.8.2"),
    ("rabbitmq-management", "rabbitmq-overview", http("401 Unauthorized", '{"error":"not_authorized"}',
                                                      'WWW-Authenticate: Basic realm="RabbitMQ Management"\r\n'), ""),
    ("kafka", "kafka-apiversions", struct.pack("!IIhI", 4 + 2 + 4 + 6, 1, 0, 1) + struct.pack("!hhh", 18, 0, 3), ""),
    ("cassandra", "cql-options", cql_supported(), ""),
    ("couchdb", "http-root", http("200 OK", json.dumps(
        {"couchdb": "Welcome", "version": "3.3.2", "git_sha": "11a234070", "uuid": "3cd07e8ba2c4d1c9a3b4ad2b7a42d1e5",
         "features": ["access-ready", "partitioned"], "vendor": {"name": "The Apache Software Foundation"}})), "3.3.2"),
    ("influxdb", "influxdb-ping", http("204 No Content", b"", "X-Influxdb-Build: OSS\r\nX-Influxdb-Version: v2.7.1\r\n"),
     "2.7.1"),
    ("clickhouse", "clickhouse-ping", b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Type: text/html; charset=UTF-8\r\n"
                                      b"X-ClickHouse-Server-Display-Name: ch-1\r\nTransfer-Encoding: chunked\r\n"
                                      b"\r\n4\r\nOk.\n\r\n0\r\n\r\n", ""),
    ("jenkins", "http-root", http("403 Forbidden", "<html><head>Authentication required</head></html>",
                                  "X-Jenkins: 2.414.3\r\nX-Hudson: 1.395\r\nX-Jenkins-Session: 4d1c8a3e\r\n",
                                  "text/html"), "2.414.3"),
    ("docker-registry", "registry-v2", http("200 OK", "{}", "Docker-Distribution-Api-Version: registry/2.0\r\n"), ""),
    ("telnet", "banner", b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27", ""),
    ("grafana", "grafana-health", http("200 OK", '{"commit":"ab67a7be2","database":"ok","version":"10.1.5"}'), "10.1.5"),
]


@pytest.mark.parametrize("protocol,probe,answer,version", CASES, ids=[f"{c[0]}:{c[1]}:{i}" for i, c in enumerate(CASES)])
def test_each_declared_product_is_recognised_from_its_real_answer_on_an_unusual_port(protocol, probe, answer, version):
    registry = default_registry()

    found = score(registry.protocol(protocol), 40000, {probe: Answer(answer, "ok", parse_http(answer))}, None, False)

    assert found.confidence >= registry.min_confidence
    assert found.version == version


@pytest.mark.parametrize("protocol", sorted({c[0] for c in CASES}))
def test_a_soft_404_web_page_is_none_of_them(protocol):
    registry = default_registry()
    page = http("200 OK", "<html><title>Not here</title>Nothing at this address.</html>", content_type="text/html")
    answers = {name: Answer(page, "ok", parse_http(page)) for name in registry.protocol(protocol).probes}

    found = score(registry.protocol(protocol), 40000, answers, None, False)

    assert found.confidence < registry.min_confidence
