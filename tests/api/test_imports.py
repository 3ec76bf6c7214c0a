"""Scanner files over the API: stored, queued (202), imported through the import_findings path."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from interventions.models import Intervention
from scans.findings.import_requests import import_request_process
from scans.models import Finding, ImportRequest
from tests.api.conftest import problem
from tests.findings.conftest import nuclei_result


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def nuclei_upload(*records, name="scan.jsonl"):
    return SimpleUploadedFile(name, "".join(json.dumps(r) + "\n" for r in records).encode(),
                              content_type="application/x-ndjson")


def test_an_upload_is_queued_then_imported_with_its_counts(api, world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        response = api().post("/api/v1/imports/", {
            "format": "nuclei",
            "file": nuclei_upload(nuclei_result("127.0.60.1", "git-config"), nuclei_result("127.0.60.1", "cors")),
        }, format="multipart")

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and response["Location"] == f"/api/v1/imports/{body['id']}/"
    assert len(queued) == 1  # the processing task, published after commit
    request = ImportRequest.objects.get(pk=body["id"])
    assert request.upload.storage.exists(request.upload.name)

    import_request_process(import_request_id=request.pk)

    done = api("read").get(f"/api/v1/imports/{request.pk}/").json()
    assert done["status"] == "succeeded"
    assert (done["counts"]["new"], done["counts"]["findings"]) == (2, 2)
    assert Finding.objects.filter(org=world.org, source="nuclei").count() == 2
    assert Finding.objects.first().node.org == world.org


def test_processing_twice_imports_once(api, world):
    response = api().post("/api/v1/imports/", {"format": "nuclei",
                                               "file": nuclei_upload(nuclei_result("127.0.60.1", "a"))},
                          format="multipart")
    pk = response.json()["id"]

    import_request_process(import_request_id=pk)
    import_request_process(import_request_id=pk)

    assert ImportRequest.objects.get(pk=pk).counts["new"] == 1


def test_a_host_out_of_scope_is_rejected_with_the_reason_and_nothing_written(api, world):
    pk = api().post("/api/v1/imports/", {"format": "nuclei", "file": nuclei_upload(nuclei_result("10.0.0.1", "a"))},
                    format="multipart").json()["id"]

    import_request_process(import_request_id=pk)

    body = api().get(f"/api/v1/imports/{pk}/").json()
    assert body["status"] == "rejected"
    assert "10.0.0.1" in body["reason"]
    assert not Finding.objects.exists()
    assert Intervention.objects.filter(kind=Intervention.Kind.IMPORT_REJECTED).exists()


def test_a_file_over_the_size_cap_is_refused_at_upload(api, world, settings):
    settings.WATCHPOST_IMPORT_MAX_BYTES = 100
    record = nuclei_result("127.0.60.1", "x" * 200)

    problem(api().post("/api/v1/imports/", {"format": "nuclei", "file": nuclei_upload(record)}, format="multipart"),
            413, "too_large")
    assert not ImportRequest.objects.exists()


def test_an_unknown_format_is_a_field_error(api, world):
    body = problem(api().post("/api/v1/imports/", {"format": "excel", "file": nuclei_upload({})},
                              format="multipart"), 400, "invalid")
    assert "format" in body["errors"]


def test_another_organizations_import_is_not_found(api, world):
    theirs = ImportRequest.objects.create(org=world.other_org, format="nuclei", filename="x")
    problem(api().get(f"/api/v1/imports/{theirs.pk}/"), 404, "not_found")
