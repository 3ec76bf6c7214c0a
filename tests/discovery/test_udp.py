"""UDP discovery and the UDP exposure checks against the lab's DNS, NTP and SNMP services on loopback."""

from __future__ import annotations

import asyncio

import pytest

from scans.discovery.discover import discover
from scans.lab.udp import UDP_KINDS, DatagramServer, garbage_answer, ntp_answer, start_udp_node
from scans.scanners import udp_wire as wire
from scans.scanners.base import ScanContext, Target, get_scanner
from scans.scanners.udp import UDP_SERVICES, Asker, udp_discover

OPEN_HOST = "127.0.22.1"  # recursive DNS (BIND), ntpd answering mode 6 and 7, SNMP agent with "public"
CLOSED_HOST = "127.0.22.2"  # authoritative DNS (NSD), ntpd with noquery, SNMP agent with another community,
# OpenVPN with tls-auth (silent to a packet without its HMAC)
GARBAGE_HOST = "127.0.22.3"  # random bytes back on every usual UDP port
SILENT_HOST = "127.0.22.4"  # nothing listens: ICMP port unreachable
CONTEXT = ScanContext(connect_timeout=0.5, read_timeout=0.6, extra={"banner_timeout": 0.3, "udp_wait": 0.3})


def moved(services) -> dict[str, int]:
    """Where each lab service listens, by the table's service name (its usual port, unless that was taken)."""
    return {UDP_KINDS[name].service if name in UDP_KINDS else name: svc.port for name, svc in services.items()}


@pytest.fixture(scope="module")
def udp_lab(module_lab):
    received: list[bytes] = []

    def recording(answer):
        def record(data: bytes) -> list[bytes]:
            received.append(data)
            return answer(data)
        return record

    open_node = start_udp_node(module_lab, OPEN_HOST, ["dns-recursive", "ntp", "snmp-public", "ipmi", "ssdp", "coap",
                                                       "memcached-udp", "netbios", "openvpn", "mdns",
                                                       "ws-discovery"])
    closed_node = start_udp_node(module_lab, CLOSED_HOST, ["dns-authoritative", "ntp-quiet", "snmp-private",
                                                           "openvpn-tls-auth"])
    garbage = {service.name: module_lab.serve_datagram(GARBAGE_HOST, service.port,
                                                       lambda: DatagramServer(recording(garbage_answer())), name="garbage")
               for service in UDP_SERVICES}
    return {"open": open_node, "closed": closed_node, "garbage": garbage, "received": received}


def discover_udp(address: str, services) -> list:
    return asyncio.run(udp_discover(Target(address), CONTEXT, ports=moved(services))).found


def by_service(found) -> dict:
    return {f.service.service: f.service for f in found}


def test_it_names_bind_from_its_version_bind_answer(udp_lab):
    dns = by_service(discover_udp(OPEN_HOST, udp_lab["open"]))["dns"]

    assert (dns.protocol, dns.product, dns.version) == ("udp", "ISC BIND", "9.18.18")
    assert dns.cpe == "cpe:2.3:a:isc:bind:9.18.18:*:*:*:*:*:*:*"
    assert dns.evidence["version_bind"] == "9.18.18-0ubuntu0.22.04.1-Ubuntu"
    assert dns.evidence["signature"] == "DNS response with our query id and question"


def test_it_names_ntpd_and_its_version_from_the_readvar_version_variable(udp_lab):
    ntp = by_service(discover_udp(OPEN_HOST, udp_lab["open"]))["ntp"]

    assert (ntp.product, ntp.version, ntp.cpe) == ("ntpd", "4.2.8p15", "cpe:2.3:a:ntp:ntp:4.2.8:p15:*:*:*:*:*:*")
    assert ntp.evidence["stratum"] == 2
    assert ntp.banner.startswith("ntpd 4.2.8p15@1.3728-o")


def test_it_reads_sysdescr_of_an_snmp_agent_answering_public(udp_lab):
    snmp = by_service(discover_udp(OPEN_HOST, udp_lab["open"]))["snmp"]

    assert snmp.banner.startswith("Linux lab-gw 5.15.0-91-generic")
    assert snmp.evidence["public_community"] is True
    assert snmp.product == "Net-SNMP"  # from the SNMPv3 engine id's enterprise number


