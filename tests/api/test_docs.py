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
