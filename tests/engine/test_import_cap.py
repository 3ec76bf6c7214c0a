"""WATCHPOST_IMPORT_MAX_BYTES holds while the file is hashed and parsed, and the refusal names the size."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from interventions.models import Intervention


@pytest.fixture
def small_cap(settings):
    settings.WATCHPOST_IMPORT_MAX_BYTES = 4096
    return 4096


@pytest.mark.timeout(60)  # today's main hashes /dev/zero forever
def test_an_endless_file_is_refused_at_the_cap_with_the_size_named(world, small_cap):
    with pytest.raises(CommandError) as refused:
        call_command("import_findings", "/dev/zero", org="acme", fmt="trivy")
    assert "more than 4,096 bytes" in str(refused.value)
    assert "import limit of 4,096 bytes" in str(refused.value)
    assert Intervention.objects.filter(org=world.org, kind=Intervention.Kind.IMPORT_REJECTED).exists()


def test_a_regular_file_over_the_cap_is_refused_before_it_is_read_with_its_size(world, small_cap, tmp_path):
    report = tmp_path / "trivy.json"
    report.write_text(json.dumps({"SchemaVersion": 2, "ArtifactName": "127.0.0.1", "Results": []}) + " " * 10_000)
    size = report.stat().st_size
    with pytest.raises(CommandError) as refused:
        call_command("import_findings", str(report), org="acme", fmt="trivy", node="127.0.0.1")
    assert f"is {size:,} bytes, over the import limit of 4,096 bytes" in str(refused.value)


def test_a_file_under_the_cap_still_imports(world, small_cap, tmp_path):
    report = tmp_path / "trivy.json"
    report.write_text(json.dumps({"SchemaVersion": 2, "ArtifactName": "127.0.0.1", "Results": []}))
    call_command("import_findings", str(report), org="acme", fmt="trivy", node="127.0.0.1")
    assert not Intervention.objects.filter(org=world.org, kind=Intervention.Kind.IMPORT_REJECTED).exists()
