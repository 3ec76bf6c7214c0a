"""python manage.py import_findings: counts printed, refusals exit non-zero and change nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from interventions.models import Intervention
from nodes.models import Node
from scans.models import Finding, ScanSession
from tests.findings.conftest import nuclei_result

HOST = "127.0.60.1"


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_findings", *args, stdout=out)
    return out.getvalue()


def test_it_prints_the_lifecycle_counts(world, nuclei_file):
    path = nuclei_file([nuclei_result(HOST, "git-config"), nuclei_result(HOST, "cors-misconfig")], name="scan.jsonl")

    out = run("--org", "acme", "--format", "nuclei", str(path))

    assert "Imported scan.jsonl (nuclei) into acme: 2 findings read, 1 nodes (1 new)" in out
    assert "new 2  updated 0  reopened 0  fixed 0  unchanged 0" in out


def test_a_second_run_prints_fixed_and_unchanged(world, nuclei_file):
    run("--org", "acme", "--format", "nuclei",
        str(nuclei_file([nuclei_result(HOST, "git-config"), nuclei_result(HOST, "cors-misconfig")])))

    out = run("--org", "acme", "--format", "nuclei", str(nuclei_file([nuclei_result(HOST, "git-config")])))

    assert "new 0  updated 0  reopened 0  fixed 1  unchanged 1" in out


def test_a_rejected_file_exits_non_zero_with_the_reason_and_changes_nothing(world, nuclei_file):
    run("--org", "acme", "--format", "nuclei", str(nuclei_file([nuclei_result(HOST, "git-config")])))
    broken = nuclei_file([], name="broken.jsonl")
    broken.write_text('{"template-id": "x", "info": {"name": "y"}}\n{oops}\n')

    with pytest.raises(CommandError, match=r"import rejected: broken\.jsonl: line 2"):
        run("--org", "acme", "--format", "nuclei", str(broken))

    assert ScanSession.objects.count() == 1
    assert Finding.objects.get().status == "open"
    assert Intervention.objects.filter(kind="import_rejected", state="open").count() == 1


def test_an_out_of_scope_host_is_refused(world, nuclei_file):
    path = nuclei_file([nuclei_result("203.0.113.7", "git-config")])

    with pytest.raises(CommandError, match=r"'203\.0\.113\.7' is outside the organization's scope"):
        run("--org", "acme", "--format", "nuclei", str(path))

    assert not Node.objects.filter(address="203.0.113.7").exists()
    assert not ScanSession.objects.exists()


def test_node_names_where_hostless_findings_go(world, nuclei_file):
    record = nuclei_result(HOST, "git-config")
    for key in ("ip", "host", "matched-at"):
        record.pop(key)

    out = run("--org", "acme", "--node", HOST, "--format", "nuclei", str(nuclei_file([record])))

    assert "new 1" in out
    assert Finding.objects.get().node.address == HOST


def test_an_unknown_organization_is_an_error(world, nuclei_file):
    with pytest.raises(CommandError, match="no organization with slug 'nope'"):
        run("--org", "nope", "--format", "nuclei", str(nuclei_file([])))


def test_a_missing_file_is_refused(world, tmp_path):
    with pytest.raises(CommandError, match="missing.jsonl: cannot be opened"):
        run("--org", "acme", "--format", "nuclei", str(tmp_path / "missing.jsonl"))