def test_it_names_memcached_and_miniupnpd_and_finds_a_bmc_and_a_coap_device(udp_lab):
    found = by_service(discover_udp(OPEN_HOST, udp_lab["open"]))

    assert (found["memcached"].product, found["memcached"].version) == ("memcached", "1.6.9")
    assert (found["ssdp"].product, found["ssdp"].version) == ("MiniUPnPd", "2.2.1")
    assert found["ssdp"].cpe == "cpe:2.3:a:miniupnp_project:miniupnpd:2.2.1:*:*:*:*:*:*:*"
    assert found["asf-rmcp"].evidence["ipmi_supported"] is True
    assert found["coap"].evidence["code"] == "2.05" and '</sensors/temp>' in found["coap"].banner


def test_it_lists_the_netbios_names_and_finds_an_openvpn_server_without_tls_auth(udp_lab):
    found = by_service(discover_udp(OPEN_HOST, udp_lab["open"]))

    assert found["netbios-ns"].evidence["names"] == ["LAB-FS", "LAB-FS", "LAB-FS", "WORKGROUP", "WORKGROUP"]
    assert found["netbios-ns"].evidence["mac"] == "52:54:00:12:34:56" and found["netbios-ns"].evidence["file_server"]
    assert found["openvpn"].product == "OpenVPN" and found["openvpn"].evidence["tls_auth"] is False


def test_it_lists_the_service_types_an_mdns_responder_announces(udp_lab):
    mdns = by_service(discover_udp(OPEN_HOST, udp_lab["open"]))["mdns"]

    assert mdns.evidence["service_types"] == ["_ssh._tcp.local", "_ipp._tcp.local", "_smb._tcp.local"]


def test_it_names_an_onvif_camera_from_the_scopes_of_its_ws_discovery_answer(udp_lab):
    camera = by_service(discover_udp(OPEN_HOST, udp_lab["open"]))["ws-discovery"]

    assert camera.product == "HIKVISION DS-2CD2143G2-I" and camera.version == ""
    assert camera.evidence["types"] == ["dn:NetworkVideoTransmitter"]
    assert camera.evidence["xaddrs"] == ["http://192.168.1.64/onvif/device_service"]


def test_services_that_refuse_strangers_are_found_but_reveal_nothing_more(udp_lab):
    found = by_service(discover_udp(CLOSED_HOST, udp_lab["closed"]))

    assert (found["dns"].product, found["dns"].version) == ("NSD", "4.3.9")
    assert found["ntp"].product == "" and "readvar" not in found["ntp"].evidence
    assert found["snmp"].evidence["public_community"] is False
    assert found["snmp"].evidence["signature"] == "SNMPv3 Report to our engine discovery"
    assert "sys_descr" not in found["snmp"].evidence
    assert "openvpn" not in found  # tls-auth: no valid answer, so not reported


def test_a_port_answering_garbage_is_not_reported(udp_lab):
    assert discover_udp(GARBAGE_HOST, udp_lab["garbage"]) == []
    assert udp_lab["received"], "the garbage server was asked"


def test_a_closed_port_is_not_reported_and_costs_no_wait(udp_lab):
    outcome = asyncio.run(udp_discover(Target(SILENT_HOST), CONTEXT))

    assert outcome.found == []
    assert {a["outcome"] for a in outcome.attempts} == {"refused"}


def test_every_probe_is_a_request_of_its_protocol_never_an_empty_datagram(udp_lab):
    discover_udp(GARBAGE_HOST, udp_lab["garbage"])

    assert udp_lab["received"] and all(udp_lab["received"])
    with pytest.raises(ValueError, match="never an empty datagram"):
        asyncio.run(Asker(SILENT_HOST, 53).ask("empty", b""))


def test_a_dns_answer_to_another_query_is_not_an_answer():
    query = wire.dns_query("version.bind", wire.TYPE_TXT, wire.CLASS_CH)
    other = wire.DnsQuery(query.id ^ 1, query.name, query.qtype, query.qclass, False)
    from scans.lab.udp import dns_answer

    (reply,) = dns_answer()(other.encode())

    assert wire.parse_dns(other, reply) is not None
    assert wire.parse_dns(query, reply) is None


def test_an_ntp_reply_that_does_not_echo_our_timestamp_is_not_an_answer():
    request, nonce = wire.ntp_client_request()
    (reply,) = ntp_answer()(request)

    assert wire.parse_ntp_reply(nonce, reply) is not None
    assert wire.parse_ntp_reply(bytes(8), reply) is None


