"""The HTTP inspector against lab HTTP(S) servers on loopback."""

from __future__ import annotations

import pytest

from scans.findings.candidates import ServiceObservation
from scans.lab import Lab
from scans.lab.http import HttpResponse, http_handler
from scans.scanners import Target, get_scanner
from scans.scanners.http import Cookie, hsts_max_age

ADDRESS = "127.0.4.41"
SAFE_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
]


@pytest.fixture(scope="module")
def lab():
    with Lab() as lab:
        yield lab


def scan(lab, routes, *, tls_context=None, hostname="", server_header=None, headers=None, **options):
    handler = http_handler(routes, server_header=server_header, headers=headers)
    service = lab.serve(ADDRESS, 0, handler, ssl_context=tls_context)
    try:
        target = Target(address=ADDRESS, hostname=hostname)
        return get_scanner("http").run(target, {"ports": [service.port], **options})
    finally:
        lab.stop(service)


def rules(result):
    return {f.rule_id for f in result.findings}


def test_an_https_site_with_every_protection_has_no_findings(lab, tls_context):
    cookie = ("Set-Cookie", "sid=1; Secure; HttpOnly; SameSite=Lax")
    routes = {("GET", "/"): HttpResponse(body="<h1>ok</h1>", headers=[cookie])}
    result = scan(lab, routes, tls_context=tls_context, server_header="nginx", headers=SAFE_HEADERS)

    assert result.complete and result.findings == []
    port = result.data["ports"][str(result.open_ports[0])]
    assert port["scheme"] == "https" and port["status"] == 200 and port["tls_version"] == "TLSv1.3"
    assert result.coverage[0].ports == tuple(result.open_ports)


def test_an_https_site_without_security_headers_gets_one_finding_per_missing_header(lab, tls_context):
    result = scan(lab, {("GET", "/"): HttpResponse(body="hi")}, tls_context=tls_context)

    assert rules(result) == {
        "http-missing-hsts", "http-missing-csp", "http-missing-x-frame-options",
        "http-missing-x-content-type-options", "http-missing-referrer-policy",
    }
    hsts = next(f for f in result.findings if f.rule_id == "http-missing-hsts")
    assert hsts.severity == "medium" and hsts.location == f"https://{ADDRESS}:{hsts.port}/"


def test_a_short_hsts_max_age_is_reported(lab, tls_context):
    headers = [h for h in SAFE_HEADERS if h[0] != "Strict-Transport-Security"] + [
        ("Strict-Transport-Security", "max-age=300")]
    result = scan(lab, {("GET", "/"): HttpResponse(body="hi")}, tls_context=tls_context, headers=headers)

    assert rules(result) == {"http-weak-hsts"}


def test_plain_http_without_a_redirect_to_https_is_reported(lab):
    result = scan(lab, {("GET", "/"): HttpResponse(body="hi")}, headers=SAFE_HEADERS)

    assert rules(result) == {"http-no-https-redirect"}  # HSTS only counts over HTTPS
    assert result.data["ports"][str(result.open_ports[0])]["scheme"] == "http"


def test_plain_http_redirecting_to_https_is_fine_and_needs_no_content_headers(lab):
    redirect = HttpResponse(status=301, headers=[("Location", "https://web.lab/")])
    result = scan(lab, {("GET", "/"): redirect})

    assert result.findings == []


def test_the_host_header_carries_the_target_name_and_port(lab):
    seen = {}

    def echo(request):
        seen.update(request.headers)
        return HttpResponse(status=301, headers=[("Location", "https://web.lab/")])

    result = scan(lab, {("GET", "/"): echo}, hostname="web.lab")

    assert seen["host"] == f"web.lab:{result.open_ports[0]}"
    assert seen["user-agent"].startswith("Watchpost/")


def test_server_versions_and_powered_by_headers_are_reported_as_disclosure(lab):
    redirect = HttpResponse(status=301, headers=[("Location", "https://web.lab/")])
    result = scan(lab, {("GET", "/"): redirect}, server_header="Apache/2.4.41 (Ubuntu)",
                  headers=[("X-Powered-By", "PHP/7.4.3")])

    assert rules(result) == {"http-server-version-disclosure", "http-technology-disclosure"}
    (service,) = result.services
    assert (service.product, service.version, service.banner) == ("Apache", "2.4.41", "Apache/2.4.41 (Ubuntu)")


def test_a_server_name_without_a_version_is_not_a_disclosure(lab):
    redirect = HttpResponse(status=301, headers=[("Location", "https://web.lab/")])
    result = scan(lab, {("GET", "/"): redirect}, server_header="nginx")

    assert result.findings == []


