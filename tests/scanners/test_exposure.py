"""Exposure checks: findings for what answers without credentials, none for what refuses."""

import pytest

from scans.lab.services import mongodb_handler, postgres_handler, redis_handler, start_node, tarpit_handler
from scans.scanners.base import Target, get_scanner

OPEN_KINDS = ["redis", "memcached", "mongodb", "elasticsearch", "docker", "etcd", "kubelet", "prometheus", "ethereum"]


@pytest.fixture
def run(fast):
    def scan(target):
        return get_scanner("exposure").run(target, context=fast)

    return scan


def test_it_reports_each_open_service_with_evidence_and_remediation(lab, run):
    start_node(lab, "127.0.3.40", kinds=OPEN_KINDS)

    result = run(Target("127.0.3.40"))

    assert sorted(f.rule_id for f in result.findings) == [
        "exposure-docker-api-unauthenticated", "exposure-elasticsearch-unauthenticated",
        "exposure-etcd-unauthenticated", "exposure-jsonrpc-admin-namespace", "exposure-jsonrpc-debug-namespace",
        "exposure-jsonrpc-personal-namespace", "exposure-kubelet-unauthenticated",
        "exposure-memcached-unauthenticated", "exposure-mongodb-unauthenticated", "exposure-prometheus-metrics",
        "exposure-redis-unauthenticated",
    ]
    for found in result.findings:
        assert found.severity in ("critical", "high", "medium", "low")
        assert found.remediation and found.evidence["sent"] and found.evidence["received"]
        assert len(found.evidence["received"]) < 500


def test_unauthenticated_redis_is_high_with_the_info_reply_as_evidence(lab, run):
    start_node(lab, "127.0.3.41", kinds=["redis"])

    (found,) = run(Target("127.0.3.41", ports=(6379,))).findings

    assert (found.rule_id, found.severity, found.port) == ("exposure-redis-unauthenticated", "high", 6379)
    assert "redis_version:7.0.11" in found.evidence["received"]


def test_services_that_ask_for_credentials_are_not_reported(lab, run):
    lab.serve("127.0.3.42", 6379, redis_handler(password="x"))
    lab.serve("127.0.3.42", 27017, mongodb_handler(auth=True))
    lab.serve("127.0.3.42", 5432, postgres_handler())
    start_node(lab, "127.0.3.42", kinds=["ethereum-locked"], ports={"ethereum-locked": 8545})

    result = run(Target("127.0.3.42"))

    assert result.findings == []
    assert {a["port"] for a in result.attempts} >= {6379, 27017, 5432, 8545}


def test_postgres_with_trust_authentication_is_critical(lab, run):
    lab.serve("127.0.3.43", 5432, postgres_handler(trust=True))

    (found,) = run(Target("127.0.3.43", ports=(5432,))).findings

    assert (found.rule_id, found.severity) == ("exposure-postgres-unauthenticated", "critical")


def test_it_follows_the_services_discovery_found_on_unusual_ports(lab, run, fast):
    node = start_node(lab, "127.0.3.44", kinds=["docker", "ethereum"], standard_ports=False)
    services = get_scanner("fingerprint").run(
        Target("127.0.3.44"), {"ports": ",".join(str(s.port) for s in node.values())}, context=fast).services

    result = run(Target("127.0.3.44", services=tuple(services)))

    assert {(f.rule_id, f.port) for f in result.findings} >= {
        ("exposure-docker-api-unauthenticated", node["docker"].port),
        ("exposure-jsonrpc-admin-namespace", node["ethereum"].port),
    }


def test_an_address_with_nothing_listening_gives_a_complete_empty_result(run):
    result = run(Target("127.0.3.45"))

    assert result.complete and result.findings == []
    assert {a["outcome"] for a in result.attempts} == {"refused"}


def test_a_tarpit_costs_one_timeout_not_a_hang(lab, run):
    lab.serve("127.0.3.46", 6379, tarpit_handler())

    result = run(Target("127.0.3.46", ports=(6379,)))

    assert result.findings == [] and result.duration < 2
    assert result.attempts[0]["outcome"] == "timeout"



def test_every_exposure_finding_states_it_is_proven_by_the_answer(lab, run):
    start_node(lab, "127.0.3.49", kinds=["redis"])

    (found,) = run(Target("127.0.3.49", ports=(6379,))).findings

    assert (found.evidence["match_confidence"], found.evidence["match_basis"]) == (1.0, "proven")
    assert found.evidence["match_reason"] == "the service answered an unauthenticated INFO server"
