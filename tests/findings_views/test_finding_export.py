"""Export of the list's filter as CSV or JSON: streamed, the same filter as the list, CSV cells neutralized."""

from __future__ import annotations

import csv
import io
import json

import psycopg
import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.urls import reverse
from rest_framework.test import APIClient

from scans.findings import export
from scans.findings.export import finding_export
from scans.selectors import finding_filters_from
from tests.factories import FindingFactory, NodeFactory

pytestmark = pytest.mark.django_db


def url(kind, slug="acme"):
    return reverse("scans:finding_export", args=[slug, kind])


def body(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def node(world):
    return NodeFactory(org=world.org, name="web-1")


def test_the_csv_holds_the_lists_filter_open_findings_by_default(world, login, node):
    FindingFactory(node=node, title="Open one", severity="high", cve_ids=["CVE-2024-1", "CVE-2024-2"], port=443)
    FindingFactory(node=node, title="Fixed one", status="fixed")
    response = login(world.viewer).get(url("csv"))
    assert response["Content-Type"].startswith("text/csv")
    assert 'attachment; filename="findings-acme-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body(response))))
    assert [r["title"] for r in rows] == ["Open one"]
    assert rows[0]["cve_ids"] == "CVE-2024-1 CVE-2024-2" and rows[0]["port"] == "443"
    assert rows[0]["node_name"] == "web-1" and rows[0]["certainty"] == "certain"
    everything = list(csv.DictReader(io.StringIO(body(login(world.viewer).get(url("csv"), {"status": "all"})))))
    assert sorted(r["title"] for r in everything) == ["Fixed one", "Open one"]


def test_every_csv_cell_that_a_spreadsheet_would_evaluate_is_written_as_text(world, login, node):
    payloads = ["=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)", "\tTab", "\rReturn"]
    for n, payload in enumerate(payloads):
        FindingFactory(node=node, title=payload, rule_id=f"{payload}-{n}", source="@nuclei")
    text = body(login(world.viewer).get(url("csv")))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["title"] for r in rows) == sorted("'" + p for p in payloads)
    assert all(r["rule_id"].startswith("'") and r["source"] == "'@nuclei" for r in rows)
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


def test_the_json_is_an_array_of_the_same_fields(world, login, node):
    finding = FindingFactory(node=node, title="Exposed Redis", cve_ids=["CVE-2022-0543"], cvss_score="9.8",
                             severity="critical")
    data = json.loads(body(login(world.viewer).get(url("json"), {"severity": "critical"})))
    assert data == [data[0]] and data[0]["id"] == finding.pk and data[0]["cve_ids"] == ["CVE-2022-0543"]
    assert data[0]["cvss_score"] == 9.8 and set(data[0]) == set(export.HEADER)
    assert json.loads(body(login(world.viewer).get(url("json"), {"severity": "low"}))) == []


def test_the_export_is_streamed_one_chunk_at_a_time(world, login, node, monkeypatch):
    monkeypatch.setattr(export, "CHUNK", 3)
    for n in range(10):
        FindingFactory(node=node, title=f"F{n}")
    response = login(world.viewer).get(url("csv"))
    assert response.streaming
    chunks = list(response.streaming_content)
    assert len(chunks) == 1 + 4  # the header, then ceil(10 / 3) chunks of rows
    assert sum(chunk.count(b"\n") for chunk in chunks[1:]) == 10


def test_the_export_reads_from_a_server_side_cursor(world, node, monkeypatch):
    opened = []
    original = connection.chunked_cursor

    def recording():
        cursor = original()
        opened.append(cursor)
        return cursor

    monkeypatch.setattr(connection, "chunked_cursor", recording)
    FindingFactory(node=node)
    assert len(list(finding_export(org=world.org, filters=finding_filters_from({}), kind="csv"))) == 2
    assert len(opened) == 1 and isinstance(opened[0].cursor, psycopg.ServerCursor)


def test_an_unknown_format_is_404_and_the_export_keeps_each_caller_in_their_place(world, client, login, node):
    FindingFactory(node=node, title="Secret")
    response = client.get(url("csv"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert login(world.outsider).get(url("csv")).status_code == 404
    assert login(world.owner).get(url("xlsx")).status_code == 404
    assert login(world.owner).post(url("csv")).status_code == 405
    theirs = body(login(world.outsider).get(url("csv", slug="globex")))
    assert "Secret" not in theirs


def test_the_api_exports_with_the_lists_parameters_every_status_by_default(world, api, node):
    FindingFactory(node=node, title="Open one", severity="high")
    FindingFactory(node=node, title="Fixed one", status="fixed", severity="low")
    response = api("read").get("/api/v1/findings/export/csv/")
    assert response.status_code == 200 and isinstance(response, StreamingHttpResponse)
    assert sorted(r["title"] for r in csv.DictReader(io.StringIO(body(response)))) == ["Fixed one", "Open one"]
    data = json.loads(body(api("read").get("/api/v1/findings/export/json/", {"severity": "high"})))
    assert [f["title"] for f in data] == ["Open one"]
    assert api("read").get("/api/v1/findings/export/json/", {"severity": "urgent"}).status_code == 400
    assert json.loads(body(api("other").get("/api/v1/findings/export/json/"))) == []
    anonymous = APIClient()
    assert anonymous.get("/api/v1/findings/export/csv/").status_code == 401
