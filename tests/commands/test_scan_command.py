"""``manage.py scan`` against lab targets on loopback."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from scans.lab import Lab
from scans.lab.http import HttpResponse, http_handler
from scans.lab.tls import CertFactory, legacy_server_context

ADDRESS = "127.0.4.61"
# The command reads the local CVE catalog for what discovery identified.
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def node():
    """One lab node: a plain web server and an HTTPS one with an expired self-signed certificate."""
    with Lab() as lab, CertFactory() as certs:
        web = lab.serve(ADDRESS, 0, http_handler({("GET", "/"): HttpResponse(body="hi")},
                                                 server_header="nginx/1.18.0"))
        tls = lab.serve(ADDRESS, 0, http_handler({("GET", "/"): HttpResponse(body="hi")}),
                        ssl_context=legacy_server_context(certs.expired("node.lab", self_signed=True)))
        yield web.port, tls.port


def scan(*args):
    out = StringIO()
    call_command("scan", *args, stdout=out)
    return out.getvalue()


def test_it_discovers_the_open_ports_and_runs_the_selected_scanners(node):
    web, tls = node
    report = json.loads(
        scan(ADDRESS, "--ports", f"{web},{tls},1", "--scanners", "tls,http", "--json", "--timeout", "0.5")
    )

    assert report["address"] == ADDRESS
    assert report["discovery"]["open_ports"] == sorted([web, tls])
    by_scanner = {r["scanner"]: r for r in report["results"]}
    assert set(by_scanner) == {"tls", "http"}
    tls_rules = {(f["port"], f["rule_id"]) for f in by_scanner["tls"]["findings"]}
    assert {(tls, "tls-cert-expired"), (tls, "tls-cert-self-signed"), (tls, "tls-protocol-tls1.0")} <= tls_rules
    http_rules = {(f["port"], f["rule_id"]) for f in by_scanner["http"]["findings"]}
    assert {(web, "http-no-https-redirect"), (web, "http-server-version-disclosure"),
            (tls, "http-missing-hsts")} <= http_rules


def test_it_prints_a_readable_report_by_default(node):
    web, tls = node
    text = scan(ADDRESS, "--ports", f"{web},{tls}", "--scanners", "tls", "--timeout", "0.5")

    assert f"Scan of {ADDRESS}" in text
    assert "2 open of 2 port(s)" in text
    assert "HIGH     tls-cert-expired" in text


def test_a_name_is_resolved_once_and_scanned_at_its_checked_address(node):
    web, _ = node
    report = json.loads(scan("localhost", "--ports", "1", "--scanners", "http", "--json"))

    assert report["target"] == "localhost"
    assert report["address"] in {"127.0.0.1", "::1"}
    assert report["discovery"]["open_ports"] == []
    assert report["results"] == [{"scanner": "http", "skipped": "discovery found no open port"}]


@pytest.mark.parametrize("address", ["10.0.0.1", "8.8.8.8", "169.254.169.254", "::ffff:10.0.0.1"])
def test_it_refuses_a_target_outside_the_allowed_networks_before_sending_anything(address):
    with pytest.raises(CommandError, match="outside the deployment's allowed networks"):
        scan(address, "--ports", "80")


def test_it_follows_the_deployment_setting_for_allowed_networks(settings):
    settings.SCAN_ALLOWED_NETWORKS = ["127.0.9.0/24"]

    with pytest.raises(CommandError, match=f"refused {ADDRESS}.*127.0.9.0/24"):
        scan(ADDRESS, "--ports", "80")


def test_it_names_the_known_scanners_when_asked_for_an_unknown_one():
    with pytest.raises(CommandError, match="unknown scanner.*nope.*known:.*tls"):
        scan(ADDRESS, "--scanners", "nope")


def test_it_refuses_a_bad_port_list():
    with pytest.raises(CommandError, match="--ports"):
        scan(ADDRESS, "--ports", "80-x")


REDIS_ADDRESS = "127.0.4.62"


@pytest.fixture(scope="module")
def redis_node():
    """A lab Redis on its standard port 6379, a port nmap's top-1000 list does not hold."""
    from scans.lab.services import redis_handler

    with Lab() as lab:
        lab.serve(REDIS_ADDRESS, 6379, redis_handler("7.0.11"))
        yield REDIS_ADDRESS


