"""Reports over the API: request (202), status, download — with the ownership checklist."""

from __future__ import annotations

from rest_framework.test import APIClient

from orgs.models import IdempotencyKey
from reports.models import Report
from reports.services import report_generate

# The API tests' fixtures: tokens of each kind, clients sending them, throttling off.
from tests.api.conftest import _no_throttle, api, problem, tokens  # noqa: F401


def test_a_read_write_token_requests_a_report_and_gets_202_with_its_location(estate, api):
    response = api().post("/api/v1/reports/", {"kind": "node", "node": estate.db.pk, "format": "sarif"}, format="json")

    assert response.status_code == 202
    body = response.json()
    report = Report.objects.get(pk=body["id"])
    assert response["Location"] == f"/api/v1/reports/{report.pk}/"
    assert (report.kind, report.node, report.format, report.trigger) == ("node", estate.db, "sarif", "api")
    assert report.requested_by_token.name == "ci"
    assert body["status"] == "pending" and body["download_url"] is None


def test_status_then_download_once_ready(estate, api):
    report_id = api().post("/api/v1/reports/", {"format": "csv"}, format="json").json()["id"]
    assert problem(api("read").get(f"/api/v1/reports/{report_id}/download/"), 409, "report_not_ready")

    report_generate(report_id=report_id)
    status = api("read").get(f"/api/v1/reports/{report_id}/").json()
    assert status["status"] == "ready" and status["download_url"] == f"/api/v1/reports/{report_id}/download/"
    assert status["changes"] is None

    response = api("read").get(status["download_url"])
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{status["file_name"]}"'
    assert b"".join(response.streaming_content).startswith(b"finding_id,node_id,node_address")


def test_the_same_idempotency_key_requests_one_report(world, api):
    client = api()
    first = client.post("/api/v1/reports/", {"format": "json"}, format="json", HTTP_IDEMPOTENCY_KEY="weekly-48")
    again = client.post("/api/v1/reports/", {"format": "json"}, format="json", HTTP_IDEMPOTENCY_KEY="weekly-48")

    assert first.status_code == again.status_code == 202 and first.json()["id"] == again.json()["id"]
    assert Report.objects.count() == 1 and IdempotencyKey.objects.count() == 1


def test_a_read_token_cannot_request_a_report(world, api):
    problem(api("read").post("/api/v1/reports/", {}, format="json"), 403)
    assert not Report.objects.exists()


def test_another_organizations_report_is_a_404(world, api):
    report = Report.objects.create(org=world.org, kind="organization", format="pdf")
    problem(api("other").get(f"/api/v1/reports/{report.pk}/"), 404)
    problem(api("other").get(f"/api/v1/reports/{report.pk}/download/"), 404)
    assert api("other").get("/api/v1/reports/").json()["count"] == 0


def test_a_subject_of_another_organization_is_a_400(world, api, estate):
    body = problem(api("other").post("/api/v1/reports/", {"kind": "node", "node": estate.web.pk}, format="json"), 400)
    assert "node" in str(body)


def test_anonymous_is_a_401(world):
    problem(APIClient().get("/api/v1/reports/"), 401)
    problem(APIClient().post("/api/v1/reports/", {}, format="json"), 401)


def test_the_list_filters_by_status(world, api):
    Report.objects.create(org=world.org, kind="organization", format="pdf", status="ready")
    Report.objects.create(org=world.org, kind="organization", format="csv", status="failed", error="boom")
    body = api("read").get("/api/v1/reports/?status=failed").json()
    assert [r["format"] for r in body["results"]] == ["csv"] and body["results"][0]["error"] == "boom"
