import re
import time
from pathlib import Path

import pytest

from scans.cve.match import CveIndex, CveMatch, observe
from scans.cve.nvd import iter_cve_entries
from scans.findings.candidates import ServiceObservation

FIXTURE = Path(__file__).resolve().parents[2] / "scans" / "fixtures" / "cves" / "nvd_products.json"

# What the fingerprint scanners read from a banner: product and the raw version text.
BANNERS = [
    (re.compile(r"^SSH-2\.0-OpenSSH_(\S+(?: .*)?)$"), "OpenSSH", "openbsd", "openssh"),
    (re.compile(r"^Apache/(\S+(?: .*)?)$"), "Apache httpd", "apache", "http_server"),
    (re.compile(r"^nginx/(\S+)$"), "nginx", "f5", "nginx"),
    (re.compile(r"^redis_version:(\S+)$"), "Redis", "redis", "redis"),
    (re.compile(r"^Geth/(\S+)$"), "Geth", "ethereum", "go_ethereum"),
    (re.compile(r"^memcached (\S+)$"), "Memcached", "memcached", "memcached"),
    (re.compile(r"^PostgreSQL (\S+)$"), "PostgreSQL", "postgresql", "postgresql"),
    (re.compile(r"^(\d\S*)-MySQL"), "MySQL", "oracle", "mysql"),
    (re.compile(r"^Docker/(\S+)"), "Docker", "docker", "docker"),
]


def observed(banner: str) -> ServiceObservation:
    for pattern, product, vendor, nvd_product in BANNERS:
        found = pattern.match(banner)
        if found:
            version = found.group(1)
            cpe = f"cpe:2.3:a:{vendor}:{nvd_product}:{version.split()[0]}:*:*:*:*:*:*:*"
            return ServiceObservation(host="10.0.0.1", port=1, product=product, version=version, cpe=cpe, banner=banner)
    raise AssertionError(f"no fingerprint for {banner!r}")


@pytest.fixture(scope="module")
def index() -> CveIndex:
    return CveIndex(iter_cve_entries(FIXTURE))


def matches_for(banner: str, index: CveIndex) -> dict[str, CveMatch]:
    service = observed(banner)
    return {m.cve_id: m for m in index.match(observe(service.product, service.version, service.cpe))}


@pytest.mark.parametrize(
    "banner, cve_id, reason",
    [
        ("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.1", "CVE-2024-6387", "openssh 8.9p1 is within [8.6, 9.8)"),
        ("SSH-2.0-OpenSSH_8.5p1", "CVE-2024-6387", "openssh 8.5p1 is listed as affected (8.5 p1)"),
        ("SSH-2.0-OpenSSH_9.3p1", "CVE-2023-38408", "openssh 9.3p1 is listed as affected (9.3 p1)"),
        ("SSH-2.0-OpenSSH_9.5", "CVE-2023-48795", "openssh 9.5 is within (-inf, 9.6)"),
        ("SSH-2.0-OpenSSH_7.1p1", "CVE-2016-0777", "openssh 7.1p1 is listed as affected (7.1 p1)"),
        ("SSH-2.0-OpenSSH_7.4", "CVE-2018-15473", "openssh 7.4 is within (-inf, 7.7]"),
        ("SSH-2.0-OpenSSH_8.2p1", "CVE-2021-41617", "openssh 8.2p1 is within [6.2, 8.8)"),
        ("Apache/2.4.49 (Unix)", "CVE-2021-41773", "http_server 2.4.49 is listed as affected (2.4.49)"),
        ("Apache/2.4.50 (Unix)", "CVE-2021-42013", "http_server 2.4.50 is listed as affected (2.4.50)"),
        ("Apache/2.4.48", "CVE-2021-40438", "http_server 2.4.48 is within (-inf, 2.4.48]"),
        ("Apache/2.4.52", "CVE-2022-22720", "http_server 2.4.52 is within (-inf, 2.4.52]"),
        ("Apache/2.4.55", "CVE-2023-25690", "http_server 2.4.55 is within [2.4.0, 2.4.55]"),
        ("nginx/1.18.0", "CVE-2021-23017", "nginx 1.18.0 is within [0.6.18, 1.20.1)"),
        ("nginx/1.16.1", "CVE-2019-20372", "nginx 1.16.1 is within (-inf, 1.17.7)"),
        ("nginx/1.23.1", "CVE-2022-41741", "nginx 1.23.1 is listed as affected (1.23.1)"),
        ("redis_version:6.0.9", "CVE-2021-32626", "redis 6.0.9 is within [6.0.0, 6.0.16)"),
        ("redis_version:6.0.9", "CVE-2021-32675", "redis 6.0.9 is within [6.0.0, 6.0.16)"),
        ("redis_version:6.0.9", "CVE-2022-24834", "redis 6.0.9 is within [2.6.0, 6.0.20)"),
        ("redis_version:6.0.9", "CVE-2023-28856", "redis 6.0.9 is within (-inf, 6.0.19)"),
        ("PostgreSQL 15.2", "CVE-2023-2454", "postgresql 15.2 is within [15.0, 15.3)"),
        ("PostgreSQL 14.10", "CVE-2024-0985", "postgresql 14.10 is within [14.0, 14.11)"),
        ("PostgreSQL 16.3", "CVE-2024-7348", "postgresql 16.3 is within [16.0, 16.4)"),
        ("8.0.32-MySQL Community Server", "CVE-2023-21980", "mysql 8.0.32 is within [8.0.0, 8.0.32]"),
        ("8.0.30-MySQL Community Server", "CVE-2023-21912", "mysql_server 8.0.30 is within [8.0.0, 8.0.30]"),
        ("memcached 1.5.5", "CVE-2018-1000115", "memcached 1.5.5 is listed as affected (1.5.5)"),
        ("memcached 1.4.31", "CVE-2016-8704", "memcached 1.4.31 is within (-inf, 1.4.31]"),
        ("Docker/18.09.1", "CVE-2019-5736", "docker 18.09.1 is within (-inf, 18.09.2)"),
        ("Docker/20.10.2", "CVE-2021-21285", "docker 20.10.2 is within [20.0.0, 20.10.3)"),
        ("Geth/v1.10.16-stable-20356e57/linux-amd64/go1.17.5", "CVE-2022-29177", "go_ethereum 1.10.16 is within (-inf, 1.10.17)"),
        ("Geth/v1.10.7-stable/linux-amd64/go1.16.4", "CVE-2021-39137", "go_ethereum 1.10.7 is within [1.10.0, 1.10.8)"),
        ("Geth/v1.10.17-stable-25c9b49f/linux-amd64/go1.18", "CVE-2022-37450", "go_ethereum 1.10.17 is within (-inf, 1.10.21]"),
        ("Geth/v1.12.0-stable/linux-amd64/go1.20.4", "CVE-2023-40591", "go_ethereum 1.12.0 is within (-inf, 1.12.1)"),
    ],
)
def test_a_real_banner_matches_its_cve_with_a_reason(index, banner, cve_id, reason):
    found = matches_for(banner, index)
    assert cve_id in found, sorted(found)
    assert found[cve_id].reason.startswith(reason)
    assert found[cve_id].cvss_score and found[cve_id].description and found[cve_id].references


