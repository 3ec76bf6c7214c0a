"""The TCP connect scan, against real listeners the tests start on loopback."""

import socket
import time

import pytest

from scans.lab.services import start_node
from scans.scanners.base import ScanContext, ScannerError, Target, get_scanner
from scans.scanners.port_sets import RESERVED_PORTS, TOP_100, TOP_1000, parse_ports
from scans.scanners.portscan import sweep


def probe_ports(address, ports, **options):
    """One host's sweep, as the scanner runs it."""
    return sweep([(address, ports)], **options)[0]


@pytest.fixture
def backlog_full_port():
    """A listener that never accepts, its one-slot queue filled: further SYNs are dropped, like a firewall."""
    listener = socket.socket()
    listener.bind(("127.0.3.21", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.3.21", port))
        fillers.append(filler)
    time.sleep(0.05)
    yield port
    for sock in fillers + [listener]:
        sock.close()


def test_it_finds_the_open_ports_of_a_lab_node(lab):
    node = start_node(lab, "127.0.3.20", kinds=["ssh", "redis", "http"], standard_ports=False)
    ports = sorted(s.port for s in node.values())
    spec = f"1-1024,{ports[0] - 5}-{ports[-1] + 5}"

    result = get_scanner("portscan").run(Target("127.0.3.20"), {"ports": spec})

    assert result.open_ports == ports
    assert result.complete
    assert result.data["counts"]["open"] == 3


def test_it_tells_refused_from_filtered_ports(lab, backlog_full_port):
    closed = backlog_full_port + 1
    outcome = probe_ports("127.0.3.21", [backlog_full_port, closed], timeout=0.3)

    assert outcome.filtered == [backlog_full_port]
    assert outcome.counts == {"open": 0, "closed": 1, "filtered": 1, "error": 0}


def test_an_address_with_nothing_listening_has_every_port_closed():
    result = get_scanner("portscan").run(Target("127.0.3.22"), {"ports": "all"})

    assert result.open_ports == []
    assert result.data["counts"]["closed"] == 65534  # every port but the reserved one
    assert result.coverage[0].whole_host


def test_a_full_scan_keeps_no_self_connection_as_open():
    # Scanning the ephemeral range of an idle address is where a socket can connect to itself.
    outcome = probe_ports("127.0.3.23", parse_ports("32768-60999"), concurrency=512)

    assert outcome.open == []
    assert outcome.counts["closed"] == 60999 - 32768 + 1


def test_a_tarpit_counts_as_open(lab):
    tarpit = start_node(lab, "127.0.3.24", kinds=["tarpit"])["tarpit"]

    outcome = probe_ports("127.0.3.24", [tarpit.port], timeout=0.3)

    assert outcome.open == [tarpit.port]


def test_it_never_probes_the_reserved_port():
    assert 2024 in RESERVED_PORTS
    assert 2024 not in parse_ports("2000-2100")
    assert 2024 not in parse_ports("all")
    assert parse_ports([2024, 22]) == (22,)


def test_port_specs_read_names_lists_and_ranges():
    assert parse_ports("top100") == TOP_100
    assert parse_ports("22,80,8000-8002,80") == (22, 80, 8000, 8001, 8002)
    assert len(parse_ports("all")) == 65534
    with pytest.raises(ValueError, match="bad port"):
        parse_ports("22,http")
    with pytest.raises(ValueError, match="1-65535"):
        parse_ports("70000")


def test_the_top_sets_are_nmaps_frequency_order():
    assert TOP_1000[:5] == (80, 23, 443, 21, 22)
    assert len(TOP_1000) == len(set(TOP_1000)) == 1000
    assert TOP_100 == TOP_1000[:100]


def test_it_records_counts_and_listed_ports_not_one_attempt_per_port(lab):
    redis = start_node(lab, "127.0.3.25", kinds=["redis"])["redis"]

    result = get_scanner("portscan").run(Target("127.0.3.25"), {"ports": "1-10000"})

    assert result.attempts == [{"port": redis.port, "probe": "tcp-connect", "outcome": "ok"}]
    assert sum(result.data["counts"].values()) == result.data["ports_scanned"] == 9999
    assert result.to_dict()["open_ports"] == [redis.port]


def test_a_rate_limit_spaces_the_connects():
    started = time.monotonic()
    outcome = probe_ports("127.0.3.26", list(range(1000, 1100)), rate_limit=400.0)

    assert time.monotonic() - started >= 0.2
    assert outcome.counts["closed"] == 100


def test_a_bad_port_spec_is_refused_before_any_packet():
    with pytest.raises(ScannerError, match="bad port"):
        get_scanner("portscan").run(Target("127.0.3.27"), {"ports": "1-2-3"})


def test_a_budget_overrun_gives_an_incomplete_result(backlog_full_port):
    context = ScanContext(connect_timeout=5.0)

    result = get_scanner("portscan").run(Target("127.0.3.21"), {"ports": str(backlog_full_port)}, budget=0.3,
                                         context=context)

    assert not result.complete
    assert "budget" in result.error


def test_a_spec_can_mix_a_named_set_with_ports():
    assert parse_ports("top100,65000") == (*TOP_100, 65000)
