"""No dynamic imports anywhere in the project: registries, tables and settings name what they load."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {".venv", ".git", "node_modules", "var", "artifacts", "__pycache__"}
# Spelled in pieces so this file does not match its own search.
FORBIDDEN = re.compile("|".join(re.escape(word) for word in ("import_" + "module", "__" + "import__",
                                                               "import_" + "string")))


def project_sources():
    for path in ROOT.rglob("*.py"):
        if not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts):
            yield path


def test_no_python_file_of_the_project_imports_dynamically():
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in project_sources()
             for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
             if FORBIDDEN.search(line)]
    assert not found, "dynamic imports found:\n" + "\n".join(found)


def test_the_scanner_and_importer_registries_are_complete_from_their_packages():
    from scans.importers.base import load_all as importers
    from scans.scanners.base import load_all as scanners

    assert {"portscan", "fingerprint", "tls", "http", "exposure", "nmap"} <= set(scanners())
    assert {"nmap", "nuclei", "trivy", "sslyze", "openvas", "sarif"} <= set(importers())


def test_every_task_the_pipeline_enqueues_has_its_service_in_the_table():
    from scans.pipeline import dispatch
    from scans.pipeline.execution import jobs_run
    from scans.pipeline.stages import normalization_part_run, stage_run

    table = dispatch.services()
    assert table["scans.tasks.discovery_jobs_run"] is jobs_run and table["scans.tasks.stage_run"] is stage_run
    assert table["scans.tasks.normalization_part_run"] is normalization_part_run
    assert set(table) == {"scans.tasks.stage_run", "scans.tasks.scoring_stage_run", "scans.tasks.reporting_stage_run",
                          "scans.tasks.discovery_jobs_run", "scans.tasks.job_run", "scans.tasks.normalization_part_run",
                          "scans.tasks.session_start_scheduled", "scans.tasks.catalog_rematch"}


def test_bench_names_its_benchmarks_in_a_table():
    from reports.management.commands.bench import BENCHMARKS

    assert {"scan", "ingest", "pipeline"} <= set(BENCHMARKS)
    assert all(callable(module.run) and callable(module.add_arguments) for module in BENCHMARKS.values())


def test_the_scoring_policy_is_chosen_by_name(settings):
    from scans.findings.scoring import DefaultScoringPolicy, scoring_policy

    settings.WATCHPOST_SCORING_POLICY = "default"
    assert type(scoring_policy()) is DefaultScoringPolicy
    settings.WATCHPOST_SCORING_POLICY = "scans.findings.scoring.DefaultScoringPolicy"  # the former default, still honoured
    assert type(scoring_policy()) is DefaultScoringPolicy
    settings.WATCHPOST_SCORING_POLICY = "os.system"  # a dotted path is never imported
    with pytest.raises(ImproperlyConfigured, match="names no registered scoring policy; known: default"):
        scoring_policy()


def test_interventions_import_nothing_of_the_pipeline():
    tree = ast.parse((ROOT / "interventions" / "services.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {name for name in imported if name == "scans" or name.startswith("scans.")}


def test_the_pipeline_registers_the_retry_of_its_intervention_kinds():
    from interventions.models import Intervention
    from interventions.services import RETRY_HANDLERS
    from scans.pipeline.retries import intervention_retry_work

    Kind = Intervention.Kind
    for kind in (Kind.JOB_EXHAUSTED, Kind.SCANNER_CRASHED, Kind.NODE_UNREACHABLE, Kind.STAGE_STUCK):
        assert RETRY_HANDLERS[kind] is intervention_retry_work
