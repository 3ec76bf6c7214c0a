"""Application families: the table's entries name product, version and CPE from each product's wire format."""

import re

import pytest

from scans.discovery.discover import discover
from scans.discovery.families import FamilyTableError, default_families, load_families
from scans.lab.families import FAMILY_KINDS, PROTECTED_KINDS, start_family_node
from scans.lab.http import soft_404_handler
from scans.lab.services import start_node, tarpit_handler
from scans.scanners.base import ScanContext, Target

OPEN_ADDRESS, PROTECTED_ADDRESS, NEGATIVE_ADDRESS = "127.0.22.10", "127.0.22.11", "127.0.22.12"
CONTEXT = ScanContext(connect_timeout=0.5, read_timeout=0.6, extra={"banner_timeout": 0.3})


def _services(lab, address, kinds=None):
    node = start_family_node(lab, address, kinds)
    result = discover(Target(address), ports=",".join(str(s.port) for s in node.values()), context=CONTEXT)
    by_port = {s.port: s for s in result.services}
    return {kind: by_port[service.port] for kind, service in node.items()}


@pytest.fixture(scope="module")
def named(module_lab):
    return _services(module_lab, OPEN_ADDRESS)


@pytest.fixture(scope="module")
def protected(module_lab):
    return _services(module_lab, PROTECTED_ADDRESS, PROTECTED_KINDS)


@pytest.mark.parametrize("kind,service,product,version,cpe", [
    ("bitcoin", "bitcoin-jsonrpc", "Bitcoin Core", "25.0.0", "cpe:2.3:a:bitcoin:bitcoin_core:25.0.0"),
    ("litecoin", "bitcoin-jsonrpc", "Bitcoin-compatible node", "0.21.2.2", ""),
    ("solana", "solana-jsonrpc", "Solana validator", "1.17.6", "cpe:2.3:a:solana:solana:1.17.6"),
    ("polkadot", "substrate-jsonrpc", "Polkadot", "1.3.0", "cpe:2.3:a:parity:polkadot:1.3.0"),
    ("substrate", "substrate-jsonrpc", "Substrate node", "4.0.0", ""),
    ("tendermint", "tendermint-rpc", "Tendermint Core / CometBFT", "0.37.2", "cpe:2.3:a:tendermint:tendermint:0.37.2"),
    ("near", "near-jsonrpc", "nearcore", "1.36.0", "cpe:2.3:a:near:nearcore:1.36.0"),
    ("aptos", "aptos-rest", "Aptos node", "e5fb7f5c6b2c09ebe2a6c3e1a5a2fbd1c2a03d7f",
     "cpe:2.3:a:aptoslabs:aptos-core:e5fb7f5c6b2c09ebe2a6c3e1a5a2fbd1c2a03d7f"),
    ("kubernetes-api", "kubernetes-api", "Kubernetes API server", "1.28.4", "cpe:2.3:a:kubernetes:kubernetes:1.28.4"),
    ("consul", "consul", "Consul", "1.17.0", "cpe:2.3:a:hashicorp:consul:1.17.0"),
    ("nomad", "nomad", "Nomad", "1.6.3", "cpe:2.3:a:hashicorp:nomad:1.6.3"),
    ("vault", "vault", "Vault", "1.15.2", "cpe:2.3:a:hashicorp:vault:1.15.2"),
    ("grafana", "grafana", "Grafana", "10.2.2", "cpe:2.3:a:grafana:grafana:10.2.2"),
    ("jenkins", "jenkins", "Jenkins", "2.426.1", "cpe:2.3:a:jenkins:jenkins:2.426.1"),
    ("registry", "docker-registry", "Docker Registry (distribution)", "", ""),
    ("opensearch", "elasticsearch", "OpenSearch", "2.11.1", "cpe:2.3:a:amazon:opensearch:2.11.1"),
    ("couchdb", "couchdb", "Apache CouchDB", "2.3.1", "cpe:2.3:a:apache:couchdb:2.3.1"),
    ("influxdb", "influxdb", "InfluxDB", "1.8.10", "cpe:2.3:a:influxdata:influxdb:1.8.10"),
    ("clickhouse", "clickhouse", "ClickHouse", "23.8.2.7", "cpe:2.3:a:clickhouse:clickhouse:23.8.2.7"),
    ("zookeeper", "zookeeper", "Apache ZooKeeper", "3.8.3", "cpe:2.3:a:apache:zookeeper:3.8.3"),
    ("nats", "nats", "NATS Server", "2.10.7", "cpe:2.3:a:linuxfoundation:nats-server:2.10.7"),
    ("rabbitmq", "amqp", "RabbitMQ", "3.12.10", "cpe:2.3:a:vmware:rabbitmq:3.12.10"),
    ("lavinmq", "amqp", "AMQP 0-9-1 broker", "1.2.7", ""),
    ("mosquitto", "mqtt", "Eclipse Mosquitto", "2.0.18", "cpe:2.3:a:eclipse:mosquitto:2.0.18"),
    ("cassandra", "cassandra", "Apache Cassandra", "4.1.3", "cpe:2.3:a:apache:cassandra:4.1.3"),
    ("kafka", "kafka", "Kafka-protocol broker", "", ""),
    ("telnet", "telnet", "Telnet server", "", ""),
])
def test_each_family_target_is_named_with_product_version_and_cpe(named, kind, service, product, version, cpe):
    found = named[kind]

    assert (found.service, found.product, found.version) == (service, product, version)
    assert found.cpe.startswith(cpe) if cpe else found.cpe == ""
    assert found.evidence["entry"] and found.evidence["matched"] and found.evidence["received"]
    assert "auth_required" not in found.evidence


