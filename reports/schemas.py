"""The JSON Schemas reports are written against, shipped in ``reports/schema/``.

``report-v1.schema.json`` documents the JSON format (versioned by its ``schema_version``);
``sarif-2.1.0-subset.schema.json`` is our own schema of the SARIF 2.1.0 objects we write,
from the OASIS specification (not the official schema file).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
REPORT_SCHEMA = SCHEMA_DIR / "report-v1.schema.json"
SARIF_SCHEMA = SCHEMA_DIR / "sarif-2.1.0-subset.schema.json"


@cache
def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