def test_a_directory_listing_is_reported_on_the_path_where_it_appears(lab):
    listing = HttpResponse(body="<html><head><title>Index of /backup/</title></head><body>db.sql</body></html>")
    redirect = HttpResponse(status=301, headers=[("Location", "https://web.lab/")])
    result = scan(lab, {("GET", "/"): redirect, ("GET", "/backup/"): listing}, paths=["/backup/"])

    (listed,) = result.findings
    assert listed.rule_id == "http-directory-listing"
    assert listed.location == f"http://{ADDRESS}:{listed.port}/backup/"
    assert listed.cwe == 548


def test_cookies_without_secure_httponly_and_samesite_are_reported_per_cookie(lab, tls_context):
    routes = {("GET", "/"): HttpResponse(body="hi", headers=[
        ("Set-Cookie", "sid=abc; Path=/"),
        ("Set-Cookie", "pref=dark; Secure; HttpOnly; SameSite=None"),
        ("Set-Cookie", "track=1; HttpOnly; SameSite=None"),
    ])}
    result = scan(lab, routes, tls_context=tls_context, headers=SAFE_HEADERS)

    found = sorted((f.rule_id, f.evidence["cookie"]) for f in result.findings)
    assert found == [
        ("http-cookie-missing-httponly", "sid"),
        ("http-cookie-missing-samesite", "sid"),
        ("http-cookie-missing-secure", "sid"),
        ("http-cookie-missing-secure", "track"),
        ("http-cookie-samesite-none-insecure", "track"),
    ]
    assert {f.location.rsplit("#", 1)[1] for f in result.findings} == {"cookie=sid", "cookie=track"}


def test_the_scheme_is_detected_when_the_port_guess_is_wrong(lab, tls_context):
    # An unknown port is tried as plain HTTP first, then as HTTPS.
    result = scan(lab, {("GET", "/"): HttpResponse(body="hi")}, tls_context=tls_context, headers=SAFE_HEADERS)

    assert result.data["ports"][str(result.open_ports[0])]["scheme"] == "https"
    assert [a["probe"] for a in result.attempts] == ["http GET /", "https GET /"]


def test_a_closed_port_is_covered_and_reports_nothing(lab):
    service = lab.serve(ADDRESS, 0, http_handler({}))
    port = service.port
    lab.stop(service)

    result = get_scanner("http").run(Target(address=ADDRESS), {"ports": [port]})

    assert result.findings == [] and result.open_ports == []
    assert result.attempts[0]["outcome"] == "refused"
    assert result.coverage[0].ports == (port,)


def test_it_inspects_the_web_ports_discovery_found():
    scanner = get_scanner("http")
    options = scanner.clean_options({})
    web = Target(address=ADDRESS, ports=(22, 8080, 9443), services=(
        ServiceObservation(host=ADDRESS, port=8080, service="http"),
        ServiceObservation(host=ADDRESS, port=9443, service="http", tls=True),
    ))
    assert scanner.ports_for(web, options) == [(8080, "http"), (9443, "https")]
    assert scanner.ports_for(Target(address=ADDRESS, ports=(22, 80, 8443)), options) == [(80, "http"), (8443, "https")]
    assert scanner.ports_for(Target(address=ADDRESS), options) == [(80, "http"), (443, "https")]


def test_cookie_and_hsts_parsing_reads_attributes_case_insensitively():
    cookie = Cookie.parse("SID=a=b; secure; HTTPONLY; SameSite=Strict")
    assert cookie.name == "SID" and cookie.attributes == {"secure": "", "httponly": "", "samesite": "Strict"}
    assert hsts_max_age('MAX-AGE="600"; preload') == 600 and hsts_max_age("includeSubDomains") is None


def test_the_reserved_sandbox_port_is_never_probed_even_when_asked_for():
    scanner = get_scanner("http")
    options = {**scanner.clean_options({}), "ports": [2024, 8080]}
    assert scanner.ports_for(Target(address=ADDRESS), options) == [(8080, "http")]


def test_a_missing_browser_header_is_inferred_surer_on_an_html_page_than_on_json(lab):
    page = scan(lab, {("GET", "/"): HttpResponse(body="<html>hi</html>")})
    api = scan(lab, {("GET", "/"): HttpResponse(body='{"ok": true}', content_type="application/json")})

    on_page = next(f for f in page.findings if f.rule_id == "http-missing-csp").evidence
    on_api = next(f for f in api.findings if f.rule_id == "http-missing-csp").evidence
    assert (on_page["match_basis"], on_page["match_confidence"]) == ("inferred", 0.9)
    assert (on_api["match_basis"], on_api["match_confidence"]) == ("inferred", 0.5)
    assert "application/json" in on_api["match_reason"]
    redirect = next(f for f in page.findings if f.rule_id == "http-no-https-redirect").evidence
    assert (redirect["match_basis"], redirect["match_confidence"]) == ("proven", 1.0)