def test_a_readvar_answer_in_fragments_is_put_back_together():
    long_version = "ntpd 4.2.8p17@1.4004-o " + "x" * 600
    request, sequence = wire.ntp_readvar_request()
    fragments = ntp_answer(version=long_version)(request)

    assert len(fragments) > 1
    text = wire.parse_ntp_readvar(sequence, list(reversed(fragments)))
    assert wire.ntp_variables(text)["version"] == long_version
    assert wire.parse_ntp_readvar(sequence, fragments[1:]) is None  # the first one lost: no answer


def test_discovery_reports_udp_services_beside_tcp_ones_in_the_same_shape(udp_lab):
    result = discover(Target(OPEN_HOST), ports="1", context=CONTEXT)

    assert result.open_ports == []
    assert result.udp_open_ports == sorted(svc.port for svc in udp_lab["open"].values())
    assert {(s.protocol, s.service) for s in result.services} == {
        ("udp", "dns"), ("udp", "ntp"), ("udp", "snmp"), ("udp", "asf-rmcp"), ("udp", "ssdp"), ("udp", "coap"),
        ("udp", "memcached"), ("udp", "netbios-ns"), ("udp", "openvpn"), ("udp", "mdns"), ("udp", "ws-discovery")}
    ntp = next(p for p in result.protocols if p.protocol == "ntp")
    assert (ntp.transport, ntp.version, ntp.confidence) == ("udp", "4.2.8p15", 0.99)
    assert ntp.evidence[0]["signature"] == "NTP mode 4 answer echoing our transmit timestamp"
    assert result.to_dict()["protocols"][0]["transport"] == "udp"


def test_discovery_leaves_udp_out_when_told_to(udp_lab):
    result = discover(Target(OPEN_HOST), ports="1", context=CONTEXT, udp=False)

    assert result.services == [] and result.udp_open_ports == [] and result.udp_ports_scanned == 0


def exposure(address: str, services) -> dict[str, list]:
    found = asyncio.run(udp_discover(Target(address), CONTEXT, ports=moved(services))).found
    target = Target(address, services=tuple(f.service for f in found))
    result = get_scanner("exposure").run(target, context=CONTEXT)
    by_rule: dict[str, list] = {}
    for finding in result.findings:
        by_rule.setdefault(finding.rule_id, []).append(finding)
    return by_rule


def test_open_recursion_public_community_and_ntp_queries_are_findings_with_evidence(udp_lab):
    found = exposure(OPEN_HOST, udp_lab["open"])

    assert sorted(found) == ["exposure-dns-open-recursion", "exposure-memcached-udp", "exposure-ntp-mode6-readvar",
                             "exposure-ntp-monlist", "exposure-snmp-default-community"]
    (memcached,) = found["exposure-memcached-udp"]
    assert memcached.cve_ids == ("CVE-2018-1000115",) and "STAT version 1.6.9" in memcached.evidence["received"]
    (recursion,) = found["exposure-dns-open-recursion"]
    assert (recursion.protocol, recursion.severity, recursion.port) == ("udp", "medium", udp_lab["open"]["dns-recursive"].port)
    assert recursion.evidence["received"] == "RA=1 rcode=NXDOMAIN answers=0"
    assert recursion.evidence["confidence"] == 0.9
    (community,) = found["exposure-snmp-default-community"]
    assert community.severity == "high" and community.evidence["sys_descr"].startswith("Linux lab-gw")
    (monlist,) = found["exposure-ntp-monlist"]
    assert monlist.cve_ids == ("CVE-2013-5211",)
    assert monlist.evidence["clients"] == ["192.0.2.41", "192.0.2.77", "198.51.100.9"]
    assert monlist.evidence["amplification"] > 1
    (readvar,) = found["exposure-ntp-mode6-readvar"]
    assert readvar.evidence["version"].startswith("ntpd 4.2.8p15")


def test_services_that_refuse_strangers_are_no_finding(udp_lab):
    assert exposure(CLOSED_HOST, udp_lab["closed"]) == {}


def test_a_udp_service_gets_the_udp_check_of_its_name_and_a_tcp_service_no_udp_check():
    from scans.findings.candidates import ServiceObservation
    from scans.scanners.exposure import plan_checks, plan_udp_checks

    target = Target("127.0.22.9", services=(ServiceObservation("127.0.22.9", 11211, "udp", "memcached"),
                                           ServiceObservation("127.0.22.9", 53, "tcp", "dns")))

    assert plan_checks(target) == []  # not the TCP memcached check on a UDP port
    assert [(port, check.name) for port, check in plan_udp_checks(target)] == [(11211, "memcached-udp")]


