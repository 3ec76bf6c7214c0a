"""The TLS inspector against real TLS servers on loopback, with certificates made here."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from scans.findings.candidates import ServiceObservation
from scans.lab import Lab
from scans.lab.tls import (
    CertFactory,
    legacy_protocols_supported,
    legacy_server_context,
    modern_server_context,
    server_context,
    weak_cipher_server_context,
)
from scans.scanners import ScannerError, Target, get_scanner
from scans.scanners.tls import build_client_hello, client_can_offer, hostname_matches, parse_server_reply

ADDRESS = "127.0.4.21"


async def hold_open(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(100)


@pytest.fixture(scope="module")
def certs():
    with CertFactory() as factory:
        yield factory


@pytest.fixture(scope="module")
def lab():
    with Lab() as lab:
        yield lab


def scan(lab, context, hostname="", **options):
    service = lab.serve(ADDRESS, 0, hold_open, ssl_context=context)
    try:
        return get_scanner("tls").run(Target(address=ADDRESS, hostname=hostname), {"ports": [service.port], **options})
    finally:
        lab.stop(service)


def rules(result):
    return {f.rule_id for f in result.findings}


def test_the_local_openssl_can_still_speak_tls_1_0_and_1_1_in_process():
    assert legacy_protocols_supported() == {"1.0": True, "1.1": True}
    assert client_can_offer("TLSv1.0") and client_can_offer("TLSv1.3")


def test_a_modern_server_with_a_trusted_matching_certificate_has_no_findings(lab, certs):
    leaf = certs.issue("node.lab", sans=["node.lab", ADDRESS])
    result = scan(lab, modern_server_context(leaf), hostname="node.lab", ca_file=str(certs.ca.cert_path))

    assert result.complete
    assert result.findings == []
    port = result.data["ports"][str(result.open_ports[0])]
    assert port["protocols"] == {"TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": True, "TLSv1.3": True}
    assert port["trust"]["outcome"] == "trusted"
    cert = port["certificate"]
    assert cert["subject"] == "CN=node.lab,O=Watchpost Lab"
    assert cert["issuer"] == "CN=Watchpost Lab CA,O=Watchpost Lab"
    assert cert["san_dns"] == ["node.lab"] and cert["san_ip"] == [ADDRESS]
    assert cert["key_type"] == "RSA" and cert["key_size"] == 2048
    assert cert["signature_hash"] == "sha256"
    assert 88 <= cert["days_to_expiry"] <= 90
    assert cert["hostname_matches"] is True
    assert [c.ports for c in result.coverage] == [tuple(result.open_ports)]


def test_it_reports_a_ca_signed_certificate_as_untrusted_without_the_private_ca(lab, certs):
    leaf = certs.issue("node.lab")
    result = scan(lab, modern_server_context(leaf), hostname="node.lab")

    assert rules(result) == {"tls-cert-untrusted"}


def test_it_reports_tls_1_0_and_1_1_when_the_server_accepts_them(lab, certs):
    result = scan(lab, legacy_server_context(certs.issue("old.lab")), hostname="old.lab",
                  ca_file=str(certs.ca.cert_path))

    by_rule = {f.rule_id: f for f in result.findings}
    assert set(by_rule) == {"tls-protocol-tls1.0", "tls-protocol-tls1.1", "tls-weak-cipher-cbc-legacy"}
    assert by_rule["tls-protocol-tls1.0"].severity == "medium"
    assert by_rule["tls-protocol-tls1.0"].evidence["version"] == "TLSv1.0"
    assert by_rule["tls-protocol-tls1.0"].remediation
    assert by_rule["tls-protocol-tls1.0"].location == f"old.lab:{by_rule['tls-protocol-tls1.0'].port}"


def test_hand_built_client_hellos_detect_the_same_protocol_versions(lab, certs):
    result = scan(lab, legacy_server_context(certs.issue("old.lab"), maximum="1.1"), version_probe="raw")

    port = result.data["ports"][str(result.open_ports[0])]
    assert port["protocols"] == {"TLSv1.0": True, "TLSv1.1": True, "TLSv1.2": False, "TLSv1.3": False}
    assert {"tls-protocol-tls1.0", "tls-protocol-tls1.1", "tls-protocol-no-modern"} <= rules(result)
    raw = [a for a in result.attempts if a.get("method") == "raw-hello"]
    assert [a["probe"] for a in raw] == ["TLSv1.0", "TLSv1.1", "TLSv1.2"]


def test_it_reports_an_expired_self_signed_certificate(lab, certs):
    result = scan(lab, modern_server_context(certs.expired("old.lab", self_signed=True)), hostname="old.lab")

    assert rules(result) == {"tls-cert-expired", "tls-cert-self-signed"}
    expired = next(f for f in result.findings if f.rule_id == "tls-cert-expired")
    assert expired.severity == "high" and expired.evidence["days_to_expiry"] < 0


def test_it_reports_a_certificate_that_is_not_yet_valid(lab, certs):
    result = scan(lab, modern_server_context(certs.not_yet_valid("n.lab")), hostname="n.lab",
                  ca_file=str(certs.ca.cert_path))

    assert "tls-cert-not-yet-valid" in rules(result)
    assert "tls-cert-untrusted" not in rules(result)  # a date problem is reported as such, once


def test_it_warns_about_a_certificate_that_expires_soon(lab, certs):
    result = scan(lab, modern_server_context(certs.issue("s.lab", days=5)), hostname="s.lab",
                  ca_file=str(certs.ca.cert_path))

    assert rules(result) == {"tls-cert-expiring-soon"}


def test_it_reports_a_weak_rsa_key_and_a_sha1_signature(lab, certs):
    result = scan(lab, modern_server_context(certs.issue("w.lab", key="rsa1024", hash="sha1")), hostname="w.lab",
                  ca_file=str(certs.ca.cert_path))

    assert rules(result) == {"tls-weak-key", "tls-weak-signature"}
    cert = result.data["ports"][str(result.open_ports[0])]["certificate"]
    assert (cert["key_type"], cert["key_size"], cert["signature_hash"]) == ("RSA", 1024, "sha1")


def test_an_ec_p256_key_is_not_weak(lab, certs):
    result = scan(lab, modern_server_context(certs.issue("e.lab", key="ec256")), hostname="e.lab",
                  ca_file=str(certs.ca.cert_path))

    assert result.findings == []
    cert = result.data["ports"][str(result.open_ports[0])]["certificate"]
    assert (cert["key_type"], cert["key_size"]) == ("EC (secp256r1)", 256)


def test_it_reports_a_hostname_the_certificate_does_not_cover(lab, certs):
    result = scan(lab, modern_server_context(certs.issue("a.lab", sans=["a.lab", "*.b.lab"])), hostname="c.lab",
                  ca_file=str(certs.ca.cert_path))

    (mismatch,) = result.findings
    assert mismatch.rule_id == "tls-hostname-mismatch"
    assert mismatch.evidence["san_dns"] == ["a.lab", "*.b.lab"]


def test_hostname_matching_follows_the_wildcard_rules(certs):
    cert = certs.issue("a.lab", sans=["a.lab", "*.b.lab", "127.0.4.21"]).certificate
    assert hostname_matches(cert, "a.lab") and hostname_matches(cert, "A.LAB.")
    assert hostname_matches(cert, "x.b.lab")
    assert not hostname_matches(cert, "b.lab")
    assert not hostname_matches(cert, "y.x.b.lab")
    assert hostname_matches(cert, "127.0.4.21") and not hostname_matches(cert, "127.0.4.22")


def test_it_lists_the_weak_cipher_suites_the_server_accepts(lab, certs):
    result = scan(lab, weak_cipher_server_context(certs.issue("w.lab")), hostname="w.lab",
                  ca_file=str(certs.ca.cert_path))

    weak = result.data["ports"][str(result.open_ports[0])]["weak_ciphers"]
    assert set(weak["null"]) == {"NULL-SHA", "NULL-SHA256", "NULL-MD5"}
    assert weak["anon"] == ["AECDH-AES128-SHA"]
    null = next(f for f in result.findings if f.rule_id == "tls-weak-cipher-null")
    assert null.severity == "high" and null.cwe == 327


def test_a_server_offering_only_strong_suites_has_no_weak_cipher_findings(lab, certs):
    result = scan(lab, server_context(certs.issue("s.lab"), ciphers="ECDHE+AESGCM"), hostname="s.lab",
                  ca_file=str(certs.ca.cert_path))

    assert not any(r.startswith("tls-weak-cipher") for r in rules(result))
    probes = [a for a in result.attempts if a["probe"].startswith("ciphers-")]
    assert len(probes) == 6 and {a["outcome"] for a in probes} == {"rejected"}


def test_a_plain_tcp_port_is_covered_but_not_reported_as_tls(lab):
    service = lab.serve(ADDRESS, 0, hold_open)
    try:
        result = get_scanner("tls").run(Target(address=ADDRESS), {"ports": [service.port]})
    finally:
        lab.stop(service)

    assert result.findings == [] and result.open_ports == []
    assert result.data["ports"][str(service.port)]["tls"] is False
    assert result.coverage[0].ports == (service.port,)


def test_it_scans_the_ports_discovery_marked_as_tls(certs):
    scanner = get_scanner("tls")
    options = scanner.clean_options({})
    with_services = Target(address=ADDRESS, ports=(22, 443, 9000),
                           services=(ServiceObservation(host=ADDRESS, port=9000, tls=True),))
    assert scanner.ports_for(with_services, options) == [9000]
    assert scanner.ports_for(Target(address=ADDRESS, ports=(22, 443, 8443)), options) == [443, 8443]
    assert scanner.ports_for(Target(address=ADDRESS, ports=(22,)), options) == []
    assert scanner.ports_for(Target(address=ADDRESS), options) == [443]
    with pytest.raises(ScannerError):
        scanner.ports_for(Target(address=ADDRESS), {**options, "ports": [70000]})


def test_a_client_hello_offering_only_one_suite_gets_that_suite_back(lab, certs):
    service = lab.serve(ADDRESS, 0, hold_open, ssl_context=weak_cipher_server_context(certs.issue("w.lab")))

    async def hello() -> bytes:
        reader, writer = await asyncio.open_connection(ADDRESS, service.port)
        writer.write(build_client_hello(0x0303, (0x0002,), "w.lab"))
        data = await reader.read(4096)
        writer.close()
        return data

    try:
        assert parse_server_reply(asyncio.run(hello())) == ("hello", 0x0303, 0x0002)
    finally:
        lab.stop(service)


def test_certificates_have_their_private_key_on_disk_readable_by_openssl(certs):
    bundle = certs.sha1_signed("k.lab")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.load_cert_chain(str(bundle.chain_path), str(bundle.key_path))
    assert bundle.certificate.signature_hash_algorithm.name == "sha1"
    assert oct(bundle.key_path.stat().st_mode)[-3:] == "600"


def test_the_reserved_sandbox_port_is_never_probed_even_when_asked_for():
    scanner = get_scanner("tls")
    assert scanner.ports_for(Target(address=ADDRESS), {**scanner.clean_options({}), "ports": [2024, 443]}) == [443]


def test_a_tls_finding_states_it_is_proven_by_the_handshake(lab, certs):
    result = scan(lab, modern_server_context(certs.expired("old.lab", self_signed=True)), hostname="old.lab")

    found = next(f for f in result.findings if f.rule_id == "tls-cert-expired")
    assert (found.evidence["match_confidence"], found.evidence["match_basis"]) == (1.0, "proven")
    assert found.evidence["match_reason"].startswith("seen in a TLS handshake with port")