def test_the_default_port_set_reaches_the_protocol_registrys_ports(redis_node):
    from scans.scanners.port_sets import TOP_1000

    assert 6379 not in TOP_1000  # what made a parsed --ports tuple miss it
    report = json.loads(scan(redis_node, "--json"))  # no --ports, no --scanners: the defaults

    assert 6379 in report["discovery"]["open_ports"]
    assert report["discovery"]["ports_scanned"] > len(TOP_1000)
    services = {s["port"]: s for s in report["discovery"]["services"]}
    assert services[6379]["service"] == "redis"
    assert services[6379]["version"] == "7.0.11"
    exposure = next(r for r in report["results"] if r["scanner"] == "exposure")
    assert any(f["port"] == 6379 for f in exposure["findings"])


def test_it_prints_cve_matches_from_the_local_catalog_in_json(redis_node, catalog):
    report = json.loads(scan(redis_node, "--ports", "6379", "--scanners", "exposure", "--json", "--timeout", "0.5"))

    matches = report["cves"]["matches"]
    assert report["cves"]["error"] == ""
    assert report["cves"]["services_matched"] == 1
    by_id = {m["cve_id"]: m for m in matches}
    # Redis 7.0.11 is before the fix of CVE-2022-24834 (7.0.12) and is the fix of CVE-2023-28856.
    assert "CVE-2022-24834" in by_id
    assert "CVE-2023-28856" not in by_id
    match = by_id["CVE-2022-24834"]
    assert match["port"] == 6379 and match["product"]
    assert match["cvss"] == pytest.approx(8.8)
    assert 0 < match["confidence"] <= 1
    assert "7.0.11" in match["reason"]


def test_its_cve_matches_are_the_pipelines_analysis_matches(redis_node, catalog):
    from scans.findings.candidates import ServiceObservation
    from scans.pipeline.stages import cve_candidates_by_node

    report = json.loads(scan(redis_node, "--ports", "6379", "--scanners", "exposure", "--json", "--timeout", "0.5"))
    services = [ServiceObservation.from_dict(s) for s in report["discovery"]["services"]]
    pipeline = cve_candidates_by_node({1: services})[1]

    assert sorted(m["cve_id"] for m in report["cves"]["matches"]) == sorted(c.rule_id for c in pipeline)
    assert pipeline


def test_it_prints_cve_matches_in_the_text_report(redis_node, catalog):
    text = scan(redis_node, "--ports", "6379", "--scanners", "exposure", "--timeout", "0.5")

    assert "cve (local catalog):" in text
    line = next(line for line in text.splitlines() if "CVE-2022-24834" in line)
    assert "CVSS 8.8" in line and "6379/tcp" in line and "confidence" in line and "7.0.11" in line


def test_the_http_inspector_reports_exposed_paths_beyond_the_root():
    from scans.lab.http import exposed_site_handler

    with Lab() as lab:
        site = lab.serve("127.0.4.63", 0, exposed_site_handler())
        report = json.loads(scan("127.0.4.63", "--ports", str(site.port), "--scanners", "http", "--json",
                                 "--timeout", "0.5"))

    [http] = report["results"]
    found = {(f["rule_id"], f["location"].rsplit(str(site.port), 1)[1]) for f in http["findings"]}
    assert {("http-exposed-git", "/.git/HEAD"), ("http-exposed-env", "/.env"),
            ("http-exposed-backup", "/backup.zip"), ("http-directory-listing", "/files/")} <= found


SWEEP_ADDRESS = "127.0.4.65"


@pytest.fixture(scope="module")
def high_ports_node():
    """An Ethereum node and a Munin node on ports of chance (high, in no port list), nothing else."""
    from scans.lab.services import ethereum_handler, munin_handler

    with Lab() as lab:
        ethereum = lab.serve(SWEEP_ADDRESS, 0, ethereum_handler(), name="ethereum")
        munin = lab.serve(SWEEP_ADDRESS, 0, munin_handler(host="node-65.lab"), name="munin")
        yield ethereum.port, munin.port


