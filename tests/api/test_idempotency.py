"""Idempotency-Key: a repeat returns the first response; a different body with the same key is a 422."""

from __future__ import annotations

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from nodes.models import Node
from scans.models import ImportRequest, ScanSession
from tests.api.conftest import problem
from tests.findings.conftest import nuclei_result


def test_the_same_post_twice_starts_one_session(api, world):
    client = api()
    first = client.post("/api/v1/sessions/", {"profile": "light"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = client.post("/api/v1/sessions/", {"profile": "light"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == second.status_code == 202
    assert ScanSession.objects.count() == 1
    assert second.json() == first.json()
    assert second["Location"] == first["Location"]
    assert second["Idempotent-Replayed"] == "true"


def test_the_same_key_with_another_body_is_422(api, world):
    client = api()
    client.post("/api/v1/sessions/", {"profile": "light"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    problem(client.post("/api/v1/sessions/", {"profile": "deep"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"),
            422, "idempotency_key_reused")
    assert ScanSession.objects.count() == 1


def test_keys_are_per_caller(api, world):
    api("read_write").post("/api/v1/sessions/", {}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    api("other").post("/api/v1/sessions/", {}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert ScanSession.objects.filter(org=world.org).count() == 1
    assert ScanSession.objects.filter(org=world.other_org).count() == 1


def test_without_a_key_each_post_is_new_work(api, world):
    api().post("/api/v1/sessions/", {}, format="json")
    api().post("/api/v1/sessions/", {}, format="json")
    assert ScanSession.objects.count() == 2


def test_a_refused_request_is_kept_too(api, world):
    client = api()
    first = client.post("/api/v1/sessions/", {"tag": "none"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    again = client.post("/api/v1/sessions/", {"tag": "none"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert first.status_code == again.status_code == 400
    assert again.json() == first.json()


def test_bulk_node_creation_is_idempotent(api, world):
    client = api()
    body = {"nodes": [{"address": "127.0.50.1"}, {"address": "127.0.50.2"}]}
    first = client.post("/api/v1/nodes/bulk/", body, format="json", HTTP_IDEMPOTENCY_KEY="bulk-1")
    second = client.post("/api/v1/nodes/bulk/", body, format="json", HTTP_IDEMPOTENCY_KEY="bulk-1")

    assert second.json() == first.json() and first.json()["added"] == 2
    assert Node.objects.filter(org=world.org).count() == 2


def test_an_upload_is_idempotent_on_its_content(api, world, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client = api()

    def upload(template):
        data = json.dumps(nuclei_result("127.0.60.1", template)).encode() + b"\n"
        return client.post("/api/v1/imports/", {"format": "nuclei", "file": SimpleUploadedFile("s.jsonl", data)},
                           format="multipart", HTTP_IDEMPOTENCY_KEY="upload-1")

    first, second = upload("a"), upload("a")
    assert second.json()["id"] == first.json()["id"]
    assert ImportRequest.objects.count() == 1
    problem(upload("b"), 422, "idempotency_key_reused")


def test_keys_older_than_a_day_are_forgotten(api, world):
    from datetime import timedelta

    from django.utils import timezone

    from orgs.models import IdempotencyKey

    client = api()
    client.post("/api/v1/sessions/", {}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))

    again = client.post("/api/v1/sessions/", {}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    client.post("/api/v1/sessions/", {}, format="json", HTTP_IDEMPOTENCY_KEY="new")

    assert again.status_code == 202 and "Idempotent-Replayed" not in again
    assert ScanSession.objects.count() == 3
    assert set(IdempotencyKey.objects.values_list("key", flat=True)) == {"old", "new"}
