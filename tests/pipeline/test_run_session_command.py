"""``manage.py run_session``: inline with a JSON summary, refusal of out-of-scope targets, exit codes."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from nodes.models import Node
from scans.models import ScanSession


def test_inline_json_prints_the_session_summary(world, lab_nodes, quick_profile):
    addresses = lab_nodes(1)
    out = StringIO()
    call_command("run_session", "--org", "acme", "--targets", ",".join(addresses), "--profile", "quick", "--inline",
                 "--json", stdout=out)

    summary = json.loads(out.getvalue())
    assert summary["status"] == "succeeded" and summary["nodes"] == 1
    assert [s["stage"] for s in summary["stages"]] == ["discovery", "scan_creation", "execution", "analysis",
                                                       "normalization", "scoring", "reporting"]
    assert all(s["seconds"] is not None for s in summary["stages"])
    assert summary["jobs"]["execution"] == {"succeeded": 2}
    assert summary["findings"]["new"] > 0 and summary["interventions_opened"] == []
    assert Node.objects.filter(org=world.org, address=addresses[0]).exists()  # the target became a node


def test_an_out_of_scope_target_is_refused_before_anything_happens(world):
    world.org.scope_networks = ["127.0.60.0/24"]
    world.org.save()
    with pytest.raises(CommandError, match=r"refused.*127\.0\.61\.1"):
        call_command("run_session", "--org", "acme", "--targets", "127.0.60.1,127.0.61.1", "--inline")
    with pytest.raises(CommandError, match="refused.*10.0.0.1"):
        call_command("run_session", "--org", "acme", "--targets", "10.0.0.1", "--inline")
    assert not ScanSession.objects.exists() and not Node.objects.exists()


def test_inline_exits_non_zero_when_the_session_fails(world):
    world.org.scope_networks = ["127.0.60.0/24"]
    world.org.save()
    # 127.0.60.77 serves nothing: discovery finds no open port, nothing is scanned: failed.
    with pytest.raises(SystemExit) as exit_info:
        call_command("run_session", "--org", "acme", "--targets", "127.0.60.77", "--profile", "light", "--inline",
                     stdout=StringIO())
    assert exit_info.value.code == 1
    session = ScanSession.objects.get()
    assert session.status == "failed"
    assert session.interventions.get().kind == "node_unreachable"
