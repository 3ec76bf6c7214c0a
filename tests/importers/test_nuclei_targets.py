"""Nuclei records that name their target in other fields, and files where a few name none."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from scans.findings.imports import findings_import
from scans.importers.base import ImportRejected, get_importer
from scans.models import Finding

from .fixtures import fixture

MIXED = fixture("nuclei/mixed_targets.jsonl")


def parse(source=MIXED, **kwargs):
    return get_importer("nuclei").parse(source, "mixed_targets.jsonl", **kwargs)


def test_a_record_without_host_takes_its_target_from_url_matched_at_ip_or_port():
    hosts = {f.rule_id: (f.host, f.port) for f in parse().findings}

    assert hosts == {
        "git-config": ("127.0.40.1", 8080),
        "exposed-env": ("127.0.40.2", 8000),  # url
        "server-status": ("127.0.40.3", 443),  # matched-at
        "tech-detect": ("127.0.40.4", None),  # ip
        "openssh-detect": ("127.0.40.5", 22),  # port written as host:port
        "weak-cipher-suites": ("127.0.40.6", 443),
    }


def test_records_naming_no_target_are_skipped_and_reported():
    result = parse()

    assert result.skipped == 2
    assert result.skipped_reasons == [
        "line 6 (aws-access-key-value): no host, url, matched-at, ip or port names a target",
        "line 8 (detect-js-secrets): no host, url, matched-at, ip or port names a target",
    ]


def test_strict_keeps_them_so_the_import_refuses_the_file(world):
    with pytest.raises(ImportRejected, match="2 finding.s. name no host"):
        findings_import(org=world.org, fmt="nuclei", path=MIXED, strict=True)

    assert not Finding.objects.exists()


def test_the_import_takes_the_rest_and_reports_the_skipped_records(world):
    report = findings_import(org=world.org, fmt="nuclei", path=MIXED)

    assert report.counts.new == 6
    assert report.skipped == 2 and len(report.skipped_reasons) == 2
    assert report.session.summary["skipped"]["count"] == 2
    assert report.as_dict()["skipped"] == 2


def test_with_node_nothing_is_skipped(world):
    report = findings_import(org=world.org, fmt="nuclei", path=MIXED, node_address="127.0.40.9")

    assert report.skipped == 0 and report.counts.new == 8


def test_only_the_first_reasons_are_kept_but_every_skip_is_counted(tmp_path):
    record = {"template-id": "detect-js-secrets", "info": {"name": "x", "severity": "low"}, "type": "javascript"}
    placed = {**record, "template-id": "git-config", "host": "127.0.40.1"}
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [placed] + [record] * 12) + "\n")

    result = parse(path)

    assert result.skipped == 12 and len(result.skipped_reasons) == 5


def test_a_file_where_no_record_names_a_target_is_still_refused(world, tmp_path):
    path = tmp_path / "nowhere.jsonl"
    path.write_text(json.dumps({"template-id": "x", "info": {"name": "x", "severity": "low"}}) + "\n")

    with pytest.raises(ImportRejected, match="name no host"):
        findings_import(org=world.org, fmt="nuclei", path=path)


def test_a_malformed_file_is_still_refused_whole(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(MIXED.read_text() + '{"template-id": "x", "info": \n')

    with pytest.raises(ImportRejected, match="line 9"):
        parse(path)


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_findings", *args, stdout=out)
    return out.getvalue()


def test_the_command_prints_the_skipped_records(world):
    out = run("--org", "acme", "--format", "nuclei", str(MIXED))

    assert "new 6" in out
    assert "skipped 2 record(s) that name no target" in out
    assert "line 6 (aws-access-key-value)" in out


def test_the_command_with_strict_refuses_the_file(world):
    with pytest.raises(CommandError, match="import rejected.*name no host"):
        run("--org", "acme", "--format", "nuclei", "--strict", str(MIXED))
