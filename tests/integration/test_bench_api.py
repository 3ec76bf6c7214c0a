"""``bench api``: gunicorn serving the API to load processes, every endpoint measured, one JSON line last."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.integration


def test_bench_api_loads_every_endpoint_through_gunicorn_and_ends_on_one_json_line(transactional_db):
    out = StringIO()
    call_command("bench", "api", "--nodes", "50", "--findings", "1000", "--seconds", "1", "--threads", "2",
                 "--client-processes", "1", "--workers", "1", stdout=out)

    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["benchmark"] == "api"
    assert set(summary["endpoints"]) == {"nodes_list", "findings_list_filtered", "finding_detail"}
    for name, endpoint in summary["endpoints"].items():
        assert endpoint["errors"] == 0, name
        assert endpoint["requests_per_second"] > 0 and 0 < endpoint["p50_ms"] <= endpoint["p99_ms"], name