def test_bench_scan_reports_the_seconds_udp_discovery_of_one_lab_host_takes():
    import io
    import json

    from django.core.management import call_command

    out = io.StringIO()
    call_command("bench", "scan", "--skip", "full", "--skip", "identify", "--skip", "profile", "--skip", "coverage",
                 stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])

    assert summary["udp_s"] > 0
    named = sorted(entry.split(" ", 1)[1] for entry in summary["udp_found"])  # "53/udp dns ISC BIND 9.18.18"
    assert named == ["dns ISC BIND 9.18.18", "ntp", "snmp Net-SNMP"]
    assert summary["udp_expected"] == 3


def scan_command(*args: str) -> str:
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("scan", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_scan_command_asks_the_udp_table_by_default_and_checks_what_answers(udp_lab):
    import json

    report = json.loads(scan_command(OPEN_HOST, "--ports", "1", "--scanners", "exposure,http", "--json",
                                     "--timeout", "0.5"))

    assert report["discovery"]["udp_open_ports"] == [53, 123, 137, 161, 623, 1194, 1900, 3702, 5353, 5683, 11211]
    assert {(s["protocol"], s["service"], s["product"]) for s in report["discovery"]["services"]} == {
        ("udp", "dns", "ISC BIND"), ("udp", "ntp", "ntpd"), ("udp", "snmp", "Net-SNMP"), ("udp", "asf-rmcp", ""),
        ("udp", "ssdp", "MiniUPnPd"), ("udp", "coap", ""), ("udp", "memcached", "memcached"), ("udp", "netbios-ns", ""),
        ("udp", "openvpn", "OpenVPN"), ("udp", "mdns", ""), ("udp", "ws-discovery", "HIKVISION DS-2CD2143G2-I")}
    by_scanner = {r["scanner"]: r for r in report["results"]}
    assert by_scanner["http"] == {"scanner": "http", "skipped": "discovery found no open port"}
    assert {(f["protocol"], f["rule_id"]) for f in by_scanner["exposure"]["findings"]} == {
        ("udp", "exposure-dns-open-recursion"), ("udp", "exposure-snmp-default-community"),
        ("udp", "exposure-ntp-mode6-readvar"), ("udp", "exposure-ntp-monlist"), ("udp", "exposure-memcached-udp")}


@pytest.mark.django_db
def test_the_scan_command_prints_udp_services_and_leaves_udp_out_with_no_udp(udp_lab):
    text = scan_command(OPEN_HOST, "--ports", "1", "--scanners", "exposure", "--timeout", "0.5")
    assert "11 of 11 UDP service(s) answering" in text
    assert "53/udp  dns ISC BIND 9.18.18  [dns 0.95]" in text

    quiet = scan_command(OPEN_HOST, "--ports", "1", "--scanners", "exposure", "--timeout", "0.5", "--no-udp")
    assert "0 of 0 UDP service(s) answering" in quiet and "/udp" not in quiet


@pytest.mark.django_db
def test_udp_discovery_sends_nothing_to_a_target_outside_the_allowed_networks(udp_lab, settings):
    from django.core.management import CommandError

    settings.SCAN_ALLOWED_NETWORKS = ["127.0.9.0/24"]
    before = len(udp_lab["received"])

    with pytest.raises(CommandError, match=f"refused {GARBAGE_HOST}"):
        scan_command(GARBAGE_HOST, "--ports", "1")
    assert len(udp_lab["received"]) == before


def test_a_udp_exposure_states_its_confidence_as_proven_by_the_answer():
    from scans.scanners.udp_exposure import udp_finding

    class _Asker:
        address, port = "127.0.0.1", 53

    found = udp_finding(_Asker(), "127.0.0.1", "exposure-dns-open-recursion", "Open recursion", "medium",
                        confidence=0.9, sent="A x.invalid. with RD=1", received="RA=1 rcode=NXDOMAIN answers=0",
                        remediation="", description="", cwe=406)
    assert (found.evidence["match_confidence"], found.evidence["match_basis"]) == (0.9, "proven")
    assert found.evidence["match_reason"] == "the service answered A x.invalid. with RD=1: RA=1 rcode=NXDOMAIN answers=0"
