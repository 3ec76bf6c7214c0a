"""Field errors as the schema says: one flat map of a field's path to its messages; a body over the limit is a 413."""

from __future__ import annotations

import json

import jsonschema
import pytest
from django.test import Client

from nodes.models import Node
from nodes.services import BULK_MAX_ROWS
from tests.api.conftest import problem


@pytest.fixture
def problem_schema(db):
    """The schema's Problem component, as a JSON Schema a body can be checked against."""
    schema = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    return {**schema["components"]["schemas"]["Problem"], "components": schema["components"]}


def conforms(body, problem_schema) -> None:
    jsonschema.validate(body, problem_schema)
    assert all(isinstance(m, str) for messages in body.get("errors", {}).values() for m in messages), body


def test_an_error_in_a_list_field_is_keyed_by_its_position(api, world, problem_schema):
    body = problem(api().post("/api/v1/nodes/", {"address": "127.0.50.9", "tags": ["prod", ""]}, format="json"),
                   400, "invalid")

    assert body["errors"] == {"tags.1": ["This field may not be blank."]}
    assert body["detail"] == "This field may not be blank."
    conforms(body, problem_schema)


def test_an_error_in_a_row_of_a_bulk_list_names_the_row_and_the_field(api, world, problem_schema):
    body = problem(api().post("/api/v1/nodes/bulk/", {"nodes": [{"address": "127.0.50.1"}, {"name": "no address"},
                                                                 {"address": "127.0.50.3", "tags": [""]}]},
                              format="json"), 400, "invalid")

    assert body["errors"] == {"nodes.1.address": ["This field is required."],
                              "nodes.2.tags.0": ["This field may not be blank."]}
    conforms(body, problem_schema)
    assert not Node.objects.filter(org=world.org).exists()  # nothing of a refused list is written


def test_an_error_about_a_nested_value_as_a_whole_belongs_to_its_field(api, world, problem_schema):
    body = problem(api().post("/api/v1/nodes/bulk/", {"nodes": "127.0.50.1"}, format="json"), 400, "invalid")

    assert list(body["errors"]) == ["nodes"]
    assert body["errors"]["nodes"][0].startswith("Expected a list of items")
    conforms(body, problem_schema)


def test_an_invalid_choice_in_a_list_is_keyed_by_its_position(api, world, problem_schema):
    body = problem(api().post("/api/v1/webhooks/", {"url": "http://127.0.0.1:9/hook", "events": ["AAA"]},
                              format="json"), 400, "invalid")

    assert body["errors"] == {"events.0": ['"AAA" is not a valid choice.']}
    conforms(body, problem_schema)


def test_errors_about_the_request_as_a_whole_stay_under_non_field_errors(api, world, problem_schema):
    body = problem(api().post("/api/v1/nodes/", [1, 2], format="json"), 400, "invalid")

    assert list(body["errors"]) == ["non_field_errors"]
    conforms(body, problem_schema)


def test_the_schema_says_errors_map_a_path_to_strings(problem_schema):
    errors = problem_schema["properties"]["errors"]
    assert errors["type"] == "object"
    assert errors["additionalProperties"] == {"type": "array", "items": {"type": "string"}}
    assert "tags.1" in errors["description"]


def bulk_body(rows: int) -> str:
    """About 230 bytes a row: 12,000 rows come to 2.8 MB, 10,000 to 2.3 MB."""
    return json.dumps({"nodes": [{"address": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                                  "name": f"validator-{i:05d}-eu-west-rack-17-with-a-descriptive-name-for-operators",
                                  "tags": ["prod", "rpc", "eu-west-1-zone-a-with-a-longer-tag", "ethereum-mainnet",
                                           "archive-node-with-traces", "validator"]}
                                 for i in range(rows)]})


def test_a_body_over_the_upload_limit_is_a_413_naming_the_limit(api, world, settings, problem_schema):
    body = bulk_body(12_000)
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    answer = problem(api().post("/api/v1/nodes/bulk/", body, content_type="application/json"), 413, "too_large")

    assert answer["max_bytes"] == settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes" in answer["detail"]
    assert f"{len(body):,} bytes" in answer["detail"]
    conforms(answer, problem_schema)


def test_a_body_over_the_limit_is_a_413_on_every_endpoint(api, world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    answer = problem(api().patch(f"/api/v1/nodes/{Node.objects.create(org=world.org, address='127.0.50.1').pk}/",
                                 {"name": "x" * 2000}, format="json"), 413, "too_large")

    assert answer["max_bytes"] == 1000


def test_the_bulk_endpoint_takes_as_many_rows_as_the_console_and_no_more(api, world, settings):
    assert BULK_MAX_ROWS == 10_000
    body = bulk_body(BULK_MAX_ROWS)  # long names and tags: still within the body limit
    assert len(body) <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = api().post("/api/v1/nodes/bulk/", body, content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    assert response.json()["refused"] == BULK_MAX_ROWS  # 10.0.0.0/8 lies outside the scope: nothing added

    over = problem(api().post("/api/v1/nodes/bulk/", bulk_body(BULK_MAX_ROWS + 1), content_type="application/json"),
                   400, "invalid")
    assert over["errors"] == {"nodes": [f"Ensure this field has no more than {BULK_MAX_ROWS} elements."]}


def test_the_bulk_endpoint_documents_its_limits(db, settings):
    schema = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/nodes/bulk/"]["post"]

    assert "10,000 rows" in operation["description"]
    nodes = schema["components"]["schemas"]["BulkNodeRequest"]["properties"]["nodes"]
    assert (nodes["minItems"], nodes["maxItems"]) == (1, 10_000)
    assert f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes" in operation["description"]
    assert "application/problem+json" in operation["responses"]["413"]["content"]
