"""Discovery of lab nodes: protocols with confidence and evidence, and what a new data entry adds."""

import json

import pytest

from scans.discovery.discover import discover
from scans.discovery.registry import load_registry
from scans.lab.services import SERVICE_KINDS, ssh_handler, start_node
from scans.scanners.base import Target


@pytest.fixture(scope="module")
def node_result(module_lab):
    from scans.scanners.base import ScanContext

    kinds = [k for k in SERVICE_KINDS if k not in ("tarpit", "ethereum-locked")]
    node = start_node(module_lab, "127.0.3.50", kinds=kinds)
    context = ScanContext(connect_timeout=0.5, read_timeout=0.6, extra={"banner_timeout": 0.3})
    ports = ",".join(str(s.port) for s in node.values())
    return node, discover(Target("127.0.3.50"), ports=ports, context=context)


@pytest.mark.parametrize("kind,protocol,version", [
    ("http", "http", "1.18.0"), ("https", "http", "2.4.52"), ("ssh", "ssh", "8.9p1"), ("redis", "redis", "7.0.11"),
    ("postgres", "postgresql", ""), ("mysql", "mysql", "8.0.32"), ("memcached", "memcached", "1.6.9"),
    ("docker", "docker-api", "24.0.5"), ("prometheus", "prometheus-metrics", "2.45.0"),
    ("ethereum", "ethereum-jsonrpc", "1.10.26"), ("sui", "sui-jsonrpc", "1.14.0"),
    ("lotus", "filecoin-lotus", "1.23.3"), ("mongodb", "mongodb", "6.0.5"), ("etcd", "etcd", "3.5.9"),
    ("elasticsearch", "elasticsearch", "8.8.0"), ("kubelet", "kubelet", "1.28.4"), ("smtp", "smtp", ""),
    ("ftp", "ftp", "3.0.5"),
])
def test_it_detects_each_protocol_with_confidence_and_evidence(node_result, kind, protocol, version):
    node, result = node_result
    (best, *_) = [p for p in result.protocols if p.port == node[kind].port]

    assert best.protocol == protocol
    assert 0.8 <= best.confidence <= 1
    assert best.version == version
    assert any(e.get("matched") for e in best.evidence)


def test_https_is_detected_inside_tls(node_result):
    node, result = node_result

    assert next(p for p in result.protocols if p.port == node["https"].port).tls


def test_the_result_is_json_serialisable(node_result):
    _, result = node_result
    data = json.loads(json.dumps(result.to_dict()))

    assert data["address"] == "127.0.3.50"
    assert {"protocol", "port", "confidence", "evidence"} <= set(data["protocols"][0])
    assert len(data["services"]) == len(data["open_ports"])


def test_a_port_alone_is_not_enough(lab, fast):
    lab.serve("127.0.3.51", 8545, ssh_handler())  # SSH where Ethereum usually listens

    result = discover("127.0.3.51", ports="8545", context=fast)

    assert [p.protocol for p in result.protocols] == ["ssh"]


def test_a_tarpit_and_an_empty_address_yield_no_protocol(lab, fast):
    start_node(lab, "127.0.3.52", kinds=["tarpit"])

    assert discover("127.0.3.52", ports="9999", context=fast).protocols == []
    empty = discover("127.0.3.53", ports="top100", context=fast)
    assert empty.open_ports == [] and empty.protocols == []
    assert empty.portscan["closed"] == empty.ports_scanned > 100  # top 100 plus the registry's ports


def test_adding_a_protocol_is_a_data_change(lab, fast):
    text = (load_registry().source and open(load_registry().source).read()) + """
  - name: gopher
    ports: [7070]
    port_weight: 0.2
    signatures:
      - {probe: banner, regex: '^iWelcome to gopher', weight: 0.9, version: 'gopher/([\\d.]+)'}
"""
    registry = load_registry(text=text)
    lab.serve("127.0.3.54", 7070, ssh_handler(banner="iWelcome to gopher/3.1\tfake\t(NULL)\t0"))

    result = discover("127.0.3.54", ports="7070", context=fast, registry=registry)

    (found,) = result.protocols
    assert (found.protocol, found.version, found.confidence) == ("gopher", "3.1", 0.92)


def test_a_named_port_set_grows_by_the_ports_the_protocol_registry_names():
    from scans.discovery.discover import discovery_ports
    from scans.discovery.registry import default_registry

    ports = discovery_ports("top1000", default_registry())
    assert 6379 in ports and 8545 in ports  # Redis and Ethereum JSON-RPC: not in nmap's top 1000
    assert 2024 not in ports
    assert discovery_ports([22, 80], default_registry()) == (22, 80)


def test_a_set_mixed_with_ports_also_grows_by_the_registry_ports():
    from scans.discovery.discover import discovery_ports
    from scans.discovery.registry import default_registry

    ports = discovery_ports("top100,65000", default_registry())
    assert 65000 in ports and 6379 in ports and 8545 in ports and 22 in ports
