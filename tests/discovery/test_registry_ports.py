"""The registry's ports and what the project can name stay in step; the profiles sweep them."""

from pathlib import Path

import pytest
import yaml

from scans.discovery.discover import discover, discovery_ports
from scans.discovery.registry import DEFAULT_PATH, default_registry
from scans.lab.services import SERVICE_KINDS, start_node
from scans.scanners.base import ScanContext, Target
from scans.scanners.port_sets import ALL_PORTS, RESERVED_PORTS, TOP_100, TOP_1000

# Products' well-known default ports, as their own documentation gives them.
WELL_KNOWN = {
    "kubernetes-api": [6443], "kubelet": [10250], "etcd": [2379], "consul": [8500], "vault": [8200],
    "nomad": [4646], "ethereum-jsonrpc": [8545, 8546], "bitcoin-jsonrpc": [8332], "solana-jsonrpc": [8899],
    "substrate-jsonrpc": [9933, 9944], "tendermint-rpc": [26657], "filecoin-lotus": [1234], "sui-jsonrpc": [9000],
    "aptos-rest": [8080], "jenkins": [8080], "docker-registry": [5000], "telnet": [23], "near-jsonrpc": [3030], "redis": [6379], "memcached": [11211], "mongodb": [27017],
    "elasticsearch": [9200], "zookeeper": [2181], "amqp": [5672], "rabbitmq-management": [15672],
    "kafka": [9092], "nats": [4222], "mqtt": [1883], "cassandra": [9042], "couchdb": [5984], "influxdb": [8086],
    "clickhouse": [8123, 9000], "docker-api": [2375, 2376], "prometheus-metrics": [9090], "grafana": [3000],
    "postgresql": [5432], "mysql": [3306], "ssh": [22], "ftp": [21], "smtp": [25], "pop3": [110], "imap": [143],
}
LAB_KINDS = [kind for kind in SERVICE_KINDS if kind != "tarpit"]  # the tarpit is there to be named by nobody


@pytest.fixture(scope="module")
def lab_names(module_lab):
    """What discovery names on each lab service, served on a port of chance (not its usual one)."""
    node = start_node(module_lab, "127.0.3.90", kinds=LAB_KINDS, standard_ports=False)
    context = ScanContext(connect_timeout=0.5, read_timeout=0.6,
                          extra={"banner_timeout": 0.3, "fallback_seconds": 0})
    result = discover(Target("127.0.3.90"), ports=[s.port for s in node.values()], context=context)
    by_port = {s.port: s.service for s in result.services}
    return {kind: by_port[service.port] for kind, service in node.items()}


def test_every_protocol_in_the_registry_declares_its_ports():
    assert [p.name for p in default_registry().protocols if not p.ports] == []


@pytest.mark.parametrize("protocol,ports", sorted(WELL_KNOWN.items()))
def test_each_product_family_declares_its_well_known_default_ports(protocol, ports):
    assert set(ports) <= set(default_registry().protocol(protocol).ports)


@pytest.mark.parametrize("kind", LAB_KINDS)
def test_every_service_the_project_names_has_a_registry_protocol_declaring_its_usual_port(lab_names, kind):
    name = lab_names[kind]
    claiming = default_registry().for_service(name)

    assert name not in ("", "unknown", "ssl"), f"the lab's {kind} service went unnamed"
    assert claiming, f"no registry protocol claims the service {name!r} the fingerprints name"
    assert any(SERVICE_KINDS[kind].port in p.ports for p in claiming), (
        f"{kind}: usual port {SERVICE_KINDS[kind].port} is declared by none of {[p.name for p in claiming]}")


@pytest.mark.django_db
@pytest.mark.parametrize("slug,top", [("light", TOP_100), ("standard", TOP_1000)])
def test_the_light_and_standard_profiles_sweep_their_top_ports_and_every_registry_port(slug, top):
    from scans.models import ScanProfile
    from scans.pipeline.profiles import profile_ports

    ports = set(profile_ports(ScanProfile.objects.get(org=None, slug=slug)))

    assert set(top) - RESERVED_PORTS <= ports
    assert set(default_registry().ports) - RESERVED_PORTS <= ports
    assert ports <= set(top) | set(default_registry().ports)
    assert not ports & RESERVED_PORTS


@pytest.mark.django_db
def test_the_deep_profile_sweeps_every_port_but_the_sandbox_one():
    from scans.models import ScanProfile
    from scans.pipeline.profiles import profile_ports

    ports = profile_ports(ScanProfile.objects.get(org=None, slug="deep"))

    assert set(ports) == set(ALL_PORTS) - {2024}


def test_a_loopback_sweep_of_every_port_never_reports_the_sandbox_port():
    context = ScanContext(connect_timeout=0.5, read_timeout=0.6, extra={"banner_timeout": 0.3, "fallback_seconds": 0})

    result = discover("127.0.0.1", ports="all", context=context)

    assert result.ports_scanned == 65534
    assert 2024 not in result.open_ports
    assert 2024 not in [s.port for s in result.services]
    assert result.complete, result.error


def test_a_named_set_and_all_ports_give_the_registry_ports_in_one_place():
    registry = default_registry()

    assert set(registry.ports) <= set(discovery_ports("top100", registry))
    assert set(discovery_ports("all", registry)) == set(ALL_PORTS) - {2024}


# The application families' table, beside protocols.yaml once the families are part of discovery.
FAMILIES = Path(DEFAULT_PATH).with_name("families.yaml")


@pytest.mark.skipif(not FAMILIES.exists(), reason="no application families table beside protocols.yaml")
def test_every_application_family_entry_has_a_registry_protocol_declaring_its_ports():
    registry = default_registry()
    entries = yaml.safe_load(FAMILIES.read_text())["families"]

    unclaimed = sorted({e["service"] for e in entries if not registry.for_service(e["service"])})
    undeclared = sorted({(e["name"], p) for e in entries for p in e.get("ports", []) if p not in registry.ports})

    assert unclaimed == [], "family services no registry protocol names"
    assert undeclared == [], "family ports the registry (and so the light and standard profiles) lacks"
