"""``bench scan --fleet N``: our sweep next to nmap over the same lab nodes, then identification; one JSON line last.

Needs nmap, as the benchmark does (``.ci/run`` installs it).
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

KEYS = ["benchmark", "nodes", "ports_per_node", "ours_sweep_s", "nmap_sweep_s", "ratio", "same_open_ports",
        "identify_s", "services_identified", "services_total"]


def test_the_fleet_benchmark_compares_open_ports_with_nmap_and_ends_with_its_json_line():
    out = io.StringIO()
    call_command("bench", "scan", "--fleet", "3", stdout=out)
    lines = out.getvalue().strip().splitlines()
    summary = json.loads(lines[-1])

    assert list(summary) == KEYS
    assert summary["benchmark"] == "fleet" and summary["nodes"] == 3 and summary["ports_per_node"] > 1000
    assert summary["same_open_ports"] is True
    assert summary["services_total"] == 12 and summary["services_identified"] == 12
    assert summary["ratio"] == pytest.approx(summary["ours_sweep_s"] / summary["nmap_sweep_s"], rel=0.01)
    assert any("nmap -sT -n -Pn" in line for line in lines)
