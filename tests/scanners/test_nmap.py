import asyncio
import shutil

import pytest

from scans.lab import Lab
from scans.scanners.base import ScannerError, ScannerUnavailable, Target, get_scanner
from scans.scanners.nmap import NmapScanner, parse_ports

needs_nmap = pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap is not installed on this machine")


async def ssh_banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n")
    await writer.drain()
    try:
        await asyncio.wait_for(reader.read(1024), 5)
    except TimeoutError:
        pass


@pytest.fixture
def ssh_lab():
    with Lab() as lab:
        yield lab.serve("127.0.78.1", 0, ssh_banner, name="ssh")


def test_it_is_registered_under_its_name():
    assert isinstance(get_scanner("nmap"), NmapScanner)


@needs_nmap
def test_it_finds_and_identifies_a_loopback_ssh_service(ssh_lab):
    result = NmapScanner().run(Target("127.0.78.1"), {"ports": str(ssh_lab.port)}, budget=60)

    assert result.complete, result.error
    assert result.open_ports == [ssh_lab.port]
    [service] = result.services
    assert (service.host, service.service, service.product) == ("127.0.78.1", "ssh", "OpenSSH")
    assert service.cpe.startswith("cpe:2.3:a:openbsd:openssh:8.9p1")
    [finding] = result.findings
    assert (finding.source, finding.rule_id, finding.port) == ("nmap", "nmap-open-port", ssh_lab.port)
    assert result.coverage[0].host == "127.0.78.1"
    assert result.coverage[0].ports == (ssh_lab.port,)
    assert result.data["nmap_version"]


@needs_nmap
def test_it_reports_nothing_open_on_a_closed_port_and_still_covers_it(ssh_lab):
    closed = ssh_lab.port + 1 if ssh_lab.port < 65535 else ssh_lab.port - 1

    result = NmapScanner().run(
        Target("127.0.78.1"), {"ports": str(closed), "service_detection": False}, budget=60
    )

    assert result.complete, result.error
    assert (result.open_ports, result.findings) == ([], [])
    assert result.coverage[0].ports == (closed,)


@needs_nmap
def test_it_stops_nmap_and_reports_an_incomplete_run_when_the_budget_runs_out():
    import time

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)  # -sV waits for a banner that never comes

    with Lab() as lab:
        tarpit = lab.serve("127.0.78.2", 0, silent, name="tarpit")
        started = time.monotonic()
        result = NmapScanner().run(Target("127.0.78.2"), {"ports": str(tarpit.port)}, budget=1.0)

    assert time.monotonic() - started < 5
    assert not result.complete
    assert result.coverage == []
    assert "budget" in result.error or "timeout" in result.error


def test_it_builds_a_fixed_command_with_only_the_address_and_ports_from_outside():
    scanner = NmapScanner()
    options = scanner.clean_options({"ports": "22, 80,8000-8100"})

    argv = scanner.command(Target("127.0.78.1"), options)

    assert argv[1:] == [
        "-sT", "-Pn", "-n", "--open", "-T4", "-sV",
        "--host-timeout", "270s", "-oX", "-", "-p", "22,80,8000-8100", "--", "127.0.78.1",
    ]


def test_it_uses_the_targets_known_ports_when_none_are_given():
    scanner = NmapScanner()

    argv = scanner.command(Target("127.0.78.1", ports=(443, 22)), scanner.clean_options({}))

    assert argv[argv.index("-p") + 1] == "443,22"


@pytest.mark.parametrize(
    "ports",
    ["22;id", "22 -oN /tmp/x", "--script=vulners", "0", "70000", "100-20", "22,,80", "", "1-2-3", "٣"],
)
def test_it_refuses_port_lists_that_are_not_plain_numbers_and_ranges(ports):
    with pytest.raises(ScannerError):
        NmapScanner.clean_options({"ports": ports})


def test_it_refuses_options_it_does_not_know_so_no_flag_can_be_smuggled_in():
    with pytest.raises(ScannerError, match="unknown option"):
        NmapScanner.clean_options({"flags": "-sU --script all"})


def test_it_refuses_a_target_that_is_not_an_ip_literal():
    with pytest.raises(ValueError):
        Target("localhost")


def test_it_says_why_it_cannot_run_when_nmap_is_absent(monkeypatch):
    monkeypatch.setattr("scans.scanners.nmap.shutil.which", lambda name: None)

    assert "nmap is not installed" in NmapScanner.availability()
    with pytest.raises(ScannerUnavailable, match="nmap is not installed"):
        NmapScanner().run(Target("127.0.78.1"), {"ports": "22"})


def test_it_parses_port_terms_into_ranges():
    assert parse_ports("22,80-81") == [(22, 22), (80, 81)]
