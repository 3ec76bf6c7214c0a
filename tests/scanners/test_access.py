"""Access as a family: one read-only question per protocol, open with its proof, protected when credentials are asked."""

import pytest

from scans.discovery.discover import discover
from scans.lab.families import PROTECTED_KINDS, start_family_node, vsftpd_handler
from scans.lab.http import http_handler, json_response
from scans.lab.services import mongodb_handler, redis_handler
from scans.scanners.base import ScanContext, Target, get_scanner

OPEN_ADDRESS, PROTECTED_ADDRESS = "127.0.22.20", "127.0.22.21"
CONTEXT = ScanContext(connect_timeout=0.5, read_timeout=0.6, extra={"banner_timeout": 0.3})


def _exposure(lab, address, kinds=None):
    """Discovery, then the exposure scanner on what it named, as ``scan`` runs them."""
    node = start_family_node(lab, address, kinds)
    found = discover(Target(address), ports=",".join(str(s.port) for s in node.values()), context=CONTEXT)
    result = get_scanner("exposure").run(Target(address, ports=tuple(found.open_ports), services=tuple(found.services)),
                                         context=CONTEXT)
    kind_at = {service.port: kind for kind, service in node.items()}
    return kind_at, result


@pytest.fixture(scope="module")
def open_node(module_lab):
    return _exposure(module_lab, OPEN_ADDRESS)


@pytest.fixture(scope="module")
def protected_node(module_lab):
    return _exposure(module_lab, PROTECTED_ADDRESS, PROTECTED_KINDS)


def _verdicts(node):
    kind_at, result = node
    return {(kind_at[v["port"]], v["verdict"]): v for v in result.data["access"]}


@pytest.mark.parametrize("kind,proof", [
    ("ftp-anonymous", "230 Login successful."), ("zookeeper", '"/": ["zookeeper", "brokers", "config"]'),
    ("nats", "INFO {"), ("mosquitto", "CONNACK return code 0 (connection accepted)"), ("cassandra", "READY"),
    ("kubernetes-api", '"kind": "NamespaceList"'), ("consul", '"payments": ["v2"]'), ("nomad", '"ID": "payments-api"'),
    ("couchdb", '"customers"'), ("registry", '"repositories": ["payments/api", "web"]'), ("jenkins", '"deploy-prod"'),
    ("influxdb", '"telegraf"'), ("clickhouse", "system"), ("bitcoin", '"subversion": "/Satoshi:25.0.0/"'),
    ("kafka", '"topics": ["orders", "payments.events"]'),
])
def test_a_service_open_to_strangers_is_reported_open_with_the_answer_as_proof(open_node, kind, proof):
    kind_at, result = open_node
    verdict = _verdicts(open_node)[(kind, "open")]
    (found,) = [f for f in result.findings if kind_at[f.port] == kind and f.evidence.get("verdict") == "open"]

    assert proof in verdict["proof"]["received"]
    assert found.rule_id.startswith("access-") and found.rule_id.endswith("-anonymous")
    assert found.severity in ("critical", "high", "medium") and found.remediation
    assert found.evidence["sent"] and proof in found.evidence["received"]


@pytest.mark.parametrize("kind", [
    "ftp-tls", "zookeeper-acl", "nats-auth", "mosquitto-auth", "cassandra-auth", "kubernetes-api-default",
    "kubernetes-api-auth", "consul-acl", "couchdb-auth", "registry-auth", "jenkins-auth", "influxdb-auth",
    "clickhouse-auth", "bitcoin-auth", "elasticsearch-auth",
])
def test_a_service_that_demands_credentials_is_reported_protected_and_never_open(protected_node, kind):
    kind_at, result = protected_node
    verdicts = _verdicts(protected_node)

    assert (kind, "protected") in verdicts
    assert (kind, "open") not in verdicts
    assert not [f for f in result.findings if kind_at[f.port] == kind and f.evidence.get("verdict") == "open"]


def test_a_kafka_sasl_listener_gives_no_open_verdict(protected_node):
    # It closes on Metadata before authentication: nothing proves access, nothing is claimed.
    assert not [v for (kind, _), v in _verdicts(protected_node).items() if kind == "kafka-auth"]


def test_no_protected_service_yields_an_open_finding(protected_node):
    _, result = protected_node

    assert [f.rule_id for f in result.findings] == []


def test_ftp_without_auth_tls_in_feat_is_a_cleartext_finding_and_with_it_none(open_node, protected_node):
    assert ("ftp-anonymous", "cleartext") in _verdicts(open_node)
    assert ("ftp-tls", "cleartext") not in _verdicts(protected_node)


def test_telnet_is_a_cleartext_login_finding(open_node):
    kind_at, result = open_node

    (found,) = [f for f in result.findings if kind_at[f.port] == "telnet"]

    assert (found.rule_id, found.severity, found.cwe) == ("access-telnet-cleartext", "high", 319)


def test_the_ftp_check_logs_in_only_by_the_anonymous_convention(lab):
    received = []

    async def recording(reader, writer):
        # The vsFTPd dialogue, with every command the client sends kept.
        inner = vsftpd_handler(anonymous=True)

        class Tap:
            async def readline(self):
                line = await reader.readline()
                received.append(line)
                return line

            def __getattr__(self, name):
                return getattr(reader, name)

        await inner(Tap(), writer)

    lab.serve("127.0.22.22", 21, recording)
    result = get_scanner("exposure").run(Target("127.0.22.22", ports=(21,)), context=CONTEXT)

    assert ("access-ftp-anonymous" in {f.rule_id for f in result.findings})
    assert [line for line in received if line.upper().startswith((b"USER", b"PASS"))] == [
        b"USER anonymous\r\n", b"PASS anonymous@watchpost.invalid\r\n"]


def test_redis_and_mongodb_that_ask_for_credentials_are_reported_protected(lab):
    lab.serve("127.0.22.23", 6379, redis_handler(password="lab-only"))
    lab.serve("127.0.22.23", 27017, mongodb_handler(auth=True))

    result = get_scanner("exposure").run(Target("127.0.22.23", ports=(6379, 27017)), context=CONTEXT)

    assert {(v["check"], v["verdict"]) for v in result.data["access"]} == {("redis", "protected"),
                                                                          ("mongodb", "protected")}
    assert result.findings == []


@pytest.mark.parametrize("document", [{}, []])
def test_a_site_answering_every_path_with_json_is_not_taken_for_an_open_api(lab, document):
    address = "127.0.22.24" if document == {} else "127.0.22.25"
    ports = (8500, 4646, 5984, 5000, 8080, 8086, 8123, 8332, 6443)
    for port in ports:
        lab.serve(address, port, http_handler({}, not_found=json_response(document)))

    result = get_scanner("exposure").run(Target(address, ports=ports), context=CONTEXT)

    assert result.findings == []
    assert [v for v in result.data["access"] if v["verdict"] == "open"] == []
