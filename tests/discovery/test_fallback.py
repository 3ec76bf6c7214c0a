"""nmap's service detection names the open ports our fingerprints leave unnamed, and only those."""

import json
import shutil

import pytest

from scans.discovery.discover import discover
from scans.lab.services import munin_handler, redis_handler, tarpit_handler
from scans.scanners.base import ScanContext

needs_nmap = pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap is not installed on this machine")


def context(**extra):
    return ScanContext(connect_timeout=0.5, read_timeout=0.6, extra={"banner_timeout": 0.3, **extra})


@pytest.fixture(scope="module")
def munin(module_lab):
    return module_lab.serve("127.0.3.60", 0, munin_handler(host="lab-node-7.example"), name="munin")


def test_our_fingerprints_do_not_name_the_munin_node(munin):
    result = discover("127.0.3.60", ports=[munin.port], context=context(fallback_seconds=0))

    [service] = result.services
    assert service.service == "unknown" and service.confidence > 0
    assert result.protocols == []


@needs_nmap
def test_nmap_names_a_port_our_fingerprints_do_not_and_the_evidence_says_which_signature(munin):
    result = discover("127.0.3.60", ports=[munin.port], context=context(fallback_seconds=20))

    [service] = result.services
    assert (service.port, service.service, service.product) == (munin.port, "munin", "Munin")
    assert service.cpe.startswith("cpe:2.3:a:munin-monitoring:munin:")
    assert 0 < service.confidence <= 0.8
    assert service.evidence["identified_by"] == "nmap service detection"
    match = service.evidence["nmap_match"]
    assert (match["name"], match["product"], match["method"], match["conf"]) == ("munin", "Munin", "probed", "10")
    assert match["cpe"] == service.cpe
    assert service.evidence["nmap_version"]
    assert "munin node at lab-node-7.example" in service.evidence["our_probes"]["received"]
    assert result.fallback["ports"] == result.fallback["named"] == [munin.port]
    json.dumps(result.to_dict())


@needs_nmap
def test_a_service_our_fingerprints_name_never_goes_to_nmap(lab):
    redis = lab.serve("127.0.3.61", 0, redis_handler("7.2.4"), name="redis")

    result = discover("127.0.3.61", ports=[redis.port], context=context(fallback_seconds=20))

    [service] = result.services
    assert (service.service, service.version) == ("redis", "7.2.4")
    assert "identified_by" not in service.evidence and "fallback" not in service.evidence
    assert result.fallback["ports"] == []


@needs_nmap
def test_a_port_silent_to_every_probe_is_not_handed_to_nmap(lab):
    tarpit = lab.serve("127.0.3.62", 0, tarpit_handler(), name="tarpit")

    result = discover("127.0.3.62", ports=[tarpit.port], context=context(fallback_seconds=20))

    [service] = result.services
    assert service.service == "unknown" and service.confidence == 0
    assert result.fallback["ports"] == [] and result.protocols == []


def test_without_nmap_the_fallback_is_skipped_and_says_so(munin, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no nmap on it

    result = discover("127.0.3.60", ports=[munin.port], context=context(fallback_seconds=20))

    [service] = result.services
    assert service.service == "unknown"
    assert service.evidence["fallback"]["outcome"] == "skipped"
    assert "nmap is not installed" in service.evidence["fallback"]["reason"]
    assert result.complete and result.error == ""
    assert result.fallback["skipped"].startswith("nmap is not installed")


@needs_nmap
def test_a_fallback_that_runs_out_of_time_leaves_the_port_unnamed_and_says_why(munin):
    # nmap cannot start, probe and report within a hundredth of a second.
    result = discover("127.0.3.60", ports=[munin.port], context=context(fallback_seconds=0.01))

    [service] = result.services
    assert service.service == "unknown"
    assert service.evidence["fallback"]["outcome"] == "unfinished"
    assert "budget" in service.evidence["fallback"]["reason"] or "timeout" in service.evidence["fallback"]["reason"]


@needs_nmap
def test_a_port_that_closes_on_every_probe_stays_unnamed_though_nmap_calls_it_tcpwrapped(lab):
    async def hang_up(reader, writer):
        writer.close()

    closer = lab.serve("127.0.3.63", 0, hang_up, name="closer")

    result = discover("127.0.3.63", ports=[closer.port], context=context(fallback_seconds=20))

    [service] = result.services
    assert service.service == "unknown"
    assert service.evidence["fallback"]["outcome"] == "no match"
    assert "tcpwrapped" in service.evidence["fallback"]["reason"]
    assert result.fallback["ports"] == [closer.port] and result.fallback["named"] == []


@needs_nmap
def test_nmap_guessing_from_the_port_number_alone_names_nothing(lab):
    async def gibberish(reader, writer):
        writer.write(b"\x8e\x17zq lab-gibberish 7f\x01\n")
        await writer.drain()
        await reader.read(100)

    # Munin's port, answered by something no signature knows: nmap can only read its port table.
    lab.serve("127.0.3.64", 4949, gibberish, name="gibberish")

    result = discover("127.0.3.64", ports=[4949], context=context(fallback_seconds=20))

    [service] = result.services
    assert service.service == "unknown"
    assert service.evidence["fallback"]["outcome"] == "no match"
    assert service.evidence["fallback"]["reason"] == "nmap guessed 'munin' from the port number only"


@needs_nmap
def test_a_port_left_unnamed_after_the_discoverys_budget_is_spent_is_not_handed_to_nmap(munin):
    import asyncio
    import time

    from scans.discovery.fallback import UnknownPortFallback
    from scans.findings.candidates import ServiceObservation

    unnamed = ServiceObservation(host="127.0.3.60", port=munin.port, service="unknown", confidence=0.2)
    spent = UnknownPortFallback(seconds=20, deadline=time.monotonic())

    service = asyncio.run(spent.identify("127.0.3.60", unnamed))

    assert service.service == "unknown"
    assert service.evidence["fallback"] == {"tool": "nmap service detection", "outcome": "skipped",
                                            "reason": "no time left in the discovery's time budget"}