@pytest.mark.parametrize(
    "banner, cve_id",
    [
        ("SSH-2.0-OpenSSH_9.8p1", "CVE-2024-6387"),
        ("SSH-2.0-OpenSSH_8.5", "CVE-2024-6387"),  # 8.5 is before the regression; 8.5p1 is not
        ("SSH-2.0-OpenSSH_9.3p2", "CVE-2023-38408"),
        ("SSH-2.0-OpenSSH_9.6p1", "CVE-2023-48795"),
        ("SSH-2.0-OpenSSH_7.1p2", "CVE-2016-0777"),
        ("Apache/2.4.51", "CVE-2021-41773"),
        ("Apache/2.4.48", "CVE-2021-41773"),
        ("Apache/2.4.51", "CVE-2021-42013"),
        ("Apache/2.4.56", "CVE-2023-25690"),
        ("nginx/1.20.1", "CVE-2021-23017"),
        ("nginx/1.22.1", "CVE-2022-41741"),
        ("redis_version:6.0.16", "CVE-2021-32626"),
        ("redis_version:7.0.12", "CVE-2022-24834"),
        ("PostgreSQL 15.3", "CVE-2023-2454"),
        ("PostgreSQL 16.1", "CVE-2024-0985"),
        ("8.0.33-MySQL Community Server", "CVE-2023-21980"),
        ("memcached 1.5.6", "CVE-2018-1000115"),
        ("Docker/18.09.2", "CVE-2019-5736"),
        ("Geth/v1.10.17-stable-25c9b49f/linux-amd64/go1.18", "CVE-2022-29177"),
        ("Geth/v1.12.1-stable/linux-amd64/go1.20.7", "CVE-2023-40591"),
    ],
)
def test_a_fixed_version_does_not_match(index, banner, cve_id):
    assert cve_id not in matches_for(banner, index)


def test_a_distribution_build_of_openssh_matches_regresshion_below_the_default_threshold(index):
    found = matches_for("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.1", index)["CVE-2024-6387"]
    assert found.confidence == pytest.approx(0.5)
    assert found.basis == "backport"
    assert "a distribution build (Ubuntu 3ubuntu0.1) may carry backported fixes" in found.reason
    assert (found.cvss_score, found.severity, found.cwe) == (8.1, "high", 362)


