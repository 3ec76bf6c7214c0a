"""The HTTP inspector's sensitive paths, against lab sites that expose them, fake them, or answer 200 to everything."""

from __future__ import annotations

import pytest

from scans.lab import Lab
from scans.lab.http import (
    HttpResponse,
    directory_listing,
    exposed_site_handler,
    http_handler,
    lookalike_handler,
    soft_404_handler,
)
from scans.scanners import Target, get_scanner
from scans.scanners.http import SENSITIVE_PATHS

ADDRESS = "127.0.4.43"
SENSITIVE_RULES = {item.rule_id for item in SENSITIVE_PATHS}


@pytest.fixture(scope="module")
def lab():
    with Lab() as lab:
        yield lab


def run(lab, handler, **options):
    service = lab.serve(ADDRESS, 0, handler)
    try:
        return get_scanner("http").run(Target(address=ADDRESS), {"ports": [service.port], **options})
    finally:
        lab.stop(service)


def hits(result):
    """Findings on the sensitive paths, by path (the listing check of "/" itself is older and apart)."""
    found = {f.location.split(str(f.port), 1)[1]: f for f in result.findings if f.rule_id in SENSITIVE_RULES}
    return {path: f for path, f in found.items() if path in {item.path for item in SENSITIVE_PATHS}}


def test_each_exposed_path_is_a_finding_with_its_evidence(lab):
    result = run(lab, exposed_site_handler())

    found = hits(result)
    assert {path: f.rule_id for path, f in found.items()} == {
        "/.git/HEAD": "http-exposed-git",
        "/.env": "http-exposed-env",
        "/server-status": "http-server-status",
        "/phpinfo.php": "http-phpinfo",
        "/files/": "http-directory-listing",
        "/uploads/": "http-directory-listing",
        "/backup.zip": "http-exposed-backup",
        "/db.sql": "http-exposed-database-dump",
    }
    git = found["/.git/HEAD"]
    assert git.severity == "high" and git.cwe == 527
    assert git.evidence == {"status": 200, "content_type": "text/plain", "length": 21,
                            "first_bytes": "ref: refs/heads/main\n", "match_confidence": 1.0,
                            "match_basis": "proven", "match_reason": "seen in the answer to GET /.git/HEAD"}
    assert found["/backup.zip"].evidence["first_bytes"].startswith("PK\\x03\\x04")
    assert found["/backup.zip"].evidence["content_type"] == "application/zip"
    assert found["/db.sql"].evidence["first_bytes"].startswith("-- MySQL dump")
    assert result.complete and result.coverage[0].ports == (git.port,)


def test_the_evidence_of_an_env_file_names_its_keys_but_never_its_secrets(lab):
    env = hits(run(lab, exposed_site_handler()))["/.env"]

    assert "APP_KEY=****" in env.evidence["first_bytes"] and "DB_PASSWORD=****" in env.evidence["first_bytes"]
    assert "Winter2026" not in str(env.evidence) and "base64:" not in str(env.evidence)


def test_pages_that_only_look_sensitive_are_not_findings(lab):
    result = run(lab, lookalike_handler())

    assert hits(result) == {}
    assert result.data["ports"][str(result.open_ports[0])]["sensitive"]["/.git/HEAD"] == 200


@pytest.mark.parametrize("echo_path", [True, False], ids=["echoing the path", "same body"])
def test_a_site_answering_200_to_everything_yields_no_sensitive_finding(lab, echo_path):
    result = run(lab, soft_404_handler(echo_path=echo_path))

    assert hits(result) == {}
    assert result.complete


def test_a_catch_all_that_passes_the_content_check_is_recognised_as_a_soft_404(lab):
    every_path_lists = http_handler({}, not_found=lambda request: HttpResponse(
        body=directory_listing(request.path, ["index.html", "style.css"])))

    result = run(lab, every_path_lists)

    assert hits(result) == {}
    sensitive = result.data["ports"][str(result.open_ports[0])]["sensitive"]
    assert sensitive["/files/"] == "soft-404" and sensitive["/uploads/"] == "soft-404"


def test_the_request_budget_bounds_the_probes_and_leaves_the_port_uncovered(lab):
    asked = []

    def count(request):
        asked.append(request.path)
        return HttpResponse(status=404, body="no")

    result = run(lab, http_handler({("GET", "/"): HttpResponse(body="hi")}, not_found=count), path_budget=5)

    assert len(asked) == 5
    assert not result.coverage  # a port whose checks were cut short closes nothing
    assert list(result.data["ports"][str(result.open_ports[0])]["sensitive"].values()).count("budget") == \
        len(SENSITIVE_PATHS) + 2 - 5


def test_the_budget_is_per_host_across_its_ports(lab):
    asked = []

    def count(request):
        asked.append(request.path)
        return HttpResponse(status=404, body="no")

    handler = http_handler({("GET", "/"): HttpResponse(body="hi")}, not_found=count)
    first, second = lab.serve(ADDRESS, 0, handler), lab.serve(ADDRESS, 0, handler)
    try:
        get_scanner("http").run(Target(address=ADDRESS), {"ports": [first.port, second.port], "path_budget": 20})
    finally:
        lab.stop(first)
        lab.stop(second)

    assert len(asked) == 20


def test_it_can_be_turned_off(lab):
    result = run(lab, exposed_site_handler(), sensitive_paths=False)

    assert hits(result) == {}
    assert "sensitive" not in result.data["ports"][str(result.open_ports[0])]


def test_a_path_asked_for_explicitly_is_not_probed_twice(lab):
    asked = []

    def listing(request):
        asked.append(request.path)
        return HttpResponse(body=directory_listing("/backup", ["db.sql"]))

    result = run(lab, http_handler({("GET", "/"): HttpResponse(body="hi"), ("GET", "/backup/"): listing}),
                 paths=["/backup/"])

    assert asked == ["/backup/"]
    assert [f.location.endswith("/backup/") for f in result.findings if f.rule_id == "http-directory-listing"] == [True]


def test_the_time_limit_bounds_the_probes_and_leaves_the_port_uncovered(lab):
    import asyncio

    from scans.lab.http import read_request

    async def slow_beyond_the_root(reader, writer):
        request = await read_request(reader)
        if request is not None and request.path == "/":
            writer.write(HttpResponse(body="hi").encoded([]))
            await writer.drain()
            return
        await asyncio.sleep(30)  # every other path hangs: only the time limit ends the checks

    service = lab.serve(ADDRESS, 0, slow_beyond_the_root)
    try:
        result = get_scanner("http").run(Target(address=ADDRESS), {"ports": [service.port], "path_seconds": 1})
    finally:
        lab.stop(service)

    assert result.open_ports == [service.port] and hits(result) == {}
    assert not result.coverage
    assert set(result.data["ports"][str(service.port)]["sensitive"].values()) <= {"timeout", "budget"}
