"""The OpenAPI schema and its documentation pages: every operation summarized, with examples and problem responses."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.fixture
def schema(db):
    response = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_the_schema_is_public_and_names_the_bearer_scheme(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": schema["components"]["securitySchemes"]["bearerAuth"]
        ["description"]}


def test_every_operation_has_a_summary_a_success_and_problem_responses(schema):
    for name, operation in operations(schema):
        assert operation.get("summary"), name
        codes = set(operation["responses"])
        assert any(code.startswith("2") for code in codes), name
        for code in ("401", "429"):  # any caller can be unauthenticated or throttled
            assert "application/problem+json" in operation["responses"][code]["content"], (name, code)


def test_every_operation_has_examples(schema):
    missing = []
    for name, operation in operations(schema):
        # JSON bodies (a report download is a file: an example of it would say nothing).
        success = [c for code, r in operation["responses"].items() if code.startswith("2")
                   for media, c in (r.get("content") or {}).items() if "json" in media]
        requests = list((operation.get("requestBody") or {}).get("content", {}).values())
        if (success or requests) and not any(c.get("examples") for c in success + requests):
            missing.append(name)
        problems = [r for code, r in operation["responses"].items() if code[0] in "45"]  # a 304 has no body
        assert all(c.get("examples") for r in problems for c in r["content"].values()), name
    assert not missing, missing


def test_writes_that_start_work_take_an_idempotency_key(schema):
    for path in ("/api/v1/sessions/", "/api/v1/imports/", "/api/v1/nodes/bulk/"):
        names = [p["name"] for p in schema["paths"][path]["post"].get("parameters", [])]
        assert "Idempotency-Key" in names, path


@pytest.mark.parametrize("page", ["/api/v1/schema/swagger/", "/api/v1/schema/redoc/"])
def test_the_documentation_pages_load_their_assets_locally(db, page):
    response = Client().get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn.jsdelivr" not in html and "<script>" not in html  # no CDN, no inline script


def test_swagger_ui_starts_from_a_script_file(db):
    response = Client().get("/api/v1/schema/swagger/?script=")
    assert response.status_code == 200
    assert b"SwaggerUIBundle" in response.content


def test_the_api_root_answers_an_index_of_the_schema_its_pages_and_the_resources(db):
    response = Client().get("/api/v1/")

    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    index = response.json()
    assert index["schema"] == "http://testserver/api/v1/schema/"
    assert index["swagger_ui"] == "http://testserver/api/v1/schema/swagger/"
    assert index["redoc"] == "http://testserver/api/v1/schema/redoc/"
    assert index["resources"]["nodes"] == "http://testserver/api/v1/nodes/"
    assert {"organization", "nodes", "sessions", "findings", "imports", "interventions", "audit", "webhooks",
            "reports"} <= set(index["resources"])
    for link in (index["schema"], index["swagger_ui"], index["redoc"]):
        assert Client().get(link.removeprefix("http://testserver")).status_code == 200, link


def test_the_index_is_the_same_for_a_token_and_names_no_organization(api, world):
    index = api("read").get("/api/v1/").json()

    assert index == Client().get("/api/v1/").json()
    assert world.org.slug not in str(index)


def test_the_index_answers_only_reads(db):
    response = Client().post("/api/v1/", {})

    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"
    assert response["Content-Type"] == "application/problem+json"


def test_redoc_asks_no_font_or_script_of_another_origin(db):
    html = Client().get("/api/v1/schema/redoc/").content.decode()

    assert "fonts.googleapis" not in html and "fonts.gstatic" not in html
    assert "https://" not in html and "http://" not in html.replace("http://www.w3.org", "")
    assert "/static/js/redoc_local.js" in html


def test_every_console_page_links_to_the_api_documentation(client, world, login):
    login(world.viewer)

    html = client.get(f"/o/{world.org.slug}/").content.decode()

    assert 'href="/api/v1/schema/redoc/"' in html and 'href="/api/v1/schema/swagger/"' in html
