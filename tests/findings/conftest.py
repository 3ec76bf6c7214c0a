"""Helpers for the findings engine tests: Nuclei files written on the fly, the shared samples, the CVE fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"the shared scanner samples are not at {SAMPLES} (they are not part of the repository)")
    return SAMPLES


def nuclei_result(host: str, template: str, *, severity: str = "medium", path: str = "/", port: int = 80,
                  cvss: float | None = None, name: str = "", matcher: str = "") -> dict:
    classification = {"cvss-score": cvss} if cvss is not None else {}
    record = {
        "template-id": template,
        "info": {"name": name or template.replace("-", " ").title(), "severity": severity,
                 "classification": classification},
        "type": "http",
        "host": f"http://{host}:{port}",
        "matched-at": f"http://{host}:{port}{path}",
        "ip": host,
        "timestamp": "2026-11-20T10:00:00Z",
    }
    if matcher:
        record["matcher-name"] = matcher
    return record


@pytest.fixture
def nuclei_file(tmp_path):
    """``nuclei_file(records, name=...)`` writes a Nuclei JSONL file and returns its path."""
    counter = iter(range(1_000_000))

    def write(records: list[dict], name: str | None = None) -> Path:
        path = tmp_path / (name or f"nuclei-{next(counter)}.jsonl")
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        return path

    return write