def test_by_default_it_sweeps_every_tcp_port_and_names_what_listens_on_unlisted_ones(high_ports_node):
    import shutil

    ethereum, munin = high_ports_node
    report = json.loads(scan(SWEEP_ADDRESS, "--scanners", "exposure", "--json", "--timeout", "0.5"))

    discovery = report["discovery"]
    assert discovery["ports_scanned"] == 65534  # every TCP port but the sandbox's
    assert discovery["open_ports"] == sorted([ethereum, munin])
    services = {s["port"]: s for s in discovery["services"]}
    assert (services[ethereum]["service"], services[ethereum]["product"]) == ("ethereum-jsonrpc", "Geth")
    assert "identified_by" not in services[ethereum]["evidence"]  # ours first: nmap never asked
    if shutil.which("nmap"):
        assert (services[munin]["service"], services[munin]["product"]) == ("munin", "Munin")
        assert services[munin]["evidence"]["nmap_match"]["method"] == "probed"
        assert discovery["fallback"]["named"] == [munin]


def test_its_report_says_when_the_fallback_was_skipped_for_want_of_nmap(high_ports_node, monkeypatch, tmp_path):
    ethereum, munin = high_ports_node
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no nmap on it

    text = scan(SWEEP_ADDRESS, "--ports", f"{ethereum},{munin}", "--scanners", "exposure", "--timeout", "0.5")

    assert f"{munin}/tcp  unknown" in text
    assert "fallback for unnamed ports skipped: nmap is not installed" in text


def test_its_report_says_which_ports_nmap_named(high_ports_node):
    import shutil

    if not shutil.which("nmap"):
        pytest.skip("nmap is not installed on this machine")
    ethereum, munin = high_ports_node

    text = scan(SWEEP_ADDRESS, "--ports", f"{ethereum},{munin}", "--scanners", "exposure", "--timeout", "0.5")

    assert f"{munin}/tcp  munin Munin  (named by nmap)" in text
    assert "nmap service detection named 1 of 1 port(s) our fingerprints did not" in text


def test_it_says_the_catalog_is_empty_rather_than_reporting_no_cve_as_a_clean_result(redis_node):
    report = json.loads(scan(redis_node, "--ports", "6379", "--scanners", "exposure", "--json", "--timeout", "0.5"))
    text = scan(redis_node, "--ports", "6379", "--scanners", "exposure", "--timeout", "0.5")

    assert report["cves"]["matches"] == []
    assert report["cves"]["catalog"]["records"] == 0
    assert "catalog is empty" in report["cves"]["catalog"]["warning"]
    assert "note: the CVE catalog is empty" in text and "sync_cves" in text


def test_it_says_when_the_catalog_was_never_synced_or_is_days_old(redis_node, catalog):
    from datetime import timedelta

    from django.utils import timezone

    from scans.models import Feed, FeedState

    never = json.loads(scan(redis_node, "--ports", "6379", "--scanners", "exposure", "--json", "--timeout", "0.5"))
    FeedState.objects.create(feed=Feed.NVD, last_success_at=timezone.now() - timedelta(days=5))
    old = json.loads(scan(redis_node, "--ports", "6379", "--scanners", "exposure", "--json", "--timeout", "0.5"))
    FeedState.objects.filter(feed=Feed.NVD).update(last_success_at=timezone.now())
    current = json.loads(scan(redis_node, "--ports", "6379", "--scanners", "exposure", "--json", "--timeout", "0.5"))

    assert "never synced" in never["cves"]["catalog"]["warning"] and never["cves"]["matches"]
    assert "last synced 5 days ago" in old["cves"]["catalog"]["warning"] and old["cves"]["catalog"]["stale"]
    assert current["cves"]["catalog"]["warning"] == "" and not current["cves"]["catalog"]["stale"]
