"""``bench pipeline``: sessions on real workers and direct runs taking turns, medians reported."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from orgs.models import Organization
from scans.models import ScanProfile, ScanSession

pytestmark = pytest.mark.integration


def test_bench_pipeline_runs_each_round_on_real_workers_and_reports_the_medians(transactional_db, purge_queues):
    # A built-in profile of its own: an earlier transactional test may have emptied the migrated ones.
    ScanProfile.objects.create(org=None, slug="bench-test", name="Bench test", scanners=["tls", "http", "exposure"],
                               ports="top1000", time_budget_seconds=900, job_timeout_seconds=120)
    out = StringIO()
    call_command("bench", "pipeline", "--nodes", "3", "--rounds", "2", "--warmup", "1", "--profile", "bench-test",
                 "--timeout", "120", stdout=out)

    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["benchmark"] == "pipeline" and summary["rounds"] == 2 and summary["warmup_rounds"] == 1
    assert "Warm-up round 1 of 1 (not counted)" in out.getvalue()
    assert summary["status"] == ScanSession.Status.SUCCEEDED
    assert summary["jobs"] == {"succeeded": 9}  # three nodes, three scanners each
    assert summary["same_work"] is True
    assert len(summary["rounds_total_seconds"]) == len(summary["rounds_overhead"]) == 2
    assert sorted(summary["rounds_total_seconds"])[0] <= summary["total_seconds"] <= sorted(summary["rounds_total_seconds"])[1]
    assert summary["overhead"] == pytest.approx(sorted(summary["rounds_overhead"])[0] / 2
                                                + sorted(summary["rounds_overhead"])[1] / 2, abs=0.002)
    assert set(summary["stages"]) >= {"discovery", "execution", "normalization", "reporting"}
    assert "round 1" in out.getvalue() and "median" in out.getvalue()
    assert summary["findings_new"] == 39  # each round's session in an organization of its own
    assert not Organization.objects.filter(slug__startswith="bench-").exists()  # removed unless --keep


def test_bench_pipeline_refuses_fewer_than_one_round(transactional_db):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="--rounds"):
        call_command("bench", "pipeline", "--nodes", "1", "--rounds", "0", stdout=StringIO())