@pytest.mark.parametrize("kind,entry,version", [
    ("bitcoin-auth", "bitcoin-rpc-auth", ""), ("kubernetes-api-auth", "kubernetes-api-auth", ""),
    ("consul-acl", "consul-acl", ""), ("clickhouse-auth", "clickhouse-auth", "23.8.2.7"),
    ("elasticsearch-auth", "elasticsearch-security", ""),
])
def test_a_service_that_demands_credentials_is_named_as_protected(protected, kind, entry, version):
    found = protected[kind]

    assert found.evidence["entry"] == entry
    assert found.evidence["auth_required"] is True
    assert found.version == version


def test_protected_twins_that_publish_their_version_anyway_are_named_with_it(protected):
    assert {k: protected[k].version for k in ("jenkins-auth", "couchdb-auth", "influxdb-auth", "zookeeper-acl",
                                              "nats-auth", "kubernetes-api-default")} == {
        "jenkins-auth": "2.426.1", "couchdb-auth": "3.3.2", "influxdb-auth": "1.8.10", "zookeeper-acl": "3.8.3",
        "nats-auth": "2.10.7", "kubernetes-api-default": "1.28.4"}


def test_cassandra_demanding_credentials_is_named_without_the_version_only_a_session_reads(protected):
    found = protected["cassandra-auth"]

    assert (found.product, found.version, found.cpe) == ("Apache Cassandra", "", "cpe:2.3:a:apache:cassandra:*:*:*:*:*:*:*:*")


def test_a_service_giving_no_sign_of_its_product_stays_unnamed(protected):
    # Nomad with ACLs answers a bare "Permission denied": nothing in it says Nomad.
    assert (protected["nomad-acl"].service, protected["nomad-acl"].product) == ("http", "")


def test_soft_404_sites_tarpits_and_named_web_servers_are_given_no_family(lab):
    lab.serve(NEGATIVE_ADDRESS, 8080, soft_404_handler())
    lab.serve(NEGATIVE_ADDRESS, 9999, tarpit_handler())
    start_node(lab, NEGATIVE_ADDRESS, kinds=["http"])

    result = discover(Target(NEGATIVE_ADDRESS), ports="80,8080,9999", context=CONTEXT)

    assert {s.port: s.service for s in result.services} == {80: "http", 8080: "http", 9999: "unknown"}
    assert not any("entry" in s.evidence for s in result.services)


def test_handshake_families_are_named_on_ports_that_are_not_their_own(lab):
    kinds = ["zookeeper", "mosquitto", "rabbitmq", "cassandra", "kafka", "nats"]
    served = {kind: lab.serve("127.0.22.13", 0, FAMILY_KINDS[kind].factory(), name=kind) for kind in kinds}

    result = discover(Target("127.0.22.13"), ports=",".join(str(s.port) for s in served.values()), context=CONTEXT)

    named = {s.port: (s.service, s.version) for s in result.services}
    assert {kind: named[s.port] for kind, s in served.items()} == {
        "zookeeper": ("zookeeper", "3.8.3"), "mosquitto": ("mqtt", "2.0.18"), "rabbitmq": ("amqp", "3.12.10"),
        "cassandra": ("cassandra", "4.1.3"), "kafka": ("kafka", ""), "nats": ("nats", "2.10.7")}


def test_every_entry_of_the_table_has_a_lab_target_that_it_names(named, protected):
    matched = {s.evidence.get("entry") for s in [*named.values(), *protected.values()]}

    assert {e.name for e in default_families().entries} - matched == set()


TABLE = """
version: 1
families:
  - name: grafana
    family: dashboard
    service: grafana
    applies_to: [http]
    probe: {kind: http, method: GET, path: /api/health}
    match: {json: database, regex: '^ok$'}
    product: Grafana
    version: {json: version, regex: '^([\\d.]+)'}
    cpe: [grafana, grafana]
"""


def test_a_valid_table_loads_into_entries():
    (entry,) = load_families(text=TABLE).entries

    assert (entry.name, entry.product, entry.cpe, entry.probe.path) == ("grafana", "Grafana", ("grafana", "grafana"),
                                                                        "/api/health")


@pytest.mark.parametrize("change,message", [
    (("product: Grafana", "product: Grafana\n    colour: red"), "families[0] (grafana): unknown key(s) colour"),
    (("regex: '^ok$'", "regex: '^(ok'"), "families[0] (grafana): match: bad regular expression"),
    (("kind: http, method: GET, path: /api/health", "kind: send, payload: x"),
     "families[0] (grafana): match: json tests need an http or jsonrpc probe"),
    (("regex: '^([\\d.]+)'", "regex: '^[\\d.]+'"), "families[0] (grafana): version.regex needs exactly one group"),
    (("cpe: [grafana, grafana]", "cpe: [Grafana Labs]"), "families[0] (grafana): cpe must be [vendor, product]"),
    (("kind: http,", "kind: smoke,"), "families[0] (grafana): probe: must be a mapping whose kind is one of"),
    (("match: {json: database, regex: '^ok$'}", "match: {json: database, regex: '^ok$', equals: ok}"),
     "families[0] (grafana): match: needs exactly one of regex, equals, exists"),
])
def test_a_bad_entry_fails_at_load_time_with_an_error_naming_its_place(change, message):
    with pytest.raises(FamilyTableError, match=re.escape(message)):
        load_families(text=TABLE.replace(*change))
