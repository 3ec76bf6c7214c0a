"""Service identification against lab imitations of each daemon, plain and behind TLS."""

import asyncio
import time

import pytest

from scans.lab.services import SERVICE_KINDS, start_node
from scans.scanners.base import Target, get_scanner
from scans.scanners.fingerprint import cpe_for, fingerprint_port

NODE = "127.0.3.30"
EXPECTED = {
    "ssh": ("ssh", "OpenSSH", "8.9p1", "cpe:2.3:a:openbsd:openssh:8.9p1:"),
    "ftp": ("ftp", "vsftpd", "3.0.5", "cpe:2.3:a:beasts:vsftpd:3.0.5:"),
    "smtp": ("smtp", "Postfix smtpd", "", "cpe:2.3:a:postfix:postfix:*:"),
    "http": ("http", "nginx", "1.18.0", "cpe:2.3:a:f5:nginx:1.18.0:"),
    "https": ("https", "Apache httpd", "2.4.52", "cpe:2.3:a:apache:http_server:2.4.52:"),
    "redis": ("redis", "Redis", "7.0.11", "cpe:2.3:a:redis:redis:7.0.11:"),
    "redis-auth": ("redis", "Redis", "", "cpe:2.3:a:redis:redis:*:"),
    "postgres": ("postgresql", "PostgreSQL", "", "cpe:2.3:a:postgresql:postgresql:*:"),
    "mysql": ("mysql", "MySQL", "8.0.32", "cpe:2.3:a:oracle:mysql:8.0.32:"),
    "memcached": ("memcached", "memcached", "1.6.9", "cpe:2.3:a:memcached:memcached:1.6.9:"),
    "mongodb": ("mongodb", "MongoDB", "6.0.5", "cpe:2.3:a:mongodb:mongodb:6.0.5:"),
    "docker": ("docker", "Docker Engine", "24.0.5", "cpe:2.3:a:docker:docker:24.0.5:"),
    "elasticsearch": ("elasticsearch", "Elasticsearch", "8.8.0", "cpe:2.3:a:elastic:elasticsearch:8.8.0:"),
    "etcd": ("etcd", "etcd", "3.5.9", "cpe:2.3:a:etcd:etcd:3.5.9:"),
    "kubelet": ("kubelet", "Kubernetes kubelet", "1.28.4", "cpe:2.3:a:kubernetes:kubernetes:1.28.4:"),
    "prometheus": ("prometheus", "Prometheus", "2.45.0", "cpe:2.3:a:prometheus:prometheus:2.45.0:"),
    "ethereum": ("ethereum-jsonrpc", "Geth", "1.10.26", "cpe:2.3:a:ethereum:go_ethereum:1.10.26:"),
    "sui": ("sui-jsonrpc", "Sui", "1.14.0", "cpe:2.3:a:mystenlabs:sui:1.14.0:"),
    "lotus": ("filecoin-lotus", "Lotus", "1.23.3", "cpe:2.3:a:filecoin:lotus:1.23.3:"),
}


@pytest.fixture(scope="module")
def node(module_lab):
    return start_node(module_lab, NODE, kinds=list(EXPECTED) + ["tarpit"])


@pytest.fixture(scope="module")
def scanned(node):
    from scans.scanners.base import ScanContext

    context = ScanContext(connect_timeout=0.5, read_timeout=0.6, extra={"banner_timeout": 0.3})
    ports = ",".join(str(s.port) for s in node.values())
    result = get_scanner("fingerprint").run(Target(NODE), {"ports": ports}, context=context)
    return {s.port: s for s in result.services}, result


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_it_names_the_product_version_and_cpe(kind, node, scanned):
    services, _ = scanned
    found = services[node[kind].port]

    assert (found.service, found.product, found.version) == EXPECTED[kind][:3]
    assert found.cpe.startswith(EXPECTED[kind][3])
    assert found.confidence >= 0.9
    assert found.evidence


def test_it_reads_the_ssh_banner_whole(node, scanned):
    assert scanned[0][node["ssh"].port].banner == "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.1"


def test_a_tarpit_is_given_up_after_two_silent_probes(node, scanned):
    services, result = scanned
    tarpit = services[node["tarpit"].port]

    assert tarpit.service == "unknown"
    assert tarpit.confidence == 0.0
    tried = [a for a in result.attempts if a["port"] == node["tarpit"].port]
    assert [a["outcome"] for a in tried] == ["timeout", "timeout"]


@pytest.mark.parametrize("kind,service", [("redis+tls", "redis"), ("ssh+tls", "ssh"), ("mongodb+tls", "mongodb"),
                                          ("ethereum+tls", "ethereum-jsonrpc"), ("http+tls", "https")])
def test_it_identifies_the_same_services_behind_tls(lab, fast, kind, service):
    port = start_node(lab, "127.0.3.31", kinds=[kind])[kind].port

    found = asyncio.run(fingerprint_port("127.0.3.31", port, context=fast))

    assert found.tls
    assert found.service == service
    assert found.version
    assert found.evidence["tls_version"].startswith("TLS")


def test_it_identifies_services_on_unusual_ports(lab, fast):
    node = start_node(lab, "127.0.3.32", kinds=["postgres", "mongodb", "memcached", "docker"], standard_ports=False)

    names = {kind: asyncio.run(fingerprint_port("127.0.3.32", svc.port, context=fast)).service
             for kind, svc in node.items()}

    assert names == {"postgres": "postgresql", "mongodb": "mongodb", "memcached": "memcached", "docker": "docker"}


def test_a_port_with_nothing_listening_is_unknown_and_quick(fast):
    started = time.monotonic()

    found = asyncio.run(fingerprint_port("127.0.3.33", 4444, context=fast))

    assert found.service == "unknown"
    assert time.monotonic() - started < 1


def test_without_ports_it_scans_the_top_thousand_first(lab, fast):
    start_node(lab, "127.0.3.34", kinds=["ssh", "http", "redis"])  # 6379 is not in nmap's top 1000

    result = get_scanner("fingerprint").run(Target("127.0.3.34"), context=fast)

    assert [(s.port, s.service) for s in result.services] == [(22, "ssh"), (80, "http")]


def test_cpe_versions_are_escaped_and_unknown_ones_are_any():
    assert cpe_for("geth", "") == "cpe:2.3:a:ethereum:go_ethereum:*:*:*:*:*:*:*:*"
    assert cpe_for("lotus", "1.2+git") == "cpe:2.3:a:filecoin:lotus:1.2\\+git:*:*:*:*:*:*:*"
    assert cpe_for("no-such-product", "1") == ""


def test_every_lab_kind_has_an_expectation_here():
    assert set(SERVICE_KINDS) - set(EXPECTED) == {"tarpit", "ethereum-locked"}