@pytest.mark.parametrize(
    "product, version, banner, build",
    [
        ("OpenSSH", "7.2p2", "SSH-2.0-OpenSSH_7.2p2 Ubuntu-4ubuntu2.8", "Ubuntu 4ubuntu2.8"),
        ("OpenSSH", "7.4p1", "SSH-2.0-OpenSSH_7.4p1 Debian-10+deb9u1", "Debian 10+deb9u1"),
        ("OpenSSH", "1:7.9p1-10+deb10u2", "", "Debian 10+deb10u2"),
        ("OpenSSH", "7.4p1-21.el7", "", "RHEL 21.el7"),
        ("Apache httpd", "2.4.29", "Apache/2.4.29 (Ubuntu)", "Ubuntu"),
        ("Apache httpd", "2.4.38", "Apache/2.4.38 (Debian)", "Debian"),
        ("Apache httpd", "2.4.6", "Apache/2.4.6 (Red Hat)", "Red Hat"),
    ],
)
def test_an_upstream_range_matched_by_a_distribution_build_is_not_certain(index, product, version, banner, build):
    found = index.match(observe(product, version, "", banner))
    assert found, "the upstream range still matches"
    for match in found:
        assert match.confidence < 0.6
        assert f"a distribution build ({build}) may carry backported fixes" in match.reason


def test_an_upstream_build_keeps_full_confidence(index):
    found = index.match(observe("OpenSSH", "7.2p2", "", "SSH-2.0-OpenSSH_7.2p2"))
    assert found
    assert all(m.basis in ("exact", "range") and m.confidence == 1.0 for m in found if "not observed" not in m.reason)


def test_debian_only_redis_sandbox_escape_needs_the_platform(index):
    upstream = index.match(observe("redis", "6.0.9", ""))
    debian = index.match(observe("redis", "5:6.0.16-1+deb11u2", ""))
    plain = next(m for m in upstream if m.cve_id == "CVE-2022-0543")
    packaged = next(m for m in debian if m.cve_id == "CVE-2022-0543")
    assert "only when running on" in plain.reason and "not observed" in plain.reason
    assert plain.confidence < 0.5
    assert "suggested by the version" in packaged.reason


def test_a_cve_without_nvd_configurations_matches_nothing(index):
    assert "CVE-2024-41110" not in matches_for("Docker/26.1.4", index)


def test_terrapin_matches_openssh_but_not_the_other_ssh_products_it_lists(index):
    assert "CVE-2023-48795" in matches_for("SSH-2.0-OpenSSH_9.5", index)
    assert index.match(observe("dropbear", "2022.83", "")) == []


def test_an_unknown_version_or_product_matches_nothing(index):
    assert index.match(observe("OpenSSH", "", "")) == []
    assert index.match(observe("OpenSSH", "unknown", "")) == []
    assert index.match(observe("", "", "")) == []
    assert index.match(observe("lighttpd", "1.4.0", "")) == []


def test_the_cpe_alone_is_enough(index):
    found = index.match(observe("", "", "cpe:2.3:a:openbsd:openssh:8.9p1:*:*:*:*:*:*:*"))
    assert "CVE-2024-6387" in {m.cve_id for m in found}
    found = index.match(observe("", "", "cpe:/a:openbsd:openssh:8.9p1"))
    assert "CVE-2024-6387" in {m.cve_id for m in found}


def test_the_update_in_a_scanner_cpe_is_the_patch_level():
    ssh = observe("", "", "cpe:2.3:a:openbsd:openssh:8.5:p1:*:*:*:*:*:*")
    assert ssh.version is not None and ssh.version.upstream == "8.5p1"


def test_matches_come_most_confident_then_most_severe_first(index):
    found = index.match(observe("Apache httpd", "2.4.49", ""))
    keys = [(-m.confidence, -(m.cvss_score or 0)) for m in found]
    assert keys == sorted(keys)


def test_a_rejected_cve_is_left_out_of_the_index():
    entries = list(iter_cve_entries(FIXTURE))
    rejected = [e for e in entries if e.cve_id == "CVE-2021-23017"][0]
    import dataclasses

    index = CveIndex([dataclasses.replace(rejected, vuln_status="Rejected")])
    assert len(index) == 0
    assert index.match(observe("nginx", "1.18.0", "")) == []


def test_matching_ten_thousand_services_is_fast(index):
    fleet = [
        ("OpenSSH", f"8.{n % 10}p1 Ubuntu-3ubuntu0.{n % 13}", "") if n % 3 == 0 else
        ("nginx", f"1.{n % 25}.{n % 7}", "") if n % 3 == 1 else
        ("redis", f"{5 + n % 3}.0.{n % 20}", "")
        for n in range(10_000)
    ]
    started = time.perf_counter()
    total = sum(len(index.match(observe(p, v, c))) for p, v, c in fleet)
    elapsed = time.perf_counter() - started
    assert total > 0
    assert elapsed < 5.0, f"{elapsed:.2f}s for 10,000 services"
