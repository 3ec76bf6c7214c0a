"""The console's import page: a scanner file uploaded, queued on the API's path, then its counts or refusal."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from scans.findings.import_requests import import_request_process
from scans.models import Finding, ImportRequest
from tests.findings.conftest import nuclei_result

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def url(*args, name="import_list", slug="acme"):
    return reverse(f"scans:{name}", args=[slug, *args])


def nuclei_file(*hosts, name="scan.jsonl"):
    return SimpleUploadedFile(name, "".join(json.dumps(nuclei_result(h, f"t-{n}")) + "\n"
                                            for n, h in enumerate(hosts)).encode())


def test_an_analysts_upload_is_detected_queued_then_shows_its_counts(world, login, django_capture_on_commit_callbacks):
    client = login(world.analyst)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(url(), {"file": nuclei_file("127.0.60.1", "127.0.60.2"), "format": "", "node": ""})

    assert response.status_code == 302 and response["Location"] == url()
    request = ImportRequest.objects.get(org=world.org)
    assert (request.format, request.status, request.requested_by) == ("nuclei", "queued", world.analyst)
    assert len(queued) == 1  # the processing task, published after commit
    page = client.get(url()).content.decode()
    assert "scan.jsonl is queued for import as nuclei." in page
    assert 'hx-trigger="every 2s"' in page  # the queued row polls its status

    import_request_process(import_request_id=request.pk)

    row = client.get(url(request.pk, name="import_row")).content.decode()
    assert "<strong>2</strong> new" in row and "0 fixed" in row and "0 skipped" in row
    assert "hx-trigger" not in row  # finished: the polling stops
    assert Finding.objects.filter(org=world.org).count() == 2


def test_a_refused_file_shows_the_reason_and_writes_no_finding(world, login):
    client = login(world.analyst)
    client.post(url(), {"file": nuclei_file("10.9.9.9"), "format": "nuclei"})
    request = ImportRequest.objects.get(org=world.org)

    import_request_process(import_request_id=request.pk)

    row = client.get(url(request.pk, name="import_row")).content.decode()
    assert "Rejected" in row and "10.9.9.9" in row
    assert "scan.jsonl: " in row and request.upload.name.rsplit("/", 1)[-1] not in row  # the sender's name, not storage's
    assert not Finding.objects.exists()


def test_the_chosen_format_wins_over_detection(world, login):
    login(world.analyst).post(url(), {"file": nuclei_file("127.0.60.1"), "format": "sarif"})
    assert ImportRequest.objects.get().format == "sarif"


def test_a_file_over_the_limit_is_refused_with_the_limit_and_nothing_is_kept(world, login, settings):
    settings.WATCHPOST_IMPORT_MAX_BYTES = 100
    response = login(world.analyst).post(url(), {"file": nuclei_file("127.0.60.1", "127.0.60.2"), "format": ""})
    assert response.status_code == 400
    assert "larger than the limit of 100 bytes" in response.content.decode()
    assert not ImportRequest.objects.exists()


def test_a_body_declared_far_over_the_limit_is_refused_before_it_is_read(world, login, settings):
    settings.WATCHPOST_IMPORT_MAX_BYTES = 100
    client = login(world.analyst)
    response = client.generic("POST", url(), b"x" * 200_000, content_type="multipart/form-data; boundary=zz")
    assert response.status_code == 413 and "larger than the limit" in response.content.decode()
    assert not ImportRequest.objects.exists()


def test_binary_junk_is_refused_with_a_clear_error(world, login):
    junk = SimpleUploadedFile("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    response = login(world.analyst).post(url(), {"file": junk, "format": ""})
    assert response.status_code == 400
    assert "binary data, not a scanner&#x27;s report" in response.content.decode()
    assert not ImportRequest.objects.exists()


def test_text_in_no_known_format_asks_for_the_format(world, login):
    response = login(world.analyst).post(url(), {"file": SimpleUploadedFile("notes.txt", b"hello\n"), "format": ""})
    assert response.status_code == 400
    assert "could not be told from its start: choose it" in response.content.decode()
    assert not ImportRequest.objects.exists()


@pytest.mark.parametrize("fields, message", [
    ({"format": "excel"}, "Select a valid choice"),
    ({"format": "nuclei", "file": ""}, "This field is required"),
])
def test_a_bad_format_or_a_missing_file_is_a_field_error(world, login, fields, message):
    data = {"file": nuclei_file("127.0.60.1"), **fields}
    if data["file"] == "":
        del data["file"]
    response = login(world.analyst).post(url(), data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not ImportRequest.objects.exists()


def test_an_empty_file_is_refused(world, login):
    response = login(world.analyst).post(url(), {"file": SimpleUploadedFile("empty.jsonl", b""), "format": ""})
    assert response.status_code == 400 and "The submitted file is empty." in response.content.decode()


def test_past_imports_are_listed_newest_first_with_api_ones(world, login):
    ImportRequest.objects.create(org=world.org, format="nmap", filename="older.xml", status="succeeded",
                                 counts={"new": 3, "fixed": 1})
    ImportRequest.objects.create(org=world.org, format="trivy", filename="newer.json", status="rejected",
                                 reason="newer.json: no host")
    page = login(world.viewer).get(url()).content.decode()
    assert page.index("newer.json") < page.index("older.xml")
    assert "<strong>3</strong> new" in page and "newer.json: no host" in page


def test_a_viewer_sees_the_list_but_may_not_upload(world, login):
    client = login(world.viewer)
    page = client.get(url()).content.decode()
    assert "read-only" in page and 'enctype="multipart/form-data"' not in page
    assert client.post(url(), {"file": nuclei_file("127.0.60.1"), "format": ""}).status_code == 403
    assert not ImportRequest.objects.exists()


def test_another_organizations_page_and_imports_are_not_found(world, login):
    theirs = ImportRequest.objects.create(org=world.other_org, format="nuclei", filename="theirs.jsonl")
    client = login(world.analyst)
    assert client.get(url(slug="globex")).status_code == 404
    assert client.post(url(slug="globex"), {"file": nuclei_file("127.0.60.1")}).status_code == 404
    assert client.get(url(theirs.pk, name="import_row")).status_code == 404
    assert "theirs.jsonl" not in client.get(url()).content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client, world):
    for response in (client.get(url()), client.post(url(), {"file": nuclei_file("127.0.60.1")})):
        assert response.status_code == 302 and "login" in response["Location"]
    assert not ImportRequest.objects.exists()


def test_the_row_endpoint_answers_only_get(world, login):
    mine = ImportRequest.objects.create(org=world.org, format="nuclei", filename="mine.jsonl")
    assert login(world.analyst).post(url(mine.pk, name="import_row")).status_code == 405
